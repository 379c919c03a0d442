package main

import (
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/internal/testref"
	"github.com/rogpeppe/go-internal/testscript"
)

func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"bootsim": func() { os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) },
	})
}

// TestScripts runs the command-line contract tests in testdata/script: exit
// codes, output shapes and error messages of the real binary.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:  "testdata/script",
		Cmds: map[string]func(*testscript.TestScript, bool, []string){"exits": cmdExits, "concat": cmdConcat},
		Setup: func(env *testscript.Env) error {
			// $REF: the reference vectors (headers, manifests, SOTP images).
			env.Setenv("REF", testref.Dir())
			return nil
		},
	})
}

// cmdExits runs a command and checks its exit status: "exits 2 bootsim …".
func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: %q is not an exit code", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("exit status %d, want %d", got, want)
	}
}

// cmdConcat writes the concatenation of files: "concat OUT IN...".
func cmdConcat(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: concat OUT IN...")
	}
	var out []byte
	for _, in := range args[1:] {
		out = append(out, ts.ReadFile(in)...)
	}
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), out, 0o644))
}

// fullWriter fails every write, as /dev/full does.
type fullWriter struct{}

func (fullWriter) Write([]byte) (int, error) { return 0, errors.New("no space left on device") }

// TestLostOutputIsExit3: output that cannot be written fails the command
// with exit 3 and the error, for every kind of output (text, JSON, the
// schema), instead of exit 0 with the output lost, or exit 2 with a usage
// hint.
func TestLostOutputIsExit3(t *testing.T) {
	for _, args := range [][]string{{"run", "clean-boot"}, {"list"}, {"schema"}, {"run", "clean-boot", "-o", "json"}, {"show", "clean-boot"}} {
		var stderr strings.Builder
		code := run(args, strings.NewReader(""), fullWriter{}, &stderr)
		if code != exitInternal || !strings.Contains(stderr.String(), "writing standard output: no space left on device") ||
			strings.Contains(stderr.String(), "--help") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr.String())
		}
	}
}
