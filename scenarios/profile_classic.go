package scenarios

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/bootsim/bootsim/updateclient"
)

// ProfileClassic is the Mbed update stack as it is: the Mbed bootloader
// with one active image and candidate slots, SOTP, the Pelion update
// client.
const ProfileClassic = "classic"

func init() { registerProfile(classicProfile{}) }

// classicProfile implements Profile for the Mbed stack.
type classicProfile struct{}

func (classicProfile) Name() string { return ProfileClassic }

// configure lays the classic layout out for the storage the scenario
// names, with its mbed_app.json keys and the bootloader's.
func (classicProfile) configure(l *Loaded, pos strictyaml.Pos) error {
	d, b := &l.Device, l.Board
	kind := d.Storage
	if kind == "" {
		kind = b.Storage.Default
	}
	if l.appLayout == nil && !slices.Contains(b.Storages(), kind) {
		return pos.Errorf("device.storage %q: board %s keeps candidates on %s", d.Storage, b.Name, strings.Join(b.Storages(), ", "))
	}
	var layout *mbedlayout.Layout
	if l.appLayout != nil {
		c := *l.appLayout.Layout
		layout = &c
	} else {
		var err error
		if layout, err = mbedlayout.Raw(b, kind); err != nil {
			return pos.Errorf("%v", err)
		}
	}
	boot := bootloader.DefaultConfig(layout)
	if d.Bootloader != "" {
		g := bootloader.Generation(d.Bootloader)
		if !slices.Contains(bootloader.Generations(), g) {
			return pos.Errorf("device.bootloader %q: want one of %s", d.Bootloader, strings.Join(generationNames(), ", "))
		}
		boot.SetGeneration(g)
	}
	if a := l.appLayout; a != nil {
		boot.MaxBootRetries, boot.MaxCopyRetries = a.MaxBootRetries, a.MaxCopyRetries
	}
	for _, e := range d.Config {
		v, err := units.ParseSize(e.Value)
		if err != nil {
			return e.pos.Errorf("%s: %v", e.Key, err)
		}
		switch {
		case layout.SetKey(e.Key, v):
		case e.Key == "mbed-bootloader.max-copy-retries":
			boot.MaxCopyRetries = int(v)
		case e.Key == "mbed-bootloader.max-boot-retries":
			boot.MaxBootRetries = int(v)
		default:
			return e.pos.Errorf("unknown configuration key %q (known: layout keys as 'bootsim layout' prints them, mbed-bootloader.max-copy-retries, mbed-bootloader.max-boot-retries)", e.Key)
		}
		if boot.MaxCopyRetries < 1 || boot.MaxCopyRetries > 100 || boot.MaxBootRetries < 1 || boot.MaxBootRetries > 255 {
			return e.pos.Errorf("%s: out of range", e.Key)
		}
	}
	if err := layout.Resolve(b); err != nil {
		// The key the error names, if the scenario sets it; else the
		// device (the board's own values are at fault).
		cfgPos := pos
		for _, e := range d.Config {
			if strings.Contains(err.Error(), e.Key) || (keyRegion[e.Key] != "" && strings.HasPrefix(err.Error(), keyRegion[e.Key]+" ")) {
				cfgPos = e.pos
				break
			}
		}
		return cfgPos.Errorf("layout: %v", err)
	}
	l.Layout = layout
	l.Boot = boot
	return nil
}

func generationNames() []string {
	var out []string
	for _, g := range bootloader.Generations() {
		out = append(out, string(g))
	}
	return out
}

// keyRegion is the region a layout key places, for errors that name the
// region rather than the key.
var keyRegion = map[string]string{
	"mbed-bootloader.bootloader-size":           mbedlayout.RegionBootloader,
	"sotp-section-1-address":                    mbedlayout.RegionSOTP1,
	"sotp-section-1-size":                       mbedlayout.RegionSOTP1,
	"sotp-section-2-address":                    mbedlayout.RegionSOTP2,
	"sotp-section-2-size":                       mbedlayout.RegionSOTP2,
	"update-client.application-details":         mbedlayout.RegionActiveHeader,
	"mbed-bootloader.application-start-address": mbedlayout.RegionActiveApp,
	"mbed-bootloader.max-application-size":      mbedlayout.RegionActiveApp,
	"update-client.storage-address":             "slot-0",
	"update-client.storage-size":                "slot-0",
}

func (classicProfile) checkFirmware(l *Loaded, f *Firmware) error {
	if f.Stage != "" || f.Confirm != "" {
		return f.pos.Errorf("firmware %s: stage and confirm belong to the chain profile (device.profile: chain)", f.Name)
	}
	if f.File == "" && uint64(f.Size) > l.largestPlace() {
		return f.pos.Errorf("firmware %s: size %s fits neither the active region (%s) nor a slot", f.Name, f.Size, l.Layout.MaxApplicationSize)
	}
	return nil
}

func (classicProfile) checkFactory(l *Loaded) error {
	f := &l.Factory
	if len(f.Bootloaders)+len(f.Applications)+len(f.Trial) > 0 {
		return f.at("").Errorf("factory: bootloaders, applications and trial belong to the chain profile (device.profile: chain)")
	}
	if f.Active != "" {
		if err := l.firmwareRef(f.Active, f.at("active"), "factory.active"); err != nil {
			return err
		}
	}
	slots := l.Layout.Slots(l.Board)
	if len(f.Slots) > len(slots) {
		return f.at("slots").Errorf("factory.slots: %d images for %d slot(s) (update-client.storage-locations)", len(f.Slots), len(slots))
	}
	for i, s := range f.Slots {
		if s == "" {
			continue
		}
		pos := f.at(fmt.Sprintf("slots[%d]", i))
		if err := l.firmwareRef(s, pos, fmt.Sprintf("factory.slots[%d]", i)); err != nil {
			return err
		}
		// A candidate that overflows its slot would overwrite the next
		// one, or run past the end of the device.
		dev := l.Layout.Storage
		unit := uint64(l.Board.Flash.ProgramUnit)
		if dev != sim.DeviceInternal {
			unit = 512
			if dev == sim.DeviceSPI {
				unit = uint64(l.Board.External.Get(sim.DeviceSPI).ProgramUnit)
			}
		}
		slot := slots[i]
		if body := l.Layout.SlotBody(l.Board, i, unit); body+uint64(l.Firmware.Get(s).Size) > slot.Start+slot.Size {
			return pos.Errorf("factory.slots[%d]: %s (%s) does not fit slot %d (%s after its header)", i, s, l.Firmware.Get(s).Size, i, units.Size(slot.Start+slot.Size-body))
		}
	}
	switch f.ROT {
	case "none":
	case "":
		if l.Layout.ROTSource() == "none" {
			break // nowhere to provision one (internal_flash_no_rot)
		}
		l.ROT = seededROT(l.Seed)
	default:
		if l.Layout.ROTSource() == "none" {
			return f.at("rot").Errorf("factory.rot: the layout has no SOTP sections or KVStore to provision a root of trust in")
		}
		rot, err := hex.DecodeString(f.ROT)
		if err != nil || len(rot) != 16 {
			return f.at("rot").Errorf("factory.rot: want 32 hex digits (16 bytes) or none")
		}
		l.ROT = rot
	}
	if a := f.Active; a != "" && uint64(l.Firmware.Get(a).Size) > uint64(l.Layout.MaxApplicationSize) {
		return f.at("active").Errorf("factory.active: %s (%s) is larger than the maximum application size %s", a, l.Firmware.Get(a).Size, l.Layout.MaxApplicationSize)
	}
	return nil
}

func (classicProfile) checkStep(l *Loaded, st Step) error {
	if a, ok := st.Action.(stepApp); ok && a.a.Confirm {
		return a.a.pos.Errorf("app: confirm belongs to the chain profile")
	}
	return nil
}

// bootloaderImageSize is the size of the generated bootloader image.
const bootloaderImageSize = 24 << 10

func (classicProfile) buildImages(l *Loaded, out *images) error {
	bl := &sim.Descriptor{Stage: sim.StageBootloader, Impl: implClassic, Name: "mbed-bootloader", Version: 1,
		Behaviour: "healthy", Size: min(bootloaderImageSize, uint64(l.Layout.BootloaderSize))}
	b, err := sim.BuildImage(bl, l.Seed)
	if err != nil {
		return err
	}
	out.bootloader = &sim.Image{Desc: bl, Bytes: b}
	return nil
}

func (classicProfile) newMachine(l *Loaded, imgs *images, seed uint64, from *storage.Snapshot, client *updateclient.Config, svc *cloud.Service) (*sim.Machine, error) {
	var regions []storage.Region
	if from == nil { // a snapshot brings its regions
		regions = l.Layout.Regions(l.Board)
	}
	m, err := sim.New(sim.Config{Board: l.Board, Regions: regions, Seed: seed, Storage: from, Cache: imgs.cache})
	if err != nil {
		return nil, err
	}
	m.Register(implClassic, bootloader.NewClassic(l.Boot))
	m.Register(implApp, updateclient.App{Client: client, Service: svc})
	m.AddImage(imgs.bootloader)
	l.addImages(m, imgs)
	return m, nil
}

func (classicProfile) programFactory(l *Loaded, m *sim.Machine, imgs *images) error {
	return l.programClassicFactory(m, imgs)
}

func (classicProfile) regions(l *Loaded) []storage.Region { return l.Layout.Regions(l.Board) }

func (classicProfile) invariant(l *Loaded, name string) (bool, string) {
	switch name {
	case InvNoDowngrade:
		return false, "" // versions are timestamps compared with whatever is installed
	case InvAuthentic:
		return l.Layout.Storage != sim.DeviceInternal, "" // internal candidates carry only a CRC
	case InvSOTPIntact:
		if l.ROT == nil {
			return true, "no ROT was provisioned"
		}
	}
	return true, ""
}

func (classicProfile) canRun(l *Loaded) (bool, string) {
	if l.Factory.Active != "" || slices.ContainsFunc(l.Factory.Slots, func(s string) bool { return s != "" }) {
		return true, ""
	}
	return false, "the device never held an application"
}

func (classicProfile) recoveryBoots(*Loaded) int { return recoveryBoots }
