package mbedapp

import (
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func resolve(t *testing.T, src, target string) *Resolved {
	t.Helper()
	a, err := Parse("mbed_app.json", []byte(src))
	require.NoError(t, err)
	r, err := a.Resolve(target, ROM{Start: 0x08000000, Size: 2 << 20})
	require.NoError(t, err)
	return r
}

// TestEval: C integer expressions with the precedence of C, the ROM's
// macros, the macros list, and parameters by MBED_CONF_ name and by
// macro_name.
func TestEval(t *testing.T) {
	r := resolve(t, `{
  "config": {"kvstore-size": {"macro_name": "KVSTORE_SIZE", "value": "2*16*1024"}},
  "macros": ["BANK=MBED_ROM_SIZE/2", "FLAG"],
  "target_overrides": {"*": {"update-client.storage-address": "(MBED_ROM_START + BANK + KVSTORE_SIZE)"}}
}`, "K64F")
	for expr, want := range map[string]uint64{
		"0x8000":                     0x8000,
		"(32*1024)":                  32 << 10,
		"1 + 2 * 3":                  7,
		"(1 + 2) * 3":                9,
		"10 - 4 - 3":                 3,
		"100 / 10 / 5":               2,
		"17 % 5":                     2,
		"1 << 4 + 1":                 32, // + binds tighter than <<, as in C
		"0x100 >> 4":                 0x10,
		"1024UL":                     1024,
		"+5":                         5,
		"MBED_ROM_START":             0x08000000,
		"MBED_ROM_SIZE / 2":          1 << 20,
		"BANK":                       1 << 20,
		"KVSTORE_SIZE":               32 << 10,
		"MBED_CONF_APP_KVSTORE_SIZE": 32 << 10,
		"MBED_CONF_UPDATE_CLIENT_STORAGE_ADDRESS": 0x08000000 + 1<<20 + 32<<10,
		"MBED_CONF_UPDATE_CLIENT_STORAGE_PAGE":    512, // the library default
		"MBED_BOOTLOADER_SIZE":                    32 << 10,
	} {
		v, err := r.Eval(expr)
		require.NoError(t, err, expr)
		require.Equal(t, want, v, expr)
	}
	for expr, want := range map[string]string{
		"":                          "ends too soon",
		"(1 + 2":                    "a ( without its )",
		"1 +":                       "ends too soon",
		"2 3":                       `unexpected "3"`,
		"0x":                        "is not a number",
		"1 - 2":                     "below zero",
		"1 / 0":                     "divides by zero",
		"0xffffffffffffffff + 1":    "overflows",
		"0x100000000 * 0x100000000": "overflows",
		"1 << 64":                   "overflows",
		"NOPE":                      "unknown macro NOPE",
		"FLAG":                      "macro FLAG has no value",
		"MBED_CONF_MBED_BOOTLOADER_APPLICATION_START_ADDRESS": "has no value", // required, unset
		"1 & 2": `unexpected "& 2"`,
	} {
		_, err := r.Eval(expr)
		require.ErrorContains(t, err, want, expr)
	}
}

// TestEvalCycles: a macro that refers to itself, directly or not, is an
// error that shows the chain, not a stack overflow.
func TestEvalCycles(t *testing.T) {
	r := resolve(t, `{"macros": ["A=B+1", "B=(A)", "C=C", "D0=1", "D1=D0+D0", "D2=D1+D1"]}`, "K64F")
	_, err := r.Eval("A")
	require.ErrorContains(t, err, "macro A refers to itself (A → B → A)")
	_, err = r.Eval("C")
	require.ErrorContains(t, err, "macro C refers to itself")
	v, err := r.Eval("D2")
	require.NoError(t, err)
	require.Equal(t, uint64(4), v, "a macro used twice is not a cycle")
	var deep strings.Builder
	deep.WriteString(`{"macros": ["M0=1"`)
	for i := 1; i <= 40; i++ {
		deep.WriteString(`, "M` + strconv.Itoa(i) + `=M` + strconv.Itoa(i-1) + `"`)
	}
	deep.WriteString("]}")
	_, err = resolve(t, deep.String(), "K64F").Eval("M40")
	require.ErrorContains(t, err, "macros nest deeper than 32")
}

func itoa(i int) string {
	return strings.TrimSpace(strings.Repeat(" ", 0) + string(rune('0'+i/10)) + string(rune('0'+i%10)))
}

// TestResolveOrder: library defaults, then the file's config, then its
// overrides for "*", then for the target; a key of a known library that
// is not one of its parameters is an error, as the tools make it.
func TestResolveOrder(t *testing.T) {
	src := `{
  "config": {"slots": 2},
  "target_overrides": {
    "*": {"update-client.storage-locations": "MBED_CONF_APP_SLOTS", "update-client.storage-page": 8, "target.restrict_size": "0x8000", "target.features_add": ["X"], "sd.SPI_CS": "PTC4"},
    "K64F": {"update-client.storage-page": 16, "app.slots": 3}
  }
}`
	k64f := resolve(t, src, "K64F")
	other := resolve(t, src, "NUCLEO_F429ZI")
	for _, tc := range []struct {
		r      *Resolved
		name   string
		want   uint64
		source string
	}{
		{k64f, "update-client.storage-page", 16, "target_overrides K64F"},
		{other, "update-client.storage-page", 8, "target_overrides *"},
		{k64f, "update-client.storage-size", 0, "default"},
		{k64f, "app.slots", 3, "target_overrides K64F"},
		{other, "app.slots", 2, "config"},
		{k64f, "update-client.storage-locations", 3, "target_overrides *"},
	} {
		v, set, err := tc.r.Value(tc.name)
		require.NoError(t, err)
		require.True(t, set)
		require.Equal(t, tc.want, v, tc.name)
		require.Equal(t, tc.source, tc.r.Param(tc.name).Source, tc.name)
	}
	v, err := k64f.Eval("APPLICATION_SIZE")
	require.NoError(t, err)
	require.Equal(t, uint64(0x8000), v, "a bootloader build's APPLICATION_SIZE is its restrict_size")
	require.Equal(t, []string{"target.features_add"}, k64f.Ignored)
	require.Contains(t, k64f.Unreferenced(), "sd.SPI_CS")
	require.NotContains(t, k64f.Unreferenced(), "app.slots", "named by storage-locations")

	for src, want := range map[string]string{
		`{"target_overrides": {"*": {"update-client.storage-adress": 1}}}`: `"update-client.storage-adress" is not a parameter of update-client (it has: application-details, bootloader-details, firmware-header-version, storage-address, `,
		`{"target_overrides": {"*": {"kvstore-size": 1}}}`:                 `"kvstore-size" is not a parameter of the application's config`,
		`{"target_overrides": {"*": {"target.mbed_rom_size": "1/0"}}}`:     "target.mbed_rom_size: \"1/0\" divides by zero",
		`{"config": {"a": {"value": [1]}}}`:                                `config "a": a list or an object`,
	} {
		a, err := Parse("mbed_app.json", []byte(src))
		require.NoError(t, err)
		_, err = a.Resolve("K64F", ROM{})
		require.ErrorContains(t, err, want, src)
	}
}

// TestParseErrors: a file that is not JSON, or not shaped as an
// mbed_app.json, is refused with its line and column.
func TestParseErrors(t *testing.T) {
	for src, want := range map[string]string{
		"{\n  \"macros\": [\"A\",]\n}":             "mbed_app.json:2:18: not an mbed_app.json: invalid character ']'",
		"{\n  \"target_overrides\": {\"*\": 5}\n}": "mbed_app.json:2:29: not an mbed_app.json: target_overrides must be an object, not number",
		"[]": "mbed_app.json:1:1: not an mbed_app.json: the file must be an object, not array",
	} {
		_, err := Parse("mbed_app.json", []byte(src))
		require.ErrorContains(t, err, want, src)
		require.True(t, errors.Is(err, ErrSyntax))
	}
}

// FuzzParse: any file either parses or is refused; resolving it and
// evaluating every parameter never panics.
func FuzzParse(f *testing.F) {
	f.Add([]byte(`{"config": {"k": {"macro_name": "K", "value": "(K)"}}, "macros": ["A=1<<3", "B"], "target_overrides": {"*": {"update-client.storage-address": "A*K"}, "K64F": {"target.mbed_rom_start": "0x1000"}}}`))
	f.Add([]byte(`{"target_overrides": {"K64F": {"update-client.storage-size": "((1+2)*3-4)/5%6>>1"}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse("f.json", data)
		if err != nil {
			if !errors.Is(err, ErrSyntax) {
				t.Fatalf("a parse error that is not ErrSyntax: %v", err)
			}
			return
		}
		for _, target := range append(a.Targets(), "OTHER") {
			r, err := a.Resolve(target, ROM{Start: 0x08000000, Size: 1 << 20})
			if err != nil {
				continue
			}
			for _, p := range r.Unreferenced() {
				_, _, _ = r.Value(p)
			}
			_, _, _ = r.Value("update-client.storage-address")
		}
	})
}
