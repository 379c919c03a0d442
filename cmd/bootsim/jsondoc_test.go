package main

import (
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/scenarios"
	"github.com/stretchr/testify/require"
)

// TestRunReportFieldsAreDocumented: every field of the JSON run report,
// nested ones included, is named in the README's "Outputs and exit codes"
// section, so that a field added to the report without a word for its
// readers fails.
func TestRunReportFieldsAreDocumented(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	require.NoError(t, err)
	text := string(readme)
	from := strings.Index(text, "## Outputs and exit codes")
	require.GreaterOrEqual(t, from, 0)
	section := text[from:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	seen := map[reflect.Type]bool{}
	var missing []string
	var walk func(reflect.Type, string)
	walk = func(ty reflect.Type, path string) {
		for ty.Kind() == reflect.Pointer || ty.Kind() == reflect.Slice {
			ty = ty.Elem()
		}
		if ty.Kind() != reflect.Struct || seen[ty] {
			return
		}
		seen[ty] = true
		for i := range ty.NumField() {
			f := ty.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" {
				continue
			}
			if !strings.Contains(section, "`"+name+"`") {
				missing = append(missing, path+name)
			}
			walk(f.Type, path+name+".")
		}
	}
	walk(reflect.TypeOf(scenarios.RunReport{}), "")
	require.Empty(t, missing, "JSON run report fields the README does not name")
}
