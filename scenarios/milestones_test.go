package scenarios

import (
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/bootsim/bootsim/sim"
)

// TestEveryMarkIsAMilestone: every milestone a stage reports in a run of
// the library is in the list the loader checks names against (a stage
// that reports a new one without adding it would make scenarios that name
// it fail to load), and the list names each once, for the designs it says.
func TestEveryMarkIsAMilestone(t *testing.T) {
	known := map[string]Milestone{}
	for _, m := range Milestones() {
		_, dup := known[m.Name]
		require.False(t, dup, "%s listed twice", m.Name)
		require.NotEmpty(t, m.Meaning, m.Name)
		known[m.Name] = m
	}
	seen := map[string]bool{}
	for _, l := range Library() {
		for _, p := range l.Profiles() {
			lp, err := l.Under(p)
			require.NoError(t, err)
			res, err := Run(lp, Options{})
			require.NoError(t, err, l.Name)
			for _, e := range res.Trace {
				if e.Kind != sim.EvMark {
					continue
				}
				m, ok := known[e.Name]
				require.True(t, ok, "%s under %s reports %q, which is not a milestone", l.Name, p, e.Name)
				require.Contains(t, m.Profiles, p, "%s: %q is reported under %s", l.Name, e.Name, p)
				seen[e.Name] = true
			}
		}
	}
	// The library reaches most of them; those it does not are listed here
	// so that a milestone nothing reports any more is noticed.
	unreached := []string{}
	for name := range known {
		if !seen[name] && name != EventInstallRetried {
			unreached = append(unreached, name)
		}
	}
	slices.Sort(unreached)
	// bootloader-assert needs an application start off the flash page,
	// which no real target's build gives: bootloader's
	// TestAssertOnMisalignedApplication reaches it.
	require.Equal(t, []string{"active-empty", "bootloader-assert", "retry"}, unreached)
}

// TestUnknownMilestonesAreRefused: a wait, an expectation or a power cut
// on a name no stage reports is refused at load, with the closest name.
func TestUnknownMilestonesAreRefused(t *testing.T) {
	base := `scenario: m
summary: s
device: {board: k64f}
firmware:
  app-v1: {version: 1561517193, size: 100KiB}
  app-v2: {version: 1561520000, size: 110KiB}
factory: {active: app-v1, slots: [app-v2]}
steps:
  - power-on
  - wait: {until: {running: app-v2}, timeout: 1m}
expect:
  - running: app-v2
`
	for _, tc := range []struct{ name, from, to, want string }{
		{"no-event", "  - running: app-v2\n", "  - running: app-v2\n  - no-event: copy-begn\n",
			`m.yaml:13:5: no-event: "copy-begn" is not a milestone (did you mean "copy-begin"? see 'bootsim events')`},
		{"event", "  - running: app-v2\n", "  - running: app-v2\n  - event: {name: verify-begn, count: 1}\n", `"verify-begn" is not a milestone (did you mean "verify-begin"?`},
		{"wait", "{running: app-v2}", "{event: copy-dnoe}", `"copy-dnoe" is not a milestone (did you mean "copy-done"?`},
		{"power cut", "  - power-on\n", "  - power-on\n  - power-cut: {event: nothing-like-it}\n", `power-cut event: "nothing-like-it" is not a milestone (see 'bootsim events')`},
	} {
		_, err := Load("m.yaml", []byte(strings.Replace(base, tc.from, tc.to, 1)), nil)
		require.Error(t, err, tc.name)
		require.Contains(t, err.Error(), tc.want, tc.name)
	}
	_, err := Load("m.yaml", []byte(base), nil)
	require.NoError(t, err)
}
