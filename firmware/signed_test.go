package firmware

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

// fixedKey is a P-256 key from a fixed scalar, so tests are reproducible.
func fixedKey(t testing.TB, label string) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte("signed_test " + label))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	require.NoError(t, err)
	return k
}

func TestSignVerifyRoundTrip(t *testing.T) {
	key := fixedKey(t, "vendor")
	img := []byte("an image of a few bytes")
	signed, err := Sign(img, 42, key)
	require.NoError(t, err)
	require.Len(t, signed, len(img)+TrailerSize)
	require.Equal(t, img, signed[:len(img)])
	tr, err := VerifySigned(signed, &key.PublicKey)
	require.NoError(t, err)
	require.Equal(t, uint64(42), tr.Version)
	require.Equal(t, uint64(len(img)), tr.Size)
	// Deterministic: the same image signs to the same bytes.
	again, err := Sign(img, 42, key)
	require.NoError(t, err)
	require.Equal(t, signed, again)
}

// TestSignedTampering: every way an attacker can change signed bytes
// without the vendor's key is refused, each with its sentinel error.
func TestSignedTampering(t *testing.T) {
	key, other := fixedKey(t, "vendor"), fixedKey(t, "attacker")
	img := make([]byte, 300)
	for i := range img {
		img[i] = byte(i * 13)
	}
	signed, err := Sign(img, 7, key)
	require.NoError(t, err)
	forged, err := Sign(img, 7, other)
	require.NoError(t, err)
	newer, err := Sign(img, 8, key)
	require.NoError(t, err)
	flip := func(at int) []byte {
		b := append([]byte(nil), signed...)
		b[at] ^= 0x01
		return b
	}
	// The old image body with a newer image's trailer: the version is
	// signed, but the trailer belongs to other bytes only if they differ.
	body2 := append([]byte(nil), img...)
	body2[0] ^= 0xFF
	mixed := append(body2, newer[len(img):]...)
	for _, tc := range []struct {
		name string
		b    []byte
		want error
	}{
		{"a byte of the image", flip(10), ErrDigest},
		{"the version", flip(len(img) + 15), ErrBadSignature},
		{"the size", flip(len(img) + 23), ErrNoTrailer},
		{"the digest", flip(len(img) + 30), ErrDigest},
		{"the signature", flip(len(img) + 100), ErrBadSignature},
		{"the magic", flip(len(img) + 2), ErrNoTrailer},
		{"signed by another key", forged, ErrBadSignature},
		{"another image's trailer", mixed, ErrDigest},
		{"no trailer at all", img, ErrNoTrailer},
		{"truncated by one byte", signed[:len(signed)-1], ErrNoTrailer},
		{"shorter than a trailer", signed[:TrailerSize-1], ErrNoTrailer},
		{"empty", nil, ErrNoTrailer},
	} {
		_, err := VerifySigned(tc.b, &key.PublicKey)
		require.ErrorIs(t, err, tc.want, tc.name)
	}
	_, err = VerifySigned(signed, nil)
	require.ErrorIs(t, err, ErrBadSignature, "no key verifies nothing")
}

// FuzzSigned: arbitrary bytes never verify and never panic; a verified
// input is exactly a signed image.
func FuzzSigned(f *testing.F) {
	key := fixedKey(f, "vendor")
	signed, err := Sign([]byte("seed image"), 3, key)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(signed)
	f.Add(signed[:len(signed)-1])
	f.Add([]byte(trailerMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		tr, err := VerifySigned(b, &key.PublicKey)
		if err != nil {
			if !errors.Is(err, ErrNoTrailer) && !errors.Is(err, ErrDigest) && !errors.Is(err, ErrBadSignature) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		again, err := Sign(b[:tr.Size], tr.Version, key)
		if err != nil || string(again) != string(b) {
			t.Fatalf("verified bytes are not the signed image")
		}
	})
}

// BenchmarkVerifySigned is the host's cost of checking a signed 1 MiB
// image: SHA-256 of the image and one ECDSA P-256 verification.
func BenchmarkVerifySigned(b *testing.B) {
	key := fixedKey(b, "vendor")
	signed, err := Sign(make([]byte, 1<<20), 1, key)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(signed)))
	for b.Loop() {
		if _, err := VerifySigned(signed, &key.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyTrailer is one ECDSA P-256 verification on the host.
func BenchmarkVerifyTrailer(b *testing.B) {
	key := fixedKey(b, "vendor")
	signed, err := Sign([]byte("x"), 1, key)
	if err != nil {
		b.Fatal(err)
	}
	_, t, err := SplitSigned(signed)
	if err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := t.Verify(&key.PublicKey); err != nil {
			b.Fatal(err)
		}
	}
}
