package sim

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// terminal is the dumb model of what a serial console shows: a newline
// ends the line; a carriage return followed by text starts it over.
type terminal struct {
	lines    []string
	cur      strings.Builder
	carriage bool
}

func (t *terminal) write(s string) {
	for _, c := range s {
		switch c {
		case '\n':
			t.lines = append(t.lines, t.cur.String())
			t.cur.Reset()
			t.carriage = false
		case '\r':
			t.carriage = true
		default:
			if t.carriage {
				t.cur.Reset()
				t.carriage = false
			}
			t.cur.WriteRune(c)
		}
	}
}

// TestPropertySerialLinesAsATerminalShowsThem drives Print and PrintLine
// with random text over the characters that matter and compares the lines
// with the model's: the whole-line fast path must not change a line.
func TestPropertySerialLinesAsATerminalShowsThem(t *testing.T) {
	b, err := LoadBoard("k64f")
	require.NoError(t, err)
	rapid.Check(t, func(t *rapid.T) {
		m, err := New(Config{Board: b, Seed: 1})
		require.NoError(t, err)
		var model terminal
		calls := rapid.SliceOfN(rapid.StringOfN(rapid.SampledFrom([]rune("ab\r\n")), 0, 6, -1), 0, 12).Draw(t, "prints")
		lineCalls := rapid.SliceOfN(rapid.Bool(), len(calls), len(calls)).Draw(t, "as-line")
		for i, s := range calls {
			if lineCalls[i] {
				m.PrintLine(s)
				model.write(s + "\r\n")
			} else {
				m.Print(s)
				model.write(s)
			}
		}
		var got []string
		for _, l := range m.Serial() {
			got = append(got, l.Text)
		}
		require.Equal(t, model.lines, got)
	})
}
