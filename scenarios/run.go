package scenarios

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
)

// Options change how a scenario runs.
type Options struct {
	// Seed, if not nil, replaces the scenario's seed.
	Seed *uint64
	// Cut is an extra fault rule armed for the whole run, as a sweep's
	// replay command (--cut op=N,mode=M,seed=S) gives one.
	Cut *storage.Rule
	// MaxBoots stops a run that boots more often than this (a reset loop
	// under a long wait); 0 means DefaultMaxBoots.
	MaxBoots int
}

// DefaultMaxBoots is the boot limit of a run unless Options say otherwise.
const DefaultMaxBoots = 10000

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
	Name   string
	Status string
	Detail string
}

// Result is the outcome of a run.
type Result struct {
	Name    string
	File    string
	Profile string
	Seed    uint64
	Passed  bool
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
}

// Failures returns one line per reason the run failed.
func (r *Result) Failures() []string {
	var out []string
	if r.Error != "" {
		out = append(out, fmt.Sprintf("step %d: %s", r.Step, r.Error))
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
	l        *Loaded
	m        *sim.Machine
	imgs     *images
	rules    storage.Rules
	seed     uint64
	maxBoots int
	vendor   *vendor
	svc      *cloud.Service
	client   *updateclient.Config
	// campaign is the last campaign started and when.
	campaign   *Campaign
	campaignAt time.Duration
}

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
	ll := *l
	ll.Scenario = &Scenario{}
	*ll.Scenario = *l.Scenario
	ll.Seed = seed
	if l.Factory.ROT == "" {
		ll.ROT = seededROT(seed)
	}
	r := &runner{l: &ll, seed: seed, maxBoots: opts.MaxBoots}
	if r.maxBoots == 0 {
		r.maxBoots = DefaultMaxBoots
	}
	imgs, err := r.l.buildImages()
	if err != nil {
		return nil, err
	}
	r.imgs = imgs
	if r.vendor, err = newVendor(seed); err != nil {
		return nil, err
	}
	r.svc = r.l.newService()
	r.client = r.l.clientConfig(r.vendor)
	if r.m, err = r.l.newMachine(imgs, seed, nil, r.client, r.svc); err != nil {
		return nil, err
	}
	if err := r.l.programFactory(r.m, imgs); err != nil {
		return nil, fmt.Errorf("factory: %v", err)
	}
	if opts.Cut != nil {
		r.rules = append(r.rules, opts.Cut)
		r.m.Storage().SetInjector(r.rules)
	}
	return r, nil
}

// play runs the steps and checks the outcome.
func (r *runner) play() *Result {
	l := r.l
	res := &Result{Name: l.Name, File: l.File, Profile: l.Profile, Seed: r.seed}
	for i, st := range l.Steps {
		if err := r.step(st); err != nil {
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
	res.Invariants = r.invariants(res)
	res.Expectations = r.expectations(res)
	res.Passed = len(res.Failures()) == 0
	return res
}

func (r *runner) step(st Step) error {
	m := r.m
	switch st.Kind {
	case StepPowerOn:
		if m.State() != sim.StateOff {
			return fmt.Errorf("the device already has power")
		}
		m.PowerOn()
	case StepPowerCut:
		if m.State() == sim.StateOff {
			return fmt.Errorf("the device has no power")
		}
		if st.PowerCut == nil {
			m.PowerOff("power-cut step")
			return nil
		}
		return r.armedCut(st.PowerCut)
	case StepReset:
		if m.State() == sim.StateOff {
			return fmt.Errorf("the device has no power")
		}
		reason := sim.ResetPin
		if st.Reset == "brown-out" {
			reason = sim.ResetBrownOut
		}
		m.Reset(reason)
	case StepWait:
		w := st.Wait
		if w.Until == nil {
			m.Run(m.Now()+w.For.D(), r.bootLoop)
			return r.bootLoopErr()
		}
		timeout := w.Timeout.D()
		if timeout == 0 {
			timeout = defaultTimeout
		}
		start := len(m.Trace())
		if !m.Run(m.Now()+timeout, func() bool { return r.holds(w.Until, start) || r.bootLoop() }) {
			return fmt.Errorf("timed out after %s; the device is %s", timeout, r.describe())
		}
		if err := r.bootLoopErr(); err != nil && !r.holds(w.Until, start) {
			return err
		}
	case StepCorrupt:
		r.corrupt(st.Corrupt)
	case StepRemoveSD, StepInsertSD:
		sd := m.Storage().Device(sim.DeviceSD).(*storage.SDCard)
		if st.Kind == StepRemoveSD {
			sd.Remove()
		} else {
			sd.Insert()
		}
	case StepFault:
		r.rules = append(r.rules, st.Fault)
		m.Storage().SetInjector(r.rules)
	case StepCampaign:
		return r.startCampaign(st.Campaign)
	case StepNetwork:
		nw := st.Network
		switch {
		case nw.Down:
			r.svc.SetLinkUp(false)
		case nw.Up:
			r.svc.SetLinkUp(true)
		}
		if nw.Corrupt != nil {
			r.svc.CorruptAt(cloud.Corruption{Offset: *nw.Corrupt, Mask: 0x10})
		}
		if nw.Bandwidth != 0 {
			r.svc.SetBandwidth(nw.Bandwidth)
		}
		if nw.Latency != nil {
			r.svc.SetLatency(nw.Latency.D())
		}
		if nw.Stall != 0 {
			r.svc.StallUntil(m.Now() + nw.Stall.D())
		}
	case StepApp:
		return r.appAction(st.App)
	}
	return nil
}

// armedCut arms a power cut and runs until power fails.
func (r *runner) armedCut(p *PowerCut) error {
	m := r.m
	timeout := p.Timeout.D()
	if timeout == 0 {
		timeout = 10 * time.Minute
	}
	switch {
	case p.rule != nil:
		// A fresh copy of the rule: its nth counter starts now.
		rule, err := storage.ParseRule(p.rule.String())
		if err != nil {
			panic(err)
		}
		r.rules = append(r.rules, rule)
		m.Storage().SetInjector(r.rules)
		defer func() {
			r.rules = slices.DeleteFunc(r.rules, func(x *storage.Rule) bool { return x == rule })
			m.Storage().SetInjector(r.rules)
		}()
	case p.Event != "":
		m.CutPowerOnMark(p.Event, p.Delay.D())
		defer m.Disarm()
	default:
		m.CutPowerAt(m.Now() + p.In.D())
		defer m.Disarm()
	}
	if !m.Run(m.Now()+timeout, func() bool { return m.State() == sim.StateOff || r.bootLoop() }) {
		return fmt.Errorf("the armed power cut never happened within %s; the device is %s", timeout, r.describe())
	}
	if m.State() != sim.StateOff {
		return r.bootLoopErr()
	}
	return nil
}

// bootLoop reports whether the run passed its boot limit: a device stuck in
// a fast reset loop would otherwise turn a long wait into an endless run.
func (r *runner) bootLoop() bool { return r.m.Boots() > r.maxBoots }

func (r *runner) bootLoopErr() error {
	if r.bootLoop() {
		return fmt.Errorf("stopped after more than %d boots (a reset loop); the device is %s", r.maxBoots, r.describe())
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
	if m.State() != sim.StateRunning || m.Stage() != "application" {
		return nil, false
	}
	tr := m.Trace()
	for i := len(tr) - 1; i >= 0; i-- {
		switch {
		case tr[i].Kind == sim.EvMark && tr[i].Name == updateclient.MarkRunning:
			return m.Image(), true
		case tr[i].Kind == sim.EvStage:
			return nil, false
		}
	}
	return nil, false
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
		s += " (" + r.m.Stage()
		if img := r.m.Image(); img != nil {
			s += " " + img.Desc.Name
		}
		s += ")"
	}
	return fmt.Sprintf("%s after %d boots", s, r.m.Boots())
}

// holds evaluates a wait condition; events and serial text count from the
// trace index since.
func (r *runner) holds(c *Condition, since int) bool {
	m := r.m
	switch c.Kind {
	case CondAppRunning:
		_, ok := r.appUp()
		return ok
	case CondRunning:
		img, ok := r.appUp()
		return ok && img.Desc.Name == c.Value
	case CondHalted:
		return m.State() == sim.StateHalted
	case CondOff:
		return m.State() == sim.StateOff
	case CondLockedUp:
		return m.State() == sim.StateLockedUp
	case CondState:
		return m.State().String() == c.Value
	case CondBoots:
		return m.Boots() >= c.N
	case CondEvent:
		return countEvents(m.Trace()[since:], c.Value) > 0
	case CondSerial:
		for _, e := range m.Trace()[since:] {
			if e.Kind == sim.EvSerial && strings.Contains(e.Detail, c.Value) {
				return true
			}
		}
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
	n := 0
	if name == EventInstallRetried {
		open := false
		for _, e := range tr {
			if e.Kind != sim.EvMark {
				continue
			}
			switch e.Name {
			case bootloader.MarkCopyBegin:
				if open {
					n++
				}
				open = true
			case bootloader.MarkCopyDone:
				open = false
			}
		}
		return n
	}
	for _, e := range tr {
		if e.Kind == sim.EvMark && e.Name == name {
			n++
		}
	}
	return n
}
