package firmware

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/google/uuid"
)

// VendorID derives the vendor id from the vendor's domain as manifest-tool
// does: uuid5(NAMESPACE_DNS, domain).
func VendorID(domain string) [16]byte {
	return uuid.NewSHA1(uuid.NameSpaceDNS, []byte(domain))
}

// ClassID derives the device class id: uuid5(vendor-id, model-name).
func ClassID(vendorID [16]byte, modelName string) [16]byte {
	return uuid.NewSHA1(uuid.UUID(vendorID), []byte(modelName))
}

// FOTA v3 semantic versions are packed into a uint64 (fota/fota_component.c):
// bit 55 set, then major << 40, minor << 16 and patch, each at most 999. A
// value without bit 55 is a legacy v1 timestamp.
const (
	semverFlag = uint64(1) << 55
	semverMax  = 999
)

// ErrSemver is returned for a version that is not MAJOR.MINOR.PATCH with
// each part in 0..999.
var ErrSemver = errors.New("firmware: not a semantic version of the form MAJOR.MINOR.PATCH (each 0..999)")

// PackSemver packs "1.2.3" into the FOTA uint64 encoding.
func PackSemver(s string) (uint64, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return 0, fmt.Errorf("%w: %q", ErrSemver, s)
	}
	var v [3]uint64
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n > semverMax || p != strconv.FormatUint(n, 10) {
			return 0, fmt.Errorf("%w: %q", ErrSemver, s)
		}
		v[i] = n
	}
	return semverFlag | v[0]<<40 | v[1]<<16 | v[2], nil
}

// FormatSemver prints a packed version; a legacy timestamp (no bit 55)
// prints as "0.0.0", as the FOTA client does.
func FormatSemver(v uint64) string {
	if v&semverFlag == 0 {
		return "0.0.0"
	}
	return fmt.Sprintf("%d.%d.%d", (v>>40)&0x7FFF, (v>>16)&0xFFFFFF, v&0xFFFF)
}

// DecryptAESCTR decrypts (or encrypts) data with AES-CTR, the counter block
// incremented as a 128-bit big-endian number as mbedtls_aes_crypt_ctr does.
// The key length picks AES-128 or AES-256.
func DecryptAESCTR(key, counter, data []byte) ([]byte, error) {
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("firmware: AES-CTR: %w", err)
	}
	if len(counter) != aes.BlockSize {
		return nil, fmt.Errorf("firmware: AES-CTR counter block is %d bytes, want 16", len(counter))
	}
	out := make([]byte, len(data))
	cipher.NewCTR(block, counter).XORKeyStream(out, data)
	return out, nil
}

// ParsePrivateKey reads an ECDSA P-256 private key from PEM (PKCS#8 or SEC 1).
func ParsePrivateKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	blk, _ := pem.Decode(pemBytes)
	if blk == nil {
		return nil, errors.New("firmware: no PEM block in the key file")
	}
	var key any
	var err error
	switch blk.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(blk.Bytes)
	case "EC PRIVATE KEY":
		key, err = x509.ParseECPrivateKey(blk.Bytes)
	default:
		return nil, fmt.Errorf("firmware: PEM block %q is not a private key", blk.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("firmware: private key: %w", err)
	}
	ec, ok := key.(*ecdsa.PrivateKey)
	if !ok || ec.Curve != elliptic.P256() {
		return nil, errors.New("firmware: the key is not an ECDSA P-256 key")
	}
	return ec, nil
}

// ParsePublicKey reads an ECDSA P-256 public key given as a 65-byte
// uncompressed point, a DER certificate, a PEM certificate or a PEM/DER
// SubjectPublicKeyInfo.
func ParsePublicKey(b []byte) (*ecdsa.PublicKey, error) {
	if len(b) == 65 && b[0] == 4 {
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b)
	}
	if blk, _ := pem.Decode(b); blk != nil {
		b = blk.Bytes
	}
	if pub, err := certPublicKey(b); err == nil {
		return pub, nil
	}
	k, err := x509.ParsePKIXPublicKey(b)
	if err != nil {
		return nil, errors.New("firmware: not a P-256 public key (want a 65-byte uncompressed point, a certificate or a public key in PEM or DER)")
	}
	pub, ok := k.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		return nil, errors.New("firmware: the public key is not ECDSA P-256")
	}
	return pub, nil
}
