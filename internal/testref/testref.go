// Package testref gives tests the reference vectors in testdata/reference,
// wherever in the module the test runs.
package testref

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// Dir returns the absolute path of testdata/reference.
func Dir() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		panic("testref: cannot locate the source file")
	}
	return filepath.Join(filepath.Dir(file), "..", "..", "testdata", "reference")
}

// Path returns the absolute path of a reference file.
func Path(name string) string { return filepath.Join(Dir(), name) }

// Read returns a reference file's bytes, failing the test if it is missing.
func Read(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(Path(name))
	if err != nil {
		t.Fatalf("reference file: %v", err)
	}
	return b
}

// JSON decodes a reference JSON file into v.
func JSON(t testing.TB, name string, v any) {
	t.Helper()
	if err := json.Unmarshal(Read(t, name), v); err != nil {
		t.Fatalf("reference file %s: %v", name, err)
	}
}

// Hex decodes a hex string from a vector, failing the test if it is malformed.
func Hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("reference hex %q: %v", s, err)
	}
	return b
}
