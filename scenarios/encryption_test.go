package scenarios

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestEncryptedCardHoldsNoPlaintext: after an update with
// hardened.encrypt-candidates, no 64-byte piece of either image (the new
// one in slot 0, the old one in the saved copy) is on the SD card in
// clear; the same update without the option leaves both readable there.
func TestEncryptedCardHoldsNoPlaintext(t *testing.T) {
	l, err := Find("hardened-encrypted-sd")
	require.NoError(t, err)
	plain, err := Load("plain.yaml", []byte(strings.Replace(string(l.Source), "    hardened.encrypt-candidates: 1\n", "    hardened.encrypt-candidates: 0\n", 1)), nil)
	require.NoError(t, err)
	for _, tc := range []struct {
		l         *Loaded
		encrypted bool
	}{{l, true}, {plain, false}} {
		r, err := start(tc.l, Options{})
		require.NoError(t, err)
		res := r.play()
		require.True(t, res.Passed, "%v", res.Failures())
		sd := r.m.Storage().Device("sd")
		for _, region := range []string{"slot-0", RegionSaved} {
			reg, ok := r.m.Storage().Region(region)
			require.True(t, ok, region)
			b := make([]byte, min(reg.Size, 512<<10))
			sd.Peek(reg.Start, b)
			for _, name := range []string{"app-v1", "app-v2"} {
				img := r.imgs.app[name].Bytes
				found := 0
				for off := 4096; off+64 <= len(img); off += 4096 {
					if bytes.Contains(b, img[off:off+64]) {
						found++
					}
				}
				if tc.encrypted {
					require.Zero(t, found, "%s: %d pieces of %s in clear", region, found, name)
				} else if (region == "slot-0") == (name == "app-v2") {
					require.Positive(t, found, "%s should hold %s in clear without the option", region, name)
				}
			}
		}
	}
}
