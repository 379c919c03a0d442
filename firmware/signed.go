package firmware

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sync"
)

// The signature trailer of the hardened profile's images. The Mbed stack
// has no signature on an image, only on the manifest the client checks
// (mbed-stack.md §7, weakness 1), so a bootloader cannot tell who built
// what it boots. A hardened image carries the vendor's signature after
// its last byte, as MCUboot's TLV area does: the vendor signs once at
// build time, and every copy of the image (download, slot, active region,
// saved copy) carries the proof with it.
//
// Layout, big-endian:
//
//	0   8  magic "BSIMSIG1"
//	8   8  firmware version
//	16  8  size of the image before the trailer
//	24 32  SHA-256 of the image before the trailer
//	56 64  ECDSA P-256 signature r‖s over SHA-256 of bytes 0..55
const (
	TrailerSize  = 120
	trailerMagic = "BSIMSIG1"
	signedPart   = 56
)

// Errors of signed images.
var (
	// ErrNoTrailer: the bytes do not end in a signature trailer.
	ErrNoTrailer = errors.New("firmware: no signature trailer")
	// ErrBadSignature: the trailer's signature does not verify with the key.
	ErrBadSignature = errors.New("firmware: bad signature")
	// ErrDigest: the image does not hash to the digest its trailer signs.
	ErrDigest = errors.New("firmware: image does not match its signed digest")
)

// Trailer is an image's signature trailer.
type Trailer struct {
	Version uint64
	Size    uint64
	Digest  [32]byte
	Sig     [64]byte
}

// signedBytes returns the bytes the signature covers.
func (t *Trailer) signedBytes() []byte {
	b := make([]byte, signedPart)
	copy(b, trailerMagic)
	binary.BigEndian.PutUint64(b[8:], t.Version)
	binary.BigEndian.PutUint64(b[16:], t.Size)
	copy(b[24:], t.Digest[:])
	return b
}

// Encode returns the trailer's TrailerSize bytes.
func (t *Trailer) Encode() []byte {
	return append(t.signedBytes(), t.Sig[:]...)
}

// ParseTrailer parses a trailer; it does not verify it.
func ParseTrailer(b []byte) (*Trailer, error) {
	if len(b) != TrailerSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrNoTrailer, len(b), TrailerSize)
	}
	if !bytes.Equal(b[:8], []byte(trailerMagic)) {
		return nil, fmt.Errorf("%w: magic %x", ErrNoTrailer, b[:8])
	}
	t := &Trailer{Version: binary.BigEndian.Uint64(b[8:]), Size: binary.BigEndian.Uint64(b[16:])}
	copy(t.Digest[:], b[24:56])
	copy(t.Sig[:], b[56:])
	return t, nil
}

// Verify checks the trailer's signature with the vendor's public key.
func (t *Trailer) Verify(pub *ecdsa.PublicKey) error {
	d := sha256.Sum256(t.signedBytes())
	r, s := new(big.Int).SetBytes(t.Sig[:32]), new(big.Int).SetBytes(t.Sig[32:])
	if pub == nil || !ecdsa.Verify(pub, d[:], r, s) {
		return ErrBadSignature
	}
	return nil
}

// Sign appends a signature trailer to image: version and digest signed with
// the vendor's key. The signature is deterministic (RFC 6979), so an image
// built twice from one seed has the same bytes.
func Sign(image []byte, version uint64, key *ecdsa.PrivateKey) ([]byte, error) {
	t := &Trailer{Version: version, Size: uint64(len(image)), Digest: sha256.Sum256(image)}
	d := sha256.Sum256(t.signedBytes())
	r, s, err := signDeterministic(key, d[:])
	if err != nil {
		return nil, err
	}
	r.FillBytes(t.Sig[:32])
	s.FillBytes(t.Sig[32:])
	out := make([]byte, 0, len(image)+TrailerSize)
	out = append(out, image...)
	return append(out, t.Encode()...), nil
}

// signDeterministic signs a digest with RFC 6979 nonces: crypto/ecdsa's
// Sign with a nil random source does so.
func signDeterministic(key *ecdsa.PrivateKey, digest []byte) (*big.Int, *big.Int, error) {
	der, err := key.Sign(nil, digest, crypto.SHA256)
	if err != nil {
		return nil, nil, fmt.Errorf("firmware: sign: %v", err)
	}
	var sig struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(der, &sig); err != nil {
		return nil, nil, fmt.Errorf("firmware: sign: %v", err)
	}
	return sig.R, sig.S, nil
}

// SplitSigned splits signed bytes into the image and its trailer and checks
// that they agree on the size. It neither hashes nor verifies.
func SplitSigned(b []byte) ([]byte, *Trailer, error) {
	if len(b) < TrailerSize {
		return nil, nil, fmt.Errorf("%w: %d bytes", ErrNoTrailer, len(b))
	}
	t, err := ParseTrailer(b[len(b)-TrailerSize:])
	if err != nil {
		return nil, nil, err
	}
	if t.Size != uint64(len(b)-TrailerSize) {
		return nil, nil, fmt.Errorf("%w: trailer says %d bytes, %d precede it", ErrNoTrailer, t.Size, len(b)-TrailerSize)
	}
	return b[:len(b)-TrailerSize], t, nil
}

// VerifySigned checks signed bytes completely: the trailer, the digest of
// the image, and the signature.
func VerifySigned(b []byte, pub *ecdsa.PublicKey) (*Trailer, error) {
	img, t, err := SplitSigned(b)
	if err != nil {
		return nil, err
	}
	if sha256.Sum256(img) != t.Digest {
		return nil, ErrDigest
	}
	if err := t.Verify(pub); err != nil {
		return nil, err
	}
	return t, nil
}

// verified remembers signature checks: a check is a pure function of the
// key and the trailer's bytes, and a sweep repeats the same few thousands
// of times. It holds at most verifiedMax entries.
var (
	verifiedMu sync.Mutex
	verified   = map[string]bool{}
)

const verifiedMax = 4096

// VerifyCached is t.Verify(pub) == nil, remembered by the key and the
// trailer's bytes tb (the encoded t).
func VerifyCached(pub *ecdsa.PublicKey, tb []byte, t *Trailer) bool {
	if pub == nil {
		return false
	}
	k := string(elliptic.MarshalCompressed(pub.Curve, pub.X, pub.Y)) + string(tb)
	verifiedMu.Lock()
	ok, known := verified[k]
	verifiedMu.Unlock()
	if known {
		return ok
	}
	ok = t.Verify(pub) == nil
	verifiedMu.Lock()
	if len(verified) < verifiedMax {
		verified[k] = ok
	}
	verifiedMu.Unlock()
	return ok
}
