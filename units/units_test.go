package units

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.yaml.in/yaml/v3"
)

func TestParseSize(t *testing.T) {
	for in, want := range map[string]Size{
		"0": 0, "4096": 4096, "0x8000": 0x8000, "0XA400": 0xA400,
		"4KiB": 4096, "4K": 4096, "1MiB": 1 << 20, "2M": 2 << 20, "1GiB": 1 << 30,
		"1.5MiB": 3 << 19, "200 KiB": 200 << 10, "512B": 512,
		"(32*1024)": 32 << 10, "( 41*1024)": 41 << 10, "(436*1024)": 436 << 10,
		"(32*1024)+0x400": 33 << 10, "((1024*1024) - (41*1024)) / 2": (983 << 10) / 2,
		"(2*16*1024)": 32 << 10, "(4KiB*2)": 8192,
	} {
		got, err := ParseSize(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
}

func TestParseSizeErrors(t *testing.T) {
	for in, want := range map[string]string{
		"":                          "empty size",
		"lots":                      "want a number of bytes",
		"0xZZ":                      "not a hex number",
		"1.3B":                      "whole number of bytes",
		"-4KiB":                     "not a number",
		"(MBED_ROM_START+1)":        "macros are not expanded",
		"(1+":                       "ends early",
		"(1+2":                      "missing )",
		"(4/0)":                     "division by zero",
		"(1-2)":                     "negative",
		"(99999999999*99999999999)": "overflow",
		"99999999999999999999GiB":   "overflows",
	} {
		_, err := ParseSize(in)
		require.ErrorContains(t, err, want, in)
	}
}

func TestSizeString(t *testing.T) {
	require.Equal(t, "4KiB", Size(4096).String())
	require.Equal(t, "1MiB", Size(1<<20).String())
	require.Equal(t, "983KiB", Size(983<<10).String())
	require.Equal(t, "112B", Size(112).String())
	require.Equal(t, "983 KiB", Size(983<<10).Human())
	require.Equal(t, "1.5 MiB", Size(3<<19).Human())
	require.Equal(t, "112 B", Size(112).Human())
}

func TestYAML(t *testing.T) {
	var v struct {
		S Size     `yaml:"s"`
		D Duration `yaml:"d"`
	}
	require.NoError(t, yaml.Unmarshal([]byte("s: 200KiB\nd: 7.5us\n"), &v))
	require.Equal(t, Size(200<<10), v.S)
	require.Equal(t, 7500*time.Nanosecond, v.D.D())
	require.ErrorContains(t, yaml.Unmarshal([]byte("s: [1]\n"), &v), "want a size")
	require.ErrorContains(t, yaml.Unmarshal([]byte("d: soon\n"), &v), "want a number with a unit")
	require.ErrorContains(t, yaml.Unmarshal([]byte("d: -1s\n"), &v), "negative")
	out, err := yaml.Marshal(v)
	require.NoError(t, err)
	require.Equal(t, "s: 200KiB\nd: 7.5µs\n", string(out))
}

func FuzzParseSize(f *testing.F) {
	for _, s := range []string{"4KiB", "0x8000", "(41*1024)", "((1+2)*3)/4", "1.5MiB", "-", "(((("} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseSize(s)
		if err != nil {
			return
		}
		// Whatever parses prints as a size that parses back to the same value.
		again, err := ParseSize(v.String())
		if err != nil || again != v {
			t.Fatalf("%q = %d prints as %q which parses to %d (%v)", s, v, v.String(), again, err)
		}
	})
}

// TestExprNeverWraps: an expression whose intermediate value leaves int64
// is an error, not the size it would wrap around to (issue 11: this was
// accepted as 2048 bytes).
func TestExprNeverWraps(t *testing.T) {
	for _, s := range []string{
		"(0-0x7fffffffffffffff-0x7fffffffffffffff+2046)",
		"(0x7fffffffffffffff+0x7fffffffffffffff)",
		"(0x7fffffffffffffff*2)",
		"(0-1)",
	} {
		_, err := ParseSize(s)
		if err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
	v, err := ParseSize("(0-0x7fffffffffffffff+0x7fffffffffffffff+2048)")
	if err != nil || v != 2048 {
		t.Errorf("an expression that stays in range: %v %v", v, err)
	}
}
