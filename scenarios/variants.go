package scenarios

import (
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/bootsim/bootsim/strictyaml"
)

// ProfileVariant is one more profile a scenario makes sense under, with
// what must hold there: the same device and steps run under another update
// design, and expect lists that design's outcome (the scenario's own
// profile uses the top-level expect). With no expect, only the invariants
// judge the run. A design that lays its device out differently (the chain
// profile stores versions, not an active image and candidates) gives its
// own firmware and factory sections, the same story told in its terms.
type ProfileVariant struct {
	Profile  string
	Expect   []Expect
	Device   *Device
	Firmware FirmwareSet
	Factory  *Factory
	// NotApplicable, instead of the rest, says why the scenario does not
	// make sense under the profile (bootsim compare shows it).
	NotApplicable string
	pos           strictyaml.Pos
}

// ProfileVariants are a scenario's variants, in the order written.
type ProfileVariants []ProfileVariant

// UnmarshalStrictYAML decodes a mapping of profile names to {expect: […]}.
func (v *ProfileVariants) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, "want a mapping of profile names to {expect: [...]}")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, val := n.Content[i], n.Content[i+1]
		if slices.ContainsFunc(*v, func(p ProfileVariant) bool { return p.Profile == k.Value }) {
			return d.Errorf(k, "profile %q is given twice", k.Value)
		}
		var body struct {
			NotApplicable string      `yaml:"not-applicable,omitempty"`
			Device        *Device     `yaml:"device,omitempty"`
			Firmware      FirmwareSet `yaml:"firmware,omitempty"`
			Factory       *Factory    `yaml:"factory,omitempty"`
			Expect        []Expect    `yaml:"expect,omitempty"`
		}
		if !(val.Kind == yaml.ScalarNode && val.Tag == "!!null") {
			if err := d.Decode(val, &body); err != nil {
				return err
			}
		}
		if body.NotApplicable != "" && (body.Device != nil || body.Firmware != nil || body.Factory != nil || body.Expect != nil) {
			return d.Errorf(k, "profiles: %s: not-applicable goes alone (a scenario either runs under a profile or says why not)", k.Value)
		}
		*v = append(*v, ProfileVariant{Profile: k.Value, Expect: body.Expect, Device: body.Device, Firmware: body.Firmware, Factory: body.Factory,
			NotApplicable: body.NotApplicable, pos: d.At(k)})
	}
	return nil
}

// Profiles returns the profiles the scenario makes sense under: its own,
// then those of its variants, as written.
func (l *Loaded) Profiles() []string {
	out := []string{l.Profile}
	for _, v := range l.Variants {
		if v.NotApplicable == "" {
			out = append(out, v.Profile)
		}
	}
	return out
}

// NotApplicable returns why the scenario does not run under a profile, as
// its file says, or "" if the file says nothing.
func (l *Loaded) NotApplicable(profile string) string {
	for _, v := range l.Variants {
		if v.Profile == profile {
			return v.NotApplicable
		}
	}
	return ""
}

// Under returns the scenario as it runs under a profile it names: itself
// for its own profile, else a fresh load of its file with device.profile
// set and the variant's expectations in place of its own.
func (l *Loaded) Under(profile string) (*Loaded, error) {
	if profile == l.Profile {
		return l, nil
	}
	i := slices.IndexFunc(l.Variants, func(v ProfileVariant) bool { return v.Profile == profile && v.NotApplicable == "" })
	if i < 0 {
		return nil, fmt.Errorf("%s: does not run under the %s profile (it names %v under profiles:)", l.Name, profile, l.Profiles())
	}
	return l.loadVariant(profile)
}

// parseVariant parses the scenario's file afresh (a loaded scenario is
// never changed, and checking a scenario fills in defaults) and turns it
// into its variant for a profile.
func (l *Loaded) parseVariant(profile string) (*Scenario, error) {
	sc, err := parse(l.File, l.Source)
	if err != nil {
		return nil, err
	}
	i := slices.IndexFunc(sc.Variants, func(v ProfileVariant) bool { return v.Profile == profile })
	if i < 0 {
		panic("scenarios: no variant " + profile + " in " + l.File)
	}
	sc.Variants[i].apply(sc)
	return sc, nil
}

// loadVariant loads the scenario's file again under a variant. The
// firmware binaries it names are the ones the scenario already read.
func (l *Loaded) loadVariant(profile string) (*Loaded, error) {
	sc, err := l.parseVariant(profile)
	if err != nil {
		return nil, err
	}
	read := func(name string) ([]byte, error) {
		for _, f := range l.Firmware {
			if f.File == name && f.data != nil {
				return f.data, nil
			}
		}
		if b, ok := l.variantFiles[name]; ok {
			return b, nil
		}
		return nil, fmt.Errorf("%s: not read", name)
	}
	return check(sc, read)
}

// checkVariants checks that every variant names another profile and loads
// under it; errors point into the variant's expectations or at its name.
func (l *Loaded) checkVariants(readFile ReadFile) error {
	for _, v := range l.Variants {
		if profiles[v.Profile] == nil {
			return v.pos.Errorf("profiles: %q is not a profile (available: %v)", v.Profile, ProfileNames())
		}
		if v.Profile == l.Profile {
			return v.pos.Errorf("profiles: %s is the scenario's own profile; its expectations are under expect", v.Profile)
		}
		if v.NotApplicable != "" {
			continue
		}
		sc, err := l.parseVariant(v.Profile)
		if err != nil {
			return err
		}
		keep := readFile
		if readFile != nil {
			keep = func(name string) ([]byte, error) {
				b, err := readFile(name)
				if err == nil {
					if l.variantFiles == nil {
						l.variantFiles = map[string][]byte{}
					}
					l.variantFiles[name] = b
				}
				return b, err
			}
		}
		if _, err := check(sc, keep); err != nil {
			return fmt.Errorf("%w (under profiles: %s)", err, v.Profile)
		}
	}
	return nil
}

// apply turns a parse of the scenario into the variant.
func (v ProfileVariant) apply(sc *Scenario) {
	if v.Device != nil {
		sc.Device = *v.Device
	}
	sc.Device.Profile = v.Profile
	sc.Expect = v.Expect
	sc.Variants = nil
	if v.Firmware != nil {
		sc.Firmware = v.Firmware
	}
	if v.Factory != nil {
		sc.Factory = *v.Factory
	}
}
