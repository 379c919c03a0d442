package scenarios

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
)

// Comparison is the outcome of the same scenarios under several update
// designs (bootsim compare): one row per scenario and profile.
type Comparison struct {
	Profiles []string        `json:"profiles"`
	Rows     []ComparisonRow `json:"rows"`
}

// ComparisonRow is one scenario under one profile.
type ComparisonRow struct {
	Scenario string `json:"scenario"`
	Profile  string `json:"profile"`
	// NotApplicable says why the scenario does not run under the profile;
	// the other fields are then empty.
	NotApplicable string `json:"not_applicable,omitempty"`
	Passed        bool   `json:"passed"`
	// Expectations is how many expectations the scenario states for the
	// profile; with none, the invariants alone judge the run.
	Expectations int               `json:"expectations"`
	Invariants   []InvariantResult `json:"invariants"`
	Boots        int               `json:"boots"`
	// Recovery is the boots from the last power-on to the first
	// application start after it (nil: none started): how many boots the
	// design needed to get back to running firmware.
	Recovery *int `json:"boots_to_application,omitempty"`
	// Downtime is the virtual time from the install request (or, with no
	// update client involved, the start of the first copy) to the first
	// application start after it, or to the confirmation of the new
	// version where the design confirms; nil when nothing was installed.
	Downtime *time.Duration `json:"downtime_ns,omitempty"`
	// Erases counts the erase operations per region, BytesWritten the
	// bytes programmed, over the whole run; Updates is the number of
	// updates the run made (installs into the active region, or new
	// versions committed by the client where the design runs versions in
	// place), to read them per update.
	Updates      int           `json:"updates"`
	Erases       []RegionCount `json:"erases"`
	BytesWritten uint64        `json:"bytes_written"`
	Failures     []string      `json:"failures,omitempty"`
	// Sweep is the exhaustive power-cut sweep of the run (compare --sweep).
	Sweep *SweepStats `json:"sweep,omitempty"`
}

// SweepStats sums a sweep for a comparison: the cut points, those that
// failed, and the points whose recovery violated each invariant, whether
// as a failure or as a known weakness (a point that failed counts under
// its worst failure only).
type SweepStats struct {
	Points     int `json:"points"`
	Failed     int `json:"failed"`
	Bricks     int `json:"bricks"`
	Downgrades int `json:"downgrades"`
	Forgeries  int `json:"forgeries"`
}

// CompareOptions are the options of Compare.
type CompareOptions struct {
	// Sweep also sweeps every run exhaustively (modes before, after, torn
	// with TornSeeds seeds).
	Sweep     bool
	TornSeeds int
	Workers   int
}

// RegionCount is a count of operations on a region.
type RegionCount struct {
	Region string `json:"region"`
	Count  int    `json:"count"`
}

// Compare runs every scenario under every profile it makes sense under,
// among profiles (all of them when empty).
func Compare(ls []*Loaded, profiles []string, opts CompareOptions) (*Comparison, error) {
	if len(profiles) == 0 {
		profiles = ProfileNames()
	}
	for _, p := range profiles {
		if profiles := ProfileNames(); !slices.Contains(profiles, p) {
			return nil, fmt.Errorf("no profile %q (available: %s)", p, strings.Join(profiles, ", "))
		}
	}
	c := &Comparison{Profiles: profiles}
	for _, l := range ls {
		for _, p := range profiles {
			row := ComparisonRow{Scenario: l.Name, Profile: p}
			if !slices.Contains(l.Profiles(), p) {
				row.NotApplicable = l.NotApplicable(p)
				if row.NotApplicable == "" {
					row.NotApplicable = fmt.Sprintf("the scenario runs under %s only", strings.Join(l.Profiles(), ", "))
				}
				c.Rows = append(c.Rows, row)
				continue
			}
			lp, err := l.Under(p)
			if err != nil {
				return nil, err
			}
			res, err := Run(lp, Options{})
			if err != nil {
				return nil, fmt.Errorf("%s under %s: %w", l.Name, p, err)
			}
			fillRow(&row, lp, res)
			if opts.Sweep {
				rep, err := SweepScenario(lp, SweepOptions{TornSeeds: opts.TornSeeds, Workers: opts.Workers})
				if err != nil {
					return nil, fmt.Errorf("%s under %s: %w", l.Name, p, err)
				}
				row.Sweep = sweepStats(rep)
			}
			c.Rows = append(c.Rows, row)
		}
	}
	return c, nil
}

func sweepStats(rep *SweepReport) *SweepStats {
	s := &SweepStats{Points: len(rep.Results), Failed: rep.Failed}
	for _, r := range rep.Results {
		shows := func(class, inv string) bool { return r.Class == class || slices.Contains(r.Weaknesses, inv) }
		if shows(ClassBrick, InvNoBrick) {
			s.Bricks++
		}
		if shows(ClassDowngrade, InvNoDowngrade) {
			s.Downgrades++
		}
		if shows(ClassForgery, InvAuthentic) {
			s.Forgeries++
		}
	}
	return s
}

func fillRow(row *ComparisonRow, l *Loaded, res *Result) {
	row.Passed = res.Passed
	row.Expectations = len(l.Expect)
	row.Invariants = res.Invariants
	row.Boots = res.Boots
	row.Failures = res.Failures()
	row.Downtime = downtime(res.Trace)
	row.Updates = updates(res.Trace)
	row.Recovery = bootsToApp(res.Trace)
	erases := map[string]int{}
	for _, op := range res.Journal {
		switch op.Kind {
		case storage.OpErase:
			region := op.Region
			if region == "" {
				region = op.Device
			}
			erases[region]++
		case storage.OpProgram:
			row.BytesWritten += op.Len
		}
	}
	for r, n := range erases {
		row.Erases = append(row.Erases, RegionCount{Region: r, Count: n})
	}
	slices.SortFunc(row.Erases, func(a, b RegionCount) int { return cmp.Compare(a.Region, b.Region) })
}

// updates counts the updates a run made: installs into the active region
// (copy-done), else the versions the update client committed (activated).
func updates(trace []sim.Event) int {
	copies, activations := 0, 0
	for _, e := range trace {
		if e.Kind != sim.EvMark {
			continue
		}
		switch e.Name {
		case bootloader.MarkCopyDone:
			copies++
		case updateclient.MarkActivated:
			activations++
		}
	}
	if copies > 0 {
		return copies
	}
	return activations
}

// bootsToApp counts the boots from the last power-on to the first
// application start after it.
func bootsToApp(trace []sim.Event) *int {
	from := -1
	for i, e := range trace {
		if e.Kind == sim.EvPowerOn {
			from = i
		}
	}
	if from < 0 {
		return nil
	}
	n := 0
	for _, e := range trace[from:] {
		switch {
		case e.Kind == sim.EvPowerOn || e.Kind == sim.EvReset:
			n++
		case e.Kind == sim.EvMark && e.Name == updateclient.MarkRunning:
			return &n
		}
	}
	return nil
}

// downtime measures from the first install request (or copy) to the
// first application start after it, or the first confirmation if the
// design confirms the new version.
func downtime(trace []sim.Event) *time.Duration {
	start := -1
	for i, e := range trace {
		if e.Kind == sim.EvMark && (e.Name == updateclient.MarkInstallAuthorize || e.Name == bootloader.MarkCopyBegin) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil
	}
	var running, confirmed time.Duration = -1, -1
	for _, e := range trace[start:] {
		if e.Kind != sim.EvMark {
			continue
		}
		switch {
		case e.Name == updateclient.MarkRunning && running < 0:
			running = e.Time
		case e.Name == chain.MarkConfirmed && confirmed < 0:
			confirmed = e.Time
		}
	}
	end := running
	if confirmed >= 0 {
		end = confirmed
	}
	if end < 0 {
		return nil
	}
	d := end - trace[start].Time
	return &d
}

// Totals sums a profile's rows: runs, passes, and the runs in which each
// invariant was violated (as a weakness or a failure).
type Totals struct {
	Profile    string         `json:"profile"`
	Runs       int            `json:"runs"`
	Passed     int            `json:"passed"`
	Violations map[string]int `json:"violations"`
	// Sweep sums the runs' sweeps, when they were swept.
	Sweep *SweepStats `json:"sweep,omitempty"`
}

// Totals returns the totals of each profile, in the comparison's order.
func (c *Comparison) Totals() []Totals {
	var out []Totals
	for _, p := range c.Profiles {
		t := Totals{Profile: p, Violations: map[string]int{}}
		for _, name := range Invariants {
			t.Violations[name] = 0
		}
		for _, r := range c.Rows {
			if r.Profile != p || r.NotApplicable != "" {
				continue
			}
			t.Runs++
			if r.Passed {
				t.Passed++
			}
			if s := r.Sweep; s != nil {
				if t.Sweep == nil {
					t.Sweep = &SweepStats{}
				}
				t.Sweep.Points += s.Points
				t.Sweep.Failed += s.Failed
				t.Sweep.Bricks += s.Bricks
				t.Sweep.Downgrades += s.Downgrades
				t.Sweep.Forgeries += s.Forgeries
			}
			for _, inv := range r.Invariants {
				if inv.Status == StatusWeakness || inv.Status == StatusFail {
					t.Violations[inv.Name]++
				}
			}
		}
		out = append(out, t)
	}
	return out
}

// Compared reports whether bootsim compare (and COMPARISON.md) takes a
// built-in scenario when none is named: every scenario that names another
// profile, and every attack.
func Compared(l *Loaded) bool {
	return len(l.Profiles()) > 1 || slices.Contains(l.Tags, "attack")
}
