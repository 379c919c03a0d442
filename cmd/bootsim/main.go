// Command bootsim simulates a microcontroller's boot and firmware-update
// chain under power loss and other faults. Run "bootsim --help" for usage.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
)

// Exit codes (DESIGN.md §10).
const (
	exitOK       = 0 // everything met its expectations
	exitFailed   = 1 // a scenario or sweep point failed
	exitUsage    = 2 // usage or input error
	exitInternal = 3 // a bug in bootsim
)

// exitError carries an exit code with the error to print.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// usageErr marks an error as the user's: bad flag, bad argument, bad input.
func usageErr(format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...)}
}

// failed marks a run whose results did not meet expectations; the results
// are already printed, so the message may be empty.
func failed(format string, args ...any) error {
	return &exitError{code: exitFailed, err: fmt.Errorf(format, args...)}
}

// checkedWriter remembers the first error its writer returned, so that a
// command that prints without checking each write still fails when its
// output is lost.
type checkedWriter struct {
	w   io.Writer
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err != nil {
		c.err = err
	}
	return n, err
}

// outputErr is an error writing an output file: exit 3, with the path.
func outputErr(path string, err error) error {
	return &exitError{code: exitInternal, err: fmt.Errorf("writing %s: %v", path, err)}
}

func main() {
	if os.Getenv(supervisedEnv) == "" {
		if code, ok := supervise(os.Args[1:]); ok {
			os.Exit(code)
		}
	}
	if os.Getenv(crashEnv) == "goroutine" {
		// A test of the supervisor: a panic in another goroutine, which
		// no recover in run can catch.
		done := make(chan struct{})
		go func() { panic("crash requested by " + crashEnv) }()
		<-done
	}
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Environment of the supervisor: the child it starts has supervisedEnv
// set; crashEnv makes a child crash, for the supervisor's test.
const (
	supervisedEnv = "BOOTSIM_SUPERVISED"
	crashEnv      = "BOOTSIM_CRASH_FOR_TEST"
)

// supervise runs bootsim again as a child and passes its exit code on,
// except that a Go runtime crash (a fatal error, an out-of-memory, a panic
// in a goroutine other than run's), for which Go itself exits 2, becomes
// exit 3: exit 2 means the user's input was wrong, and a crash is a bug.
// It reports false if the child cannot be started (bootsim then runs in
// this process).
func supervise(args []string) (int, bool) {
	exe, err := os.Executable()
	if err != nil {
		return 0, false
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), supervisedEnv+"=1")
	cmd.Stdin, cmd.Stdout = os.Stdin, os.Stdout
	tail := &tailWriter{max: 64 << 10}
	cmd.Stderr = io.MultiWriter(os.Stderr, tail)
	if isTerminal(os.Stderr) {
		// A person reads the crash; the child keeps a terminal for its
		// progress bars. Exit codes matter to scripts, which have none.
		cmd.Stderr = os.Stderr
	}
	// An interrupt from the terminal reaches the child too; the parent
	// waits for it to finish.
	signal.Ignore(os.Interrupt)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM)
	if err := cmd.Start(); err != nil {
		return 0, false
	}
	go func() {
		for s := range term {
			_ = cmd.Process.Signal(s)
		}
	}()
	err = cmd.Wait()
	code := cmd.ProcessState.ExitCode()
	if code < 0 {
		if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), true
		}
		return exitInternal, true
	}
	if code == exitUsage && tail.crashed() {
		fmt.Fprintln(os.Stderr, "bootsim: internal error: the Go runtime stopped bootsim (above). This is a bug in bootsim; please report it with the command line that caused it.")
		return exitInternal, true
	}
	_ = err
	return code, true
}

// tailWriter keeps the last max bytes written to it.
type tailWriter struct {
	max int
	buf []byte
}

func (t *tailWriter) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

// crashed reports whether the output ends like a Go runtime crash.
func (t *tailWriter) crashed() bool {
	s := "\n" + string(t.buf)
	return strings.Contains(s, "\nfatal error: ") || strings.Contains(s, "\npanic: ") ||
		strings.Contains(s, "\nruntime: out of memory") || strings.Contains(s, "\ngoroutine ")
}

// run executes the command line and returns the exit code. A panic is a bug:
// it is reported in one paragraph (with the stack only when BOOTSIM_DEBUG is
// set) and exits 3.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) (code int) {
	defer func() {
		if r := recover(); r != nil {
			fmt.Fprintf(stderr, "bootsim: internal error: %v\nThis is a bug in bootsim; please report it with the command line that caused it.\n", r)
			if os.Getenv("BOOTSIM_DEBUG") != "" {
				stderr.Write(debug.Stack())
			}
			code = exitInternal
		}
	}()
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	out := &checkedWriter{w: stdout}
	root.SetOut(out)
	root.SetErr(stderr)
	err := root.Execute()
	if out.err != nil {
		// Output that did not reach its destination is a failure of the
		// command, whatever it was (a full disk, a closed pipe).
		fmt.Fprintf(stderr, "bootsim: writing standard output: %v\n", out.err)
		return exitInternal
	}
	if err == nil {
		return exitOK
	}
	code = exitUsage // cobra's own errors (unknown command, bad flag) are usage errors
	var ee *exitError
	if errors.As(err, &ee) {
		code = ee.code
	}
	if msg := err.Error(); msg != "" {
		fmt.Fprintf(stderr, "bootsim: %s\n", msg)
	}
	if code == exitUsage && !errors.As(err, &ee) {
		fmt.Fprintln(stderr, "Run 'bootsim --help' for usage.")
	}
	return code
}
