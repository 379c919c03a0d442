package scenarios

import (
	"strconv"
	"testing"
	"time"

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
	opts := RandomOptions{Runs: 400, MaxFaults: 2, Workers: 1}
	one, err := RandomCampaign(l, opts)
	require.NoError(t, err)
	require.Equal(t, 400, one.Runs)
	require.Equal(t, one.Runs, one.Passed+one.Failed)
	require.NotZero(t, one.Failed, "a stuck bit in the active region during the copy bricks the device")
	// The counts are the results' own.
	var passed, failed, bricks, weak int
	for _, r := range one.Results {
		switch {
		case !r.Passed:
			failed++
			if r.Class == ClassBrick {
				bricks++
			}
		case len(r.Weaknesses) > 0:
			passed++
			weak++
		default:
			passed++
		}
	}
	require.Equal(t, []int{passed, failed, bricks, weak}, []int{one.Passed, one.Failed, one.Bricks, one.Weak})
	require.Equal(t, one.Failed, one.Bricks, "every failure here is a brick")
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
	require.Len(t, runs, 400)

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
	drops := 0
	for _, r := range one.Results {
		if r.Passed {
			require.Empty(t, r.Shrunk)
		}
		for _, p := range r.Faults {
			if p.LinkDrop > 0 {
				require.True(t, r.LinkDrops, "run %d drew a link drop without enabling them", r.Run)
				drops++
			}
		}
	}
	require.NotZero(t, drops, "the swarm draws link drops too")
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

// TestLinkDrops: a link drop placed at an op of the download takes the link
// down for its time: the download waits it out (the run takes longer), the
// update still completes, and the replay names it; a drop at an op the run
// never reaches fails the run. ParseFaults reads drops among rules.
func TestLinkDrops(t *testing.T) {
	l, err := Find("seed-update-flow")
	require.NoError(t, err)
	plain, err := Run(l, Options{})
	require.NoError(t, err)
	dl := -1
	for _, op := range plain.Journal {
		if op.Phase == "download" {
			dl = op.Index
			break
		}
	}
	require.GreaterOrEqual(t, dl, 0)
	rules, drops, err := ParseFaults("op=" + itoa(dl+5) + ",link-drop=40s")
	require.NoError(t, err)
	require.Empty(t, rules)
	res, err := Run(l, Options{LinkDrops: drops})
	require.NoError(t, err)
	require.True(t, res.Passed, "%v", res.Failures())
	require.Equal(t, "app-v2", res.Running)
	require.Greater(t, res.VirtualTime, plain.VirtualTime+30*time.Second, "the download waited for the link")
	require.Equal(t, []string{"seed-update-flow", "--seed", "1", "--faults", "op=" + itoa(dl+5) + ",link-drop=40s"}, res.ReplayArgs())

	res, err = Run(l, Options{LinkDrops: []LinkDrop{{Op: 99999, For: time.Second}}})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Contains(t, res.Failures()[0], "op=99999,link-drop=1s: never fired")

	for _, tc := range []struct{ in, err string }{
		{"op=3,link-drop=0s", "positive duration"},
		{"link-drop=5s", "op is required"},
		{"op=3,link-drop=5s,seed=1", `unknown key "seed"`},
		{"op=1,mode=torn;op=x,link-drop=1s", "rule 2"},
	} {
		_, _, err := ParseFaults(tc.in)
		require.ErrorContains(t, err, tc.err, tc.in)
	}
	rules, drops, err = ParseFaults("op=1,mode=torn,seed=2;op=7,link-drop=1m30s")
	require.NoError(t, err)
	require.Len(t, rules, 1)
	require.Equal(t, []LinkDrop{{Op: 7, For: 90 * time.Second}}, drops)
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestDrawScheduleProperties: the random schedules keep their promises
// over many draws: 1 to max faults at distinct ops in order, each fault of
// a kind the run enabled (a mode with a 16-bit seed, or a link drop of 1 to
// 60 s), every kind enabled in some runs and not in others (swarm
// testing), and both ends of the fault count reached.
func TestDrawScheduleProperties(t *testing.T) {
	const ops, max = 50, 4
	seenEnabled := map[storage.FaultMode]int{}
	drops, counts := 0, map[int]bool{}
	for i := range 2000 {
		enabled, withDrops, s := drawSchedule(7, i, ops, max)
		if withDrops {
			drops++
		}
		for _, m := range enabled {
			seenEnabled[m]++
		}
		require.True(t, len(enabled) > 0 || withDrops, "run %d enables nothing", i)
		require.GreaterOrEqual(t, len(s), 1)
		require.LessOrEqual(t, len(s), max)
		counts[len(s)] = true
		for j, p := range s {
			require.True(t, p.Op >= 0 && p.Op < ops)
			if j > 0 {
				require.Greater(t, p.Op, s[j-1].Op, "sorted, distinct ops")
			}
			if p.LinkDrop > 0 {
				require.True(t, withDrops)
				require.Equal(t, storage.FaultNone, p.Mode)
				require.True(t, p.LinkDrop >= time.Second && p.LinkDrop <= time.Minute, "%s", p.LinkDrop)
				continue
			}
			require.Contains(t, enabled, p.Mode)
			require.Less(t, p.Seed, uint64(1<<16))
		}
	}
	for _, m := range randomModes {
		require.Greater(t, seenEnabled[m], 500, "%s enabled in some runs", m)
		require.Less(t, seenEnabled[m], 1500, "%s not in every run", m)
	}
	require.True(t, drops > 500 && drops < 1500, "link drops in about half the runs: %d", drops)
	require.True(t, counts[1] && counts[max], "fault counts from 1 to max: %v", counts)
}
