package scenarios

import (
	"fmt"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/invopop/jsonschema"
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

// Step is one step of a scenario, at its place in the file. It is written
// as a bare word ("power-on") or a one-key mapping ("wait: 2s",
// "power-cut: {after: …}"); its Action says what it does.
type Step struct {
	Action
	Pos strictyaml.Pos
}

// An Action is what one step does. Each kind is a type of this package and
// one entry of stepKinds, which the decoder, the reference and the schema
// read: a new kind touches nothing else.
type Action interface {
	// Kind is the word or key that writes the step.
	Kind() string
	// String renders the step as reports show it.
	String() string
	// validate checks the step against the scenario as it loads; pos is
	// the step's place in the file.
	validate(l *Loaded, pos strictyaml.Pos) error
	// run plays the step on the run's device.
	run(r *runner) error
}

// stepKind is one kind of step: how it is written, read, documented and
// described in the schema.
type stepKind struct {
	name string
	// word, if not nil, makes the step written as a bare word.
	word func() Action
	// decode, if not nil, reads the value of the step's one-key mapping;
	// schema describes that value (inline reflects a Go type).
	decode func(d strictyaml.Decoder, v *yaml.Node) (Action, error)
	schema func(inline func(any) *jsonschema.Schema) *jsonschema.Schema
	ref    refEntry
}

// stepKinds is every kind of step, in the order the schema lists them.
var stepKinds = []stepKind{
	{name: StepPowerOn, word: func() Action { return stepPowerOn{} },
		ref: refEntry{"Power the device on; the boot starts at the image at address 0.", "- power-on"}},
	{name: StepPowerCut, word: func() Action { return stepPowerCut{} },
		decode: decodeInto(func(p *PowerCut) Action { return stepPowerCut{p} }),
		schema: func(inline func(any) *jsonschema.Schema) *jsonschema.Schema { return inline(&PowerCut{}) },
		ref:    refEntry{"Cut power now, or armed: before, after or in the middle (torn) of a matching storage op, at a milestone, or after a delay; the next power-on is a step of its own.", "- power-cut: {torn: {op: program, region: active-app, nth: 5}, seed: 7}"}},
	{name: StepReset, decode: decodeReset,
		schema: func(func(any) *jsonschema.Schema) *jsonschema.Schema {
			return words("", "pin", "brown-out", "debugger")
		},
		ref: refEntry{"Reset the device from outside: pin (the reset button), brown-out, or debugger (a probe's SYSRESETREQ, which the MCU records as a software reset).", "- reset: pin"}},
	{name: StepWait, decode: decodeInto(func(w *Wait) Action { return stepWait{w} }),
		schema: func(func(any) *jsonschema.Schema) *jsonschema.Schema {
			return &jsonschema.Schema{OneOf: []*jsonschema.Schema{duration(), {
				Type:                 "object",
				Properties:           props("until", conditionSchema(), "timeout", duration()),
				Required:             []string{"until"},
				AdditionalProperties: jsonschema.FalseSchema,
			}}}
		},
		ref: refEntry{"Let time pass: a duration, or until a condition holds (the step fails at its timeout, default 10m).", "- wait: {until: {event: registered}, timeout: 30s}"}},
	{name: StepCorrupt, decode: decodeCorrupt,
		schema: func(inline func(any) *jsonschema.Schema) *jsonschema.Schema { return inline(&Corrupt{}) },
		ref:    refEntry{"Flip bits of a region, at an offset or at seeded places (retention loss, a probe).", "- corrupt: {region: active-header, bits: 40, seed: 1}"}},
	{name: StepFault, decode: decodeFault,
		schema: func(func(any) *jsonschema.Schema) *jsonschema.Schema {
			return &jsonschema.Schema{Type: "string", Description: "A fault rule: kind=program,region=slot-0,nth=3,mode=bit-flip,seed=1."}
		},
		ref: refEntry{"Arm a fault rule for the rest of the run (the rule language of --cut); a rule that never fires is reported. kind=read selects reads (counted on their own; modes io-error and bit-flip).", "- fault: kind=program,region=slot-0,nth=3,mode=bit-flip,seed=1"}},
	{name: StepCampaign, decode: decodeInto(func(c *Campaign) Action { return stepCampaign{c} }),
		schema: func(inline func(any) *jsonschema.Schema) *jsonschema.Schema { return inline(&Campaign{}) },
		ref:    refEntry{"Start an update campaign on the service: a firmware, a manifest format, an attack on the manifest.", "- campaign: {firmware: app-v2}"}},
	{name: StepNetwork, decode: decodeInto(func(n *Network) Action { return stepNetwork{n} }),
		schema: func(func(any) *jsonschema.Schema) *jsonschema.Schema {
			return &jsonschema.Schema{OneOf: []*jsonschema.Schema{
				words("", "down", "up"),
				{Type: "object", Properties: props("corrupt", size(), "bandwidth", integer(), "latency", duration(), "stall", duration()), AdditionalProperties: jsonschema.FalseSchema},
			}}
		},
		ref: refEntry{"Take the device's link down or up, or make it corrupt, slow or stall.", "- network: down"}},
	{name: StepApp, decode: decodeInto(func(a *AppAction) Action { return stepApp{a} }),
		schema: func(func(any) *jsonschema.Schema) *jsonschema.Schema {
			return &jsonschema.Schema{OneOf: []*jsonschema.Schema{words("", "crash", "confirm"), oneKey("plant", str())}}
		},
		ref: refEntry{"Make the running application do something: crash, confirm itself (chain), or plant an image as a compromised application would.", "- app: {plant: evil}"}},
	{name: StepAttack, decode: decodeInto(func(a *Attack) Action { return stepAttack{a} }),
		schema: func(func(any) *jsonschema.Schema) *jsonschema.Schema { return attackSchema() },
		ref:    refEntry{"An attacker with the storage in hand: plant an image (with this device's header or a forged one), truncate or swap the slots, erase or tear SOTP or the chain's boot record.", "- attack: {plant: app-v1, header: device}"}},
	{name: StepRemoveSD, word: func() Action { return stepSD{} },
		ref: refEntry{"Pull the SD card out (reads and writes fail until it goes back).", "- remove-sd"}},
	{name: StepInsertSD, word: func() Action { return stepSD{insert: true} },
		ref: refEntry{"Put the SD card back.", "- insert-sd"}},
}

// The steps written as a word and as a one-key mapping, and the
// reference's entries, as stepKinds gives them.
var stepWords, stepKeys, stepRef = vocabulary(stepKinds, func(k stepKind) (string, bool, bool, refEntry) {
	return k.name, k.word != nil, k.decode != nil, k.ref
})

// stepSchema is the JSON schema of one step: the words, then each key.
func stepSchema(inline func(any) *jsonschema.Schema) *jsonschema.Schema {
	one := []*jsonschema.Schema{words("A step without arguments.", stepWords...)}
	for _, k := range stepKinds {
		if k.decode != nil {
			one = append(one, oneKey(k.name, k.schema(inline)))
		}
	}
	return &jsonschema.Schema{OneOf: one}
}

// The wait conditions: written as a word, or as a one-key mapping.
var (
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
	for _, k := range stepKinds {
		if k.name != kind {
			continue
		}
		if v == nil {
			s.Action = k.word()
			return nil
		}
		s.Action, err = k.decode(d, v)
		return err
	}
	panic("scenarios: step " + kind + " has no kind")
}

// decodeInto reads the value into a new T and makes the action of it.
func decodeInto[T any](make func(*T) Action) func(strictyaml.Decoder, *yaml.Node) (Action, error) {
	return func(d strictyaml.Decoder, v *yaml.Node) (Action, error) {
		x := new(T)
		if err := d.Decode(v, x); err != nil {
			return nil, err
		}
		return make(x), nil
	}
}

func decodeReset(d strictyaml.Decoder, v *yaml.Node) (Action, error) {
	var how string
	if err := d.Decode(v, &how); err != nil {
		return nil, err
	}
	if how != "pin" && how != "brown-out" && how != "debugger" {
		return nil, d.Errorf(v, "reset %q: want pin, brown-out or debugger (a probe's SYSRESETREQ; other software resets come from the firmware)", how)
	}
	return stepReset{how}, nil
}

func decodeCorrupt(d strictyaml.Decoder, v *yaml.Node) (Action, error) {
	c := &Corrupt{}
	if err := d.Decode(v, c); err != nil {
		return nil, err
	}
	c.pos = d.At(v)
	return stepCorrupt{c}, nil
}

func decodeFault(d strictyaml.Decoder, v *yaml.Node) (Action, error) {
	var src string
	if err := d.Decode(v, &src); err != nil {
		return nil, err
	}
	r, err := storage.ParseRule(src)
	if err != nil {
		return nil, d.Errorf(v, "%v", err)
	}
	return stepFault{rule: r, src: src}, nil
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
