// Command bootsim simulates a microcontroller's boot and firmware-update
// chain under power loss and other faults. Run "bootsim --help" for usage.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
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
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
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
