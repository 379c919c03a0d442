package scenarios

import (
	"bytes"
	"errors"
	"fmt"
	"go.yaml.in/yaml/v3"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/mbedapp"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/bootsim/bootsim/updateclient"
)

// Invariant names.
const (
	InvNoBrick     = "no-brick"
	InvAuthentic   = "authentic"
	InvNoDowngrade = "no-downgrade"
	InvSOTPIntact  = "sotp-intact"
)

// Invariants lists the invariants checked after every run.
var Invariants = []string{InvNoBrick, InvAuthentic, InvNoDowngrade, InvSOTPIntact}

var nameRE = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// Loaded is a scenario that passed every check, with what the checks
// resolved: the board, the layout and the bootloader configuration.
type Loaded struct {
	*Scenario
	Board  *sim.Board
	Layout *mbedlayout.Layout
	// appLayout is the layout device.mbed-app gives, before device.config.
	appLayout *mbedlayout.AppLayout
	Boot      bootloader.Config
	ROT       []byte // nil when none is provisioned
	Profile   string
	prof      Profile
	// Chain is the chain profile's layout (nil for other profiles).
	Chain *chain.Layout
	// Hardened is the hardened profile's bootloader settings (nil for
	// other profiles); the vendor key comes with the images.
	Hardened *bootloader.HardenedConfig
	// variantFiles are the firmware binaries only a variant names, read at
	// load so that Under does no I/O.
	variantFiles map[string][]byte
	builtIn      bool
	filesDir     string
}

// ReadFile reads a file a scenario names (a firmware binary), relative to
// the scenario file. The core does no I/O: the command line passes one in.
type ReadFile func(name string) ([]byte, error)

// Load parses and checks a scenario. Every error, syntax or meaning, is a
// *strictyaml.Error at file:line:col. readFile reads the binaries the
// scenario names; nil forbids them (built-in scenarios).
func Load(file string, data []byte, readFile ReadFile) (*Loaded, error) {
	sc, err := parse(file, data)
	if err != nil {
		return nil, err
	}
	l, err := check(sc, readFile)
	if err != nil {
		return nil, err
	}
	if err := l.checkVariants(readFile); err != nil {
		return nil, err
	}
	return l, nil
}

// parse decodes a scenario's YAML, and remembers where its top-level
// sections are.
func parse(file string, data []byte) (*Scenario, error) {
	sc := &Scenario{}
	if err := strictyaml.Decode(file, data, sc); err != nil {
		return nil, err
	}
	sc.File = file
	sc.Source = data
	sc.keys = map[string]strictyaml.Pos{}
	if n, err := strictyaml.Parse(file, data); err == nil && n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			v := n.Content[i+1]
			sc.keys[n.Content[i].Value] = strictyaml.Pos{File: file, Line: v.Line, Col: v.Column}
		}
	}
	return sc, nil
}

// top returns the position of a top-level section, for errors about what
// it lacks: its value if it is written, else the end of the document,
// where it would be added.
func top(sc *Scenario, key string) strictyaml.Pos {
	if p, ok := sc.keys[key]; ok {
		return p
	}
	return strictyaml.Pos{File: sc.File, Line: bytes.Count(bytes.TrimRight(sc.Source, "\n"), []byte("\n")) + 2, Col: 1}
}

func check(sc *Scenario, readFile ReadFile) (*Loaded, error) {
	l := &Loaded{Scenario: sc}
	switch {
	case sc.Name == "":
		return nil, top(sc, "scenario").Errorf("scenario: a name is required")
	case !nameRE.MatchString(sc.Name):
		return nil, top(sc, "scenario").Errorf("scenario: name %q: use lower-case words and digits joined by dashes", sc.Name)
	case sc.Summary == "":
		return nil, top(sc, "summary").Errorf("summary: a one-line summary is required")
	case len(sc.Steps) == 0:
		return nil, top(sc, "steps").Errorf("steps: at least one step is required")
	}
	if sc.Seed == 0 {
		sc.Seed = 1
	}
	if err := l.checkDevice(readFile); err != nil {
		return nil, err
	}
	if err := l.checkFirmware(readFile); err != nil {
		return nil, err
	}
	if err := l.checkFactory(); err != nil {
		return nil, err
	}
	if err := l.checkClient(); err != nil {
		return nil, err
	}
	for _, st := range sc.Steps {
		if err := st.validate(l, st.Pos); err != nil {
			return nil, err
		}
	}
	for _, e := range sc.Expect {
		if err := e.validate(l, e.Pos); err != nil {
			return nil, err
		}
	}
	if err := l.checkSweep(); err != nil {
		return nil, err
	}
	if b := l.Scenario.Budget; b != nil {
		if err := b.check(); err != nil {
			return nil, err
		}
	}
	return l, nil
}

func (l *Loaded) checkDevice(readFile ReadFile) error {
	d := &l.Device
	pos := d.pos
	if pos.File == "" {
		pos = top(l.Scenario, "device")
	}
	board := string(d.Board)
	if board == "" {
		board = d.Target
	}
	if board == "" {
		return pos.Errorf("device.board is required (one of %s), or device.target (an Mbed target name: %s)", strings.Join(sim.BoardNames(), ", "), strings.Join(sim.MbedTargets(), ", "))
	}
	b, err := loadBoard(board, readFile)
	if err != nil {
		at := d.boardPos
		if at.File == "" {
			at = pos
		}
		return at.Errorf("device.board: %v", err)
	}
	l.Board = b
	l.Profile = d.Profile
	if l.Profile == "" {
		l.Profile = ProfileClassic
	}
	p := profiles[l.Profile]
	if p == nil {
		return pos.Errorf("device.profile %q is not available in this version (available: %s)", d.Profile, strings.Join(ProfileNames(), ", "))
	}
	l.prof = p
	if d.Bootloader != "" && l.Profile != ProfileClassic {
		return pos.Errorf("device.bootloader picks a release of the Mbed bootloader (the classic profile); the %s profile has its own", l.Profile)
	}
	if d.MbedApp != "" {
		if err := l.readMbedApp(readFile, pos); err != nil {
			return err
		}
	} else if d.Target != "" && d.Board != "" {
		return pos.Errorf("device.target names the target mbed-app: is resolved for; without mbed-app: give board: alone")
	}
	return p.configure(l, pos)
}

// readMbedApp lays the device out from the scenario's mbed_app.json.
func (l *Loaded) readMbedApp(readFile ReadFile, pos strictyaml.Pos) error {
	d := &l.Device
	if l.Profile != ProfileClassic {
		return pos.Errorf("device.mbed-app: the %s profile lays its device out itself; mbed_app.json configures the classic bootloader", l.Profile)
	}
	if d.Storage != "" {
		return pos.Errorf("device.storage: the mbed_app.json says where candidates live (MBED_CLOUD_CLIENT_UPDATE_STORAGE); leave storage out")
	}
	target := d.Target
	if target == "" {
		target = l.Board.MbedTarget
	}
	if target == "" {
		return pos.Errorf("device.mbed-app: board %s has no Mbed target name; give device.target", l.Board.Name)
	}
	if readFile == nil {
		return pos.Errorf("device.mbed-app: this scenario cannot name files")
	}
	data, err := readFile(d.MbedApp)
	if err != nil {
		return pos.Errorf("device.mbed-app: %v", err)
	}
	app, err := mbedapp.Parse(d.MbedApp, data)
	if err != nil {
		return pos.Errorf("device.mbed-app: %v", err)
	}
	al, err := mbedlayout.FromMbedApp(l.Board, app, target)
	if err != nil {
		return pos.Errorf("device.mbed-app: %s for %s: %v", d.MbedApp, target, err)
	}
	switch lay := al.Layout; {
	case lay.KVStoreROT && d.Bootloader == string(bootloader.GenV33):
		return pos.Errorf("device.mbed-app: %s for %s keeps the root of trust in KVStore (mbed-bootloader.use-kvstore-rot = 1), which came with mbed-bootloader v4; v3.3 reads it from SOTP (give bootloader: v4.0, v4.1 or v4.1.3)", d.MbedApp, target)
	case lay.ROTSource() == "none" && lay.Storage != sim.DeviceInternal:
		return pos.Errorf("device.mbed-app: %s for %s keeps candidates on %s with no root of trust to check their HMAC (no sotp-section-*, use-kvstore-rot = 0)", d.MbedApp, target, lay.Storage)
	case !lay.HasSOTP() && d.Client == ClientFOTA:
		return pos.Errorf("device.client fota keeps the download's progress in SOTP, and %s for %s has none", d.MbedApp, target)
	}
	l.appLayout = al
	return nil
}

// loadBoard reads a board: a built-in one by its name or Mbed target
// name, or a board file of the user's own (relative to the scenario).
func loadBoard(name string, readFile ReadFile) (*sim.Board, error) {
	if !sim.IsBoardFile(name) {
		return sim.LoadBoard(name)
	}
	if readFile == nil {
		return nil, fmt.Errorf("%s: this scenario cannot name files", name)
	}
	data, err := readFile(name)
	if err != nil {
		return nil, err
	}
	return sim.ParseBoard(name, data)
}

// descriptorRoom is how much of a generated image the descriptor may take.
const descriptorRoom = 1024

func (l *Loaded) checkFirmware(readFile ReadFile) error {
	if len(l.Firmware) == 0 {
		return top(l.Scenario, "firmware").Errorf("firmware: at least one firmware image is required")
	}
	for _, f := range l.Firmware {
		if len(f.Name) > MaxName {
			return f.pos.Errorf("firmware name of %d characters: at most %d", len(f.Name), MaxName)
		}
		if !nameRE.MatchString(f.Name) {
			return f.pos.Errorf("firmware name %q: use lower-case words and digits joined by dashes", f.Name)
		}
		if f.Version == 0 {
			return f.pos.Errorf("firmware %s: a version greater than 0 is required (the manifest timestamp)", f.Name)
		}
		switch {
		case f.File != "":
			if f.Size != 0 {
				return f.pos.Errorf("firmware %s: give a size or a file, not both", f.Name)
			}
			if readFile == nil {
				return f.pos.Errorf("firmware %s: this scenario cannot name files", f.Name)
			}
			data, err := readFile(f.File)
			if err != nil {
				return f.pos.Errorf("firmware %s: %v", f.Name, err)
			}
			if len(data) == 0 || uint64(len(data)) > uint64(l.Layout.MaxApplicationSize) {
				return f.pos.Errorf("firmware %s: %s is %d bytes; want 1 to %d (the maximum application size)", f.Name, f.File, len(data), uint64(l.Layout.MaxApplicationSize))
			}
			if f.Behaviour != "" && f.Behaviour != updateclient.Healthy {
				return f.pos.Errorf("firmware %s: a user binary runs as a healthy application", f.Name)
			}
			f.data = data
			f.Size = units.Size(len(data))
		case f.Size == 0:
			return f.pos.Errorf("firmware %s: a size is required (e.g. size: 200KiB)", f.Name)
		case f.Size < descriptorRoom:
			return f.pos.Errorf("firmware %s: size %s is below the 1 KiB minimum of a generated image", f.Name, f.Size)
		}
		if err := l.prof.checkFirmware(l, f); err != nil {
			return err
		}
		if f.isBootloader() {
			if f.Platform != nil || f.ReadsResetReason {
				return f.pos.Errorf("firmware %s: platform and reads-reset-reason describe an application; a bootloader builds without Mbed OS's fault handler", f.Name)
			}
			continue
		}
		if f.Behaviour == "" {
			f.Behaviour = updateclient.Healthy
		}
		if !slices.Contains(updateclient.Behaviours(), f.Behaviour) {
			return f.pos.Errorf("firmware %s: behaviour %q (want %s)", f.Name, f.Behaviour, strings.Join(updateclient.Behaviours(), ", "))
		}
		if f.After != 0 && f.Behaviour == updateclient.Healthy {
			return f.pos.Errorf("firmware %s: after applies to crash, lockup and hang", f.Name)
		}
		if p := f.Platform; p != nil && p.RebootMax != nil && (*p.RebootMax < 0 || *p.RebootMax > 255) {
			return f.pos.Errorf("firmware %s: platform.error-reboot-max %d: want 0 to 255", f.Name, *p.RebootMax)
		}
	}
	return nil
}

// largestPlace is the size of the largest image the layout can hold: in the
// active region or, after its header, in a slot. A candidate larger than
// the active region is allowed: the bootloader refuses it ("Update image
// too large").
func (l *Loaded) largestPlace() uint64 {
	n := uint64(l.Layout.MaxApplicationSize)
	for _, s := range l.Layout.Slots(l.Board) {
		n = max(n, s.Size-firmwareHeaderRoom)
	}
	return n
}

// firmwareHeaderRoom is the most a slot's header takes before the body.
const firmwareHeaderRoom = 512

func (l *Loaded) firmwareRef(name string, pos strictyaml.Pos, what string) error {
	if l.Firmware.Get(name) == nil {
		return pos.Errorf("%s: unknown firmware %q (the scenario defines %s)", what, name, strings.Join(l.Firmware.Names(), ", "))
	}
	return nil
}

func (l *Loaded) checkFactory() error { return l.prof.checkFactory(l) }

// seededROT draws the ROT a device is provisioned with when the scenario
// does not say.
func seededROT(seed uint64) []byte {
	out := make([]byte, 16)
	x := seed*0x9E3779B97F4A7C15 + 0x632BE59BD9B4E019
	for i := range out {
		x ^= x >> 31
		x *= 0xBF58476D1CE4E5B9
		out[i] = byte(x >> 56)
	}
	return out
}

// regions are the named parts of the scenario's layout.
func (l *Loaded) regions() []storage.Region { return l.prof.regions(l) }

func (l *Loaded) regionNames() []string {
	var out []string
	for _, r := range l.regions() {
		out = append(out, r.Name)
	}
	return out
}

func (l *Loaded) region(name string, pos strictyaml.Pos) (storage.Region, error) {
	for _, r := range l.regions() {
		if r.Name == name {
			return r, nil
		}
	}
	return storage.Region{}, pos.Errorf("unknown region %q (this layout has %s)", name, strings.Join(l.regionNames(), ", "))
}

func (l *Loaded) checkMatch(m *OpMatch, pos strictyaml.Pos) error {
	if m == nil {
		return nil
	}
	if m.Region != "" {
		if _, err := l.region(m.Region, pos); err != nil {
			return err
		}
	}
	devs := append([]string{sim.DeviceInternal}, l.Board.External.Devices()...)
	if m.Device != "" && !slices.Contains(devs, m.Device) {
		return pos.Errorf("unknown device %q (this board has %s)", m.Device, strings.Join(devs, ", "))
	}
	return nil
}

// CheckRule checks that a fault rule names devices and regions the
// scenario's board and layout have, as an op match in a step must
// (a rule in a step, a --cut or --faults on the command line).
func (l *Loaded) CheckRule(r *storage.Rule) error {
	f, ok := storage.FilterOf(r.Match)
	if !ok {
		return nil
	}
	if f.Region != "" && !slices.Contains(l.regionNames(), f.Region) {
		return fmt.Errorf("unknown region %q (this layout has %s)", f.Region, strings.Join(l.regionNames(), ", "))
	}
	devs := append([]string{sim.DeviceInternal}, l.Board.External.Devices()...)
	if f.Device != "" && !slices.Contains(devs, f.Device) {
		return fmt.Errorf("unknown device %q (this board has %s)", f.Device, strings.Join(devs, " and "))
	}
	return nil
}

func (l *Loaded) checkCondition(c *Condition) error {
	switch c.Kind {
	case CondEvent:
		return checkMilestone(c.Value, c.Pos, "event")
	case CondRunning:
		return l.firmwareRef(c.Value, c.Pos, "running")
	case CondState:
		if !slices.Contains(stateNames(), c.Value) {
			return c.Pos.Errorf("state %q: want one of %s", c.Value, strings.Join(stateNames(), ", "))
		}
	case CondBoots:
		if c.N < 1 {
			return c.Pos.Errorf("boots: want at least 1")
		}
	}
	return nil
}

func stateNames() []string {
	var out []string
	for s := sim.StateOff; s <= sim.StateDeadEnd; s++ {
		out = append(out, s.String())
	}
	return out
}

// Defaults of the device's provisioning and link.
const (
	defaultVendorDomain = "example.com"
	defaultModelName    = "sim-device"
	defaultBandwidth    = 100000
	defaultLatency      = 50 * time.Millisecond
)

func (l *Loaded) vendorDomain() string {
	if l.Device.VendorDomain != "" {
		return l.Device.VendorDomain
	}
	return defaultVendorDomain
}

func (l *Loaded) modelName() string {
	if l.Device.ModelName != "" {
		return l.Device.ModelName
	}
	return defaultModelName
}

// ClientFOTA is device.client for a FOTA-style client.
const ClientFOTA = "fota"

func (l *Loaded) generation() updateclient.Generation {
	if l.Device.Client == "3.3" {
		return updateclient.Gen33
	}
	return updateclient.Gen34
}

func (l *Loaded) checkClient() error {
	pos := l.Device.pos
	if pos.File == "" {
		pos = top(l.Scenario, "device")
	}
	switch l.Device.Client {
	case "", "3.3", "3.4", ClientFOTA:
	default:
		return pos.Errorf("device.client %q: want 3.3, 3.4 or fota", l.Device.Client)
	}
	if l.Device.Resume {
		return pos.Errorf("device.resume: a download that resumes after a reset is the FOTA client's behaviour, not the Pelion update client's (it starts over): write device.client: fota")
	}
	for _, f := range l.Firmware {
		if f.Semver != "" {
			if _, err := firmware.PackSemver(f.Semver); err != nil {
				return f.pos.Errorf("firmware %s: semver %q: want MAJOR.MINOR.PATCH, each 0..999", f.Name, f.Semver)
			}
		}
	}
	return nil
}

func (l *Loaded) checkCampaign(c *Campaign) error {
	if err := l.firmwareRef(c.Firmware, c.pos, "campaign"); err != nil {
		return err
	}
	names := []string{c.Firmware}
	if c.Replay != "" {
		if err := l.firmwareRef(c.Replay, c.pos, "campaign.replay"); err != nil {
			return err
		}
		names = append(names, c.Replay)
	}
	if c.Manifest == "v3" {
		if l.Device.Client != ClientFOTA && l.Chain == nil {
			return c.pos.Errorf("campaign: v3 manifests are read by a FOTA-style client (device.client: fota); the Pelion update client reads v1")
		}
		for _, n := range names {
			if l.Firmware.Get(n).Semver == "" {
				return c.pos.Errorf("campaign: a v3 manifest needs a semver for firmware %s", n)
			}
		}
	}
	switch c.Attack {
	case "", AttackForged, AttackUnsigned, AttackWrongClass, AttackWrongVendor, AttackReplay:
	default:
		return c.pos.Errorf("campaign.attack %q: want forged, unsigned, wrong-class, wrong-vendor or replay", c.Attack)
	}
	switch c.Payload {
	case "", "match", PayloadMismatch, PayloadEmpty:
	default:
		return c.pos.Errorf("campaign.payload %q: want match, mismatch or empty", c.Payload)
	}
	seen := map[string]bool{}
	for _, s := range c.Sources {
		if seen[s.Name] {
			return c.pos.Errorf("campaign.sources: %q is given twice", s.Name)
		}
		seen[s.Name] = true
	}
	return nil
}

// ErrNotFound is returned for a scenario name the library does not have.
var ErrNotFound = errors.New("no such scenario")

// defaultTimeout bounds a wait or an armed power cut that gives no timeout.
const defaultTimeout = 60 * time.Second
