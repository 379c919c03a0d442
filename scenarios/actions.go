package scenarios

import (
	"fmt"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
)

// The steps, one type each (see stepKinds).

// stepPowerOn powers the device on.
type stepPowerOn struct{}

func (stepPowerOn) Kind() string                           { return StepPowerOn }
func (stepPowerOn) String() string                         { return StepPowerOn }
func (stepPowerOn) validate(*Loaded, strictyaml.Pos) error { return nil }
func (stepPowerOn) run(r *runner) error {
	if r.m.State() != sim.StateOff {
		return fmt.Errorf("the device already has power")
	}
	r.m.PowerOn()
	return nil
}

// stepPowerCut cuts power now (cut nil) or arms a cut and runs until it
// happens.
type stepPowerCut struct{ cut *PowerCut }

func (stepPowerCut) Kind() string { return StepPowerCut }
func (s stepPowerCut) String() string {
	if s.cut == nil {
		return StepPowerCut
	}
	return "power-cut " + s.cut.String()
}
func (s stepPowerCut) validate(l *Loaded, pos strictyaml.Pos) error {
	p := s.cut
	if p == nil {
		return nil
	}
	if p.Event != "" {
		if err := checkMilestone(p.Event, pos, "power-cut event"); err != nil {
			return err
		}
	}
	if p.rule != nil && p.Rule != "" {
		if err := l.CheckRule(p.rule); err != nil {
			return pos.Errorf("power-cut rule %q: %v", p.Rule, err)
		}
	}
	for _, m := range []*OpMatch{p.Before, p.After, p.Torn} {
		if err := l.checkMatch(m, pos); err != nil {
			return err
		}
	}
	return nil
}
func (s stepPowerCut) run(r *runner) error {
	if r.m.State() == sim.StateOff {
		return fmt.Errorf("the device has no power")
	}
	if s.cut == nil {
		r.m.PowerOff("power-cut step")
		return nil
	}
	return r.armedCut(s.cut)
}

// stepReset resets the device from outside: pin, brown-out or debugger.
type stepReset struct{ how string }

func (stepReset) Kind() string                           { return StepReset }
func (s stepReset) String() string                       { return "reset " + s.how }
func (stepReset) validate(*Loaded, strictyaml.Pos) error { return nil }
func (s stepReset) run(r *runner) error {
	if r.m.State() == sim.StateOff {
		return fmt.Errorf("the device has no power")
	}
	reason := sim.ResetPin
	switch s.how {
	case "brown-out":
		reason = sim.ResetBrownOut
	case "debugger":
		// pyOCD and OpenOCD reset through SYSRESETREQ by default: the
		// MCU records a software reset.
		reason = sim.ResetSoftware
	}
	r.m.Reset(reason)
	return nil
}

// stepWait lets virtual time pass.
type stepWait struct{ w *Wait }

func (stepWait) Kind() string     { return StepWait }
func (s stepWait) String() string { return "wait " + s.w.String() }
func (s stepWait) validate(l *Loaded, _ strictyaml.Pos) error {
	if s.w.Until != nil {
		return l.checkCondition(s.w.Until)
	}
	return nil
}
func (s stepWait) run(r *runner) error {
	m, w := r.m, s.w
	if w.Until == nil {
		m.Run(r.until(w.For.D()), func() bool { return r.overBudget() || r.cutDone() })
		return r.budgetErr()
	}
	timeout := w.Timeout.D()
	if timeout == 0 {
		timeout = defaultTimeout
	}
	cond := r.watch(w.Until)
	r.lastWait = cond
	if !m.Run(r.until(timeout), func() bool { return cond.holds() || r.overBudget() || r.cutDone() }) {
		if err := r.budgetErr(); err != nil {
			return err
		}
		return fmt.Errorf("timed out after %s; the device is %s", timeout, r.describe())
	}
	return r.budgetErr()
}

// stepCorrupt flips bits of a region.
type stepCorrupt struct{ c *Corrupt }

func (stepCorrupt) Kind() string     { return StepCorrupt }
func (s stepCorrupt) String() string { return fmt.Sprintf("corrupt %s", s.c.Region) }
func (s stepCorrupt) validate(l *Loaded, _ strictyaml.Pos) error {
	c := s.c
	r, err := l.region(c.Region, c.pos)
	if err != nil {
		return err
	}
	if c.Bits < 0 || c.Bits > 1<<20 {
		return c.pos.Errorf("bits: want 0..%d", 1<<20)
	}
	if c.Bits == 0 && uint64(c.Offset) >= r.Size {
		return c.pos.Errorf("offset %s is outside region %s (%s)", c.Offset, c.Region, units.Size(r.Size))
	}
	if c.Bit > 7 {
		return c.pos.Errorf("bit %d: want 0..7", c.Bit)
	}
	return nil
}
func (s stepCorrupt) run(r *runner) error {
	r.corrupt(s.c)
	return nil
}

// stepSD pulls the SD card out, or puts it back (insert).
type stepSD struct{ insert bool }

func (s stepSD) Kind() string {
	if s.insert {
		return StepInsertSD
	}
	return StepRemoveSD
}
func (s stepSD) String() string { return s.Kind() }
func (s stepSD) validate(l *Loaded, pos strictyaml.Pos) error {
	if l.Board.External.Get(sim.DeviceSD) == nil {
		return pos.Errorf("%s: board %s has no SD card", s.Kind(), l.Board.Name)
	}
	return nil
}
func (s stepSD) run(r *runner) error {
	sd := r.m.Storage().Device(sim.DeviceSD).(*storage.SDCard)
	if s.insert {
		sd.Insert()
	} else {
		sd.Remove()
	}
	return nil
}

// stepFault arms a fault rule for the rest of the run.
type stepFault struct {
	rule *storage.Rule
	src  string // as written
}

func (stepFault) Kind() string     { return StepFault }
func (s stepFault) String() string { return "fault " + s.src }
func (s stepFault) validate(l *Loaded, pos strictyaml.Pos) error {
	if err := l.CheckRule(s.rule); err != nil {
		return pos.Errorf("fault %q: %v", s.src, err)
	}
	return nil
}
func (s stepFault) run(r *runner) error {
	rule := s.rule.Arm()
	r.faults.rules = append(r.faults.rules, rule)
	r.watchReads(rule)
	r.faults.steps = append(r.faults.steps, armedFault{rule: rule, text: s.src, step: r.stepIndex + 1})
	return nil
}

// stepCampaign starts an update campaign on the service.
type stepCampaign struct{ c *Campaign }

func (stepCampaign) Kind() string     { return StepCampaign }
func (s stepCampaign) String() string { return "campaign " + s.c.Firmware }
func (s stepCampaign) validate(l *Loaded, pos strictyaml.Pos) error {
	if err := l.prof.checkStep(l, Step{s, pos}); err != nil {
		return err
	}
	return l.checkCampaign(s.c)
}
func (s stepCampaign) run(r *runner) error { return r.startCampaign(s.c) }

// stepNetwork changes the device's link.
type stepNetwork struct{ n *Network }

func (stepNetwork) Kind() string                           { return StepNetwork }
func (stepNetwork) String() string                         { return "network" }
func (stepNetwork) validate(*Loaded, strictyaml.Pos) error { return nil }
func (s stepNetwork) run(r *runner) error {
	nw := s.n
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
		r.svc.StallUntil(r.m.Now() + nw.Stall.D())
	}
	return nil
}

// stepApp makes the running application do something.
type stepApp struct{ a *AppAction }

func (stepApp) Kind() string { return StepApp }
func (s stepApp) String() string {
	switch {
	case s.a.Crash:
		return "app crash"
	case s.a.Confirm:
		return "app confirm"
	}
	return "app plant " + s.a.Plant
}
func (s stepApp) validate(l *Loaded, pos strictyaml.Pos) error {
	if err := l.prof.checkStep(l, Step{s, pos}); err != nil {
		return err
	}
	if s.a.Plant != "" {
		return l.firmwareRef(s.a.Plant, s.a.pos, "app.plant")
	}
	return nil
}
func (s stepApp) run(r *runner) error { return r.appAction(s.a) }

// stepAttack is an attacker with the storage in hand.
type stepAttack struct{ a *Attack }

func (stepAttack) Kind() string                                 { return StepAttack }
func (s stepAttack) String() string                             { return s.a.String() }
func (s stepAttack) validate(l *Loaded, _ strictyaml.Pos) error { return l.checkAttack(s.a) }
func (s stepAttack) run(r *runner) error                        { return r.attack(s.a) }
