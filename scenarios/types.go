// Package scenarios holds the scenario format, its loader, the runner that
// plays a scenario on a simulated device, the expectations and invariants
// it checks, and the built-in library of scenarios.
package scenarios

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"go.yaml.in/yaml/v3"
)

// Scenario is one scenario file: a device, its firmware and factory state,
// the steps to play and what must hold afterwards.
type Scenario struct {
	Name     string      `yaml:"scenario" jsonschema:"required,description=Unique name; lower-case words joined by dashes."`
	Summary  string      `yaml:"summary" jsonschema:"required,description=One line: the story the scenario tells."`
	Tags     []string    `yaml:"tags,omitempty" jsonschema:"description=Labels to select scenarios by."`
	Seed     uint64      `yaml:"seed,omitempty" jsonschema:"description=Seed of every random choice in the run (default 1)."`
	Device   Device      `yaml:"device" jsonschema:"required"`
	Firmware FirmwareSet `yaml:"firmware" jsonschema:"required,description=The firmware images the scenario builds\\, by name."`
	Factory  Factory     `yaml:"factory,omitempty"`
	Steps    []Step      `yaml:"steps" jsonschema:"required,description=What happens\\, in order."`
	Expect   []Expect    `yaml:"expect,omitempty" jsonschema:"description=What must hold at the end."`
	Budget   *Budget     `yaml:"budget,omitempty" jsonschema:"description=What a run may spend: boots\\, virtual time\\, trace events\\, kept journal bytes; a run that reaches one stops and fails."`
	Sweep    *Sweep      `yaml:"sweep,omitempty" jsonschema:"description=How the device recovers after a cut a sweep (or run --cut) injects\\, and what must hold then."`
	// Variants are the other profiles the scenario makes sense under.
	Variants ProfileVariants `yaml:"profiles,omitempty" jsonschema:"description=Other update designs the scenario makes sense under (bootsim compare runs it under each)\\, each with the expectations that hold there: hardened: {expect: [...]}."`

	// File is where the scenario was read from ("library/x.yaml" for a
	// built-in one).
	File string `yaml:"-" json:"-"`
	// Source is the scenario's YAML text.
	Source []byte `yaml:"-" json:"-"`
	// keys are the positions of the top-level sections' values.
	keys map[string]strictyaml.Pos
}

// Device is the simulated device.
type Device struct {
	// Board is a built-in board (k64f), its Mbed target name (K64F), or
	// the path of a board file of one's own, relative to the scenario.
	Board BoardRef `yaml:"board,omitempty"`
	// MbedApp is an mbed_app.json (relative to the scenario) that lays the
	// device out for Target (default: the board's Mbed target); the board
	// defaults to Target's.
	MbedApp string `yaml:"mbed-app,omitempty" jsonschema:"description=An mbed_app.json to lay the device out from\\, as the Mbed tools resolve it for the target (classic profile)."`
	// Bootloader is the mbed-bootloader release the classic profile
	// models (bootloader.Generations; default v4.1.3).
	Bootloader string `yaml:"bootloader,omitempty" jsonschema:"enum=v3.3,enum=v4.0,enum=v4.1,enum=v4.1.3,description=The mbed-bootloader release (classic profile): v3.3 and v4.0 count every boot in the boot counter\\, v4.1 (4.1.0 to 4.1.2) software resets and above\\, v4.1.3 (default) watchdog resets and above."`
	Target     string `yaml:"target,omitempty" jsonschema:"description=The Mbed target (K64F): the board when board: is not given\\, and the target_overrides mbed-app: is resolved for."`
	Profile    string `yaml:"profile,omitempty" jsonschema:"enum=chain,enum=classic,enum=hardened,description=Update design (default classic)."`
	Storage    string `yaml:"storage,omitempty" jsonschema:"enum=sd,enum=spi,enum=internal,description=Where candidates live (default: the board's)."`
	// Config overrides configuration keys: layout keys of mbed_app.json and
	// mbed-bootloader.* keys.
	Config ConfigMap `yaml:"config,omitempty" jsonschema:"description=Configuration keys as in mbed_app.json\\, e.g. mbed-bootloader.max-boot-retries: 5."`
	// Client is the update client: the Pelion update client (hub) of
	// generation 3.3 (candidate header written at prepare) or 3.4 (the
	// default; at activate), or fota, a FOTA-style client: 3.4's order,
	// v3 manifests, and a download that resumes after a reset from the
	// progress kept in SOTP. The hub reads v1 manifests and starts a cut
	// download over.
	Client string `yaml:"client,omitempty" jsonschema:"enum=3.3,enum=3.4,enum=fota,description=Update client: the Pelion update client 3.3 (writes the candidate header before the payload) or 3.4 (default; after the hash check)\\, or fota (a FOTA-style client: v3 manifests and a download that resumes after a reset)."`
	// Resume is the old spelling of client: fota, refused with a hint.
	Resume bool `yaml:"resume,omitempty" jsonschema:"description=Replaced by client: fota (a download that resumes after a reset is the FOTA client's behaviour)."`
	// VendorDomain and ModelName give the vendor and class ids the device
	// was provisioned with.
	VendorDomain string `yaml:"vendor-domain,omitempty" jsonschema:"description=Vendor domain: vendor id = uuid5(DNS\\, domain) (default example.com)."`
	ModelName    string `yaml:"model-name,omitempty" jsonschema:"description=Device model: class id = uuid5(vendor id\\, model) (default sim-device)."`
	// Network is the device's link to the update service.
	Network struct {
		Bandwidth uint64         `yaml:"bandwidth,omitempty" jsonschema:"description=Bytes per second (default 100000)."`
		Latency   units.Duration `yaml:"latency,omitempty" jsonschema:"description=Per request (default 50ms)."`
	} `yaml:"network,omitempty"`
	pos strictyaml.Pos
	// boardPos is where board: is written, for errors about the board.
	boardPos strictyaml.Pos
}

// BoardRef names a board: a built-in one by its name (k64f) or its Mbed
// target name (K64F), or a board file by its path (it has a slash or a
// .yaml extension).
type BoardRef string

// UnmarshalStrictYAML records the device's position.
func (d *Device) UnmarshalStrictYAML(dec strictyaml.Decoder, n *yaml.Node) error {
	type plain Device
	var p plain
	if err := dec.Decode(n, &p); err != nil {
		return err
	}
	*d = Device(p)
	d.pos = dec.At(n)
	d.boardPos = d.pos
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value == "board" {
			d.boardPos = dec.At(n.Content[i+1])
		}
	}
	return nil
}

// ConfigMap is an ordered set of configuration keys.
type ConfigMap []ConfigEntry

// ConfigEntry is one configuration key and its value as written.
type ConfigEntry struct {
	Key, Value string
	pos        strictyaml.Pos
}

// UnmarshalStrictYAML decodes a mapping of keys to scalars, in order.
func (c *ConfigMap) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, "want a mapping of configuration keys")
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if v.Kind != yaml.ScalarNode {
			return d.Errorf(v, "the value of %s must be a number or an expression", k.Value)
		}
		if slices.ContainsFunc(*c, func(e ConfigEntry) bool { return e.Key == k.Value }) {
			return d.Errorf(k, "%q is given twice", k.Value)
		}
		*c = append(*c, ConfigEntry{Key: k.Value, Value: v.Value, pos: d.At(v)})
	}
	return nil
}

// Firmware is a firmware image the scenario builds: generated filler of a
// size, or a user's binary file.
type Firmware struct {
	Name    string     `yaml:"-"`
	Version uint64     `yaml:"version" jsonschema:"required,description=Firmware version: the manifest timestamp."`
	Size    units.Size `yaml:"size,omitempty" jsonschema:"description=Image size\\, e.g. 200KiB (generated images)."`
	File    string     `yaml:"file,omitempty" jsonschema:"description=A binary to use instead of a generated image; relative to the scenario file."`
	// Behaviour is how the application behaves: healthy, crash, lockup or
	// hang.
	Behaviour string         `yaml:"behaviour,omitempty" jsonschema:"enum=healthy,enum=crash,enum=lockup,enum=hang,enum=corrupts-app,enum=wrong-entry,description=How the image behaves when run (default healthy): crash is a HardFault Mbed OS's fault handler reports before it resets by software or halts in mbed_die (platform settings); lockup is a fault the core cannot take (a lockup reset only where the board has one); hang stops kicking the watchdog. A chain bootloader may also corrupt the application it boots (corrupts-app) or jump to the wrong entry (wrong-entry)."`
	After     units.Duration `yaml:"after,omitempty" jsonschema:"description=crash/hang: how long after start (0: in start-up code\\, before RAM is initialised)."`
	Watchdog  units.Duration `yaml:"watchdog,omitempty" jsonschema:"description=Start the watchdog with this timeout (hang: default 1s)."`
	// Platform is the Mbed OS platform configuration the application was
	// built with (its mbed_app.json), over the board's target defaults.
	Platform *PlatformConfig `yaml:"platform,omitempty" jsonschema:"description=The application's Mbed OS platform.* settings for fatal errors (default: the board's target overrides)."`
	// ReadsResetReason says the application calls Mbed's
	// ResetReason::get(), which clears the chip's reset flags.
	ReadsResetReason bool `yaml:"reads-reset-reason,omitempty" jsonschema:"description=The application reads its reset reason with ResetReason::get()\\, which clears the chip's reset flags (sticky on STM32)."`
	// Semver is the semantic version v3 manifests give the firmware.
	Semver string `yaml:"semver,omitempty" jsonschema:"description=Semantic version for v3 manifests\\, e.g. 1.2.3."`
	// Attacker marks an image the vendor did not build.
	Attacker bool `yaml:"attacker,omitempty" jsonschema:"description=Not built by the vendor: running it violates the authentic invariant."`
	// Stage is the stage the image is for (chain profile): application
	// (the default) or bootloader.
	Stage string `yaml:"stage,omitempty" jsonschema:"enum=application,enum=bootloader,description=Chain profile: the stage the image is for (default application)."`
	// Confirm says whether a chain application confirms itself once it
	// registers with the service (auto, the default) or never.
	Confirm string `yaml:"confirm,omitempty" jsonschema:"enum=auto,enum=never,description=Chain profile: an application confirms itself after it registers (auto\\, default) or never."`
	pos     strictyaml.Pos
	data    []byte // a user binary's bytes
}

// PlatformConfig is the part of an application's Mbed OS platform
// configuration that decides what it does after a fatal error.
type PlatformConfig struct {
	CrashCapture *bool `yaml:"crash-capture-enabled,omitempty" jsonschema:"description=platform.crash-capture-enabled: keep the error context and a reboot count in RAM across a warm reset."`
	AutoReboot   *bool `yaml:"fatal-error-auto-reboot-enabled,omitempty" jsonschema:"description=platform.fatal-error-auto-reboot-enabled: with crash capture\\, a fatal error resets by software instead of halting in mbed_die."`
	RebootMax    *int  `yaml:"error-reboot-max,omitempty" jsonschema:"description=platform.error-reboot-max (0 to 255): the reboot count at which the next start halts before main()."`
	// ClearsRebootInfo says the application's mbed_error_reboot_callback
	// clears the error context (mbed_reset_reboot_error_info).
	ClearsRebootInfo bool `yaml:"reboot-callback-clears,omitempty" jsonschema:"description=The application's mbed_error_reboot_callback calls mbed_reset_reboot_error_info\\, so a start after a fatal error goes on to main()."`
}

// FirmwareSet is the scenario's firmware, in the order written.
type FirmwareSet []*Firmware

// UnmarshalStrictYAML decodes a mapping of names to firmware, in order.
func (fs *FirmwareSet) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	if n.Kind != yaml.MappingNode {
		return d.Errorf(n, "want a mapping of firmware names to their description")
	}
	if len(n.Content)/2 > MaxFirmware {
		return d.Errorf(n, "%d firmware images: a scenario has at most %d", len(n.Content)/2, MaxFirmware)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if seen[k.Value] {
			return d.Errorf(k, "firmware %q is given twice", k.Value)
		}
		seen[k.Value] = true
		f := &Firmware{Name: k.Value, pos: d.At(k)}
		if err := d.Decode(v, f); err != nil {
			return err
		}
		*fs = append(*fs, f)
	}
	return nil
}

// MaxFirmware and MaxName bound a scenario's firmware: each image is
// built in memory, and a name goes into its descriptor (1 KiB at most).
const (
	MaxFirmware = 256
	MaxName     = 64
)

// Get returns the firmware with a name, or nil.
func (fs FirmwareSet) Get(name string) *Firmware {
	for _, f := range fs {
		if f.Name == name {
			return f
		}
	}
	return nil
}

// Names returns the firmware names in order.
func (fs FirmwareSet) Names() []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.Name)
	}
	return out
}

// Factory is the device as it leaves the factory.
type Factory struct {
	// Active is the firmware installed as the active image ("" for none:
	// an erased active region).
	Active string `yaml:"active,omitempty" jsonschema:"description=Firmware installed as the active image (default: none)."`
	// Slots lists the firmware in each candidate slot ("" for an empty slot).
	Slots []string `yaml:"slots,omitempty" jsonschema:"description=Firmware in each candidate slot\\, by slot index; an empty string leaves a slot empty."`
	// Bootloaders and Applications are the chain profile's stored
	// versions, by slot; Trial lists those not confirmed yet (they boot on
	// trial). The newest version of each stage runs first.
	Bootloaders  []string `yaml:"bootloaders,omitempty" jsonschema:"description=Chain profile: the bootloader versions stored\\, by slot."`
	Applications []string `yaml:"applications,omitempty" jsonschema:"description=Chain profile: the application versions stored\\, by slot."`
	Trial        []string `yaml:"trial,omitempty" jsonschema:"description=Chain profile: stored versions not yet confirmed (they boot on trial)."`
	// ROT is the 128-bit root of trust provisioned in SOTP, 32 hex digits;
	// "none" provisions none. The default is drawn from the seed.
	ROT string `yaml:"rot,omitempty" jsonschema:"description=Root of trust in SOTP\\, 32 hex digits\\, or none (default: drawn from the seed)."`
	pos map[string]strictyaml.Pos
}

// UnmarshalStrictYAML records the positions of the factory's fields.
func (f *Factory) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	type plain Factory
	var p plain
	if err := d.Decode(n, &p); err != nil {
		return err
	}
	*f = Factory(p)
	f.pos = map[string]strictyaml.Pos{"": d.At(n)}
	for i := 0; i+1 < len(n.Content); i += 2 {
		f.pos[n.Content[i].Value] = d.At(n.Content[i+1])
		if n.Content[i].Value == "slots" {
			for j, s := range n.Content[i+1].Content {
				f.pos[fmt.Sprintf("slots[%d]", j)] = d.At(s)
			}
		}
	}
	return nil
}

func (f *Factory) at(field string) strictyaml.Pos {
	if p, ok := f.pos[field]; ok {
		return p
	}
	return f.pos[""]
}

// oneOf decodes a node that is either a bare word (one of words) or a
// one-key mapping whose key is one of keys; it returns the word or key, and
// the value node (nil for a bare word).
func oneOf(d strictyaml.Decoder, n *yaml.Node, what string, words, keys []string) (string, *yaml.Node, error) {
	all := append(slices.Clone(words), keys...)
	slices.Sort(all)
	all = slices.Compact(all)
	switch n.Kind {
	case yaml.ScalarNode:
		if slices.Contains(words, n.Value) {
			return n.Value, nil, nil
		}
		if slices.Contains(keys, n.Value) {
			return "", nil, d.Errorf(n, "%s %q needs a value (write %s: …)", what, n.Value, n.Value)
		}
		return "", nil, d.Errorf(n, "unknown %s %q (want one of: %s)", what, n.Value, strings.Join(all, ", "))
	case yaml.MappingNode:
		if len(n.Content) != 2 {
			return "", nil, d.Errorf(n, "a %s is one key, got %d", what, len(n.Content)/2)
		}
		k := n.Content[0]
		if slices.Contains(keys, k.Value) {
			return k.Value, n.Content[1], nil
		}
		if slices.Contains(words, k.Value) {
			return "", nil, d.Errorf(k, "%s %q takes no value", what, k.Value)
		}
		return "", nil, d.Errorf(k, "unknown %s %q (want one of: %s)", what, k.Value, strings.Join(all, ", "))
	}
	return "", nil, d.Errorf(n, "want a %s: a word or a one-key mapping", what)
}
