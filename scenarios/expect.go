package scenarios

import (
	"fmt"

	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/invopop/jsonschema"
	"go.yaml.in/yaml/v3"
)

// Expectation kinds.
const (
	ExpRunning  = "running"
	ExpState    = "state"
	ExpLED      = "led"
	ExpEvent    = "event"
	ExpNoEvent  = "no-event"
	ExpBoots    = "boots"
	ExpSerial   = "serial"
	ExpNoSerial = "no-serial"
	ExpRegion   = "region"
	ExpNoBrick  = "no-brick"
	ExpWeakness = "weakness"
	ExpTime     = "time"
	// The update flow, as the service sees it.
	ExpResult     = "result"
	ExpService    = "service"
	ExpDownloaded = "downloaded"
	ExpUpdateTime = "update-time"
	// The chain profile.
	ExpBootloader = "bootloader"
	ExpPath       = "path"
	ExpStored     = "stored"
)

// Expect is one expectation of a scenario, checked when its steps are done
// (and, in a sweep section, after every recovery). It is written as a word
// (no-brick) or a one-key mapping (running: app-v2); its Expectation says
// what it checks.
type Expect struct {
	Expectation
	Pos strictyaml.Pos
}

// An Expectation is what one expectation checks. Each kind is a type of
// this package and one entry of expectationKinds, which the decoder, the
// reference and the schema read: a new kind touches nothing else.
type Expectation interface {
	// Kind is the word or key that writes the expectation.
	Kind() string
	// String renders the expectation as reports show it.
	String() string
	// validate checks the expectation against the scenario as it loads.
	validate(l *Loaded, pos strictyaml.Pos) error
	// judge checks the expectation on a finished run; found says what the
	// run showed instead, or more.
	judge(r *runner, res *Result) (ok bool, found string)
}

// expectationKind is one kind of expectation: how it is written, read,
// documented and described in the schema.
type expectationKind struct {
	name string
	word bool // written as a bare word, with no value
	// decode reads the value of the one-key mapping (nil for a word).
	decode func(d strictyaml.Decoder, v *yaml.Node) (Expectation, error)
	ref    refEntry
	// schema describes the expectation (the word, or the mapping of the
	// name to its value); inline reflects a Go type.
	schema func(name string, inline func(any) *jsonschema.Schema) *jsonschema.Schema
}

// expectationKinds is every kind of expectation, in the order the schema
// lists them.
var expectationKinds = []expectationKind{
	{name: ExpNoBrick, word: true,
		decode: func(strictyaml.Decoder, *yaml.Node) (Expectation, error) { return expectNoBrick{}, nil },
		ref:    refEntry{"The no-brick invariant holds (it is checked anyway; listing it documents that the scenario relies on it).", "- no-brick"},
		schema: func(name string, _ func(any) *jsonschema.Schema) *jsonschema.Schema {
			return words("An invariant that must hold.", name)
		}},
	{name: ExpRunning,
		decode: decodeWord(ExpRunning, func(v string) Expectation { return expectRunning{v} }),
		ref:    refEntry{"This firmware runs at the end (none: nothing does).", "- running: app-v2"},
		schema: valueSchema(str)},
	{name: ExpState,
		decode: decodeWord(ExpState, func(v string) Expectation { return expectState{v} }),
		ref:    refEntry{"The device ends in this state.", "- state: halted"},
		schema: valueSchema(str)},
	{name: ExpLED,
		decode: decodeWord(ExpLED, func(v string) Expectation { return expectLED{v} }),
		ref:    refEntry{"LED1 at the end: sos (mbed_die blinks it when main returns: the classic dead end, a storage that does not initialise) or off.", "- led: sos"},
		schema: valueSchema(func() *jsonschema.Schema { return words("", LEDSOS, LEDOff) })},
	{name: ExpEvent, decode: decodeEvent,
		ref: refEntry{"A milestone was reported (at least once, or a count or bounds).", "- event: {name: copy-begin, count: 2}"},
		schema: valueSchema(func() *jsonschema.Schema {
			return &jsonschema.Schema{AnyOf: []*jsonschema.Schema{str(), {
				Type:                 "object",
				Properties:           props("name", str(), "count", integer(), "at-least", integer(), "at-most", integer()),
				Required:             []string{"name"},
				AdditionalProperties: jsonschema.FalseSchema,
			}}}
		})},
	{name: ExpNoEvent,
		decode: decodeWord(ExpNoEvent, func(v string) Expectation { return expectNoEvent{v} }),
		ref:    refEntry{"A milestone was never reported.", "- no-event: copy-begin"},
		schema: valueSchema(str)},
	{name: ExpBoots,
		decode: decodeBoundsAs(false, func(b Bounds) Expectation { return expectBoots{b} }),
		ref:    refEntry{"The number of boots, exactly or within bounds.", "- boots: 2"},
		schema: valueSchema(bounds)},
	{name: ExpSerial,
		decode: decodeWord(ExpSerial, func(v string) Expectation { return expectSerial{text: v} }),
		ref:    refEntry{"The serial console showed this text.", `- serial: "[DBG ] Active firmware up-to-date"`},
		schema: valueSchema(str)},
	{name: ExpNoSerial,
		decode: decodeWord(ExpNoSerial, func(v string) Expectation { return expectSerial{text: v, never: true} }),
		ref:    refEntry{"The serial console never showed this text.", `- no-serial: "Update image too large"`},
		schema: valueSchema(str)},
	{name: ExpRegion, decode: decodeRegion,
		ref:    refEntry{"A region holds a firmware's bytes, is erased, or hashes to a SHA-256.", "- region: {region: slot-0, firmware: app-v2}"},
		schema: inlineSchema(&RegionExpect{})},
	{name: ExpWeakness,
		decode: decodeWord(ExpWeakness, func(v string) Expectation { return expectWeakness{v} }),
		ref:    refEntry{"An invariant the design may violate does so here: the run passes only if it is violated (WEAK).", "- weakness: authentic"},
		schema: valueSchema(func() *jsonschema.Schema { return words("", Invariants...) })},
	{name: ExpTime,
		decode: decodeBoundsAs(true, func(b Bounds) Expectation { return expectTime{b} }),
		ref:    refEntry{"The run's virtual time is within bounds.", "- time: {at-most: 1m}"},
		schema: valueSchema(timeBounds)},
	{name: ExpUpdateTime,
		decode: decodeBoundsAs(true, func(b Bounds) Expectation { return expectUpdateTime{b} }),
		ref:    refEntry{"Virtual time from the campaign to the new version running.", "- update-time: {at-most: 1m}"},
		schema: valueSchema(timeBounds)},
	{name: ExpResult, decode: decodeResult,
		ref:    refEntry{"The update client's last result code (LwM2M).", "- result: 221"},
		schema: valueSchema(integer)},
	{name: ExpDownloaded,
		decode: decodeBoundsAs(false, func(b Bounds) Expectation { return expectDownloaded{b} }),
		ref:    refEntry{"Payload bytes the device downloaded.", "- downloaded: 215040"},
		schema: valueSchema(bounds)},
	{name: ExpService, decode: decodeService,
		ref:    refEntry{"What the update service knows of the device.", "- service: {updated: true, result: 100}"},
		schema: inlineSchema(&ServiceExpect{})},
	{name: ExpBootloader,
		decode: decodeWord(ExpBootloader, func(v string) Expectation { return expectBootloader{v} }),
		ref:    refEntry{"Chain: the last bootloader version to run.", "- bootloader: bl-v1"},
		schema: valueSchema(str)},
	{name: ExpPath, decode: decodePath,
		ref: refEntry{"Chain: the (bootloader/application) pairs tried, in order.", "- path: [bl-v2/app-v3, bl-v1/app-v3]"},
		schema: valueSchema(func() *jsonschema.Schema {
			minOne := uint64(1)
			return &jsonschema.Schema{Type: "array", Items: str(), MinItems: &minOne}
		})},
	{name: ExpStored, decode: decodeStored,
		ref:    refEntry{"Chain: the versions the boot record holds as ready.", "- stored: {applications: [app-v1]}"},
		schema: inlineSchema(&StoredExpect{})},
}

// The expectations written as a word and as a one-key mapping, and the
// reference's entries, as expectationKinds gives them.
var expectWords, expectKeys, expectRef = vocabulary(expectationKinds, func(k expectationKind) (string, bool, bool, refEntry) {
	return k.name, k.word, !k.word, k.ref
})

// expectSchema is the JSON schema of one expectation.
func expectSchema(inline func(any) *jsonschema.Schema) *jsonschema.Schema {
	var one []*jsonschema.Schema
	for _, k := range expectationKinds {
		one = append(one, k.schema(k.name, inline))
	}
	return &jsonschema.Schema{OneOf: one}
}

// UnmarshalStrictYAML implements strictyaml.StrictUnmarshaler.
func (e *Expect) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	e.Pos = d.At(n)
	kind, v, err := oneOf(d, n, "expectation", expectWords, expectKeys)
	if err != nil {
		return err
	}
	for _, k := range expectationKinds {
		if k.name == kind {
			e.Expectation, err = k.decode(d, v)
			return err
		}
	}
	panic("scenarios: expectation " + kind + " has no kind")
}

// valueSchema is the schema of a one-key mapping whose value s describes.
func valueSchema(s func() *jsonschema.Schema) func(string, func(any) *jsonschema.Schema) *jsonschema.Schema {
	return func(name string, _ func(any) *jsonschema.Schema) *jsonschema.Schema { return oneKey(name, s()) }
}

// inlineSchema is the schema of a one-key mapping whose value is the Go
// type of v.
func inlineSchema(v any) func(string, func(any) *jsonschema.Schema) *jsonschema.Schema {
	return func(name string, inline func(any) *jsonschema.Schema) *jsonschema.Schema {
		return oneKey(name, inline(v))
	}
}

// decodeWord reads a non-empty string value into an expectation.
func decodeWord(kind string, make func(string) Expectation) func(strictyaml.Decoder, *yaml.Node) (Expectation, error) {
	return func(d strictyaml.Decoder, v *yaml.Node) (Expectation, error) {
		var s string
		if err := d.Decode(v, &s); err != nil {
			return nil, err
		}
		if s == "" {
			return nil, d.Errorf(v, "%s needs a value", kind)
		}
		return make(s), nil
	}
}

// decodeBoundsAs reads bounds (of durations, with durations) into an
// expectation.
func decodeBoundsAs(durations bool, make func(Bounds) Expectation) func(strictyaml.Decoder, *yaml.Node) (Expectation, error) {
	return func(d strictyaml.Decoder, v *yaml.Node) (Expectation, error) {
		b, err := decodeBounds(d, v, durations)
		if err != nil {
			return nil, err
		}
		return make(b), nil
	}
}

func decodeEvent(d strictyaml.Decoder, v *yaml.Node) (Expectation, error) {
	one := int64(1)
	if v.Kind == yaml.ScalarNode {
		e := expectEvent{count: Bounds{AtLeast: &one}}
		err := d.Decode(v, &e.name)
		return e, err
	}
	var x struct {
		Name    string `yaml:"name"`
		Count   *int64 `yaml:"count"`
		AtLeast *int64 `yaml:"at-least"`
		AtMost  *int64 `yaml:"at-most"`
	}
	if err := d.Decode(v, &x); err != nil {
		return nil, err
	}
	if x.Name == "" {
		return nil, d.Errorf(v, "event needs a name")
	}
	e := expectEvent{name: x.Name, count: Bounds{AtLeast: x.AtLeast, AtMost: x.AtMost}}
	if x.Count != nil {
		if x.AtLeast != nil || x.AtMost != nil {
			return nil, d.Errorf(v, "event takes count, or at-least and at-most, not both")
		}
		e.count = Bounds{AtLeast: x.Count, AtMost: x.Count}
	}
	if err := e.count.check(d, v); err != nil {
		return nil, err
	}
	if e.count.AtLeast == nil && e.count.AtMost == nil {
		e.count.AtLeast = &one
	}
	return e, nil
}

func decodeResult(d strictyaml.Decoder, v *yaml.Node) (Expectation, error) {
	var n int64
	if err := d.Decode(v, &n); err != nil {
		return nil, err
	}
	return expectResult{n}, nil
}

func decodeService(d strictyaml.Decoder, v *yaml.Node) (Expectation, error) {
	var s ServiceExpect
	if err := d.Decode(v, &s); err != nil {
		return nil, err
	}
	if s == (ServiceExpect{}) {
		return nil, d.Errorf(v, "service needs at least one of updated, result, state, notifications")
	}
	return expectService{s}, nil
}

func decodeRegion(d strictyaml.Decoder, v *yaml.Node) (Expectation, error) {
	var r RegionExpect
	if err := d.Decode(v, &r); err != nil {
		return nil, err
	}
	set := 0
	for _, b := range []bool{r.Firmware != "", r.Erased, r.SHA256 != ""} {
		if b {
			set++
		}
	}
	if set != 1 {
		return nil, d.Errorf(v, "a region expectation takes exactly one of firmware, erased or sha256")
	}
	return expectRegion{r}, nil
}

func decodePath(d strictyaml.Decoder, v *yaml.Node) (Expectation, error) {
	var visits []string
	if err := d.Decode(v, &visits); err != nil {
		return nil, err
	}
	if len(visits) == 0 {
		return nil, d.Errorf(v, "path needs at least one visit (bootloader/application)")
	}
	return expectPath{visits}, nil
}

func decodeStored(d strictyaml.Decoder, v *yaml.Node) (Expectation, error) {
	var s StoredExpect
	if err := d.Decode(v, &s); err != nil {
		return nil, err
	}
	if s.Bootloaders == nil && s.Applications == nil {
		return nil, d.Errorf(v, "stored needs bootloaders, applications or both")
	}
	return expectStored{s}, nil
}

// StoredExpect is what the chain's boot record holds as ready, by stage:
// the firmware names, in any order.
type StoredExpect struct {
	Bootloaders  []string `yaml:"bootloaders,omitempty" jsonschema:"description=The bootloader versions ready in the record."`
	Applications []string `yaml:"applications,omitempty" jsonschema:"description=The application versions ready in the record."`
}

// ServiceExpect is what the service must know of the device.
type ServiceExpect struct {
	Updated       *bool `yaml:"updated,omitempty" jsonschema:"description=The device reported the campaign's target version."`
	Result        *int  `yaml:"result,omitempty" jsonschema:"description=The last LwM2M update result reported."`
	State         *int  `yaml:"state,omitempty" jsonschema:"description=The last LwM2M update state reported."`
	Notifications *int  `yaml:"notifications,omitempty" jsonschema:"description=Manifests pushed to the device."`
}

// Bounds is an exact value or a range: "3", or {at-least: 1, at-most: 3}.
type Bounds struct {
	AtLeast *int64 `yaml:"at-least,omitempty"`
	AtMost  *int64 `yaml:"at-most,omitempty"`
}

func (b Bounds) holds(v int64) bool {
	return (b.AtLeast == nil || v >= *b.AtLeast) && (b.AtMost == nil || v <= *b.AtMost)
}

func (b Bounds) String() string {
	return b.format(func(v int64) string { return fmt.Sprint(v) })
}

// format renders the bounds with each value rendered by f.
func (b Bounds) format(f func(int64) string) string {
	switch {
	case b.AtLeast != nil && b.AtMost != nil && *b.AtLeast == *b.AtMost:
		return "= " + f(*b.AtLeast)
	case b.AtLeast != nil && b.AtMost != nil:
		return "in " + f(*b.AtLeast) + ".." + f(*b.AtMost)
	case b.AtLeast != nil:
		return "≥ " + f(*b.AtLeast)
	case b.AtMost != nil:
		return "≤ " + f(*b.AtMost)
	}
	return "any"
}

// decodeBounds reads "N" or {at-least, at-most}.
func decodeBounds(d strictyaml.Decoder, n *yaml.Node, durations bool) (Bounds, error) {
	var b Bounds
	parse := func(n *yaml.Node) (int64, error) {
		if durations {
			var v units.Duration
			err := d.Decode(n, &v)
			return int64(v), err
		}
		var v int64
		err := d.Decode(n, &v)
		return v, err
	}
	if n.Kind == yaml.ScalarNode {
		v, err := parse(n)
		b.AtLeast, b.AtMost = &v, &v
		return b, err
	}
	if n.Kind != yaml.MappingNode {
		return b, d.Errorf(n, "want a number or {at-least: …, at-most: …}")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		x, err := parse(v)
		if err != nil {
			return b, err
		}
		switch {
		case k.Value == "at-least" && b.AtLeast == nil:
			b.AtLeast = &x
		case k.Value == "at-most" && b.AtMost == nil:
			b.AtMost = &x
		case k.Value == "at-least" || k.Value == "at-most":
			return b, d.Errorf(k, "%q is given twice", k.Value)
		default:
			return b, d.Errorf(k, "unknown field %q (want at-least or at-most)", k.Value)
		}
	}
	return b, b.check(d, n)
}

// check refuses bounds that can never hold.
func (b Bounds) check(d strictyaml.Decoder, n *yaml.Node) error {
	if b.AtLeast != nil && b.AtMost != nil && *b.AtLeast > *b.AtMost {
		return d.Errorf(n, "at-least %d is above at-most %d: the expectation can never hold", *b.AtLeast, *b.AtMost)
	}
	return nil
}

// RegionExpect says what a region holds: a firmware image where the layout
// puts one, all erased bytes, or a SHA-256 of the whole region.
type RegionExpect struct {
	Region   string `yaml:"region" jsonschema:"required"`
	Firmware string `yaml:"firmware,omitempty" jsonschema:"description=The region holds this firmware's image (in a slot: after its header)."`
	Erased   bool   `yaml:"erased,omitempty"`
	SHA256   string `yaml:"sha256,omitempty"`
}
