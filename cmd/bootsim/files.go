package main

import (
	"encoding/hex"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// readInput reads a file named on the command line; "-" is standard input.
// A file that cannot be read is a usage error naming the file.
func readInput(cmd *cobra.Command, path string) ([]byte, error) {
	if path == "-" {
		b, err := io.ReadAll(cmd.InOrStdin())
		if err != nil {
			return nil, usageErr("reading standard input: %v", err)
		}
		return b, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return b, nil
}

// displayName is how a file argument is named in messages.
func displayName(path string) string {
	if path == "-" {
		return "<stdin>"
	}
	return path
}

// isTerminal reports whether w is a character device (a terminal).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// writeOutput writes binary output to a file, or to stdout when path is ""
// or "-" and stdout is not a terminal.
func writeOutput(cmd *cobra.Command, path string, data []byte) error {
	if path == "" || path == "-" {
		if path == "" && isTerminal(cmd.OutOrStdout()) {
			return usageErr("refusing to write binary data to a terminal: use -o FILE, or -o - to force")
		}
		_, err := cmd.OutOrStdout().Write(data)
		return err
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		return usageErr("%v", err)
	}
	return nil
}

// parseHexFlag decodes a hex flag value of an exact length (0 for any).
func parseHexFlag(name, value string, want int) ([]byte, error) {
	v := strings.TrimPrefix(strings.TrimPrefix(value, "0x"), "0X")
	b, err := hex.DecodeString(v)
	if err != nil {
		return nil, usageErr("--%s: %q is not hex", name, value)
	}
	if want > 0 && len(b) != want {
		return nil, usageErr("--%s: %d bytes, want %d (%d hex digits)", name, len(b), want, 2*want)
	}
	return b, nil
}
