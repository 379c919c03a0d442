package main

import (
	"errors"
	"os"
	"os/exec"
	"regexp"
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

// hostileBase is a valid scenario the hostile files edit.
const hostileBase = `scenario: h
summary: A hostile scenario.
device:
  board: k64f
firmware:
  app-v1: {version: 1561517193, size: 200KiB}
  app-v2: {version: 1561520000, size: 210KiB}
factory:
  active: app-v1
steps:
  - power-on
`

// TestHostileCLI: hostile scenario files through the command line: exit 1
// (a run that fails, a budget spent) or 2 (refused, at file:line:col),
// never 0, 3, a panic, a hang or an OOM.
func TestHostileCLI(t *testing.T) {
	rep := func(old, new string) string { return strings.Replace(hostileBase, old, new, 1) }
	for name, tc := range map[string]struct {
		src  string
		code int
	}{
		"crash forever": {strings.Replace(rep("  active: app-v1\n", "  active: app-v1\n  slots: [app-v2]\n"), "size: 210KiB}", "size: 210KiB, behaviour: crash}", 1) +
			"  - wait: 1000000h\n", 1},
		"endless waits":       {hostileBase + "  - wait: 2562047h\n  - wait: 2562047h\n", 1},
		"billion locations":   {rep("board: k64f", "board: k64f\n  config: {update-client.storage-locations: 1000000000}"), 2},
		"negative index":      {hostileBase + "  - power-cut: {before: {index: -1}}\n", 2},
		"tiny bootloader":     {rep("board: k64f", "board: k64f\n  config: {mbed-bootloader.bootloader-size: 8}"), 2},
		"long name":           {strings.ReplaceAll(hostileBase, "app-v2", "app-"+strings.Repeat("x", 1000)), 2},
		"fractional version":  {rep("version: 1561517193", "version: 1.5"), 2},
		"seed past uint64":    {rep("summary:", "seed: 18446744073709551616\nsummary:"), 2},
		"wrapping size":       {rep("size: 210KiB}", "size: (0-0x7fffffffffffffff-0x7fffffffffffffff+2046)}"), 2},
		"impossible bounds":   {hostileBase + "expect:\n  - event: {name: copy-done, at-least: 5, at-most: 2}\n", 2},
		"NUL byte":            {hostileBase + "\x00", 2},
		"unknown rule region": {hostileBase + "  - fault: \"region=nope,mode=io-error\"\n", 2},
	} {
		t.Run(name, func(t *testing.T) {
			f := t.TempDir() + "/h.yaml"
			if err := os.WriteFile(f, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			var stdout, stderr strings.Builder
			code := run([]string{"run", f, "--max-events", "300000"}, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.code, stdout.String(), stderr.String())
			}
			if code == exitUsage && !strings.Contains(stderr.String(), f+":") {
				t.Fatalf("a refusal names the file and position: %s", stderr.String())
			}
			if code == exitUsage {
				if ok, _ := regexp.MatchString(`h\.yaml:\d+:\d+: `, stderr.String()); !ok {
					t.Fatalf("no line:col: %s", stderr.String())
				}
			}
		})
	}
}

// TestRuntimeCrashIsExit3: a Go runtime crash (here a panic in a goroutine
// run cannot recover) exits 2 by Go's own rule; the supervisor in main
// turns it into exit 3, and passes every other exit code on.
func TestRuntimeCrashIsExit3(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin := t.TempDir() + "/bootsim"
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	runBin := func(env string, args ...string) (int, string) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), env)
		var stderr strings.Builder
		cmd.Stderr = &stderr
		err := cmd.Run()
		var ee *exec.ExitError
		if err != nil && !errors.As(err, &ee) {
			t.Fatal(err)
		}
		return cmd.ProcessState.ExitCode(), stderr.String()
	}
	code, stderr := runBin("BOOTSIM_CRASH_FOR_TEST=goroutine", "list")
	if code != exitInternal || !strings.Contains(stderr, "internal error: the Go runtime stopped bootsim") {
		t.Fatalf("a crash: exit %d\n%s", code, stderr)
	}
	for _, tc := range []struct {
		args []string
		code int
	}{{[]string{"list"}, 0}, {[]string{"run", "nope"}, 2}, {[]string{"run", "crash-loop-recopy", "--max-boots", "3"}, 1}} {
		if code, stderr := runBin("X=1", tc.args...); code != tc.code {
			t.Errorf("%v: exit %d, want %d\n%s", tc.args, code, tc.code, stderr)
		}
	}
}
