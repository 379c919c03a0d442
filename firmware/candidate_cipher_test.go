package firmware

import (
	"bytes"
	"crypto/sha256"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// TestCandidateCipherSeeks: encrypting a range on its own gives the bytes
// encrypting the whole image gives there, whatever the range (the client
// writes fragments, the bootloader reads chunks); decrypting undoes it;
// the keystream depends on the device and the image.
func TestCandidateCipherSeeks(t *testing.T) {
	key := bytes.Repeat([]byte{7}, 32)
	img := make([]byte, 5000)
	for i := range img {
		img[i] = byte(i * 31)
	}
	c, err := NewCandidateCipher(key, sha256.Sum256(img))
	require.NoError(t, err)
	whole := bytes.Clone(img)
	c.XORAt(0, whole)
	require.NotEqual(t, img, whole)
	rapid.Check(t, func(t *rapid.T) {
		from := rapid.IntRange(0, len(img)-1).Draw(t, "from")
		to := rapid.IntRange(from, len(img)).Draw(t, "to")
		part := bytes.Clone(img[from:to])
		c.XORAt(uint64(from), part)
		if !bytes.Equal(part, whole[from:to]) {
			t.Fatalf("bytes %d..%d differ from the whole encryption", from, to)
		}
		c.XORAt(uint64(from), part)
		if !bytes.Equal(part, img[from:to]) {
			t.Fatalf("decrypting %d..%d does not give the image back", from, to)
		}
	})
	other, err := NewCandidateCipher(bytes.Repeat([]byte{8}, 32), sha256.Sum256(img))
	require.NoError(t, err)
	b := bytes.Clone(img)
	other.XORAt(0, b)
	require.NotEqual(t, whole, b, "another device's key")
	img2 := bytes.Clone(img)
	img2[0] ^= 1
	c2, err := NewCandidateCipher(key, sha256.Sum256(img2))
	require.NoError(t, err)
	require.NotEqual(t, c.IV(), c2.IV(), "another image's counter block")
}

// TestCandidateCipherCounterCarry: a counter block whose low half wraps
// carries into the high half, as a 128-bit big-endian counter does.
func TestCandidateCipherCounterCarry(t *testing.T) {
	c, err := NewCandidateCipher(bytes.Repeat([]byte{1}, 32), [32]byte{})
	require.NoError(t, err)
	for i := 8; i < 16; i++ {
		c.iv[i] = 0xFF
	}
	a := make([]byte, 48)
	c.XORAt(0, a)
	b := make([]byte, 16)
	c.XORAt(32, b)
	require.Equal(t, a[32:], b)
	want, err := DecryptAESCTR(mustHMAC(t), c.iv[:], make([]byte, 48))
	require.NoError(t, err)
	require.Equal(t, want, a, "the standard library's CTR over the same counter block")
}

func mustHMAC(t *testing.T) []byte {
	k, err := HMACSHA256(bytes.Repeat([]byte{1}, 32), []byte("bootsim candidate encryption v1"))
	require.NoError(t, err)
	return k
}
