package scenarios

import (
	"fmt"
	"strings"

	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
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

// Expect is one expectation, checked when the steps are done. It is
// written as a word (no-brick) or a one-key mapping.
type Expect struct {
	Kind string
	// Value is the firmware, state, event name, serial text or invariant.
	Value string
	// Count bounds an event count, a boot count or a time.
	Count   Bounds
	Region  *RegionExpect
	Service *ServiceExpect
	// List is a path's visits ("bootloader/application").
	List   []string
	Stored *StoredExpect
	Pos    strictyaml.Pos
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

// UnmarshalStrictYAML implements strictyaml.StrictUnmarshaler.
// The expectations: written as a word, or as a one-key mapping.
var (
	expectWords = []string{ExpNoBrick}
	expectKeys  = []string{ExpRunning, ExpState, ExpLED, ExpEvent, ExpNoEvent, ExpBoots, ExpSerial, ExpNoSerial, ExpRegion, ExpWeakness, ExpTime,
		ExpResult, ExpService, ExpDownloaded, ExpUpdateTime, ExpBootloader, ExpPath, ExpStored}
)

func (e *Expect) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	e.Pos = d.At(n)
	kind, v, err := oneOf(d, n, "expectation", expectWords, expectKeys)
	if err != nil {
		return err
	}
	e.Kind = kind
	switch kind {
	case ExpPath:
		if err := d.Decode(v, &e.List); err != nil {
			return err
		}
		if len(e.List) == 0 {
			return d.Errorf(v, "path needs at least one visit (bootloader/application)")
		}
	case ExpStored:
		e.Stored = &StoredExpect{}
		if err := d.Decode(v, e.Stored); err != nil {
			return err
		}
		if e.Stored.Bootloaders == nil && e.Stored.Applications == nil {
			return d.Errorf(v, "stored needs bootloaders, applications or both")
		}
	case ExpRunning, ExpState, ExpLED, ExpNoEvent, ExpSerial, ExpNoSerial, ExpWeakness, ExpBootloader:
		if err := d.Decode(v, &e.Value); err != nil {
			return err
		}
		if e.Value == "" {
			return d.Errorf(v, "%s needs a value", kind)
		}
	case ExpEvent:
		if v.Kind == yaml.ScalarNode {
			one := int64(1)
			e.Count.AtLeast = &one
			return d.Decode(v, &e.Value)
		}
		var x struct {
			Name    string `yaml:"name"`
			Count   *int64 `yaml:"count"`
			AtLeast *int64 `yaml:"at-least"`
			AtMost  *int64 `yaml:"at-most"`
		}
		if err := d.Decode(v, &x); err != nil {
			return err
		}
		if x.Name == "" {
			return d.Errorf(v, "event needs a name")
		}
		e.Value = x.Name
		e.Count = Bounds{AtLeast: x.AtLeast, AtMost: x.AtMost}
		if x.Count != nil {
			if x.AtLeast != nil || x.AtMost != nil {
				return d.Errorf(v, "event takes count, or at-least and at-most, not both")
			}
			e.Count = Bounds{AtLeast: x.Count, AtMost: x.Count}
		}
		if err := e.Count.check(d, v); err != nil {
			return err
		}
		if e.Count.AtLeast == nil && e.Count.AtMost == nil {
			one := int64(1)
			e.Count.AtLeast = &one
		}
	case ExpBoots, ExpDownloaded:
		e.Count, err = decodeBounds(d, v, false)
		return err
	case ExpResult:
		var n int64
		if err := d.Decode(v, &n); err != nil {
			return err
		}
		e.Count = Bounds{AtLeast: &n, AtMost: &n}
	case ExpService:
		e.Service = &ServiceExpect{}
		if err := d.Decode(v, e.Service); err != nil {
			return err
		}
		if *e.Service == (ServiceExpect{}) {
			return d.Errorf(v, "service needs at least one of updated, result, state, notifications")
		}
	case ExpTime, ExpUpdateTime:
		e.Count, err = decodeBounds(d, v, true)
		return err
	case ExpRegion:
		e.Region = &RegionExpect{}
		if err := d.Decode(v, e.Region); err != nil {
			return err
		}
		set := 0
		for _, b := range []bool{e.Region.Firmware != "", e.Region.Erased, e.Region.SHA256 != ""} {
			if b {
				set++
			}
		}
		if set != 1 {
			return d.Errorf(v, "a region expectation takes exactly one of firmware, erased or sha256")
		}
	}
	return nil
}

// String renders the expectation as reports show it.
func (e *Expect) String() string {
	switch e.Kind {
	case ExpNoBrick:
		return "no-brick"
	case ExpRunning:
		return "running " + e.Value
	case ExpBootloader:
		return "bootloader " + e.Value
	case ExpPath:
		return "path " + strings.Join(e.List, " ")
	case ExpStored:
		var parts []string
		if e.Stored.Bootloaders != nil {
			parts = append(parts, "bootloaders ["+strings.Join(e.Stored.Bootloaders, ", ")+"]")
		}
		if e.Stored.Applications != nil {
			parts = append(parts, "applications ["+strings.Join(e.Stored.Applications, ", ")+"]")
		}
		return "stored " + strings.Join(parts, " ")
	case ExpState:
		return "state " + e.Value
	case ExpLED:
		return "LED1 " + e.Value
	case ExpEvent:
		return fmt.Sprintf("event %s count %s", e.Value, e.Count)
	case ExpNoEvent:
		return "no event " + e.Value
	case ExpBoots:
		return "boots " + e.Count.String()
	case ExpSerial:
		return fmt.Sprintf("serial shows %q", e.Value)
	case ExpNoSerial:
		return fmt.Sprintf("serial never shows %q", e.Value)
	case ExpWeakness:
		return "known weakness " + e.Value
	case ExpResult:
		return fmt.Sprintf("update result %d", *e.Count.AtLeast)
	case ExpDownloaded:
		return "payload bytes served " + e.Count.String()
	case ExpService:
		var parts []string
		sv := e.Service
		if sv.Updated != nil {
			parts = append(parts, fmt.Sprintf("updated=%v", *sv.Updated))
		}
		if sv.Result != nil {
			parts = append(parts, fmt.Sprintf("result=%d", *sv.Result))
		}
		if sv.State != nil {
			parts = append(parts, fmt.Sprintf("state=%d", *sv.State))
		}
		if sv.Notifications != nil {
			parts = append(parts, fmt.Sprintf("notifications=%d", *sv.Notifications))
		}
		return "service sees " + strings.Join(parts, " ")
	case ExpTime, ExpUpdateTime:
		what := "virtual time "
		if e.Kind == ExpUpdateTime {
			what = "time to update "
		}
		return what + e.Count.format(func(v int64) string { return units.Duration(v).String() })
	case ExpRegion:
		r := e.Region
		switch {
		case r.Firmware != "":
			return fmt.Sprintf("region %s holds %s", r.Region, r.Firmware)
		case r.Erased:
			return fmt.Sprintf("region %s is erased", r.Region)
		}
		return fmt.Sprintf("region %s has sha256 %s", r.Region, r.SHA256)
	}
	return e.Kind
}
