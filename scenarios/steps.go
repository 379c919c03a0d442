package scenarios

import (
	"fmt"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"go.yaml.in/yaml/v3"
)

// Step kinds.
const (
	StepPowerOn  = "power-on"
	StepPowerCut = "power-cut"
	StepReset    = "reset"
	StepWait     = "wait"
	StepCorrupt  = "corrupt"
	StepRemoveSD = "remove-sd"
	StepInsertSD = "insert-sd"
	StepFault    = "fault"
)

// Step is one step of a scenario. It is written as a bare word
// ("power-on") or a one-key mapping ("wait: 2s", "power-cut: {after: …}").
type Step struct {
	Kind     string
	PowerCut *PowerCut // power-cut with a mapping (nil: cut now)
	Reset    string    // reset: pin | brown-out | debugger
	Wait     *Wait
	Corrupt  *Corrupt
	Fault    *storage.Rule // fault: a fault rule, armed for the rest of the run
	FaultSrc string
	Campaign *Campaign
	Network  *Network
	App      *AppAction
	Attack   *Attack
	Pos      strictyaml.Pos
}

// The steps and the wait conditions: written as a word, or as a one-key
// mapping.
var (
	stepWords = []string{StepPowerOn, StepPowerCut, StepRemoveSD, StepInsertSD}
	stepKeys  = []string{StepPowerCut, StepReset, StepWait, StepCorrupt, StepFault, StepCampaign, StepNetwork, StepApp, StepAttack}
	condWords = []string{CondAppRunning, CondHalted, CondOff, CondLockedUp}
	condKeys  = []string{CondEvent, CondRunning, CondBoots, CondSerial, CondState}
)

// UnmarshalStrictYAML implements strictyaml.StrictUnmarshaler.
func (s *Step) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	s.Pos = d.At(n)
	kind, v, err := oneOf(d, n, "step", stepWords, stepKeys)
	if err != nil {
		return err
	}
	s.Kind = kind
	switch kind {
	case StepPowerCut:
		if v != nil {
			s.PowerCut = &PowerCut{}
			return d.Decode(v, s.PowerCut)
		}
	case StepReset:
		if err := d.Decode(v, &s.Reset); err != nil {
			return err
		}
		if s.Reset != "pin" && s.Reset != "brown-out" && s.Reset != "debugger" {
			return d.Errorf(v, "reset %q: want pin, brown-out or debugger (a probe's SYSRESETREQ; other software resets come from the firmware)", s.Reset)
		}
	case StepWait:
		s.Wait = &Wait{}
		return d.Decode(v, s.Wait)
	case StepCorrupt:
		s.Corrupt = &Corrupt{}
		if err := d.Decode(v, s.Corrupt); err != nil {
			return err
		}
		s.Corrupt.pos = d.At(v)
	case StepCampaign:
		s.Campaign = &Campaign{}
		return d.Decode(v, s.Campaign)
	case StepNetwork:
		s.Network = &Network{}
		return d.Decode(v, s.Network)
	case StepApp:
		s.App = &AppAction{}
		return d.Decode(v, s.App)
	case StepAttack:
		s.Attack = &Attack{}
		return d.Decode(v, s.Attack)
	case StepFault:
		if err := d.Decode(v, &s.FaultSrc); err != nil {
			return err
		}
		r, err := storage.ParseRule(s.FaultSrc)
		if err != nil {
			return d.Errorf(v, "%v", err)
		}
		s.Fault = r
	}
	return nil
}

func (s Step) String() string {
	switch {
	case s.Kind == StepPowerCut && s.PowerCut != nil:
		return "power-cut " + s.PowerCut.String()
	case s.Kind == StepReset:
		return "reset " + s.Reset
	case s.Kind == StepWait:
		return "wait " + s.Wait.String()
	case s.Kind == StepCorrupt:
		return fmt.Sprintf("corrupt %s", s.Corrupt.Region)
	case s.Kind == StepFault:
		return "fault " + s.FaultSrc
	case s.Kind == StepCampaign:
		return "campaign " + s.Campaign.Firmware
	case s.Kind == StepNetwork:
		return "network"
	case s.Kind == StepAttack:
		return s.Attack.String()
	case s.Kind == StepApp:
		if s.App.Crash {
			return "app crash"
		}
		if s.App.Confirm {
			return "app confirm"
		}
		return "app plant " + s.App.Plant
	}
	return s.Kind
}

// OpMatch selects a storage op: the nth op (from 1) of a kind on a region
// or device, or the op with a journal index.
type OpMatch struct {
	Op     string `yaml:"op,omitempty" jsonschema:"enum=program,enum=erase,description=Kind of op."`
	Device string `yaml:"device,omitempty" jsonschema:"enum=internal,enum=sd,enum=spi"`
	Region string `yaml:"region,omitempty" jsonschema:"description=A region of the layout: bootloader\\, sotp-1\\, sotp-2\\, active-header\\, active-app\\, slot-N."`
	Nth    int    `yaml:"nth,omitempty" jsonschema:"minimum=1,description=Which matching op\\, from 1 (default 1)."`
	Index  *int   `yaml:"index,omitempty" jsonschema:"minimum=0,description=The op with this journal index (excludes the others)."`
}

func (m OpMatch) rule(mode storage.FaultMode, seed uint64) (*storage.Rule, error) {
	f := storage.Fault{Mode: mode, Seed: seed}
	if m.Index != nil {
		if *m.Index < 0 {
			return nil, fmt.Errorf("index %d: want 0 or more (the first op is 0)", *m.Index)
		}
		if m.Op != "" || m.Device != "" || m.Region != "" || m.Nth != 0 {
			return nil, fmt.Errorf("index names one op; it takes no op, device, region or nth")
		}
		return &storage.Rule{Match: storage.OnIndex(*m.Index), Fault: f}, nil
	}
	filter := storage.OpFilter{Device: m.Device, Region: m.Region}
	if m.Op != "" {
		k, err := storage.ParseOpKind(m.Op)
		if err != nil {
			return nil, err
		}
		filter.Kind = k
	}
	nth := m.Nth
	if nth == 0 {
		nth = 1
	}
	if nth < 0 {
		return nil, fmt.Errorf("nth must be at least 1")
	}
	return &storage.Rule{Match: &storage.Nth{Filter: filter, N: nth}, Fault: f}, nil
}

// PowerCut arms a power cut and runs the device until it happens: at a
// storage op (before it, after it, or tearing it), at a milestone, or a
// while from now.
type PowerCut struct {
	Before *OpMatch `yaml:"before,omitempty" jsonschema:"description=Cut as this op starts: it never happens."`
	After  *OpMatch `yaml:"after,omitempty" jsonschema:"description=Cut once this op completes."`
	Torn   *OpMatch `yaml:"torn,omitempty" jsonschema:"description=Cut in the middle of this op."`
	// Rule is a fault rule in the command-line form (op=N,mode=torn,seed=S).
	Rule  string         `yaml:"rule,omitempty" jsonschema:"description=A fault rule\\, as --cut takes it: op=1234\\,mode=torn\\,seed=7."`
	Event string         `yaml:"event,omitempty" jsonschema:"description=Cut when a stage reports this milestone (e.g. verify-begin)."`
	Delay units.Duration `yaml:"delay,omitempty" jsonschema:"description=With event: how long after the milestone."`
	In    units.Duration `yaml:"in,omitempty" jsonschema:"description=Cut this long from now."`
	Seed  uint64         `yaml:"seed,omitempty" jsonschema:"description=Seed of a torn op's damage."`
	// Timeout bounds the wait for the cut (default 10m of virtual time).
	Timeout units.Duration `yaml:"timeout,omitempty"`

	rule *storage.Rule
}

// UnmarshalStrictYAML decodes and checks that exactly one trigger is given.
func (p *PowerCut) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	type plain PowerCut
	var x plain
	if err := d.Decode(n, &x); err != nil {
		return err
	}
	*p = PowerCut(x)
	triggers := 0
	for _, set := range []bool{p.Before != nil, p.After != nil, p.Torn != nil, p.Rule != "", p.Event != "", p.In != 0} {
		if set {
			triggers++
		}
	}
	if triggers != 1 {
		return d.Errorf(n, "a power-cut takes exactly one of before, after, torn, rule, event or in (got %d)", triggers)
	}
	if p.Delay != 0 && p.Event == "" {
		return d.Errorf(n, "delay applies to event only")
	}
	var err error
	switch {
	case p.Before != nil:
		p.rule, err = p.Before.rule(storage.FaultCutBefore, p.Seed)
	case p.After != nil:
		p.rule, err = p.After.rule(storage.FaultCutAfter, p.Seed)
	case p.Torn != nil:
		p.rule, err = p.Torn.rule(storage.FaultTorn, p.Seed)
	case p.Rule != "":
		p.rule, err = storage.ParseRule(p.Rule)
		if err == nil && !p.rule.Fault.Mode.CutsPower() {
			err = fmt.Errorf("mode %s does not cut power (use a fault step)", p.rule.Fault.Mode)
		}
	}
	if err != nil {
		return d.Errorf(n, "%v", err)
	}
	return nil
}

func (p *PowerCut) String() string {
	switch {
	case p.rule != nil:
		return p.rule.String()
	case p.Event != "":
		return fmt.Sprintf("at %s+%s", p.Event, p.Delay)
	}
	return "in " + p.In.String()
}

// Wait lets virtual time pass: a duration, or until a condition holds (with
// a timeout, default 60s, after which the step fails).
type Wait struct {
	For     units.Duration `yaml:"-"`
	Until   *Condition     `yaml:"until,omitempty"`
	Timeout units.Duration `yaml:"timeout,omitempty"`
}

// UnmarshalStrictYAML accepts "wait: 2s" or "wait: {until: …, timeout: …}".
func (w *Wait) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		return d.Decode(n, &w.For)
	}
	type plain Wait
	var p plain
	if err := d.Decode(n, &p); err != nil {
		return err
	}
	*w = Wait(p)
	if w.Until == nil {
		return d.Errorf(n, "wait needs a duration (wait: 2s) or a condition (wait: {until: app-running})")
	}
	return nil
}

func (w *Wait) String() string {
	if w.Until != nil {
		return "until " + w.Until.String()
	}
	return w.For.String()
}

// Corrupt flips bits in a region: one chosen bit, or a number of bits at
// seeded places.
type Corrupt struct {
	Region string     `yaml:"region" jsonschema:"required"`
	Offset units.Size `yaml:"offset,omitempty" jsonschema:"description=Byte offset in the region of the bit to flip."`
	Bit    uint       `yaml:"bit,omitempty" jsonschema:"maximum=7"`
	Bits   int        `yaml:"bits,omitempty" jsonschema:"description=Flip this many bits at seeded places instead."`
	Seed   uint64     `yaml:"seed,omitempty"`
	pos    strictyaml.Pos
}

// Condition kinds.
const (
	CondAppRunning = "app-running"
	CondHalted     = "halted"
	CondOff        = "off"
	CondLockedUp   = "locked-up"
	CondEvent      = "event"
	CondRunning    = "running"
	CondBoots      = "boots"
	CondSerial     = "serial"
	CondState      = "state"
)

// Condition is what a wait waits for: a word (app-running, halted, off,
// locked-up) or a one-key mapping ({event: copy-begin}, {running: app-v2},
// {boots: 3}, {serial: "booting"}, {state: halted}).
type Condition struct {
	Kind  string
	Value string
	N     int
	Pos   strictyaml.Pos
}

// UnmarshalStrictYAML implements strictyaml.StrictUnmarshaler.
func (c *Condition) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	c.Pos = d.At(n)
	kind, v, err := oneOf(d, n, "condition", condWords, condKeys)
	if err != nil {
		return err
	}
	c.Kind = kind
	switch kind {
	case CondBoots:
		return d.Decode(v, &c.N)
	case CondEvent, CondRunning, CondSerial, CondState:
		return d.Decode(v, &c.Value)
	}
	return nil
}

func (c *Condition) String() string {
	switch c.Kind {
	case CondBoots:
		return fmt.Sprintf("boots %d", c.N)
	case CondEvent, CondRunning, CondSerial, CondState:
		return fmt.Sprintf("%s %q", c.Kind, c.Value)
	}
	return c.Kind
}
