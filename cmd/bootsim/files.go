package main

import (
	"encoding/hex"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// inputKind is a kind of input file and the most bytes one may hold:
// every file is read whole, so each kind has a limit far above any real
// file of its kind and far below what exhausts the host.
type inputKind struct {
	what  string
	limit int64
}

// The kinds of input files.
var (
	inScenario = inputKind{"scenario file", 4 << 20}
	inFirmware = inputKind{"firmware image or payload", 64 << 20}
	inManifest = inputKind{"manifest", 1 << 20}
	inKey      = inputKind{"key or certificate", 1 << 20}
	inDump     = inputKind{"SOTP dump", 16 << 20}
	inReport   = inputKind{"sweep report", 512 << 20}
)

// readInput reads a file named on the command line; "-" is standard input.
// A file that cannot be read, or that is larger than its kind allows, is a
// usage error naming the file.
func readInput(cmd *cobra.Command, path string, kind inputKind) ([]byte, error) {
	if path == "-" {
		return readLimited(cmd.InOrStdin(), "standard input", kind)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	defer f.Close()
	return readLimited(f, path, kind)
}

// readLimited reads r whole, refusing more than the kind's limit.
func readLimited(r io.Reader, name string, kind inputKind) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, kind.limit+1))
	if err != nil {
		return nil, usageErr("reading %s: %v", name, err)
	}
	if int64(len(b)) > kind.limit {
		return nil, usageErr("%s: larger than %d bytes, the limit for a %s", name, kind.limit, kind.what)
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
// addBinaryOutput adds the flags of a command whose output is binary data:
// --out/-O FILE, and -o/--output for the format, which is "bin" only (-o
// is an output format in every command; a file given to it is refused with
// the flag to use instead).
func addBinaryOutput(cmd *cobra.Command, path, format *string) {
	cmd.Flags().StringVarP(path, "out", "O", "", "output file (- for stdout; default stdout, unless it is a terminal)")
	cmd.Flags().StringVarP(format, "output", "o", "bin", "output format: bin")
}

// checkBinaryOutput refuses a format other than bin.
func checkBinaryOutput(format string) error {
	if format != "bin" {
		return usageErr("-o is the output format (bin for this command), not a file: write to a file with --out %s (or -O %s)", format, format)
	}
	return nil
}

func writeOutput(cmd *cobra.Command, path string, data []byte) error {
	if path == "" || path == "-" {
		if path == "" && isTerminal(cmd.OutOrStdout()) {
			return usageErr("refusing to write binary data to a terminal: use --out FILE (-O FILE), or --out - to force")
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
