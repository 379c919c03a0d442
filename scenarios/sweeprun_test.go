package scenarios

import (
	"strings"
	"testing"

	"github.com/bootsim/bootsim/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// sweepable is base with a sweep section that fails where the recovery
// has to copy the candidate again: every cut but those after the copy is
// done.
var sweepable = base + `sweep:
  expect:
    - no-event: copy-begin
`

func mustSweep(t *testing.T, y string, opts SweepOptions) *SweepReport {
	t.Helper()
	l, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	rep, err := SweepScenario(l, opts)
	require.NoError(t, err)
	return rep
}

// TestSweepCountsAndClassifies: every op of the baseline is tried in every
// mode (torn with each seed); a point's verdict is its recovery's, and each
// failure carries a replay that `bootsim run` plays to the same verdict.
func TestSweepCountsAndClassifies(t *testing.T) {
	rep := mustSweep(t, sweepable, SweepOptions{Workers: 2, TornSeeds: 2})
	require.Equal(t, rep.Ops*(2+2), rep.Points)
	require.Equal(t, rep.Points, rep.Runs)
	require.Len(t, rep.Results, rep.Points)
	require.Equal(t, rep.Points, rep.Passed+rep.Failed)
	require.NotZero(t, rep.Passed, "a cut once the copy is done leaves nothing to copy")
	require.NotZero(t, rep.Failed, "a cut in the copy leaves it to do again")
	require.Zero(t, rep.Bricks, "the classic bootloader recovers from every cut of a copy")
	for i, r := range rep.Results {
		if i > 0 {
			prev := rep.Results[i-1].Point
			require.True(t, prev.Op < r.Op || prev.Op == r.Op && (prev.Mode < r.Mode || prev.Mode == r.Mode && prev.Seed < r.Seed), "point order at %d", i)
		}
		if r.Passed {
			require.Empty(t, r.Class)
			continue
		}
		require.Equal(t, ClassExpectation, r.Class)
		require.Contains(t, r.Reason, "expected no event copy-begin: seen 1 times")
	}
	// The replay of a failure and of a pass give their verdicts again.
	l, err := Load("t.yaml", []byte(sweepable), nil)
	require.NoError(t, err)
	for _, r := range []PointResult{rep.Failures()[0], rep.Results[0]} {
		require.Equal(t, []string{"t.yaml", "--seed", "1", "--cut", r.Point.String()}, r.Replay)
		res, err := Run(l, Options{Cut: r.rule()})
		require.NoError(t, err)
		require.Equal(t, r.Passed, res.Passed, "%s", r.Point)
	}
}

// TestSweepIsTheSameEverywhere: the report does not depend on the number
// of workers, the shards together are the whole sweep, and the fork engine
// agrees with the naive replay point for point.
func TestSweepIsTheSameEverywhere(t *testing.T) {
	opts := SweepOptions{Workers: 1, TornSeeds: 1}
	one := mustSweep(t, sweepable, opts)
	opts.Workers = 3
	require.Empty(t, cmp.Diff(one, mustSweep(t, sweepable, opts)))
	opts.Replay = true
	require.Empty(t, cmp.Diff(one, mustSweep(t, sweepable, opts)), "fork and replay")
	opts.Replay = false

	var union []PointResult
	for s := 1; s <= 3; s++ {
		opts.Shard, opts.Shards = s, 3
		part := mustSweep(t, sweepable, opts)
		require.Equal(t, one.Points, part.Points)
		require.Less(t, part.Runs, one.Points)
		union = append(union, part.Results...)
	}
	require.Len(t, union, one.Points)
	for _, r := range union {
		i := 0
		for one.Results[i].Point != r.Point {
			i++
		}
		require.Empty(t, cmp.Diff(one.Results[i], r))
	}
}

// TestSweepFiltersAndModes: filters keep the ops they name and modes the
// cuts; bad options are errors.
func TestSweepFiltersAndModes(t *testing.T) {
	all := mustSweep(t, base, SweepOptions{Modes: []storage.FaultMode{storage.FaultCutBefore}})
	require.Equal(t, all.Ops, all.Points)
	body := mustSweep(t, base, SweepOptions{Modes: []storage.FaultMode{storage.FaultCutAfter}, Filter: OpFilter{Phase: "body"}})
	require.NotZero(t, body.Points)
	require.Less(t, body.Points, all.Points)
	ranged := mustSweep(t, base, SweepOptions{Modes: []storage.FaultMode{storage.FaultTorn}, TornSeeds: 3, Filter: OpFilter{From: 2, Until: 5}})
	require.Equal(t, 9, ranged.Points)
	for _, r := range ranged.Results {
		require.GreaterOrEqual(t, r.Op, 2)
		require.LessOrEqual(t, r.Op, 4)
	}
	l, err := Load("t.yaml", []byte(base), nil)
	require.NoError(t, err)
	_, err = SweepScenario(l, SweepOptions{Modes: []storage.FaultMode{storage.FaultBitFlip}})
	require.ErrorContains(t, err, "mode bit-flip does not cut power")
	_, err = SweepScenario(l, SweepOptions{Shard: 4, Shards: 3})
	require.ErrorContains(t, err, "shard 4 of 3")
	require.True(t, strings.HasPrefix(all.Scenario, "test"))
}
