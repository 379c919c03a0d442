package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReplayReproduces: every run's replay command, played again, gives the
// same result byte for byte, for every kind of option that shapes a run (the
// seed, each kind of --cut rule, --max-boots) and every kind of scenario
// argument (built in, a file, a path that needs quoting, standard input).
func TestReplayReproduces(t *testing.T) {
	dir := t.TempDir()
	story := `scenario: spaced
summary: Installs a candidate from the SD card, then crashes into a reset loop.
device: {board: k64f, storage: sd}
firmware:
  app-v1: {version: 1561517193, size: 100KiB}
  app-v2: {version: 1561520000, size: 120KiB, behaviour: crash}
factory: {active: app-v1, slots: [app-v2]}
steps:
  - power-on
  - wait: 20s
expect:
  - running: app-v1
`
	spaced := filepath.Join(dir, "my scenarios", "it's.yaml")
	require.NoError(t, os.MkdirAll(filepath.Dir(spaced), 0o755))
	require.NoError(t, os.WriteFile(spaced, []byte(story), 0o644))
	for _, tc := range []struct {
		name  string
		args  []string
		stdin string
	}{
		{"seed", []string{"install-from-sd", "--seed", "5"}, ""},
		{"cut by index", []string{"install-from-sd", "--cut", "op=12,mode=torn,seed=7"}, ""},
		{"cut by nth", []string{"install-from-sd", "--cut", "kind=program,nth=3"}, ""},
		{"cut by time", []string{"power-cut-during-erase", "--cut", "device=internal,time=40ms,mode=cut-after"}, ""},
		{"cut at random", []string{"install-from-sd", "--cut", "kind=program,random=0.05,mode=bit-flip,seed=9"}, ""},
		{"cut that never fires", []string{"clean-boot", "--cut", "op=9999"}, ""},
		{"max boots", []string{"crash-loop-recopy", "--max-boots", "3"}, ""},
		{"a file that needs quoting", []string{spaced, "--seed", "2", "--cut", "kind=erase,nth=2,mode=cut-after"}, ""},
		{"standard input", []string{"-", "--cut", "kind=program,nth=4"}, story},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first := runJSONOf(t, tc.args, tc.stdin)
			for _, sc := range first {
				replay := shellWords(t, sc["replay"].(string))
				require.Equal(t, []string{"bootsim", "run"}, replay[:2])
				require.Equal(t, []string{"--serial", "-vv"}, replay[len(replay)-2:])
				again := runJSONOf(t, replay[2:len(replay)-2], tc.stdin)
				require.Len(t, again, 1)
				want, _ := json.MarshalIndent(sc, "", "  ")
				got, _ := json.MarshalIndent(again[0], "", "  ")
				require.Equal(t, string(want), string(got), "replayed with %q", replay)
			}
		})
	}
}

// TestCutDoesNotCarryOver: one --cut given for several scenarios arms
// afresh for each, so the same scenario twice gives the same result (issue
// 9: the second run of install-from-sd --cut kind=program,nth=3 passed).
func TestCutDoesNotCarryOver(t *testing.T) {
	got := runJSONOf(t, []string{"install-from-sd", "clean-boot", "install-from-sd", "--cut", "kind=program,nth=3"}, "")
	require.Len(t, got, 3)
	require.NotNil(t, got[0]["recovery"], "the cut fired, and the device recovered")
	require.NotContains(t, got[0], "failures")
	a, _ := json.Marshal(got[0])
	b, _ := json.Marshal(got[2])
	require.Equal(t, string(a), string(b))
}

// runJSONOf runs bootsim run ARGS -o json and returns its scenarios.
func runJSONOf(t *testing.T, args []string, stdin string) []map[string]any {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append(append([]string{"run"}, args...), "-o", "json"), strings.NewReader(stdin), &out, &errb)
	require.Contains(t, []int{0, 1}, code, "bootsim run %q: %s", args, errb.String())
	var doc struct {
		Scenarios []map[string]any `json:"scenarios"`
	}
	require.NoError(t, json.Unmarshal(out.Bytes(), &doc), out.String())
	return doc.Scenarios
}

// shellWords splits a command line as a POSIX shell does, for the quoting
// replay commands use (bare words, single quotes, backslashes).
func shellWords(t *testing.T, s string) []string {
	t.Helper()
	var (
		words []string
		cur   strings.Builder
		in    bool // inside a word
		quote bool
		esc   bool
	)
	for _, r := range s {
		switch {
		case esc:
			cur.WriteRune(r)
			esc = false
		case quote && r == '\'':
			quote = false
		case quote:
			cur.WriteRune(r)
		case r == '\'':
			quote, in = true, true
		case r == '\\':
			esc, in = true, true
		case r == ' ':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	require.False(t, quote, "unterminated quote in %q", s)
	if in {
		words = append(words, cur.String())
	}
	return words
}
