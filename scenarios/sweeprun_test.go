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

// TestEveryPageAgreesWithReplay: --every-page cuts at each page of the
// copy's page-programming calls, point for point as a run from the start
// with that page cut does; without it a call is swept as one op.
func TestEveryPageAgreesWithReplay(t *testing.T) {
	y := strings.Replace(base, "size: 210KiB}", "size: 24KiB}", 1)
	l, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	opts := SweepOptions{Filter: OpFilter{Phase: "header"}, TornSeeds: 2, Workers: 2}
	calls, err := SweepScenario(l, opts)
	require.NoError(t, err)
	opts.EveryPage = true
	pages, err := SweepScenario(l, opts)
	require.NoError(t, err)
	require.Greater(t, pages.Points, calls.Points)
	require.Equal(t, 0, pages.Points%calls.Points, "every page of the header's call, in every mode")
	opts.Replay = true
	replay, err := SweepScenario(l, opts)
	require.NoError(t, err)
	require.Equal(t, pages.Points, replay.Points)
	for i := range pages.Results {
		f, r := pages.Results[i], replay.Results[i]
		require.Equal(t, r.Op, f.Op)
		require.Equal(t, r.Mode, f.Mode)
		require.Equal(t, r.Seed, f.Seed)
		require.Equal(t, r.Passed, f.Passed, "op %d %s seed %d", f.Op, f.Mode, f.Seed)
		require.Equal(t, r.Reason, f.Reason, "op %d %s seed %d", f.Op, f.Mode, f.Seed)
	}
	// Each page's cut is its own op index, once per mode and seed.
	seen := map[[3]int]bool{}
	for _, r := range pages.Results {
		k := [3]int{r.Op, int(r.Mode), int(r.Seed)}
		require.False(t, seen[k], "point %v twice", k)
		seen[k] = true
	}
}
