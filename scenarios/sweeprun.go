package scenarios

import (
	"cmp"
	"fmt"
	"hash/fnv"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/bootsim/bootsim/storage"
)

// SweepOptions choose the cut points of a sweep and how it runs them.
type SweepOptions struct {
	// Seed, if not nil, replaces the scenario's seed.
	Seed *uint64
	// Modes are the power-cut modes tried at every op (default before,
	// after and torn).
	Modes []storage.FaultMode
	// TornSeeds is how many seeds a torn cut is tried with at every op
	// (default 4): seeds 1 to TornSeeds.
	TornSeeds int
	// Filter keeps the ops a sweep cuts at.
	Filter OpFilter
	// Workers recover that many points at once (default: the CPUs).
	Workers int
	// Shard and Shards split the points over machines: this run takes
	// the points whose stable hash falls in shard Shard of Shards (from
	// 1). Zero means one shard.
	Shard, Shards int
	// Replay runs every point the naive way, from the start with the cut
	// (the reference a fork must agree with).
	Replay bool
	// NoMemo recovers every point afresh, instead of reusing the recovery
	// of an earlier point whose storage holds the same pages where that
	// recovery looked. With the memo, one remembered result in
	// memoCheckEvery is recovered afresh too and compared.
	NoMemo bool
	// EveryPage cuts at every page of a driver call that programs page by
	// page (the classic bootloader's copy), in every mode, instead of
	// sweeping the call as one op: exhaustive, and a point per page.
	EveryPage bool
	// Progress, if not nil, is called after each point with the number
	// done and the number in this shard.
	Progress func(done, total int)
}

// OpFilter keeps the ops of a baseline a sweep cuts at; empty fields keep
// all.
type OpFilter struct {
	Device, Region, Stage, Phase string
	// From and Until bound the op indexes: From ≤ index < Until (Until 0:
	// no bound).
	From, Until int
}

func (f OpFilter) keep(op *storage.Op) bool {
	return (f.Device == "" || f.Device == op.Device) && (f.Region == "" || f.Region == op.Region) &&
		(f.Stage == "" || f.Stage == op.Stage) && (f.Phase == "" || f.Phase == op.Phase) &&
		op.Index >= f.From && (f.Until == 0 || op.Index < f.Until)
}

// DefaultSweepModes are the modes a sweep tries unless told otherwise.
var DefaultSweepModes = []storage.FaultMode{storage.FaultCutBefore, storage.FaultCutAfter, storage.FaultTorn}

// DefaultTornSeeds is how many seeds a torn cut is tried with.
const DefaultTornSeeds = 4

// Point is one cut a sweep tries: a power-cut mode (and its seed) at an op.
// In a random campaign's schedule a point may also be a link drop of
// LinkDrop starting at the op (its Mode is then FaultNone).
type Point struct {
	Op       int
	Mode     storage.FaultMode
	Seed     uint64
	LinkDrop time.Duration
}

func (p Point) rule() *storage.Rule {
	return &storage.Rule{Match: storage.OnIndex(p.Op), Fault: storage.Fault{Mode: p.Mode, Seed: p.Seed}}
}

func (p Point) String() string {
	if p.LinkDrop > 0 {
		return LinkDrop{Op: p.Op, For: p.LinkDrop}.String()
	}
	return p.rule().String()
}

// Failure classes of a sweep point, from the worst.
const (
	ClassBrick       = "brick"       // no-brick failed: no application came back
	ClassForgery     = "forgery"     // authentic failed: firmware the vendor did not build ran
	ClassDowngrade   = "downgrade"   // no-downgrade failed
	ClassSOTPLoss    = "sotp-loss"   // sotp-intact failed
	ClassExpectation = "expectation" // the recovery missed its condition or an expectation
)

// PointResult is the outcome of one point.
type PointResult struct {
	Point
	Passed bool
	// Class and Reason say why a point failed ("" if it passed).
	Class  string
	Reason string
	// Weaknesses lists the known weaknesses the point showed.
	Weaknesses []string
	// Replay is the arguments of `bootsim run` that play the point again.
	Replay []string
}

// SweepReport is the outcome of a sweep (or of one shard of it).
type SweepReport struct {
	Scenario string
	Seed     uint64
	// Ops is the number of mutating ops of the baseline run, Points the
	// number of points of the whole sweep, Runs the number this shard ran.
	Ops, Points, Runs int
	Shard, Shards     int
	Passed, Failed    int
	// Bricks counts the failures that are bricks; Weak the points that
	// showed a known weakness and nothing worse.
	Bricks, Weak int
	// Results has every point run, in point order.
	Results []PointResult
}

// Failures returns the failed points, in point order.
func (s *SweepReport) Failures() []PointResult {
	var out []PointResult
	for _, r := range s.Results {
		if !r.Passed {
			out = append(out, r)
		}
	}
	return out
}

// ShardOf is the shard (from 1) of n that a point belongs to: a stable
// hash of the scenario and the point, so that a point's shard does not
// depend on which other points there are.
func ShardOf(scenario string, p Point, n int) int {
	h := fnv.New64a()
	fmt.Fprintf(h, "%s\x00%d\x00%s\x00%d", scenario, p.Op, p.Mode, p.Seed)
	return int(h.Sum64()%uint64(n)) + 1
}

// SweepScenario runs a scenario once as the baseline, then cuts power at
// every op the options keep, in every mode, and recovers the device from
// each cut under the scenario's sweep policy. It returns an error only if
// the scenario cannot be built or the options are wrong.
func SweepScenario(l *Loaded, opts SweepOptions) (*SweepReport, error) {
	seed := l.Seed
	if opts.Seed != nil {
		seed = *opts.Seed
	}
	modes := opts.Modes
	if len(modes) == 0 {
		modes = DefaultSweepModes
	}
	for _, m := range modes {
		if !m.CutsPower() {
			return nil, fmt.Errorf("sweep: mode %s does not cut power (want before, after or torn)", m)
		}
	}
	torn := opts.TornSeeds
	if torn == 0 {
		torn = DefaultTornSeeds
	}
	run, err := prepareSweep(l, seed, opts.Shard, opts.Shards, opts.Workers)
	if err != nil {
		return nil, fmt.Errorf("sweep: %v", err)
	}
	g, b, shard, shards, workers := run.rig, run.baseline, run.shard, run.shards, run.workers
	if !opts.NoMemo && !opts.Replay {
		g.memo = &recoveryMemo{}
	}
	rep := &SweepReport{Scenario: l.Name, Seed: seed, Ops: len(b.journal), Shard: shard, Shards: shards}
	var points []Point
	var recs []int  // the baseline journal record each point forks from
	var pages []int // the page of that record the cut hits; -1: as its fault picks
	// A record of page programs (a driver call that programs page by page)
	// is swept as one call, as a record of one op is: cut before its first
	// page, after its last, and torn at the page each seed picks; each
	// point is named by the op it hits, so its replay cuts that page.
	for i := range b.journal {
		op := &b.journal[i]
		if !opts.Filter.keep(op) {
			continue
		}
		if opts.EveryPage && op.Count() > 1 {
			for k := range op.Count() {
				for _, m := range modes {
					seeds := []uint64{0}
					if m == storage.FaultTorn {
						seeds = seeds[:0]
						for s := 1; s <= torn; s++ {
							seeds = append(seeds, uint64(s))
						}
					}
					for _, seed := range seeds {
						rep.Points++
						if p := (Point{Op: op.Index + k, Mode: m, Seed: seed}); ShardOf(l.Name, p, shards) == shard {
							points, recs, pages = append(points, p), append(recs, i), append(pages, k)
						}
					}
				}
			}
			continue
		}
		for _, m := range modes {
			if m != storage.FaultTorn {
				rep.Points++
				at := op.Index
				if m == storage.FaultCutAfter {
					at = op.Last()
				}
				if p := (Point{Op: at, Mode: m}); ShardOf(l.Name, p, shards) == shard {
					points, recs, pages = append(points, p), append(recs, i), append(pages, -1)
				}
				continue
			}
			for s := 1; s <= torn; s++ {
				rep.Points++
				f := storage.Fault{Mode: m, Seed: uint64(s)}
				if p := (Point{Op: op.Index + op.TornPage(f), Mode: m, Seed: uint64(s)}); ShardOf(l.Name, p, shards) == shard {
					points, recs, pages = append(points, p), append(recs, i), append(pages, -1)
				}
			}
		}
	}
	// In op order, then mode, then seed, as merged shards list them; a
	// record's points stay together, so the forker still only moves on.
	order := make([]int, len(points))
	for i := range order {
		order[i] = i
	}
	slices.SortStableFunc(order, func(a, b int) int {
		pa, pb := points[a], points[b]
		return cmp.Or(cmp.Compare(pa.Op, pb.Op), cmp.Compare(pa.Mode, pb.Mode), cmp.Compare(pa.Seed, pb.Seed))
	})
	sorted, sortedRecs, sortedPages := make([]Point, len(points)), make([]int, len(points)), make([]int, len(points))
	for i, j := range order {
		sorted[i], sortedRecs[i], sortedPages[i] = points[j], recs[j], pages[j]
	}
	points, recs, pages = sorted, sortedRecs, sortedPages
	rep.Runs = len(points)
	rep.Results = make([]PointResult, len(points))

	// The jobs: one goroutine walks the baseline's ops in order and forks
	// the storage at each point (or, with Replay, only names the point);
	// the workers recover. Each result goes to its point's place, so the
	// report does not depend on the number of workers.
	type job struct {
		i  int
		cs *cutState
	}
	jobs := make(chan job, workers)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		done     int
		forkErr  error
		replayFn = func(p Point) (*Result, error) {
			r, err := g.start(Options{Cut: p.rule()})
			if err != nil {
				return nil, err
			}
			return r.play(), nil
		}
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				p := points[j.i]
				var res *Result
				if j.cs != nil {
					var hit bool
					res, hit = g.recoverMemo(j.cs)
					if hit && ShardOf(l.Name, p, memoCheckEvery) == 1 {
						fresh, _, _ := g.recoverFresh(j.cs)
						if resultDigest(fresh) != resultDigest(res) {
							mu.Lock()
							forkErr = fmt.Errorf("internal error: at %s the remembered recovery differs from a fresh one", p)
							mu.Unlock()
						}
					}
				} else {
					r, err := replayFn(p)
					if err != nil {
						mu.Lock()
						forkErr = err
						mu.Unlock()
						continue
					}
					res = r
				}
				rep.Results[j.i] = judge(g, p, res)
				if opts.Progress != nil {
					mu.Lock()
					done++
					opts.Progress(done, len(points))
					mu.Unlock()
				}
			}
		}()
	}
	f := b.forker()
	for i, p := range points {
		if opts.Replay {
			jobs <- job{i: i}
			continue
		}
		if err := f.seek(recs[i]); err != nil {
			forkErr = err
			break
		}
		cs, err := f.cutPage(pages[i], storage.Fault{Mode: p.Mode, Seed: p.Seed})
		if err != nil {
			forkErr = err
			break
		}
		jobs <- job{i: i, cs: cs}
	}
	close(jobs)
	wg.Wait()
	if forkErr != nil {
		return nil, fmt.Errorf("sweep %s: %v", l.Name, forkErr)
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

// memoCheckEvery: one remembered recovery in this many (by a stable hash
// of the point) is recovered afresh as well and compared.
const memoCheckEvery = 16

// sweepRun is what an exhaustive sweep and a random campaign both start
// from: the rig, its baseline run, the shard and the workers.
type sweepRun struct {
	rig                    *rig
	baseline               *baseline
	shard, shards, workers int
}

// prepareSweep checks the shard, defaults the workers, and records the
// scenario's baseline run.
func prepareSweep(l *Loaded, seed uint64, shard, shards, workers int) (*sweepRun, error) {
	if shards == 0 {
		shards, shard = 1, 1
	}
	if shard < 1 || shard > shards {
		return nil, fmt.Errorf("shard %d of %d: want 1 to %d", shard, shards, shards)
	}
	if workers <= 0 {
		workers = runtime.NumCPU()
	}
	g, err := newRig(l, seed)
	if err != nil {
		return nil, err
	}
	b, err := g.recordBaseline()
	if err != nil {
		return nil, err
	}
	return &sweepRun{rig: g, baseline: b, shard: shard, shards: shards, workers: workers}, nil
}

// judge turns a recovery into a point's result: the worst failure, or the
// known weaknesses it showed.
func judge(g *rig, p Point, res *Result) PointResult {
	if res.Recovery != nil { // a replay: the run's recovery is the point's
		res = res.Recovery
	}
	out := PointResult{Point: p, Passed: res.Passed}
	replay := &Result{Name: g.l.Name, File: g.l.File, Seed: g.seed, Cut: p.String()}
	out.Replay = replay.ReplayArgs()
	classes := map[string]string{InvNoBrick: ClassBrick, InvAuthentic: ClassForgery, InvNoDowngrade: ClassDowngrade, InvSOTPIntact: ClassSOTPLoss}
	for _, inv := range res.Invariants {
		switch inv.Status {
		case StatusWeakness:
			out.Weaknesses = append(out.Weaknesses, inv.Name)
		case StatusFail:
			if out.Class == "" {
				out.Class, out.Reason = classes[inv.Name], "invariant "+inv.Name+": "+inv.Detail
			}
		}
	}
	if out.Class == "" && !res.Passed {
		out.Class, out.Reason = ClassExpectation, strings.Join(res.Failures(), "; ")
	}
	return out
}
