package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func writeFile(t *testing.T, dir, name, text string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// TestParseAndApplyBugs: a bugs file's replacements, with several lines,
// blank lines and deletions, apply to the file they name, once.
func TestParseAndApplyBugs(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pkg/a.go", "package a\n\nfunc f(x int) bool {\n\tif x > 0 {\n\t\treturn true\n\t}\n\treturn false\n}\n")
	bugs := writeFile(t, dir, "bugs.txt", `# comment

## boundary
file: pkg/a.go
- 	if x > 0 {
+ 	if x >= 0 {

## delete two lines
file: pkg/a.go
- 		return true
- 	}
`)
	bs, err := parseBugs(bugs)
	require.NoError(t, err)
	require.Len(t, bs, 2)
	require.Equal(t, bug{name: "boundary", file: "pkg/a.go", old: "\tif x > 0 {", new: "\tif x >= 0 {", at: 3}, bs[0])
	require.Equal(t, "\t\treturn true\n\t}", bs[1].old)
	require.Equal(t, "", bs[1].new)

	require.NoError(t, applyBug(dir, bs[0]))
	data, err := os.ReadFile(filepath.Join(dir, "pkg/a.go"))
	require.NoError(t, err)
	require.Contains(t, string(data), "\tif x >= 0 {\n")
	require.ErrorContains(t, applyBug(dir, bs[0]), `occur 0 times in pkg/a.go`)
}

func TestParseBugsErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct{ text, want string }{
		{"file: x.go\n", "bugs.txt:1: expected a '## name' line"},
		{"## a\n- x\n", `bugs.txt:1: bug "a" needs a file: line and - lines`},
		{"## a\nfile: x.go\n", `bugs.txt:1: bug "a" needs a file: line and - lines`},
		{"## a\nfile: x.go\n- x\n* y\n", `bugs.txt:4: unexpected line "* y"`},
	} {
		_, err := parseBugs(writeFile(t, dir, "bugs.txt", tc.text))
		require.ErrorContains(t, err, tc.want, tc.text)
	}
}

// TestSeededBugsApply: every bug of the project's bugs file still finds
// its lines in the tree, once: a refactor that moves them must move the
// bug too, or the bug would silently stop being tried.
func TestSeededBugsApply(t *testing.T) {
	root := filepath.Join("..", "..", "..")
	bugs, err := parseBugs(filepath.Join(root, "testdata", "seeded-bugs.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, bugs)
	for _, b := range bugs {
		data, err := os.ReadFile(filepath.Join(root, b.file))
		require.NoError(t, err, b.name)
		require.Equal(t, 1, strings.Count(string(data), b.old), "bug %q (line %d): its lines must occur once in %s", b.name, b.at, b.file)
		require.NotEqual(t, b.old, b.new, b.name)
	}
}

// FuzzParseBugs: any bugs file parses or fails with an error, never a panic.
func FuzzParseBugs(f *testing.F) {
	f.Add("## a\nfile: x.go\n- old\n+ new\n")
	f.Add("## a\nfile: x.go\n-\n+\n")
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(t.TempDir(), "bugs.txt")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		bugs, err := parseBugs(p)
		if err != nil {
			return
		}
		for _, b := range bugs {
			if b.file == "" || b.name == "" && !strings.Contains(text, "## \n") {
				t.Fatalf("bug %+v parsed without a file or a name", b)
			}
		}
	})
}

// TestReport: gremlins reports summed per package and file, with the
// mutants not killed listed with their lines.
func TestReport(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, dir, "pkg/a.go", "package a\n\nfunc f(x int) bool { return x > 0 }\n")
	rep := writeFile(t, dir, "pkg.json", `{"files":[{"file_name":"a.go","mutations":[
		{"type":"CONDITIONALS_BOUNDARY","status":"LIVED","line":3,"column":31},
		{"type":"CONDITIONALS_NEGATION","status":"KILLED","line":3,"column":31},
		{"type":"ARITHMETIC_BASE","status":"TIMED OUT","line":3,"column":20},
		{"type":"ARITHMETIC_BASE","status":"NOT COVERED","line":3,"column":21}]}]}`)
	var b strings.Builder
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.NoError(t, os.Chdir(dir))
	defer os.Chdir(wd)
	require.NoError(t, report(&b, []string{"pkg=" + rep}))
	out := b.String()
	require.Contains(t, out, "| pkg | 4 | 1 | 1 | 1 | 1 | 66.7 % | 75.0 % |")
	require.Contains(t, out, "| all | 4 | 1 | 1 | 1 | 1 | 66.7 % | 75.0 % |")
	require.Contains(t, out, "| pkg/a.go | 4 | 1 | 1 | 1 | 1 | 66.7 % | 75.0 % |")
	require.Contains(t, out, "- `pkg/a.go:3:21` NOT COVERED ARITHMETIC_BASE: `func f(x int) bool { return x > 0 }`")
	require.Contains(t, out, "- `pkg/a.go:3:31` LIVED CONDITIONALS_BOUNDARY: `func f(x int) bool { return x > 0 }`")
	require.NotContains(t, out, "KILLED CONDITIONALS_NEGATION")
	require.ErrorContains(t, report(&b, []string{"nopair"}), "is not PKG=FILE.json")
}
