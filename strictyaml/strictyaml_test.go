package strictyaml

import (
	"errors"
	"testing"

	"github.com/bootsim/bootsim/units"
	"github.com/stretchr/testify/require"
)

type inner struct {
	Size  units.Size `yaml:"size"`
	Count int        `yaml:"count"`
}

type doc struct {
	Name    string            `yaml:"name"`
	Enabled bool              `yaml:"enabled"`
	Items   []inner           `yaml:"items"`
	Tags    map[string]string `yaml:"tags"`
	Ptr     *inner            `yaml:"ptr"`
	Any     any               `yaml:"any"`
	Skip    string            `yaml:"-"`
}

func TestDecode(t *testing.T) {
	var d doc
	err := Decode("x.yaml", []byte(`
name: board
enabled: true
items:
  - {size: 4KiB, count: 2}
  - size: 0x10
tags: {a: b}
ptr: {count: 3}
any: [1, two]
`), &d)
	require.NoError(t, err)
	require.Equal(t, doc{
		Name: "board", Enabled: true,
		Items: []inner{{Size: 4096, Count: 2}, {Size: 16}},
		Tags:  map[string]string{"a": "b"},
		Ptr:   &inner{Count: 3},
		Any:   []any{1, "two"},
	}, d)
}

func TestErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"name: x\nnmae: y\n", `x.yaml:2:1: unknown field "nmae" (did you mean "name"?)`},
		{"colour: red\n", `x.yaml:1:1: unknown field "colour" (want one of: any, enabled, items, name, ptr, tags)`},
		{"enabled: maybe\n", `x.yaml:1:10: want true or false, got "maybe"`},
		{"items:\n  - count: many\n", `x.yaml:2:12: want an integer, got "many"`},
		{"items:\n  - size: lots\n", `x.yaml:2:11: size "lots": want a number of bytes`},
		{"items: {size: 1}\n", `x.yaml:1:8: want a list, got a mapping`},
		{"name: [a]\n", `x.yaml:1:7: want a string, got a list`},
		{"name: a\nname: b\n", `x.yaml:2:1: "name" is given twice`},
		{"tags: {a: 1, a: 2}\n", `"a" is given twice`},
		{"ptr: {count: 1, sise: 2}\n", `x.yaml:1:17: unknown field "sise" (did you mean "size"?)`},
		{"name: x\n  bad: indent\n", `x.yaml:2:3: mapping values are not allowed in this context`},
		{"", "x.yaml:1:1: empty document"},
		{"name: a\x00\n", "x.yaml:1:8: control character 0x00 is not allowed"},
		{"name: a\nsize: \xff\n", "x.yaml:2:7: invalid UTF-8 (byte 0xff)"},
		{"name: a\ntags: [*nowhere]\n", "x.yaml:2:8: unknown anchor 'nowhere' referenced"},
		{"ptr: {count: 1.5}\n", "x.yaml:1:14: want an integer, got \"1.5\""},
		{"ptr: {count: 1e3}\n", "x.yaml:1:14: want an integer, got \"1e3\""},
		{"ptr: {count: \"7\"}\n", "x.yaml:1:14: want an integer, got \"7\""},
		{"name: a\n---\nname: b\n", "x.yaml:2:1: more than one YAML document"},
		{"- 1\n", "x.yaml:1:1: want a mapping, got a list"},
	} {
		var d doc
		err := Decode("x.yaml", []byte(tc.in), &d)
		require.Error(t, err, tc.in)
		require.Contains(t, err.Error(), tc.want, tc.in)
		var e *Error
		require.True(t, errors.As(err, &e), "%T", err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add([]byte("name: a\nitems: [{size: 1KiB}]\n"))
	f.Add([]byte("&a x: *a\n"))
	f.Add([]byte("tags: {? [1]: 2}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		err := Decode("f.yaml", data, &d)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error of type %T: %v", err, err)
			}
		}
	})
}
