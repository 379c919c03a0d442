package scenarios

import (
	"fmt"
	"strings"
	"time"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// RunSchema is the schema of the JSON run report. Fields are only ever
// added within a version; a field that changes meaning makes a new one.
const RunSchema = "bootsim/run/v1"

// RunReport is the JSON run report (bootsim run -o json, --json FILE): one
// record per scenario that ran and per file that did not load. The HTML
// report is drawn from it alone, so that a saved report draws the same
// page (bootsim report RUN.json).
type RunReport struct {
	Schema    string      `json:"schema"`
	Passed    int         `json:"passed"`
	Failed    int         `json:"failed"`
	Errors    int         `json:"errors"`
	Scenarios []RunRecord `json:"scenarios"`
}

// RunRecord is one scenario's run in a RunReport.
type RunRecord struct {
	Name   string `json:"name"`
	File   string `json:"file"`
	Passed bool   `json:"passed"`
	// Status is StatusPass, StatusWeakness, StatusFail or StatusError (a
	// file that did not load).
	Status        string            `json:"status"`
	Weaknesses    []string          `json:"weaknesses,omitempty"`
	Profile       string            `json:"profile"`
	Seed          uint64            `json:"seed"`
	Cut           string            `json:"cut,omitempty"`
	MaxBoots      int               `json:"max_boots"`
	Boots         int               `json:"boots"`
	VirtualTimeNS int64             `json:"virtual_time_ns"`
	Running       string            `json:"running"`
	State         string            `json:"state"`
	Error         string            `json:"error,omitempty"`
	Expectations  []CheckRecord     `json:"expectations"`
	Invariants    []InvariantRecord `json:"invariants"`
	Ops           int               `json:"storage_ops"`
	Failures      []string          `json:"failures,omitempty"`
	Warnings      []string          `json:"warnings,omitempty"`
	Recovery      *RecoveryRecord   `json:"recovery,omitempty"`
	Replay        string            `json:"replay"`

	// What the HTML report draws: the story, the timeline and console of
	// the run (up to the cut, when a cut cut power), what each region
	// holds at the end, the erases per sector of the internal flash, and
	// a chain's boot-sequence tree.
	Summary      string        `json:"summary,omitempty"`
	Board        string        `json:"board,omitempty"`
	Steps        []string      `json:"steps,omitempty"`
	Timeline     *Timeline     `json:"timeline,omitempty"`
	Console      []ConsoleLine `json:"console,omitempty"`
	Regions      []RegionState `json:"regions,omitempty"`
	FlashSectors *SectorMap    `json:"flash_sectors,omitempty"`
	Tree         string        `json:"tree,omitempty"`
}

// StatusError is the status of a record of a file that did not load.
const StatusError = "error"

// CheckRecord is an expectation's outcome; Detail says why it failed.
type CheckRecord struct {
	Text   string `json:"text"`
	Passed bool   `json:"passed"`
	Detail string `json:"detail,omitempty"`
}

// InvariantRecord is an invariant's outcome.
type InvariantRecord struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// RecoveryRecord is the recovery after a --cut that cut power: the
// scenario's expectations and invariants are then the recovery's. Its
// timeline and console start at its own power-on.
type RecoveryRecord struct {
	Boots         int           `json:"boots"`
	VirtualTimeNS int64         `json:"virtual_time_ns"`
	Running       string        `json:"running"`
	State         string        `json:"state"`
	Ops           int           `json:"storage_ops"`
	Timeline      *Timeline     `json:"timeline,omitempty"`
	Console       []ConsoleLine `json:"console,omitempty"`
}

// Timeline is a run over virtual time: the stages and what ran inside
// them as spans, the milestones and what happened to the device as events,
// and how many storage ops started in each hundredth of the run.
type Timeline struct {
	EndNS     int64           `json:"end_ns"`
	Spans     []TimelineSpan  `json:"spans"`
	Events    []TimelineEvent `json:"events"`
	OpsPerBin []int           `json:"ops_per_bin"`
}

// The kinds of TimelineSpan.
const (
	SpanStage        = spanStage
	SpanInstall      = spanInstall
	SpanPhase        = spanPhase
	SpanUpdateClient = spanState
)

// TimelineSpan is a stage running an image (Name the stage, Detail the
// image), an install inside it, a phase of the install, or a state of the
// update client inside an application.
type TimelineSpan struct {
	Kind   string `json:"kind"`
	Name   string `json:"name"`
	Detail string `json:"detail,omitempty"`
	FromNS int64  `json:"from_ns"`
	ToNS   int64  `json:"to_ns"`
}

// TimelineEvent is a milestone (kind "mark") or something that happened
// to the device: power-on, power-off, reset, watchdog, halt, lockup, or
// an injected fault. Kinds are the trace's event kinds.
type TimelineEvent struct {
	Kind   string `json:"kind"`
	Name   string `json:"name,omitempty"`
	Detail string `json:"detail,omitempty"`
	AtNS   int64  `json:"at_ns"`
}

// ConsoleLine is a line of the serial console at a virtual time: what the
// firmware printed, or (Device) what happened to the device, as the ~~
// lines of bootsim run --serial.
type ConsoleLine struct {
	AtNS   int64  `json:"at_ns"`
	Text   string `json:"text"`
	Device bool   `json:"device,omitempty"`
}

// SectorMap is the internal flash's sectors (runs of equal sizes, from
// address 0) and the erase operations each took in the run.
type SectorMap struct {
	Device string      `json:"device"`
	Runs   []SectorRun `json:"runs"`
	Erases []int       `json:"erases"`
}

// SectorRun is Count sectors of Size bytes.
type SectorRun struct {
	Size  uint64 `json:"size"`
	Count int    `json:"count"`
}

// timelineBins is how many bins the storage ops are counted in.
const timelineBins = 100

// Console is a trace's serial console, with what happened to the device
// between its lines.
func Console(tr []sim.Event) []ConsoleLine {
	var out []ConsoleLine
	for _, e := range tr {
		line := ConsoleLine{AtNS: e.Time.Nanoseconds(), Device: true}
		switch e.Kind {
		case sim.EvSerial:
			line.Text, line.Device = e.Detail, false
		case sim.EvPowerOn:
			line.Text = "~~ power on"
		case sim.EvPowerOff:
			line.Text = "~~ power off: " + e.Detail
		case sim.EvReset:
			line.Text = "~~ reset (" + e.Name + ")"
		case sim.EvWatchdog:
			line.Text = "~~ watchdog: " + e.Detail
		case sim.EvLockup:
			line.Text = "~~ lockup: " + e.Detail
		case sim.EvHalt:
			line.Text = "~~ halted"
		case sim.EvLED:
			line.Text = "~~ " + e.Detail + " blinks " + strings.ToUpper(e.Name)
		default:
			continue
		}
		out = append(out, line)
	}
	return out
}

// TimelineOf reads a trace that ends at a virtual time.
func TimelineOf(tr []sim.Event, end time.Duration) *Timeline {
	t := &Timeline{EndNS: end.Nanoseconds(), Spans: []TimelineSpan{}, Events: []TimelineEvent{}, OpsPerBin: make([]int, timelineBins)}
	var walk spanWalker
	add := func(spans []traceSpan) {
		for _, s := range spans {
			t.Spans = append(t.Spans, TimelineSpan{Kind: s.kind, Name: s.name, Detail: s.detail, FromNS: s.from.Nanoseconds(), ToNS: s.to.Nanoseconds()})
		}
	}
	for i := range tr {
		e := &tr[i]
		add(walk.step(e))
		switch e.Kind {
		case sim.EvOp:
			bin := 0
			if end > 0 {
				bin = min(int(int64(timelineBins)*int64(e.Time)/int64(end)), timelineBins-1)
			}
			t.OpsPerBin[bin]++
		case sim.EvMark, sim.EvPowerOn, sim.EvPowerOff, sim.EvReset, sim.EvWatchdog, sim.EvHalt, sim.EvLockup, sim.EvFault, sim.EvLED:
			t.Events = append(t.Events, TimelineEvent{Kind: e.Kind.String(), Name: e.Name, Detail: e.Detail, AtNS: e.Time.Nanoseconds()})
		}
	}
	add(walk.finish(end))
	return t
}

// NewRunReport makes the report of runs, in order; replay gives each
// run's replay command. Records of files that did not load are added with
// ErrorRecord.
func NewRunReport(loaded []*Loaded, results []*Result, replay func(*Result) string) RunReport {
	byName := map[string]*Loaded{}
	for _, l := range loaded {
		byName[l.Name] = l
	}
	rep := RunReport{Schema: RunSchema, Scenarios: []RunRecord{}}
	for _, r := range results {
		if r.Passed {
			rep.Passed++
		} else {
			rep.Failed++
		}
		rep.Scenarios = append(rep.Scenarios, newRunRecord(byName[r.Name], r, replay(r)))
	}
	return rep
}

// AddError records a file that did not load as a test case that errored:
// its name is the file's, since it has no scenario name to give.
func (rep *RunReport) AddError(name, file string, err error) {
	rep.Errors++
	rep.Scenarios = append(rep.Scenarios, RunRecord{Name: name, File: file, Status: StatusError, Error: err.Error(),
		Expectations: []CheckRecord{}, Invariants: []InvariantRecord{}, Failures: []string{err.Error()}})
}

func newRunRecord(l *Loaded, r *Result, replay string) RunRecord {
	s := RunRecord{Name: r.Name, File: r.File, Passed: r.Passed, Status: r.Status(), Weaknesses: r.Weaknesses(), Profile: r.Profile,
		Seed: r.Seed, Cut: r.Cut, MaxBoots: r.MaxBoots, Boots: r.Boots, VirtualTimeNS: r.VirtualTime.Nanoseconds(),
		Running: r.Running, State: r.State, Ops: len(r.Journal), Expectations: []CheckRecord{}, Invariants: []InvariantRecord{},
		Failures: r.Failures(), Warnings: r.Warnings, Replay: replay,
		Timeline: TimelineOf(r.Trace, r.VirtualTime), Console: Console(r.Trace), Regions: r.Regions}
	if r.Error != "" {
		s.Error = fmt.Sprintf("step %d: %s", r.Step, r.Error)
	}
	journal := r.Journal
	if rec := r.Recovery; rec != nil {
		s.Recovery = &RecoveryRecord{Boots: rec.Boots, VirtualTimeNS: rec.VirtualTime.Nanoseconds(), Running: rec.Running,
			State: rec.State, Ops: len(rec.Journal), Timeline: TimelineOf(rec.Trace, rec.VirtualTime), Console: Console(rec.Trace)}
		journal = rec.Journal // the whole story: the recovery's journal goes on from the cut's
	}
	for _, c := range r.Expectations {
		cr := CheckRecord{Text: c.Text, Passed: c.Passed}
		if !c.Passed {
			cr.Detail = c.Detail
		}
		s.Expectations = append(s.Expectations, cr)
	}
	for _, inv := range r.Invariants {
		s.Invariants = append(s.Invariants, InvariantRecord{inv.Name, inv.Status, inv.Detail})
	}
	if l == nil {
		return s
	}
	s.Summary, s.Board = l.Summary, l.Board.Name
	for _, st := range l.Steps {
		s.Steps = append(s.Steps, st.String())
	}
	s.FlashSectors = sectorMap(l.Board, journal)
	if l.Chain != nil {
		if t, err := BootTree(l, r); err == nil {
			s.Tree = TreeText(t)
		}
	}
	return s
}

// sectorMap counts the erase operations each sector of the board's
// internal flash took.
func sectorMap(b *sim.Board, journal []storage.Op) *SectorMap {
	m := &SectorMap{Device: sim.DeviceInternal}
	type sector struct{ start, size uint64 }
	var sectors []sector
	var at uint64
	for _, run := range b.Flash.Sectors {
		m.Runs = append(m.Runs, SectorRun{Size: uint64(run.Size), Count: run.Count})
		for range run.Count {
			sectors = append(sectors, sector{at, uint64(run.Size)})
			at += uint64(run.Size)
		}
	}
	m.Erases = make([]int, len(sectors))
	for _, op := range journal {
		if op.Kind != storage.OpErase || op.Device != sim.DeviceInternal {
			continue
		}
		for k, s := range sectors {
			if op.Addr < s.start+s.size && s.start < op.Addr+op.Len {
				m.Erases[k]++
			}
		}
	}
	return m
}

// spanClass is the CSS class of a stage span.
func spanClass(name string) string { return strings.ReplaceAll(name, " ", "-") }

// maxReportSectors and maxReportBins bound what a saved report can make
// the HTML renderer draw: a report is input, and a forged one must not
// make it loop for ever.
const (
	maxReportSectors = 1 << 16
	maxReportBins    = 10_000
)

// Check refuses a saved report the HTML renderer cannot draw as it
// claims to be: a sector map whose runs do not match its erase counts,
// too many sectors or bins, negative times.
func (rep *RunReport) Check() error {
	for i := range rep.Scenarios {
		s := &rep.Scenarios[i]
		if m := s.FlashSectors; m != nil {
			total := 0
			for _, run := range m.Runs {
				if run.Count < 0 || run.Count > maxReportSectors || run.Size == 0 {
					return fmt.Errorf("scenario %d (%s): flash_sectors: a run of %d sectors of %d bytes", i+1, s.Name, run.Count, run.Size)
				}
				total += run.Count
				if total > maxReportSectors {
					return fmt.Errorf("scenario %d (%s): flash_sectors: more than %d sectors", i+1, s.Name, maxReportSectors)
				}
			}
			if total != len(m.Erases) {
				return fmt.Errorf("scenario %d (%s): flash_sectors: %d sectors but %d erase counts", i+1, s.Name, total, len(m.Erases))
			}
		}
		for _, t := range []*Timeline{s.Timeline, s.recoveryTimeline()} {
			if t == nil {
				continue
			}
			if t.EndNS < 0 || len(t.OpsPerBin) > maxReportBins {
				return fmt.Errorf("scenario %d (%s): timeline: end %d ns, %d bins", i+1, s.Name, t.EndNS, len(t.OpsPerBin))
			}
		}
	}
	return nil
}

func (s *RunRecord) recoveryTimeline() *Timeline {
	if s.Recovery == nil {
		return nil
	}
	return s.Recovery.Timeline
}
