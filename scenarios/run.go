package scenarios

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/units"
	"github.com/bootsim/bootsim/updateclient"
)

// Options change how a scenario runs.
type Options struct {
	// Seed, if not nil, replaces the scenario's seed.
	Seed *uint64
	// Cut is an extra fault rule armed for the whole run, as a sweep's
	// replay command (--cut op=N,mode=M,seed=S) gives one.
	Cut *storage.Rule
	// Faults is a fault schedule armed for the whole run, after Cut: a
	// random campaign's replay (--faults RULE;RULE...). The first of them
	// that matches an op wins it.
	Faults []*storage.Rule
	// LinkDrops take the link to the update service down as given ops
	// start.
	LinkDrops []LinkDrop
	// MaxBoots, MaxTime and MaxEvents override the run's budget (Budget):
	// its boots, virtual time and trace events; 0 keeps the scenario's or
	// the default.
	MaxBoots  int
	MaxTime   time.Duration
	MaxEvents int
	// RegionContents asks for Result.Regions: what every region holds at
	// the end. It reads every region, so sweeps leave it off.
	RegionContents bool
	// keepJournalData keeps every programmed byte in the journal (a sweep's
	// baseline rebuilds the storage from it); other runs keep none.
	keepJournalData bool
}

// Check is the outcome of one expectation.
type Check struct {
	Text   string
	Passed bool
	Detail string
}

// Invariant statuses.
const (
	StatusPass     = "pass"
	StatusFail     = "fail"
	StatusWeakness = "weakness" // violated, and the profile or the scenario says it may be
	StatusNA       = "n/a"
)

// InvariantResult is the outcome of one invariant.
type InvariantResult struct {
	Name   string `json:"name"`
	Status string `json:"status"`
	Detail string `json:"detail"`
}

// Result is the outcome of a run.
type Result struct {
	Name    string
	File    string
	Profile string
	// Seed, Cut and MaxBoots are the options that shaped the run (Cut is
	// the text of the --cut rule or the --faults schedule, rules separated
	// by ";", "" for none); ReplayArgs turns them back into a command line.
	Seed      uint64
	Cut       string
	MaxBoots  int
	MaxTime   time.Duration
	MaxEvents int
	// CutFired says whether every rule of Cut fired; a fault that never
	// fires fails the run, since it was meant to reproduce something.
	// Unfired lists those that did not.
	CutFired bool
	Unfired  []string
	// Warnings are what the run did not do that the scenario asked for
	// without making it an expectation: a fault: step whose rule never
	// fired.
	Warnings []string
	// Recovery is set when the Cut cut power: the steps stopped there, the
	// device recovered under the scenario's sweep policy, and Recovery is
	// that run (its trace starts at the power-on). Expectations and
	// Invariants are then the recovery's.
	Recovery *Result
	// cutStorage is the storage the cut left, the recovery's start.
	cutStorage *storage.Snapshot
	Passed     bool
	// Error says why the steps could not all run (a wait that timed out),
	// and Step which step it was (from 1); empty when they all ran.
	Error        string
	Step         int
	Boots        int
	VirtualTime  time.Duration
	Running      string // the firmware running at the end, "" for none
	State        string
	Expectations []Check
	Invariants   []InvariantResult
	Trace        []sim.Event
	Serial       []sim.SerialLine
	Journal      []storage.Op
	// Regions is what each region holds at the end (after the recovery,
	// when a cut cut power), if Options.RegionContents asked for it.
	Regions []RegionState
}

// Weaknesses returns the invariants the run violated as known weaknesses
// (the profile does not promise them, or the scenario declares them): a
// run that passes with one shows the design's weakness, as it meant to.
func (r *Result) Weaknesses() []string {
	var out []string
	for _, inv := range r.Invariants {
		if inv.Status == StatusWeakness {
			out = append(out, inv.Name)
		}
	}
	return out
}

// Status is "pass", "weak" (passed, showing a known weakness) or "fail".
func (r *Result) Status() string {
	switch {
	case !r.Passed:
		return StatusFail
	case len(r.Weaknesses()) > 0:
		return StatusWeakness
	}
	return StatusPass
}

// Failures returns one line per reason the run failed.
func (r *Result) Failures() []string {
	var out []string
	if r.Error != "" && r.Cut == "" {
		// With injected faults, a step that cannot go on (a wait for a
		// firmware a bit flip kept from running) is what the faults did;
		// the invariants judge the run.
		out = append(out, fmt.Sprintf("step %d: %s", r.Step, r.Error))
	}
	for _, rule := range r.Unfired {
		ops := "no storage op"
		if n := journalOps(r.Journal); n > 0 {
			ops = fmt.Sprintf("%d storage ops, op=0 to op=%d", n, n-1)
		}
		out = append(out, fmt.Sprintf("cut %s: never fired (the run made %s)", rule, ops))
	}
	for _, c := range r.Expectations {
		if !c.Passed {
			out = append(out, fmt.Sprintf("expected %s: %s", c.Text, c.Detail))
		}
	}
	for _, inv := range r.Invariants {
		if inv.Status == StatusFail {
			out = append(out, fmt.Sprintf("invariant %s: %s", inv.Name, inv.Detail))
		}
	}
	return out
}

// runner plays one scenario.
type runner struct {
	// stepIndex is the step being played, from 0.
	stepIndex int
	rig       *rig
	l         *Loaded
	m         *sim.Machine
	imgs      *images
	faults    *faults
	seed      uint64
	maxBoots  int
	budget    Budget
	lastWait  *condWatch // the last wait's condition, for tests
	vendor    *vendor
	svc       *cloud.Service
	client    *updateclient.Config
	// campaign is the last campaign started and when.
	campaign   *Campaign
	campaignAt time.Duration
	// app follows the trace for appUp.
	app appWatch
	// recovery is set on the runner of a recovery after a cut.
	recovery *recoveryState
	// regionContents is Options.RegionContents.
	regionContents bool
}

// expectList is what the runner's expectations are: the scenario's, or
// for a recovery its sweep section's.
func (r *runner) expectList() []Expect {
	if r.sweepJudged() {
		return r.l.sweepPolicy().Expect
	}
	return r.l.Expect
}

// sweepJudged reports whether the run is judged as a sweep judges a point:
// a recovery, or a run given faults (--cut, --faults) that did not cut
// power. The scenario's own expectations tell the story without faults; with
// them, what must hold is the invariants and the sweep section's
// expectations, and a declared weakness may show or not.
func (r *runner) sweepJudged() bool {
	return r.recovery != nil || len(r.faults.given) > 0 || len(r.faults.drops) > 0
}

// cutDone reports whether the run's --cut has cut power: the steps stop
// there and the device recovers under the scenario's sweep policy.
func (r *runner) cutDone() bool { return r.faults.powerCut }

// Run plays a loaded scenario and evaluates its expectations and the
// invariants. It returns an error only if the scenario cannot be built; a
// scenario that fails is a Result with Passed false.
func Run(l *Loaded, opts Options) (*Result, error) {
	r, err := start(l, opts)
	if err != nil {
		return nil, err
	}
	return r.play(), nil
}

// start builds the device of a scenario in its factory state.
func start(l *Loaded, opts Options) (*runner, error) {
	seed := l.Seed
	if opts.Seed != nil {
		seed = *opts.Seed
	}
	rig, err := newRig(l, seed)
	if err != nil {
		return nil, err
	}
	return rig.start(opts)
}

// start builds a run's device in the factory state: a machine over a copy
// of the rig's factory storage, with its own update service and its own
// copy of the client's configuration.
func (g *rig) start(opts Options) (*runner, error) {
	client := *g.client
	r := &runner{rig: g, l: g.l, seed: g.seed, budget: g.l.budget(opts), imgs: g.imgs, vendor: g.vendor,
		svc: g.l.newService(), client: &client}
	r.maxBoots = r.budget.Boots
	var err error
	if r.m, err = g.l.newMachine(g.imgs, g.seed, g.factory, r.client, r.svc); err != nil {
		return nil, err
	}
	if !opts.keepJournalData {
		r.m.Storage().DropJournalData()
	}
	// Every run arms its own copies of the rules it uses: a rule keeps
	// state (an nth counter), and the loaded scenario and the options are
	// shared by every run of them.
	r.faults = &faults{}
	r.regionContents = opts.RegionContents
	if opts.Cut != nil {
		r.faults.given = append(r.faults.given, opts.Cut.Arm())
	}
	for _, f := range opts.Faults {
		r.faults.given = append(r.faults.given, f.Arm())
	}
	r.faults.fired = make([]bool, len(r.faults.given))
	if len(opts.LinkDrops) > 0 {
		r.faults.drops = opts.LinkDrops
		r.faults.dropped = make([]bool, len(opts.LinkDrops))
		m := r.m
		r.svc.SetClock(m.Now)
		m.Storage().SetBeforeOp(func(op storage.Op) {
			for i, d := range r.faults.drops {
				if d.Op >= op.Index && d.Op <= op.Last() {
					r.svc.DropLinkUntil(m.Now() + d.For)
					r.faults.dropped[i] = true
				}
			}
		})
	}
	r.m.Storage().SetInjector(r.faults)
	for _, g := range r.faults.given {
		r.watchReads(g)
	}
	return r, nil
}

// faults is a run's injector: the rules the options give (--cut, --faults),
// consulted first and in order, and the rules the steps arm.
type faults struct {
	given []*storage.Rule
	fired []bool
	// powerCut is set once a given rule has cut power.
	powerCut bool
	rules    storage.Rules
	// drops are the link drops the options give, and which have started.
	drops   []LinkDrop
	dropped []bool
	// steps are the rules fault: steps armed, with where they came from;
	// hit holds the armed rules that have fired.
	steps []armedFault
	hit   map[*storage.Rule]bool
}

// armedFault is a fault: step's rule as a run armed it.
type armedFault struct {
	rule *storage.Rule
	text string
	step int
}

// Inject implements storage.Injector. Every rule sees every op, as in
// storage.Rules, so their counters do not depend on which one fired.
//
// Reads (storage.SetReadInjector, installed by watchReads) reach only the
// rules that name them (kind=read); mutating ops reach only the others.
func (f *faults) Inject(op *storage.Op) (storage.Fault, bool) {
	read := op.Kind == storage.OpRead
	var (
		out storage.Fault
		won bool
	)
	for i, r := range f.given {
		if isReadRule(r) != read {
			continue
		}
		if fault, ok := r.Inject(op); ok && !won {
			out, won, f.fired[i] = fault, true, true
			f.powerCut = f.powerCut || fault.Mode.CutsPower()
		}
	}
	var (
		fault storage.Fault
		ok    bool
	)
	for _, r := range f.rules {
		if isReadRule(r) != read {
			continue
		}
		if x, fired := r.Inject(op); fired {
			if f.hit == nil {
				f.hit = map[*storage.Rule]bool{}
			}
			f.hit[r] = true
			if !ok {
				fault, ok = x, true
			}
		}
	}
	if won {
		return out, true
	}
	return fault, ok
}

// Idle implements storage.IdleInjector: no rule can fire on a mutating op.
func (f *faults) Idle() bool {
	for _, r := range f.given {
		if !isReadRule(r) {
			return false
		}
	}
	for _, r := range f.rules {
		if !isReadRule(r) {
			return false
		}
	}
	return true
}

// isReadRule says whether a rule selects reads (kind=read).
func isReadRule(r *storage.Rule) bool {
	f, ok := storage.FilterOf(r.Match)
	return ok && f.Kind == storage.OpRead
}

// watchReads makes the storage ask the run's rules about reads, once one
// of them selects reads: until then reads cost nothing more.
func (r *runner) watchReads(rule *storage.Rule) {
	if isReadRule(rule) && !r.m.Storage().ReadFaults() {
		r.m.Storage().SetReadInjector(r.faults)
	}
}

// text is the given rules and link drops, as --cut or --faults takes them.
func (f *faults) text() string {
	var parts []string
	for _, r := range f.given {
		parts = append(parts, r.String())
	}
	for _, d := range f.drops {
		parts = append(parts, d.String())
	}
	return strings.Join(parts, ";")
}

// play runs the steps and checks the outcome.
func (r *runner) play() *Result {
	l := r.l
	res := &Result{Name: l.Name, File: l.File, Profile: l.Profile, Seed: r.seed, MaxBoots: r.maxBoots,
		MaxTime: r.budget.Time.D(), MaxEvents: r.budget.Events}
	res.Cut = r.faults.text()
	for i, st := range l.Steps {
		r.stepIndex = i
		err := r.step(st)
		if err == nil {
			// A budget spent ends the run, even in a step that got what
			// it waited for.
			err = r.budgetErr()
		}
		if r.cutDone() {
			// What the step made of the cut (a wait that timed out on a
			// dead device) is not an error: the recovery judges the run.
			break
		}
		if err != nil {
			res.Error, res.Step = fmt.Sprintf("%s: %v", st, err), i+1
			break
		}
	}
	m := r.m
	res.Boots = m.Boots()
	res.VirtualTime = m.Now()
	res.State = m.State().String()
	res.Running = r.running()
	res.Trace = m.Trace()
	res.Serial = m.Serial()
	res.Journal = m.Storage().Journal()
	res.CutFired = true
	for i, fired := range r.faults.fired {
		if !fired {
			res.CutFired = false
			res.Unfired = append(res.Unfired, r.faults.given[i].String())
		}
	}
	for i, dropped := range r.faults.dropped {
		if !dropped {
			res.CutFired = false
			res.Unfired = append(res.Unfired, r.faults.drops[i].String())
		}
	}
	for _, a := range r.faults.steps {
		if !r.faults.hit[a.rule] {
			res.Warnings = append(res.Warnings, fmt.Sprintf("step %d: fault %s never fired (the run made %d storage ops)", a.step, a.text, len(res.Journal)))
		}
	}
	if r.cutDone() {
		res.cutStorage = m.Storage().Snapshot()
		res.Recovery = r.rig.recover(&cutState{storage: res.cutStorage, svc: r.svc.Clone(), client: *r.client,
			prefix: r.rig.prefixOf(res.Trace), regions: r.regionContents})
		res.Invariants, res.Expectations = res.Recovery.Invariants, res.Recovery.Expectations
		res.Regions = res.Recovery.Regions
	} else {
		res.Invariants = r.invariants(res)
		res.Expectations = r.expectations(res)
		if r.regionContents {
			res.Regions = r.regionStates()
		}
	}
	res.Passed = len(res.Failures()) == 0
	return res
}

func (r *runner) step(st Step) error { return st.run(r) }

// armedCut arms a power cut and runs until power fails.
func (r *runner) armedCut(p *PowerCut) error {
	m := r.m
	timeout := p.Timeout.D()
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	switch {
	case p.rule != nil:
		// An armed copy: its nth counter starts now.
		rule := p.rule.Arm()
		r.faults.rules = append(r.faults.rules, rule)
		defer func() {
			r.faults.rules = slices.DeleteFunc(r.faults.rules, func(x *storage.Rule) bool { return x == rule })
		}()
	case p.Event != "":
		m.CutPowerOnMark(p.Event, p.Delay.D())
		defer m.Disarm()
	default:
		m.CutPowerAt(m.Now() + p.In.D())
		defer m.Disarm()
	}
	if !m.Run(r.until(timeout), func() bool { return m.State() == sim.StateOff || r.overBudget() }) {
		if err := r.budgetErr(); err != nil {
			return err
		}
		return fmt.Errorf("the armed power cut never happened within %s; the device is %s", timeout, r.describe())
	}
	if m.State() != sim.StateOff {
		return r.budgetErr()
	}
	return nil
}

func (r *runner) corrupt(c *Corrupt) {
	reg, _ := r.m.Storage().Region(c.Region)
	dev := r.m.Storage().Device(reg.Device)
	if c.Bits == 0 {
		dev.FlipBit(reg.Start+uint64(c.Offset), c.Bit)
		return
	}
	rng := rand.New(rand.NewPCG(c.Seed, r.seed))
	for range c.Bits {
		dev.FlipBit(reg.Start+rng.Uint64N(reg.Size), uint(rng.IntN(8)))
	}
}

// appUp reports whether an application reached MarkRunning since the
// last stage started, and which image it is.
func (r *runner) appUp() (*sim.Image, bool) {
	m := r.m
	r.app.follow(m.Trace())
	if m.State() != sim.StateRunning || m.Stage() != sim.StageApplication || !r.app.up {
		return nil, false
	}
	return m.Image(), true
}

// appWatch follows a trace as it grows and knows whether the running stage
// has reported MarkRunning: it reads each event once, so asking after every
// timer of a long run costs nothing more than the run.
type appWatch struct {
	next int
	up   bool
}

func (w *appWatch) follow(tr []sim.Event) {
	for ; w.next < len(tr); w.next++ {
		switch e := &tr[w.next]; {
		case e.Kind == sim.EvStage:
			w.up = false
		case e.Kind == sim.EvMark && e.Name == updateclient.MarkRunning:
			w.up = true
		}
	}
}

func (r *runner) running() string {
	if img, ok := r.appUp(); ok {
		return img.Desc.Name
	}
	return ""
}

func (r *runner) describe() string {
	s := r.m.State().String()
	if r.m.State() == sim.StateRunning {
		s += " (" + string(r.m.Stage())
		if img := r.m.Image(); img != nil {
			s += " " + img.Desc.Name
		}
		s += ")"
	}
	return fmt.Sprintf("%s after %d boots", s, r.m.Boots())
}

// condWatch evaluates a wait condition as the trace grows: events and
// serial lines count from the trace index it starts at, and each is read
// once.
type condWatch struct {
	r      *runner
	c      *Condition
	next   int
	events eventCounter
	seen   bool
	// reads counts the events read: at most one per event of the trace
	// (a wait that rescanned the trace was quadratic in its length).
	reads int
}

func (r *runner) watch(c *Condition) *condWatch {
	return &condWatch{r: r, c: c, next: len(r.m.Trace()), events: eventCounter{name: c.Value}}
}

// holds reports whether the condition holds now.
func (w *condWatch) holds() bool {
	m := w.r.m
	switch w.c.Kind {
	case CondAppRunning:
		_, ok := w.r.appUp()
		return ok
	case CondRunning:
		img, ok := w.r.appUp()
		return ok && img.Desc.Name == w.c.Value
	case CondHalted:
		return m.State() == sim.StateHalted
	case CondOff:
		return m.State() == sim.StateOff
	case CondLockedUp:
		return m.State() == sim.StateLockedUp
	case CondState:
		return m.State().String() == w.c.Value
	case CondBoots:
		return m.Boots() >= w.c.N
	case CondEvent, CondSerial:
		tr := m.Trace()
		for ; w.next < len(tr) && !w.seen; w.next++ {
			w.reads++
			e := &tr[w.next]
			if w.c.Kind == CondEvent {
				w.seen = w.events.add(e) > 0
			} else {
				w.seen = e.Kind == sim.EvSerial && strings.Contains(e.Detail, w.c.Value)
			}
		}
		return w.seen
	}
	return false
}

// Derived events: milestones no stage reports but the trace shows.
const (
	// EventInstallRetried: a copy began again after one that never finished.
	EventInstallRetried = "install-retried"
)

// countEvents counts the milestones of a name in a trace, derived ones
// included.
func countEvents(tr []sim.Event, name string) int {
	c := eventCounter{name: name}
	for i := range tr {
		c.add(&tr[i])
	}
	return c.n
}

// eventCounter counts the milestones of a name, derived ones included, one
// event at a time.
type eventCounter struct {
	name string
	n    int
	open bool // a copy began and has not finished (EventInstallRetried)
}

// add counts one more event and returns the count so far.
func (c *eventCounter) add(e *sim.Event) int {
	if e.Kind != sim.EvMark {
		return c.n
	}
	if c.name != EventInstallRetried {
		if e.Name == c.name {
			c.n++
		}
		return c.n
	}
	switch e.Name {
	case bootloader.MarkCopyBegin:
		if c.open {
			c.n++
		}
		c.open = true
	case bootloader.MarkCopyDone:
		c.open = false
	}
	return c.n
}

// ReplayArgs returns the arguments of `bootsim run` that play the run again
// with every option that shaped it: the scenario (its name if built in, else
// its file; "-" for standard input), the seed, the cut and a boot limit
// other than the default. The replay gives the same result byte for byte.
func (r *Result) ReplayArgs() []string {
	what := r.File
	switch {
	case strings.HasPrefix(r.File, "library/"):
		what = r.Name
	case r.File == StdinFile:
		what = "-"
	}
	args := []string{what, "--seed", strconv.FormatUint(r.Seed, 10)}
	switch {
	case strings.Contains(r.Cut, ";") || strings.Contains(r.Cut, "link-drop="):
		args = append(args, "--faults", r.Cut)
	case r.Cut != "":
		args = append(args, "--cut", r.Cut)
	}
	if r.MaxBoots != 0 && r.MaxBoots != DefaultMaxBoots {
		args = append(args, "--max-boots", strconv.Itoa(r.MaxBoots))
	}
	if r.MaxTime != 0 && r.MaxTime != DefaultMaxTime {
		args = append(args, "--max-time", units.Duration(r.MaxTime).String())
	}
	if r.MaxEvents != 0 && r.MaxEvents != DefaultMaxEvents {
		args = append(args, "--max-events", strconv.Itoa(r.MaxEvents))
	}
	return args
}

// StdinFile is the file name of a scenario read from standard input.
const StdinFile = "<stdin>"
