package scenarios

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bootsim/bootsim/storage"
)

// RandomOptions shape a random fault campaign (bootsim sweep --random).
type RandomOptions struct {
	// Seed, if not nil, replaces the scenario's seed (the device's and the
	// campaign's).
	Seed *uint64
	// Runs is how many runs to make.
	Runs int
	// MaxFaults bounds the faults of one run (default 3).
	MaxFaults int
	// Workers run that many at once (default: the CPUs).
	Workers int
	// Shard and Shards split the runs over machines, as SweepOptions do.
	Shard, Shards int
	// Progress, if not nil, is called after each run.
	Progress func(done, total int)
}

// DefaultMaxFaults is how many faults a random run has at most.
const DefaultMaxFaults = 3

// randomModes are the fault kinds a random campaign draws from: the power
// cuts, and the faults after which the device keeps running.
var randomModes = []storage.FaultMode{
	storage.FaultCutBefore, storage.FaultCutAfter, storage.FaultTorn,
	storage.FaultBitFlip, storage.FaultIOError, storage.FaultStuckBit, storage.FaultSDRemoved,
}

// Schedule is a random run's faults, each at an op of the baseline, in op
// order.
type Schedule []Point

func (s Schedule) rules() []*storage.Rule {
	var out []*storage.Rule
	for _, p := range s {
		if p.LinkDrop == 0 {
			out = append(out, p.rule())
		}
	}
	return out
}

func (s Schedule) linkDrops() []LinkDrop {
	var out []LinkDrop
	for _, p := range s {
		if p.LinkDrop > 0 {
			out = append(out, LinkDrop{Op: p.Op, For: p.LinkDrop})
		}
	}
	return out
}

// options are the run options that play the schedule.
func (s Schedule) options() Options { return Options{Faults: s.rules(), LinkDrops: s.linkDrops()} }

// String is the schedule as --faults takes it: the storage faults, then the
// link drops (the order a run prints them in).
func (s Schedule) String() string {
	var parts []string
	for _, r := range s.rules() {
		parts = append(parts, r.String())
	}
	for _, d := range s.linkDrops() {
		parts = append(parts, d.String())
	}
	return strings.Join(parts, ";")
}

// RandomResult is one run of a random campaign.
type RandomResult struct {
	// Run is the run's number, from 0; Enabled the storage fault kinds its
	// swarm drew from, and LinkDrops whether it drew link drops too.
	Run       int
	Enabled   []storage.FaultMode
	LinkDrops bool
	// Faults is the schedule the run was given; for a failure, Shrunk is
	// the smallest schedule found that still fails the same way.
	Faults, Shrunk Schedule
	Passed         bool
	Class, Reason  string
	Weaknesses     []string
	// Replay is the arguments of `bootsim run` that play the (shrunk)
	// failure again.
	Replay []string
}

// RandomReport is the outcome of a random campaign.
type RandomReport struct {
	Scenario       string
	Seed           uint64
	Ops, Runs      int
	Total          int // runs in the whole campaign, over all shards
	Shard, Shards  int
	Passed, Failed int
	Bricks, Weak   int
	Results        []RandomResult
}

// Failures returns the failed runs, in run order.
func (r *RandomReport) Failures() []RandomResult {
	var out []RandomResult
	for _, x := range r.Results {
		if !x.Passed {
			out = append(out, x)
		}
	}
	return out
}

// drawSchedule draws run i's faults, swarm style: the run enables a random
// subset of the fault kinds, link drops included (each with probability one
// half, at least one), and draws up to max faults from it at random ops of
// the baseline. A link drop lasts 1 to 60 seconds.
func drawSchedule(seed uint64, i, ops, max int) ([]storage.FaultMode, bool, Schedule) {
	rng := rand.New(rand.NewPCG(seed, 0x72616e646f6d^uint64(i)))
	var enabled []storage.FaultMode
	for _, m := range randomModes {
		if rng.IntN(2) == 0 {
			enabled = append(enabled, m)
		}
	}
	drops := rng.IntN(2) == 0
	if len(enabled) == 0 && !drops {
		enabled = append(enabled, randomModes[rng.IntN(len(randomModes))])
	}
	kinds := len(enabled)
	if drops {
		kinds++
	}
	n := 1 + rng.IntN(max)
	var s Schedule
	for range n {
		p := Point{Op: rng.IntN(ops)}
		if k := rng.IntN(kinds); k < len(enabled) {
			p.Mode, p.Seed = enabled[k], rng.Uint64N(1<<16)
		} else {
			p.LinkDrop = time.Duration(1+rng.IntN(60)) * time.Second
		}
		if !slices.ContainsFunc(s, func(q Point) bool { return q.Op == p.Op }) {
			s = append(s, p)
		}
	}
	slices.SortFunc(s, func(a, b Point) int { return a.Op - b.Op })
	return enabled, drops, s
}

// journalOps is how many ops a journal's records stand for (a record of
// page programs stands for one op per page).
func journalOps(journal []storage.Op) int {
	if len(journal) == 0 {
		return 0
	}
	return journal[len(journal)-1].Last() + 1 - journal[0].Index
}

// RandomCampaign runs a scenario with random fault schedules drawn from one
// seed, each run from the start (bit flips, I/O errors and a card pulled out
// leave the device running, so such runs cannot be forked from storage), and
// shrinks every failure to the smallest schedule that still fails the same
// way: fewest faults, then earliest ops.
func RandomCampaign(l *Loaded, opts RandomOptions) (*RandomReport, error) {
	seed := l.Seed
	if opts.Seed != nil {
		seed = *opts.Seed
	}
	if opts.Runs < 1 {
		return nil, fmt.Errorf("random campaign: want at least 1 run, got %d", opts.Runs)
	}
	max := opts.MaxFaults
	if max == 0 {
		max = DefaultMaxFaults
	}
	if max < 1 {
		return nil, fmt.Errorf("random campaign: want at least 1 fault per run, got %d", max)
	}
	run, err := prepareSweep(l, seed, opts.Shard, opts.Shards, opts.Workers)
	if err != nil {
		return nil, fmt.Errorf("random campaign: %v", err)
	}
	g, b, shard, shards, workers := run.rig, run.baseline, run.shard, run.shards, run.workers
	rep := &RandomReport{Scenario: l.Name, Seed: seed, Ops: journalOps(b.journal), Total: opts.Runs, Shard: shard, Shards: shards}
	if rep.Ops == 0 {
		return rep, nil
	}
	var runs []int
	for i := range opts.Runs {
		if randomShard(l.Name, i, shards) == shard {
			runs = append(runs, i)
		}
	}
	rep.Runs = len(runs)
	rep.Results = make([]RandomResult, len(runs))
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		done int
		errs []error
	)
	jobs := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range jobs {
				enabled, drops, sched := drawSchedule(seed, runs[k], rep.Ops, max)
				res, err := g.randomRun(runs[k], enabled, sched)
				res.LinkDrops = drops
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
				} else {
					rep.Results[k] = res
				}
				done++
				if opts.Progress != nil {
					opts.Progress(done, len(runs))
				}
				mu.Unlock()
			}
		}()
	}
	for k := range runs {
		jobs <- k
	}
	close(jobs)
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	for _, r := range rep.Results {
		switch {
		case !r.Passed:
			rep.Failed++
			if r.Class == ClassBrick {
				rep.Bricks++
			}
		default:
			rep.Passed++
			if len(r.Weaknesses) > 0 {
				rep.Weak++
			}
		}
	}
	return rep, nil
}

// randomShard is the shard (from 1) of n that random run i belongs to.
func randomShard(scenario string, i, n int) int {
	return ShardOf(scenario, Point{Op: -1 - i}, n)
}

// randomRun plays one schedule, and shrinks it if it fails.
func (g *rig) randomRun(i int, enabled []storage.FaultMode, sched Schedule) (RandomResult, error) {
	v, err := g.judgeSchedule(sched)
	if err != nil {
		return RandomResult{}, err
	}
	out := RandomResult{Run: i, Enabled: enabled, Faults: sched, Passed: v.Passed, Class: v.Class, Reason: v.Reason, Weaknesses: v.Weaknesses}
	if v.Passed {
		return out, nil
	}
	out.Shrunk, err = g.shrink(sched, v.Class)
	if err != nil {
		return RandomResult{}, err
	}
	if len(out.Shrunk) != len(sched) || !slices.Equal(out.Shrunk, sched) {
		sv, err := g.judgeSchedule(out.Shrunk)
		if err != nil {
			return RandomResult{}, err
		}
		out.Reason = sv.Reason
	}
	replay := &Result{Name: g.l.Name, File: g.l.File, Seed: g.seed, Cut: out.Shrunk.String()}
	out.Replay = replay.ReplayArgs()
	return out, nil
}

// judgeSchedule runs the scenario from the start with a schedule. Faults
// that never fire (after a power cut, the steps stop) are dropped from the
// verdict's concern: only the invariants and the sweep section judge.
func (g *rig) judgeSchedule(sched Schedule) (PointResult, error) {
	r, err := g.start(sched.options())
	if err != nil {
		return PointResult{}, err
	}
	res := r.play()
	if res.Recovery == nil {
		// The faults left the device running: judge the run itself, but
		// not for faults that never fired.
		res.Unfired = nil
		res.Passed = len(res.Failures()) == 0
	}
	return judge(g, Point{}, res), nil
}

// shrink looks for the smallest schedule that fails with the same class:
// first without each fault in turn (fewest faults), then with each fault
// moved as early as it still fails (earliest ops).
func (g *rig) shrink(sched Schedule, class string) (Schedule, error) {
	fails := func(s Schedule) (bool, error) {
		if len(s) == 0 {
			return false, nil
		}
		v, err := g.judgeSchedule(s)
		return !v.Passed && v.Class == class, err
	}
	cur := slices.Clone(sched)
	for removed := true; removed; {
		removed = false
		for i := range cur {
			cand := slices.Delete(slices.Clone(cur), i, i+1)
			ok, err := fails(cand)
			if err != nil {
				return nil, err
			}
			if ok {
				cur, removed = cand, true
				break
			}
		}
	}
	for i := range cur {
		lo := 0
		if i > 0 {
			lo = cur[i-1].Op + 1
		}
		// The earliest op in [lo, cur[i].Op] at which the run still fails,
		// by bisection: failing is not monotonic in the op, so this finds
		// an earlier failing op, not always the earliest.
		hi := cur[i].Op
		for lo < hi {
			mid := lo + (hi-lo)/2
			cand := slices.Clone(cur)
			cand[i].Op = mid
			ok, err := fails(cand)
			if err != nil {
				return nil, err
			}
			if ok {
				cur, hi = cand, mid
			} else {
				lo = mid + 1
			}
		}
	}
	return cur, nil
}
