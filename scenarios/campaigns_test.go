package scenarios

import (
	"testing"

	"github.com/bootsim/bootsim/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestRandomCampaign: a random campaign is a function of its seed (the same
// report for any number of workers, and shards that add up to it); it finds
// the stuck bits that brick a classic install, and shrinks each to a
// schedule no longer than the one drawn, which fails the same way when
// played again as its replay says.
func TestRandomCampaign(t *testing.T) {
	l, err := Find("update-resume-after-reset-internal")
	require.NoError(t, err)
	opts := RandomOptions{Runs: 200, MaxFaults: 2, Workers: 1}
	one, err := RandomCampaign(l, opts)
	require.NoError(t, err)
	require.Equal(t, 200, one.Runs)
	require.Equal(t, one.Runs, one.Passed+one.Failed)
	require.NotZero(t, one.Failed, "a stuck bit in the active region during the copy bricks the device")
	opts.Workers = 3
	three, err := RandomCampaign(l, opts)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(one, three))

	var runs []int
	for s := 1; s <= 2; s++ {
		o := opts
		o.Shard, o.Shards = s, 2
		part, err := RandomCampaign(l, o)
		require.NoError(t, err)
		for _, r := range part.Results {
			runs = append(runs, r.Run)
			require.Empty(t, cmp.Diff(one.Results[r.Run], r))
		}
	}
	require.Len(t, runs, 200)

	for _, f := range one.Failures() {
		require.Equal(t, ClassBrick, f.Class)
		require.NotEmpty(t, f.Shrunk)
		require.LessOrEqual(t, len(f.Shrunk), len(f.Faults))
		require.Equal(t, storage.FaultStuckBit, f.Shrunk[0].Mode)
		res, err := Run(l, Options{Faults: f.Shrunk.rules()})
		require.NoError(t, err)
		require.False(t, res.Passed, "run %d: the shrunk schedule %s fails", f.Run, f.Shrunk)
		require.Equal(t, []string{"library/update-resume-after-reset-internal.yaml"}[0], l.File)
		require.Equal(t, "update-resume-after-reset-internal", f.Replay[0])
	}
	for _, r := range one.Results {
		if r.Passed {
			require.Empty(t, r.Shrunk)
		}
	}
}

// TestShrinkFindsTheCulprit: a schedule a campaign drew, a stuck bit in the
// SOTP-resumed download that does no harm and one in the install's copy
// that bricks, shrinks to the second alone, moved no later than where it
// was.
func TestShrinkFindsTheCulprit(t *testing.T) {
	l, err := Find("update-resume-after-reset-internal")
	require.NoError(t, err)
	g, err := newRig(l, l.Seed)
	require.NoError(t, err)
	culprit := Point{Op: 578, Mode: storage.FaultStuckBit, Seed: 27826}
	harmless := Point{Op: 486, Mode: storage.FaultStuckBit, Seed: 60452}
	v, err := g.judgeSchedule(Schedule{harmless})
	require.NoError(t, err)
	require.True(t, v.Passed, "%s alone does no harm", harmless)
	sched := Schedule{harmless, culprit}
	v, err = g.judgeSchedule(sched)
	require.NoError(t, err)
	require.Equal(t, ClassBrick, v.Class)
	shrunk, err := g.shrink(sched, v.Class)
	require.NoError(t, err)
	require.Len(t, shrunk, 1)
	require.Equal(t, culprit.Mode, shrunk[0].Mode)
	require.Equal(t, culprit.Seed, shrunk[0].Seed)
	require.LessOrEqual(t, shrunk[0].Op, culprit.Op)
	after, err := g.judgeSchedule(shrunk)
	require.NoError(t, err)
	require.Equal(t, ClassBrick, after.Class)
}
