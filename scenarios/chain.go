package scenarios

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/bootsel"
	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/bootsim/bootsim/updateclient"
)

// The chain profile: an immutable boot selector, stored bootloader
// versions, stored application versions (package chain). This file holds
// what the scenario format and the runner do for it.

// ProfileChain is the multi-stage chain profile.
const ProfileChain = "chain"

func init() { registerProfile(chainProfile{}) }

// chainProfile implements Profile for the chain.
type chainProfile struct{}

func (chainProfile) Name() string { return ProfileChain }

func (chainProfile) configure(l *Loaded, pos strictyaml.Pos) error {
	if err := l.checkChainDevice(pos); err != nil {
		return err
	}
	// The classic layout of the board stays resolved for what reads it
	// beside the stages (a user binary's size limit); the chain's stages
	// never do.
	layout, err := mbedlayout.For(l.Board, "")
	if err != nil {
		return pos.Errorf("%v", err)
	}
	l.Layout, l.Boot = layout, bootloader.DefaultConfig(layout)
	return nil
}

func (chainProfile) checkFirmware(l *Loaded, f *Firmware) error { return l.checkChainFirmware(f) }

func (chainProfile) checkFactory(l *Loaded) error {
	if l.Factory.ROT != "" {
		return l.Factory.at("rot").Errorf("factory.rot: the chain profile keeps no SOTP")
	}
	return l.checkChainFactory()
}

func (chainProfile) checkStep(l *Loaded, st Step) error {
	c, ok := st.Action.(stepCampaign)
	switch {
	case ok && c.c.Manifest == "v3":
		return st.Pos.Errorf("campaign: the chain profile's versions are v1 timestamps (the firmware's version); use a v1 manifest")
	case ok && c.c.Payload == PayloadEmpty:
		return st.Pos.Errorf("campaign: an empty payload erases a classic candidate slot; the chain profile has none")
	}
	return nil
}

func (chainProfile) buildImages(l *Loaded, out *images) error { return l.buildChainImages(out) }

func (chainProfile) newMachine(l *Loaded, imgs *images, seed uint64, from *storage.Snapshot, client *updateclient.Config, svc *cloud.Service) (*sim.Machine, error) {
	return l.newChainMachine(imgs, seed, from, client, svc)
}

func (chainProfile) programFactory(l *Loaded, m *sim.Machine, imgs *images) error {
	return l.programChainFactory(m, imgs)
}

func (chainProfile) regions(l *Loaded) []storage.Region { return l.Chain.Regions() }

func (chainProfile) invariant(_ *Loaded, name string) (bool, string) {
	switch name {
	case InvNoDowngrade:
		return true, "the chain profile rolls back to older versions by design; it keeps no anti-rollback floor"
	case InvSOTPIntact:
		return true, "the chain profile keeps no SOTP"
	}
	return true, ""
}

func (chainProfile) canRun(l *Loaded) (bool, string) {
	if l.chainCanRun() {
		return true, ""
	}
	return false, "no stored application can run under a stored bootloader"
}

// recoveryBoots: a chain device may walk its whole tree before an
// application runs: every application under every bootloader, each for its
// attempts, plus the boot each bootloader gives itself up in.
func (chainProfile) recoveryBoots(l *Loaded) int {
	n := len(l.Factory.Bootloaders) * (len(l.Factory.Applications)*l.Chain.MaxAttempts + 1)
	return max(recoveryBoots, n+1)
}

// Implementation names of the chain's stages.
const (
	implSelector = "bootsel"
	implChain    = "chain"
)

// selectorImageSize is the size of the generated boot selector image.
const selectorImageSize = 8 << 10

// chainAppWatchdog is the watchdog timeout a chain application runs with
// unless its firmware says otherwise: the bootloader starts the watchdog
// before it hands over, so an application that never kicked it would be
// reset. It is longer than the slowest sector erase of the boards (1 s for
// a 128 KiB sector of the STM32F429), which the application cannot kick
// during.
const chainAppWatchdog = 3 * time.Second

// chainKeys are the chain profile's configuration keys.
var chainKeys = []string{"chain.bootloader-slots", "chain.application-slots", "chain.bootloader-slot-size", "chain.selector-size", "chain.max-attempts"}

// checkChainDevice lays the chain out on the board with the scenario's
// chain.* keys.
func (l *Loaded) checkChainDevice(pos posErrorf) error {
	d := &l.Device
	if d.Storage != "" {
		return pos.Errorf("device.storage: the chain profile keeps every version on internal flash")
	}
	var o chain.Options
	for _, e := range d.Config {
		v, err := units.ParseSize(e.Value)
		if err != nil {
			return e.pos.Errorf("%s: %v", e.Key, err)
		}
		switch e.Key {
		case "chain.bootloader-slots":
			o.BootloaderSlots = int(min(v, 1000))
		case "chain.application-slots":
			o.ApplicationSlots = int(min(v, 1000))
		case "chain.bootloader-slot-size":
			o.BootloaderSlotSize = uint64(v)
		case "chain.selector-size":
			o.SelectorSize = uint64(v)
		case "chain.max-attempts":
			o.MaxAttempts = int(min(v, 1000))
		default:
			return e.pos.Errorf("unknown configuration key %q for the chain profile (known: %s)", e.Key, strings.Join(chainKeys, ", "))
		}
	}
	lay, err := chain.NewLayout(l.Board, o)
	if err != nil {
		cfgPos := pos
		if len(d.Config) > 0 {
			cfgPos = d.Config[0].pos
		}
		return cfgPos.Errorf("%v", err)
	}
	if lay.Selector.Size < selectorImageSize {
		return pos.Errorf("chain.selector-size: %d bytes; the boot selector needs %d", lay.Selector.Size, selectorImageSize)
	}
	l.Chain = lay
	return nil
}

// posErrorf is a position errors are reported at.
type posErrorf interface {
	Errorf(format string, args ...any) error
}

// checkChainFirmware checks a firmware's chain fields.
func (l *Loaded) checkChainFirmware(f *Firmware) error {
	if f.Stage == "" {
		f.Stage = string(sim.StageApplication)
	}
	slots := l.Chain.Applications
	switch f.Stage {
	case string(sim.StageApplication):
		if f.Confirm != "" && f.Confirm != "auto" && f.Confirm != "never" {
			return f.pos.Errorf("firmware %s: confirm %q: want auto or never", f.Name, f.Confirm)
		}
	case string(sim.StageBootloader):
		slots = l.Chain.Bootloaders
		if f.Confirm != "" {
			return f.pos.Errorf("firmware %s: a bootloader confirms when an application confirms under it; confirm applies to applications", f.Name)
		}
		if f.File != "" {
			return f.pos.Errorf("firmware %s: a bootloader is a generated image (give a size)", f.Name)
		}
		if f.Behaviour == "" {
			f.Behaviour = updateclient.Healthy
		}
		if !slices.Contains(bootloader.ChainBehaviours(), f.Behaviour) {
			return f.pos.Errorf("firmware %s: bootloader behaviour %q (want %s)", f.Name, f.Behaviour, strings.Join(bootloader.ChainBehaviours(), ", "))
		}
	default:
		return f.pos.Errorf("firmware %s: stage %q: want application or bootloader", f.Name, f.Stage)
	}
	room := slots[0].Size
	for _, s := range slots {
		room = min(room, s.Size)
	}
	if uint64(f.Size)+firmware.TrailerSize > room-chain.HeaderSpace {
		return f.pos.Errorf("firmware %s: size %s and its %d-byte signature do not fit the smallest %s slot (%s after its header)", f.Name, f.Size, firmware.TrailerSize, f.Stage, units.Size(room-chain.HeaderSpace))
	}
	return nil
}

// isBootloader reports whether a firmware is a chain bootloader.
func (f *Firmware) isBootloader() bool { return f.Stage == string(sim.StageBootloader) }

// checkChainFactory checks the chain factory state: versions by slot, of
// the right stage, distinct versions per stage, trial names among them.
func (l *Loaded) checkChainFactory() error {
	f := &l.Factory
	if f.Active != "" || len(f.Slots) > 0 {
		return f.at("").Errorf("factory: the chain profile stores versions in bootloaders and applications, not active and slots")
	}
	if len(f.Bootloaders) == 0 {
		return f.at("").Errorf("factory.bootloaders: the chain profile needs at least one bootloader version")
	}
	for _, st := range []struct {
		key   string
		names []string
		slots int
		boot  bool
	}{{"bootloaders", f.Bootloaders, len(l.Chain.Bootloaders), true}, {"applications", f.Applications, len(l.Chain.Applications), false}} {
		if len(st.names) > st.slots {
			return f.at(st.key).Errorf("factory.%s: %d versions for %d slots", st.key, len(st.names), st.slots)
		}
		seen := map[uint64]string{}
		for _, n := range st.names {
			if err := l.firmwareRef(n, f.at(st.key), "factory."+st.key); err != nil {
				return err
			}
			fw := l.Firmware.Get(n)
			if fw.isBootloader() != st.boot {
				return f.at(st.key).Errorf("factory.%s: %s is %s image", st.key, n, map[bool]string{true: "a bootloader", false: "an application"}[fw.isBootloader()])
			}
			if o, dup := seen[fw.Version]; dup {
				return f.at(st.key).Errorf("factory.%s: %s and %s have the same version %d", st.key, o, n, fw.Version)
			}
			seen[fw.Version] = n
		}
	}
	for _, n := range f.Trial {
		if !slices.Contains(f.Bootloaders, n) && !slices.Contains(f.Applications, n) {
			return f.at("trial").Errorf("factory.trial: %s is not stored (list it under bootloaders or applications)", n)
		}
	}
	return nil
}

// buildChainImages builds the boot selector's image and each chain
// bootloader's; applications are built as for every profile.
func (l *Loaded) buildChainImages(out *images) error {
	key := seededKey(l.Seed, "vendor")
	out.vendor = &key.PublicKey
	sel := &sim.Descriptor{Stage: sim.StageBootSelector, Impl: implSelector, Name: "boot-selector", Version: 1,
		Behaviour: "healthy", Size: selectorImageSize}
	b, err := sim.BuildImage(sel, l.Seed)
	if err != nil {
		return err
	}
	out.selector = &sim.Image{Desc: sel, Bytes: b}
	// Every stored version is signed by the vendor at build time: the
	// selector and the bootloaders check the signature, not only the slot
	// header's hash, which anyone who can write the flash can compute.
	for _, f := range l.Firmware {
		var img *sim.Image
		if f.isBootloader() {
			d := &sim.Descriptor{Stage: sim.StageBootloader, Impl: implChain, Name: f.Name, Version: f.Version,
				Behaviour: f.Behaviour, Size: uint64(f.Size)}
			b, err := sim.BuildImage(d, l.Seed)
			if err != nil {
				return fmt.Errorf("firmware %s: %v", f.Name, err)
			}
			img = &sim.Image{Desc: d, Bytes: b}
		} else {
			var err error
			if img, err = l.buildApp(l.appDescriptor(f), f); err != nil {
				return err
			}
		}
		if err := l.sign(img, f, key); err != nil {
			return err
		}
		out.app[f.Name] = img
	}
	return nil
}

// newChainMachine builds a machine for the chain profile.
func (l *Loaded) newChainMachine(imgs *images, seed uint64, from *storage.Snapshot, client *updateclient.Config, svc *cloud.Service) (*sim.Machine, error) {
	var regions []storage.Region
	if from == nil { // a snapshot brings its regions
		regions = l.Chain.Regions()
	}
	m, err := sim.New(sim.Config{Board: l.Board, Regions: regions, Seed: seed, Storage: from, Cache: imgs.cache})
	if err != nil {
		return nil, err
	}
	m.Register(implSelector, bootsel.Selector{Layout: l.Chain, Vendor: imgs.vendor})
	m.Register(implChain, bootloader.Chain{Layout: l.Chain, Vendor: imgs.vendor})
	m.Register(implApp, updateclient.App{Client: client, Service: svc, Chain: l.Chain})
	m.AddImage(imgs.selector)
	for _, f := range l.Firmware {
		if f.data != nil {
			m.AddRawImage(imgs.app[f.Name])
		} else {
			m.AddImage(imgs.app[f.Name])
		}
	}
	return m, nil
}

// programChainFactory writes the selector, every stored version with its
// header, and the first boot record: every version ready, confirmed unless
// it is on trial, the newest of each stage current.
func (l *Loaded) programChainFactory(m *sim.Machine, imgs *images) error {
	var err error
	m.Factory(func() {
		internal := m.Internal()
		internal.Load(0, imgs.selector.Bytes)
		rec := &chain.Record{}
		for _, st := range []struct {
			stage sim.Stage
			names []string
			state *chain.StageState
			slots []chain.Part
		}{{sim.StageBootloader, l.Factory.Bootloaders, &rec.Boot, l.Chain.Bootloaders},
			{sim.StageApplication, l.Factory.Applications, &rec.App, l.Chain.Applications}} {
			for i, n := range st.names {
				img := imgs.app[n]
				f := l.Firmware.Get(n)
				internal.Load(st.slots[i].Start, chain.HeaderFor(st.stage, f.Version, img.Bytes).Encode())
				internal.Load(st.slots[i].Body(), img.Bytes)
				st.state.Slots[i] = chain.SlotState{Version: f.Version, Status: chain.Ready, Confirmed: !slices.Contains(l.Factory.Trial, n)}
			}
			if i, ok := st.state.Select(); ok {
				st.state.Current = uint8(i)
			}
		}
		err = chain.NewStore(internal, l.Chain).Save(rec)
	})
	return err
}

// chainCanRun reports whether any stored application could run (a
// healthy image under a bootloader that hands over): no-brick means
// nothing when none can.
func (l *Loaded) chainCanRun() bool {
	okBoot := slices.ContainsFunc(l.Factory.Bootloaders, func(n string) bool {
		b := l.Firmware.Get(n).Behaviour
		return b == updateclient.Healthy
	})
	okApp := slices.ContainsFunc(l.Factory.Applications, func(n string) bool {
		return l.Firmware.Get(n).Behaviour == updateclient.Healthy
	})
	return okBoot && okApp
}

// chainParams adds the chain's descriptor parameters of an application.
func chainParams(f *Firmware, d *sim.Descriptor) {
	if f.Confirm == "never" {
		d.Params = append(d.Params, [2]string{"confirm", "never"})
	}
	if f.Watchdog == 0 {
		d.Params = append(d.Params, [2]string{"watchdog", chainAppWatchdog.String()})
	}
}

// chainStage checks that an expectation of the chain profile (kind) names
// firmware of the right stage (a bootloader if boot).
func (l *Loaded) chainStage(kind, name string, boot bool, pos strictyaml.Pos) error {
	if l.Chain == nil {
		return pos.Errorf("%s: an expectation of the chain profile (device.profile: chain)", kind)
	}
	if err := l.firmwareRef(name, pos, kind); err != nil {
		return err
	}
	if l.Firmware.Get(name).isBootloader() != boot {
		return pos.Errorf("%s: %s is not %s image", kind, name, map[bool]string{true: "a bootloader", false: "an application"}[boot])
	}
	return nil
}

// expectBootloader: the last bootloader to run (chain).
type expectBootloader struct{ firmware string }

func (expectBootloader) Kind() string     { return ExpBootloader }
func (e expectBootloader) String() string { return "bootloader " + e.firmware }
func (e expectBootloader) validate(l *Loaded, pos strictyaml.Pos) error {
	return l.chainStage(ExpBootloader, e.firmware, true, pos)
}
func (e expectBootloader) judge(r *runner, res *Result) (bool, string) {
	boots := chainBoots(r.l, res.Trace, res.Journal)
	for i := len(boots) - 1; i >= 0; i-- {
		if boots[i].bl != "" {
			return boots[i].bl == e.firmware, "the last bootloader to run was " + boots[i].bl
		}
	}
	return false, "no bootloader ran"
}

// expectPath: the (bootloader/application) pairs tried, in order (chain).
type expectPath struct{ visits []string }

func (expectPath) Kind() string     { return ExpPath }
func (e expectPath) String() string { return "path " + strings.Join(e.visits, " ") }
func (e expectPath) validate(l *Loaded, pos strictyaml.Pos) error {
	if l.Chain == nil {
		return pos.Errorf("%s: an expectation of the chain profile (device.profile: chain)", ExpPath)
	}
	for _, v := range e.visits {
		bl, app, ok := strings.Cut(v, "/")
		if !ok {
			return pos.Errorf("path: visit %q: write bootloader/application (bootloader/ for a boot that started none)", v)
		}
		if err := l.chainStage(ExpPath, bl, true, pos); err != nil {
			return err
		}
		if app != "" {
			if err := l.chainStage(ExpPath, app, false, pos); err != nil {
				return err
			}
		}
	}
	return nil
}
func (e expectPath) judge(r *runner, res *Result) (bool, string) {
	tr, err := BootTree(r.l, res)
	if err != nil {
		return false, err.Error()
	}
	var got []string
	for _, v := range tr.Path {
		got = append(got, v.Bootloader+"/"+v.Application)
	}
	return slices.Equal(got, e.visits), "the path was " + strings.Join(got, " ")
}

// expectStored: the versions the boot record holds as ready (chain).
type expectStored struct{ StoredExpect }

func (expectStored) Kind() string { return ExpStored }
func (e expectStored) String() string {
	var parts []string
	if e.Bootloaders != nil {
		parts = append(parts, "bootloaders ["+strings.Join(e.Bootloaders, ", ")+"]")
	}
	if e.Applications != nil {
		parts = append(parts, "applications ["+strings.Join(e.Applications, ", ")+"]")
	}
	return "stored " + strings.Join(parts, " ")
}
func (e expectStored) validate(l *Loaded, pos strictyaml.Pos) error {
	if l.Chain == nil {
		return pos.Errorf("%s: an expectation of the chain profile (device.profile: chain)", ExpStored)
	}
	for _, n := range e.Bootloaders {
		if err := l.chainStage(ExpStored, n, true, pos); err != nil {
			return err
		}
	}
	for _, n := range e.Applications {
		if err := l.chainStage(ExpStored, n, false, pos); err != nil {
			return err
		}
	}
	return nil
}
func (e expectStored) judge(r *runner, _ *Result) (bool, string) {
	l := r.l
	rec := chain.Peek(r.m.Internal(), l.Chain)
	if rec == nil {
		return false, "no valid boot record"
	}
	name := func(boot bool, v uint64) string {
		for _, f := range l.Firmware {
			if f.isBootloader() == boot && f.Version == v {
				return f.Name
			}
		}
		return fmt.Sprintf("version %d", v)
	}
	ready := func(st *chain.StageState, boot bool) []string {
		var out []string
		for _, sl := range st.Slots {
			if sl.Status == chain.Ready {
				out = append(out, name(boot, sl.Version))
			}
		}
		slices.Sort(out)
		return out
	}
	gotB, gotA := ready(&rec.Boot, true), ready(&rec.App, false)
	ok := true
	if want := e.Bootloaders; want != nil {
		ok = ok && slices.Equal(gotB, slices.Sorted(slices.Values(want)))
	}
	if want := e.Applications; want != nil {
		ok = ok && slices.Equal(gotA, slices.Sorted(slices.Values(want)))
	}
	return ok, fmt.Sprintf("the record holds bootloaders [%s], applications [%s]", strings.Join(gotB, ", "), strings.Join(gotA, ", "))
}
