// Package firmware holds the formats of what is stored and shipped: the Mbed
// metadata headers (internal and external v2), the per-device key, the v1
// and v3 update manifests, FOTA semantic versions and AES-CTR payload
// decryption, all byte-compatible with the real Mbed stack
// (reference/mbed-stack.md §1, §4.3).
package firmware

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash/crc32"
)

// Constants of the v2 metadata headers.
const (
	HeaderMagic         = 0x5a51b3d4
	HeaderVersion       = 2
	InternalHeaderSize  = 112
	ExternalHeaderSize  = 296
	internalCRCOffset   = 108
	externalHMACOffset  = 232
	hashFieldSize       = 64
	deviceKeyLabel      = "StorageEnc256HMACSHA256SIGNATURE"
	maxHMACKeySize      = 64
	ROTSize             = 16
	DeviceKeySize       = 32
	TransformationNone  = 0
	internalSigSizeOff  = 104
	externalCampaignOff = 160
)

// Errors from header decoding and key derivation. The returned errors wrap
// them with the detail (offsets, values found).
var (
	// ErrShort: fewer bytes than the header's size.
	ErrShort = errors.New("firmware: header truncated")
	// ErrMagic: the headerMagic field is not 0x5a51b3d4.
	ErrMagic = errors.New("firmware: bad header magic")
	// ErrHeaderVersion: headerVersion is not 2.
	ErrHeaderVersion = errors.New("firmware: unsupported header version")
	// ErrCRC: the internal header's CRC-32 over bytes 0..107 does not match.
	ErrCRC = errors.New("firmware: header CRC mismatch")
	// ErrHMAC: the external header's HMAC over bytes 0..231 does not match.
	ErrHMAC = errors.New("firmware: header HMAC mismatch")
	// ErrROTSize: the root of trust is not 16 bytes.
	ErrROTSize = errors.New("firmware: root of trust must be 16 bytes")
	// ErrKeyTooLong: an HMAC key longer than 64 bytes, which the Mbed
	// bootloader's HMAC refuses instead of hashing it as RFC 2104 would.
	ErrKeyTooLong = errors.New("firmware: HMAC key longer than 64 bytes")
)

// InternalHeader is the 112-byte metadata header of the active image and of
// candidates on internal flash (arm_uc_metadata_header_v2.h). Integers are
// big-endian on the wire.
type InternalHeader struct {
	Magic         uint32 // headerMagic, 0x5a51b3d4 in a valid header
	HeaderVersion uint32 // 2
	// FirmwareVersion is the manifest timestamp for downloaded firmware.
	FirmwareVersion uint64
	FirmwareSize    uint64
	// FirmwareHash is the SHA-256 of the firmware; on the wire it fills the
	// first 32 bytes of a 64-byte field whose rest is zero.
	FirmwareHash [32]byte
	Campaign     [16]byte
	// SignatureSize is always 0: signatures were never supported.
	SignatureSize uint32
	CRC           uint32
}

// Encode returns the 112 header bytes with a fresh CRC (the CRC field of h is
// ignored). Magic and version are always written as 0x5a51b3d4 and 2.
func (h *InternalHeader) Encode() []byte {
	b := make([]byte, InternalHeaderSize)
	binary.BigEndian.PutUint32(b[0:], HeaderMagic)
	binary.BigEndian.PutUint32(b[4:], HeaderVersion)
	binary.BigEndian.PutUint64(b[8:], h.FirmwareVersion)
	binary.BigEndian.PutUint64(b[16:], h.FirmwareSize)
	copy(b[24:24+32], h.FirmwareHash[:])
	copy(b[88:104], h.Campaign[:])
	binary.BigEndian.PutUint32(b[internalSigSizeOff:], h.SignatureSize)
	binary.BigEndian.PutUint32(b[internalCRCOffset:], crc32.ChecksumIEEE(b[:internalCRCOffset]))
	return b
}

// ParseInternalHeader parses the header the way arm_uc_parse_internal_header_v2
// does: it checks only the CRC, not the magic or the version. The bootloader
// reads candidates on internal flash this way. On a CRC mismatch it returns
// the decoded fields along with the error, for inspection tools.
func ParseInternalHeader(b []byte) (*InternalHeader, error) {
	if len(b) < InternalHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrShort, len(b), InternalHeaderSize)
	}
	h := &InternalHeader{
		Magic:           binary.BigEndian.Uint32(b[0:]),
		HeaderVersion:   binary.BigEndian.Uint32(b[4:]),
		FirmwareVersion: binary.BigEndian.Uint64(b[8:]),
		FirmwareSize:    binary.BigEndian.Uint64(b[16:]),
		SignatureSize:   binary.BigEndian.Uint32(b[internalSigSizeOff:]),
		CRC:             binary.BigEndian.Uint32(b[internalCRCOffset:]),
	}
	copy(h.FirmwareHash[:], b[24:56])
	copy(h.Campaign[:], b[88:104])
	if want := crc32.ChecksumIEEE(b[:internalCRCOffset]); want != h.CRC {
		return h, fmt.Errorf("%w: stored 0x%08x, computed 0x%08x over bytes 0..107", ErrCRC, h.CRC, want)
	}
	return h, nil
}

// DecodeInternalHeader decodes the active image's header as
// ARM_UC_PAL_FlashIAP_GetActiveDetails does: the version first (only 2 is
// known), then the magic, then the CRC.
func DecodeInternalHeader(b []byte) (*InternalHeader, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrShort, len(b), InternalHeaderSize)
	}
	if err := checkMagicVersion(b); err != nil {
		return nil, err
	}
	h, err := ParseInternalHeader(b)
	if err != nil {
		return nil, err
	}
	return h, nil
}

func checkMagicVersion(b []byte) error {
	if v := binary.BigEndian.Uint32(b[4:]); v != HeaderVersion {
		return fmt.Errorf("%w: %d (want 2)", ErrHeaderVersion, v)
	}
	if m := binary.BigEndian.Uint32(b[0:]); m != HeaderMagic {
		return fmt.Errorf("%w: 0x%08x (want 0x%08x)", ErrMagic, m, uint32(HeaderMagic))
	}
	return nil
}

// ExternalHeader is the 296-byte metadata header of candidates on untrusted
// block devices (SD, SPI flash). Its integrity and authenticity rest on an
// HMAC-SHA256 keyed with the per-device key; there is no CRC.
type ExternalHeader struct {
	Magic           uint32
	HeaderVersion   uint32
	FirmwareVersion uint64
	FirmwareSize    uint64
	FirmwareHash    [32]byte
	// PayloadSize and PayloadHash describe the payload as stored; the client
	// copies the firmware's values there (no transformation is implemented).
	PayloadSize        uint64
	PayloadHash        [32]byte
	Campaign           [16]byte
	TransformationMode uint32
	CipherKey          [32]byte
	InitVector         [16]byte
	SignatureSize      uint32
	HMAC               [32]byte
}

// Encode returns the 296 header bytes with the HMAC computed with deviceKey
// (the HMAC field of h is ignored).
func (h *ExternalHeader) Encode(deviceKey []byte) ([]byte, error) {
	b := make([]byte, ExternalHeaderSize)
	binary.BigEndian.PutUint32(b[0:], HeaderMagic)
	binary.BigEndian.PutUint32(b[4:], HeaderVersion)
	binary.BigEndian.PutUint64(b[8:], h.FirmwareVersion)
	binary.BigEndian.PutUint64(b[16:], h.FirmwareSize)
	copy(b[24:56], h.FirmwareHash[:])
	binary.BigEndian.PutUint64(b[88:], h.PayloadSize)
	copy(b[96:128], h.PayloadHash[:])
	copy(b[externalCampaignOff:176], h.Campaign[:])
	binary.BigEndian.PutUint32(b[176:], h.TransformationMode)
	copy(b[180:212], h.CipherKey[:])
	copy(b[212:228], h.InitVector[:])
	binary.BigEndian.PutUint32(b[228:], h.SignatureSize)
	mac, err := HMACSHA256(deviceKey, b[:externalHMACOffset])
	if err != nil {
		return nil, err
	}
	copy(b[externalHMACOffset:], mac)
	return b, nil
}

// ParseExternalHeader parses an external header and checks its HMAC with
// deviceKey, in constant time. With a nil deviceKey the HMAC is not checked
// (for inspection only; firmware never does this). On an HMAC mismatch it
// returns the decoded fields along with the error.
func ParseExternalHeader(b []byte, deviceKey []byte) (*ExternalHeader, error) {
	if len(b) < ExternalHeaderSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrShort, len(b), ExternalHeaderSize)
	}
	h := &ExternalHeader{
		Magic:              binary.BigEndian.Uint32(b[0:]),
		HeaderVersion:      binary.BigEndian.Uint32(b[4:]),
		FirmwareVersion:    binary.BigEndian.Uint64(b[8:]),
		FirmwareSize:       binary.BigEndian.Uint64(b[16:]),
		PayloadSize:        binary.BigEndian.Uint64(b[88:]),
		TransformationMode: binary.BigEndian.Uint32(b[176:]),
		SignatureSize:      binary.BigEndian.Uint32(b[228:]),
	}
	copy(h.FirmwareHash[:], b[24:56])
	copy(h.PayloadHash[:], b[96:128])
	copy(h.Campaign[:], b[externalCampaignOff:176])
	copy(h.CipherKey[:], b[180:212])
	copy(h.InitVector[:], b[212:228])
	copy(h.HMAC[:], b[externalHMACOffset:externalHMACOffset+32])
	if deviceKey == nil {
		return h, nil
	}
	want, err := HMACSHA256(deviceKey, b[:externalHMACOffset])
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare(want, h.HMAC[:]) != 1 {
		return h, &hmacMismatch{stored: [4]byte(h.HMAC[:4]), computed: [4]byte(want[:4])}
	}
	return h, nil
}

// hmacMismatch is ParseExternalHeader's ErrHMAC, with the first bytes of
// the stored and the computed HMAC. Every boot with an empty candidate slot
// makes one (blank flash fails the HMAC), so it is built without fmt,
// whose code, cold after the image's hash, cost more than the HMAC.
type hmacMismatch struct{ stored, computed [4]byte }

func (e *hmacMismatch) Error() string {
	return ErrHMAC.Error() + ": stored " + hex.EncodeToString(e.stored[:]) + "…, computed " +
		hex.EncodeToString(e.computed[:]) + "… over bytes 0..231"
}

func (e *hmacMismatch) Unwrap() error { return ErrHMAC }

// DecodeExternalHeader checks the version and magic, then parses and
// authenticates the header.
func DecodeExternalHeader(b []byte, deviceKey []byte) (*ExternalHeader, error) {
	if len(b) < 8 {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrShort, len(b), ExternalHeaderSize)
	}
	if err := checkMagicVersion(b); err != nil {
		return nil, err
	}
	h, err := ParseExternalHeader(b, deviceKey)
	if err != nil {
		return nil, err
	}
	return h, nil
}

// HMACSHA256 is ARM_UC_cryptoHMACSHA256: standard HMAC-SHA256, except that a
// key longer than the 64-byte block is refused rather than hashed.
//
// It runs on every boot (the device key, each external header), so for the
// short messages it sees it hashes from stack buffers: crypto/hmac allocates
// two digests and its pads per call. Longer messages take crypto/hmac, and
// TestHMACSHA256MatchesCryptoHMAC holds both paths to it.
func HMACSHA256(key, msg []byte) ([]byte, error) {
	if len(key) > maxHMACKeySize {
		return nil, fmt.Errorf("%w: %d bytes", ErrKeyTooLong, len(key))
	}
	if len(msg) > hmacStackMessage {
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		return m.Sum(nil), nil
	}
	const ipad, opad = 0x36, 0x5c
	var in [sha256.BlockSize + hmacStackMessage]byte
	copy(in[:], key)
	for i := range sha256.BlockSize {
		in[i] ^= ipad
	}
	n := sha256.BlockSize + copy(in[sha256.BlockSize:], msg)
	inner := sha256.Sum256(in[:n])
	var out [sha256.BlockSize + sha256.Size]byte
	for i := range sha256.BlockSize {
		out[i] = in[i] ^ ipad ^ opad
	}
	copy(out[sha256.BlockSize:], inner[:])
	mac := sha256.Sum256(out[:])
	return mac[:], nil
}

// hmacStackMessage is the longest message HMACSHA256 hashes from the stack:
// an external header's signed part and the key-derivation label fit.
const hmacStackMessage = 256

// DeviceKey derives the 256-bit device key from the 128-bit root of trust,
// as ARM_UC_getDeviceKey256Bit does: HMAC-SHA256 keyed with the ROT over the
// label "StorageEnc256HMACSHA256SIGNATURE"; with backwardCompatible, the
// label is the key and the ROT the message
// (PAL_DEVICE_KEY_DERIVATION_BACKWARD_COMPATIBILITY_CALC).
func DeviceKey(rot []byte, backwardCompatible bool) ([]byte, error) {
	if len(rot) != ROTSize {
		return nil, fmt.Errorf("%w: got %d", ErrROTSize, len(rot))
	}
	if backwardCompatible {
		return HMACSHA256([]byte(deviceKeyLabel), rot)
	}
	return HMACSHA256(rot, []byte(deviceKeyLabel))
}
