package scenarios

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/units"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestForkAgreesWithReplay: for every built-in scenario and a sample of its
// ops, the state a fork of the baseline gives for a power cut at the op
// (storage rebuilt from the factory snapshot and the journal, the service
// and client as recorded before the op) is the state a run from the start
// with the same --cut reaches, byte for byte, and the recoveries from both
// are the same run. This is what lets a sweep fork instead of replaying.
func TestForkAgreesWithReplay(t *testing.T) {
	for _, lib := range Library() {
		t.Run(lib.Name, func(t *testing.T) {
			// Recoveries that go on for 30s of virtual time after the
			// cut, past the application coming up: its client talks to
			// the service as the cut left it.
			l := *lib
			sc := *lib.Scenario
			sc.Sweep = &Sweep{Until: &Condition{Kind: CondBoots, N: 1000}, Time: units.Duration(30 * time.Second)}
			l.Scenario = &sc
			g, err := newRig(&l, l.Seed)
			require.NoError(t, err)
			b, err := g.recordBaseline()
			require.NoError(t, err)
			n := len(b.journal)
			if n == 0 {
				return
			}
			rng := rand.New(rand.NewPCG(uint64(n), 7))
			points := []int{0, n / 3, rng.IntN(n), n - 1}
			slices.Sort(points)
			points = slices.Compact(points)
			f := b.forker()
			for _, i := range points {
				require.NoError(t, f.seek(i))
				for _, fault := range []storage.Fault{{Mode: storage.FaultCutBefore}, {Mode: storage.FaultCutAfter}, {Mode: storage.FaultTorn, Seed: uint64(i)}} {
					cs, err := f.cut(fault)
					require.NoError(t, err)
					forked := g.recover(cs)

					// A record of page programs stands for several ops:
					// the replay cuts the one the fork's fault hits.
					op := f.rb.FaultedOp(fault)
					replay, err := Run(&l, Options{Cut: &storage.Rule{Match: storage.OnIndex(op), Fault: fault}})
					require.NoError(t, err)
					require.True(t, replay.CutFired, "record %d, op %d", i, op)
					require.NotNil(t, replay.Recovery, "op %d %s", op, fault)
					require.Equal(t, replay.cutStorage.Fingerprint(), cs.storage.Fingerprint(), "storage at op %d %s", op, fault)
					require.Empty(t, cmp.Diff(traceText(replay.Recovery), traceText(forked)), "recovery from op %d %s", op, fault)
					require.Equal(t, replay.Passed, forked.Passed)
				}
			}
		})
	}
}
