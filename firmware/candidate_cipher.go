package firmware

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// TransformAESCTR is the external header's transformation mode of a
// candidate kept encrypted (the Mbed header reserves the field and the
// Pelion client leaves it 0).
const TransformAESCTR = 1

// CandidateCipher is the AES-256-CTR keystream of a candidate the hardened
// profile keeps encrypted off-chip. The key is derived from the device key,
// so only this device (and whoever holds its ROT) can read the card; the
// initial counter block is derived from the firmware's SHA-256, so no two
// images share a keystream (the same image on the same device encrypts the
// same way, which shows only that two candidates are equal).
type CandidateCipher struct {
	block cipher.Block
	iv    [16]byte
}

// NewCandidateCipher returns the cipher of a firmware on a device.
func NewCandidateCipher(deviceKey []byte, firmwareHash [32]byte) (*CandidateCipher, error) {
	key, err := HMACSHA256(deviceKey, []byte("bootsim candidate encryption v1"))
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("firmware: candidate cipher: %w", err)
	}
	c := &CandidateCipher{block: block}
	iv := sha256.Sum256(append([]byte("bootsim candidate iv v1"), firmwareHash[:]...))
	copy(c.iv[:], iv[:16])
	return c, nil
}

// IV is the initial counter block.
func (c *CandidateCipher) IV() [16]byte { return c.iv }

// XORAt encrypts or decrypts p in place as the bytes at offset of the
// candidate: CTR mode is seekable, so any range can be read or written on
// its own.
func (c *CandidateCipher) XORAt(offset uint64, p []byte) {
	var ctr [16]byte
	hi, lo := binary.BigEndian.Uint64(c.iv[:8]), binary.BigEndian.Uint64(c.iv[8:])
	add := offset / aes.BlockSize
	lo2 := lo + add
	if lo2 < lo {
		hi++
	}
	binary.BigEndian.PutUint64(ctr[:8], hi)
	binary.BigEndian.PutUint64(ctr[8:], lo2)
	s := cipher.NewCTR(c.block, ctr[:])
	if r := offset % aes.BlockSize; r > 0 {
		var skip [aes.BlockSize]byte
		s.XORKeyStream(skip[:r], skip[:r])
	}
	s.XORKeyStream(p, p)
}
