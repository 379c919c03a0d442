package scenarios

import (
	"os"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"

	"github.com/bootsim/bootsim/storage"
)

const referenceFile = "../docs/scenarios.md"

// TestReferenceIsComplete: every step, condition, expectation, invariant,
// fault mode and attack has a meaning and, where it applies, an example
// that loads: a new one without its documentation fails here.
func TestReferenceIsComplete(t *testing.T) {
	for _, set := range []struct {
		name  string
		words []string
		ref   map[string]refEntry
	}{
		{"step", append(append([]string{}, stepWords...), stepKeys...), stepRef},
		{"condition", append(append([]string{}, condWords...), condKeys...), condRef},
		{"expectation", append(append([]string{}, expectWords...), expectKeys...), expectRef},
		{"attack", attackKinds, attackRef},
	} {
		for _, w := range set.words {
			e, ok := set.ref[w]
			require.True(t, ok, "%s %s has no reference entry", set.name, w)
			require.NotEmpty(t, e.meaning, w)
			require.True(t, strings.Contains(e.example, w), "%s %s: the example %q does not show it", set.name, w, e.example)
		}
		require.Len(t, set.ref, len(uniq(set.words)), "%s: an entry for something that does not exist", set.name)
	}
	for _, n := range Invariants {
		require.NotEmpty(t, invariantRef[n], n)
	}
	for _, m := range storage.FaultModes() {
		require.NotEmpty(t, faultRef[m], m.String())
	}
}

func uniq(ws []string) map[string]bool {
	out := map[string]bool{}
	for _, w := range ws {
		out[w] = true
	}
	return out
}

// TestReferenceIsCurrent: docs/scenarios.md is what bootsim reference
// prints; run with -rewrite after changing the format.
func TestReferenceIsCurrent(t *testing.T) {
	got := Reference()
	if rewrite() {
		require.NoError(t, os.MkdirAll("../docs", 0o755))
		require.NoError(t, os.WriteFile(referenceFile, []byte(got), 0o644))
	}
	want, err := os.ReadFile(referenceFile)
	require.NoError(t, err)
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Fatalf("docs/scenarios.md is stale (-committed +now); run with -rewrite:\n%s", diff)
	}
}

// TestReferenceExamplesLoad: the examples of steps and expectations are
// valid scenario YAML (in a classic scenario, or a chain one for the
// chain's expectations).
func TestReferenceExamplesLoad(t *testing.T) {
	classic := `scenario: r
summary: s
device: {board: k64f}
firmware:
  app-v1: {version: 1561517193, size: 100KiB}
  app-v2: {version: 1561520000, size: 110KiB}
  evil: {version: 1700000000, size: 90KiB, attacker: true}
factory: {active: app-v1, slots: [app-v2]}
steps:
  - power-on
STEP
expect:
EXPECT
`
	chainSrc := `scenario: r
summary: s
device: {board: k64f, profile: chain}
firmware:
  bl-v1: {version: 1, size: 16KiB, stage: bootloader}
  bl-v2: {version: 2, size: 16KiB, stage: bootloader}
  app-v1: {version: 1, size: 32KiB}
  app-v3: {version: 3, size: 32KiB}
factory: {bootloaders: [bl-v1, bl-v2], applications: [app-v1, app-v3]}
steps:
  - power-on
expect:
EXPECT
`
	load := func(src string) error {
		_, err := Load("r.yaml", []byte(src), nil)
		return err
	}
	for k, e := range stepRef {
		src := strings.Replace(strings.Replace(classic, "STEP", "  "+e.example, 1), "EXPECT", "  - no-brick", 1)
		l, err := Load("r.yaml", []byte(src), nil)
		require.NoError(t, err, "step %s", k)
		// The example decodes to the kind it documents, and reports show it.
		last := l.Steps[len(l.Steps)-1]
		require.Equal(t, k, last.Kind(), "step %s", k)
		require.True(t, strings.HasPrefix(last.String(), k), "step %s renders as %q", k, last.String())
	}
	for k, e := range condRef {
		src := strings.Replace(strings.Replace(classic, "STEP", "  - wait: {"+e.example+"}", 1), "EXPECT", "  - no-brick", 1)
		require.NoError(t, load(src), "condition %s", k)
	}
	for k, e := range expectRef {
		src := strings.Replace(strings.Replace(classic, "STEP", "  - wait: 1s", 1), "EXPECT", "  "+e.example, 1)
		if k == ExpBootloader || k == ExpPath || k == ExpStored {
			src = strings.Replace(chainSrc, "EXPECT", "  "+e.example, 1)
		}
		l, err := Load("r.yaml", []byte(src), nil)
		require.NoError(t, err, "expectation %s", k)
		require.Equal(t, k, l.Expect[0].Kind(), "the example of %s decodes to its kind", k)
		require.NotEmpty(t, l.Expect[0].String(), k)
	}
	for k, e := range attackRef {
		src := strings.Replace(strings.Replace(classic, "STEP", "  "+e.example, 1), "EXPECT", "  - no-brick", 1)
		if k == AttackSwapSlots {
			src = strings.Replace(src, "device: {board: k64f}", "device: {board: k64f, config: {update-client.storage-locations: 2}}", 1)
		}
		if k == AttackTearRecord || k == AttackEraseRecord {
			src = strings.Replace(chainSrc, "EXPECT", "  - no-brick", 1)
			src = strings.Replace(src, "steps:\n  - power-on\n", "steps:\n  - power-on\n  "+e.example+"\n", 1)
		}
		require.NoError(t, load(src), "attack %s", k)
	}
}
