package scenarios

import (
	"bytes"
	"crypto/sha256"
	"slices"
	"strings"
	"time"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/hardened"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/bootsim/bootsim/updateclient"
)

// ProfileHardened is the Mbed layout with the five weaknesses of
// mbed-stack.md §7 fixed (bootloader.Hardened).
const ProfileHardened = "hardened"

func init() { registerProfile(hardenedProfile{}) }

// hardenedProfile implements Profile for the hardened design.
type hardenedProfile struct{}

func (hardenedProfile) Name() string { return ProfileHardened }

// Implementation name of the hardened bootloader.
const implHardened = "hardened"

// hardenedAppWatchdog is the watchdog an application of the hardened
// profile kicks unless its firmware says otherwise: the bootloader's own
// watchdog keeps running after the jump, as on a real part.
const hardenedAppWatchdog = 3 * time.Second

// hardenedKeys are the hardened profile's own configuration keys.
var hardenedKeys = []string{"hardened.encrypt-candidates", "hardened.max-attempts"}

// configure lays out the classic layout of the board, with two candidate
// locations unless the scenario says otherwise: slot 0 for the update
// client, the last one for the bootloader's saved copy.
func (hardenedProfile) configure(l *Loaded, pos strictyaml.Pos) error {
	if l.Device.Client == "3.3" {
		return pos.Errorf("device.client 3.3 writes the candidate's header before its body; the hardened profile needs the header last (3.4)")
	}
	var own []ConfigEntry
	rest := l.Device.Config[:0:0]
	for _, e := range l.Device.Config {
		if slices.Contains(hardenedKeys, e.Key) {
			own = append(own, e)
		} else {
			rest = append(rest, e)
		}
	}
	hasLocations := slices.ContainsFunc(rest, func(e ConfigEntry) bool { return e.Key == "update-client.storage-locations" })
	saved := l.Device.Config
	l.Device.Config = rest
	if !hasLocations {
		l.Device.Config = append(slices.Clone(rest), ConfigEntry{Key: "update-client.storage-locations", Value: "2", pos: pos})
	}
	err := classicProfile{}.configure(l, pos)
	l.Device.Config = saved
	if err != nil {
		return err
	}
	if len(l.Layout.Slots(l.Board)) < 2 {
		return pos.Errorf("the hardened profile needs two candidate locations (update-client.storage-locations: 2): one for updates, one for the saved copy")
	}
	cfg := bootloader.HardenedConfig{MaxAttempts: bootloader.DefaultHardenedAttempts}
	for _, e := range own {
		v, err := units.ParseSize(e.Value)
		if err != nil {
			return e.pos.Errorf("%s: %v", e.Key, err)
		}
		switch e.Key {
		case "hardened.encrypt-candidates":
			if v > 1 {
				return e.pos.Errorf("%s: want 0 or 1", e.Key)
			}
			if v == 1 && l.Layout.Storage == sim.DeviceInternal {
				return e.pos.Errorf("%s: candidates on internal flash are not off-chip; the option is for sd and spi", e.Key)
			}
			cfg.Encrypt = v == 1
		default:
			if v < 1 || v > 100 {
				return e.pos.Errorf("%s: %d out of range 1..100", e.Key, v)
			}
			cfg.MaxAttempts = int(v)
		}
	}
	l.Hardened = &cfg
	return nil
}

func (hardenedProfile) checkFirmware(l *Loaded, f *Firmware) error {
	if f.Stage != "" {
		return f.pos.Errorf("firmware %s: stage belongs to the chain profile (device.profile: chain)", f.Name)
	}
	if f.Confirm != "" && f.Confirm != "auto" && f.Confirm != "never" {
		return f.pos.Errorf("firmware %s: confirm %q: want auto or never", f.Name, f.Confirm)
	}
	if f.File == "" && uint64(f.Size)+firmware.TrailerSize > l.largestPlace() {
		return f.pos.Errorf("firmware %s: size %s and its %d-byte signature fit neither the active region (%s) nor a slot", f.Name, f.Size, firmware.TrailerSize, l.Layout.MaxApplicationSize)
	}
	return nil
}

func (hardenedProfile) checkFactory(l *Loaded) error {
	if len(l.Factory.Slots) > 1 {
		return l.Factory.at("slots").Errorf("factory.slots: the hardened profile's update client writes slot 0 only (the last slot holds the bootloader's saved copy)")
	}
	return classicProfile{}.checkFactory(l)
}

func (hardenedProfile) checkStep(l *Loaded, st Step) error {
	if a, ok := st.Action.(stepApp); ok && a.a.Confirm {
		return a.a.pos.Errorf("app: confirm belongs to the chain profile; a hardened application confirms itself once registered (firmware confirm: never to stop it)")
	}
	return nil
}

func (hardenedProfile) buildImages(l *Loaded, out *images) error {
	key := seededKey(l.Seed, "vendor")
	out.vendor = &key.PublicKey
	bl := &sim.Descriptor{Stage: sim.StageBootloader, Impl: implHardened, Name: "hardened-bootloader", Version: 1,
		Behaviour: "healthy", Size: min(bootloaderImageSize, uint64(l.Layout.BootloaderSize))}
	b, err := sim.BuildImage(bl, l.Seed)
	if err != nil {
		return err
	}
	out.bootloader = &sim.Image{Desc: bl, Bytes: b}
	// Every application is signed by the vendor at build time: the
	// trailer travels with the image into every place it is copied.
	for _, f := range l.Firmware {
		d := l.appDescriptor(f)
		if f.Confirm == "never" {
			d.Params = append(d.Params, [2]string{"confirm", "never"})
		}
		if f.Watchdog == 0 {
			d.Params = append(d.Params, [2]string{"watchdog", hardenedAppWatchdog.String()})
		}
		slices.SortFunc(d.Params, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
		img, err := l.buildApp(d, f)
		if err != nil {
			return err
		}
		if err := l.sign(img, f, key); err != nil {
			return err
		}
		out.app[f.Name] = img
	}
	return nil
}

// hardenedConfig is the bootloader's configuration for a scenario's run.
func (l *Loaded) hardenedConfig(imgs *images) bootloader.HardenedConfig {
	cfg := bootloader.DefaultHardenedConfig(l.Layout, imgs.vendor)
	cfg.MaxAttempts = l.Hardened.MaxAttempts
	cfg.Encrypt = l.Hardened.Encrypt
	cfg.BackwardCompatibleKey = l.Boot.BackwardCompatibleKey
	return cfg
}

// hardenedAreas are the SOTP areas of the scenario's layout.
func (l *Loaded) hardenedAreas() *hardened.Areas {
	a1, a2 := l.Layout.SOTPAreas()
	return &hardened.Areas{A1: a1, A2: a2}
}

func (hardenedProfile) newMachine(l *Loaded, imgs *images, seed uint64, from *storage.Snapshot, client *updateclient.Config, svc *cloud.Service) (*sim.Machine, error) {
	var regions []storage.Region
	if from == nil { // a snapshot brings its regions
		regions = HardenedRegions(l.Board, l.Layout)
	}
	m, err := sim.New(sim.Config{Board: l.Board, Regions: regions, Seed: seed, Storage: from, Cache: imgs.cache})
	if err != nil {
		return nil, err
	}
	m.Register(implHardened, bootloader.NewHardened(l.hardenedConfig(imgs)))
	m.Register(implApp, updateclient.App{Client: client, Service: svc, Hardened: l.hardenedAreas()})
	m.AddImage(imgs.bootloader)
	l.addImages(m, imgs)
	return m, nil
}

// programFactory writes the classic factory state with signed images; a
// factory provisioning a hardened device also writes the active image's
// saved copy (the golden image) and raises the anti-rollback counter to
// its version.
func (hardenedProfile) programFactory(l *Loaded, m *sim.Machine, imgs *images) error {
	if err := l.programClassicFactory(m, imgs); err != nil {
		return err
	}
	if l.Factory.Active == "" {
		return nil
	}
	var err error
	m.Factory(func() {
		name := l.Factory.Active
		img, f := imgs.app[name], l.Firmware.Get(name)
		dev := m.Storage().Device(l.Layout.Storage)
		i := len(l.Layout.Slots(l.Board)) - 1
		u := dev.ProgramSize()
		if body := l.Layout.SlotBody(l.Board, i, u); body+uint64(len(img.Bytes)) <= l.Layout.Slots(l.Board)[i].Start+l.Layout.Slots(l.Board)[i].Size {
			var data []byte
			if data, err = l.offChipBytes(img); err != nil {
				return
			}
			dev.Load(l.Layout.Slots(l.Board)[i].Start, storage.PadToUnit(internalHeader(f, img).Encode(), u))
			dev.Load(body, storage.PadToUnit(data, u))
		}
		a := l.hardenedAreas()
		var st *hardened.Store
		if st, err = hardened.Open(m.Internal(), a.A1, a.A2); err == nil {
			err = st.Raise(f.Version)
		}
	})
	return err
}

// HardenedRegions is a layout's regions as the hardened profile names
// them: the last slot holds the saved copy.
func HardenedRegions(b *sim.Board, l *mbedlayout.Layout) []storage.Region {
	rs := l.Regions(b)
	last := mbedlayout.SlotRegion(len(l.Slots(b)) - 1)
	for i := range rs {
		if rs[i].Name == last {
			rs[i].Name = RegionSaved
		}
	}
	return rs
}

// RegionSaved is the hardened profile's region of the saved copy.
const RegionSaved = "saved"

func (hardenedProfile) regions(l *Loaded) []storage.Region {
	return HardenedRegions(l.Board, l.Layout)
}

// imageStart: slot 0 and the saved copy hold their image after a header.
func (hardenedProfile) imageStart(l *Loaded, region string, dev storage.Device) (uint64, bool) {
	switch region {
	case mbedlayout.SlotRegion(0):
		return l.Layout.SlotBody(l.Board, 0, dev.ProgramSize()), true
	case RegionSaved:
		return l.Layout.SlotBody(l.Board, len(l.Layout.Slots(l.Board))-1, dev.ProgramSize()), true
	}
	return 0, false
}

func (hardenedProfile) invariant(l *Loaded, name string) (bool, string) {
	if name == InvSOTPIntact && l.ROT == nil {
		return true, "no ROT was provisioned"
	}
	return true, ""
}

func (hardenedProfile) canRun(l *Loaded) (bool, string) { return classicProfile{}.canRun(l) }

// recoveryBoots: a new version's attempts, its rollback, and the classic
// budget besides.
func (hardenedProfile) recoveryBoots(l *Loaded) int {
	return recoveryBoots + l.Hardened.MaxAttempts + 1
}

// encrypts reports whether the scenario keeps off-chip images encrypted.
func (l *Loaded) encrypts() bool { return l.Hardened != nil && l.Hardened.Encrypt }

// offChipBytes returns an image as the device keeps it on its candidate
// storage: encrypted with the device's candidate key when the scenario
// says so, else as it is.
func (l *Loaded) offChipBytes(img *sim.Image) ([]byte, error) {
	if !l.encrypts() {
		return img.Bytes, nil
	}
	c, err := l.candidateCipher(img)
	if err != nil {
		return nil, err
	}
	out := bytes.Clone(img.Bytes)
	c.XORAt(0, out)
	return out, nil
}

// candidateCipher is the cipher of an image on the scenario's device.
func (l *Loaded) candidateCipher(img *sim.Image) (*firmware.CandidateCipher, error) {
	key, err := l.candidateKey()
	if err != nil {
		return nil, err
	}
	return firmware.NewCandidateCipher(key, sha256.Sum256(img.Bytes))
}

// candidateHeaderFor is the header the device's client writes for an
// image in slot 0: encrypted or not, as the scenario says.
func (l *Loaded) candidateHeaderFor(img *sim.Image, version uint64, key func() ([]byte, error)) ([]byte, error) {
	if !l.encrypts() {
		return updateclient.CandidateHeader(l.Layout.Storage, version, uint64(len(img.Bytes)), sha256.Sum256(img.Bytes), key)
	}
	k, err := key()
	if err != nil {
		return nil, err
	}
	c, err := firmware.NewCandidateCipher(k, sha256.Sum256(img.Bytes))
	if err != nil {
		return nil, err
	}
	return updateclient.EncryptedCandidateHeader(version, uint64(len(img.Bytes)), sha256.Sum256(img.Bytes), c.IV(), k)
}
