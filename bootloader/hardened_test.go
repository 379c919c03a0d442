package bootloader

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/hardened"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
)

func testKey(t testing.TB, label string) *ecdsa.PrivateKey {
	d := sha256.Sum256([]byte("hardened_test " + label))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	require.NoError(t, err)
	return k
}

// hbench is the bench with the hardened bootloader at address 0, two
// candidate locations (slot 0 for updates, slot 1 for the saved copy) and
// the vendor's key.
type hbench struct {
	*bench
	vendor *ecdsa.PrivateKey
	cfg    HardenedConfig
}

func newHardenedBench(t *testing.T, storageKind string) *hbench {
	t.Helper()
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	l, err := mbedlayout.Raw(b, storageKind)
	require.NoError(t, err)
	l.StorageLocations = 2
	require.NoError(t, l.Resolve(b))
	vendor := testKey(t, "vendor")
	cfg := DefaultHardenedConfig(l, &vendor.PublicKey)
	m, err := sim.New(sim.Config{Board: b, Regions: l.Regions(b), Seed: 1})
	require.NoError(t, err)
	m.Register("hardened", NewHardened(cfg))
	m.Register("app", sim.ProgramFunc(testApp))
	desc := &sim.Descriptor{Stage: sim.StageBootloader, Impl: "hardened", Name: "hardened-bootloader", Version: 1, Behaviour: "healthy", Size: 16 << 10}
	data, err := sim.BuildImage(desc, 1)
	require.NoError(t, err)
	m.AddImage(&sim.Image{Desc: desc, Bytes: data})
	bn := &bench{t: t, m: m, b: b, l: l, cfg: DefaultConfig(l), rot: bytes.Repeat([]byte{0x5A}, 16), apps: map[string]*sim.Image{}}
	m.Factory(func() {
		m.Internal().Load(0, data)
		a1, a2 := l.SOTPAreas()
		require.NoError(t, sotp.New(m.Internal(), a1, a2).Set(sotp.TypeROT, bn.rot))
	})
	return &hbench{bench: bn, vendor: vendor, cfg: cfg}
}

// signed builds an application image signed with key.
func (hb *hbench) signed(name string, version, size uint64, behaviour string, key *ecdsa.PrivateKey) *sim.Image {
	img := hb.image(name, version, size, behaviour)
	b, err := firmware.Sign(img.Bytes, version, key)
	require.NoError(hb.t, err)
	img.Bytes = b
	return img
}

// saved puts an image in the saved slot behind the bootloader's header.
func (hb *hbench) saved(img *sim.Image) {
	dev := hb.m.Storage().Device(hb.l.Storage)
	u := dev.ProgramSize()
	h := firmware.InternalHeader{FirmwareVersion: img.Desc.Version, FirmwareSize: uint64(len(img.Bytes)), FirmwareHash: sha256.Sum256(img.Bytes)}
	hb.m.Factory(func() {
		dev.Load(hb.l.Slots(hb.b)[1].Start, storage.PadToUnit(h.Encode(), u))
		dev.Load(hb.l.SlotBody(hb.b, 1, u), storage.PadToUnit(img.Bytes, u))
	})
}

// store opens the SOTP records as the bootloader would: in the factory
// before a boot, on a copy of the storage after one (opening may write).
func (hb *hbench) store() *hardened.Store {
	a1, a2 := hb.l.SOTPAreas()
	var st *hardened.Store
	open := func(dev storage.Device) {
		var err error
		st, err = hardened.Open(dev, a1, a2)
		require.NoError(hb.t, err)
	}
	if hb.m.Boots() == 0 {
		hb.m.Factory(func() { open(hb.m.Internal()) })
		return st
	}
	c := hb.m.Storage().Clone(nil)
	c.PowerOn()
	open(c.Device(sim.DeviceInternal))
	return st
}

// provision writes SOTP records in the factory.
func (hb *hbench) provision(fn func(*hardened.Store) error) {
	a1, a2 := hb.l.SOTPAreas()
	hb.m.Factory(func() {
		st, err := hardened.Open(hb.m.Internal(), a1, a2)
		require.NoError(hb.t, err)
		require.NoError(hb.t, fn(st))
	})
}

func (hb *hbench) state() hardened.State {
	s, err := hb.store().State()
	require.NoError(hb.t, err)
	return s
}

// settleOrRetry runs until an application is up or the bootloader has
// scheduled a retry.
func (hb *hbench) bootUntil(stop func() bool) {
	hb.t.Helper()
	m := hb.m
	m.PowerOn()
	require.True(hb.t, m.Run(m.Now()+10*time.Minute, stop), "the device did not get there: %s", m.State())
}

// TestHardenedBootsOnlyTheVendorsImages: an active image signed by the
// vendor boots; one signed by anyone else is not run, whatever its header
// says, and the saved copy is restored in its place.
func TestHardenedBootsOnlyTheVendorsImages(t *testing.T) {
	hb := newHardenedBench(t, "sd")
	a := hb.signed("a", v1, 40<<10, "healthy", hb.vendor)
	hb.active(a, describe(a))
	hb.boot()
	require.Equal(t, "a", hb.running())

	hb = newHardenedBench(t, "sd")
	evil := hb.signed("evil", v2, 40<<10, "healthy", testKey(t, "attacker"))
	good := hb.signed("good", v1, 40<<10, "healthy", hb.vendor)
	hb.active(evil, describe(evil))
	hb.saved(good)
	hb.boot()
	require.Equal(t, "good", hb.running())
	require.Contains(t, hb.serial(), "[WARN] active: the signature is not the vendor's")
	require.Equal(t, 1, hb.marks(MarkSignatureRejected))
}

// TestHardenedInstallSavesThenTrials: an update saves the running image
// first, then installs the new one with its header written after the body
// and its verification, and boots it on trial.
func TestHardenedInstallSavesThenTrials(t *testing.T) {
	hb := newHardenedBench(t, "sd")
	a := hb.signed("a", v1, 40<<10, "healthy", hb.vendor)
	b := hb.signed("b", v2, 50<<10, "healthy", hb.vendor)
	hb.active(a, describe(a))
	hb.candidate(0, b, describe(b))
	hb.boot()
	require.Equal(t, "b", hb.running())
	require.Equal(t, hardened.State{Status: hardened.Trial, Version: v2, Previous: v1, Attempts: 1}, hb.state())
	sd := hb.m.Storage().Device("sd")
	got := make([]byte, len(a.Bytes))
	sd.Peek(hb.l.SlotBody(hb.b, 1, sd.ProgramSize()), got)
	require.Equal(t, a.Bytes, got, "the saved slot holds the previous image")

	// Header last: no program of the active header before the last
	// program of the body.
	var lastBody, header int
	for _, op := range hb.m.Storage().Journal() {
		switch {
		case op.Kind == storage.OpProgram && op.Region == mbedlayout.RegionActiveApp:
			lastBody = op.Index
		case op.Kind == storage.OpProgram && op.Region == mbedlayout.RegionActiveHeader:
			header = op.Index
		}
	}
	require.Greater(t, header, lastBody, "the active header is programmed after the body")
}

// TestHardenedRefusesBelowTheCounter: a validly signed candidate older
// than the counter is refused even when the active image is gone; an
// active image below the counter is not run.
func TestHardenedRefusesBelowTheCounter(t *testing.T) {
	hb := newHardenedBench(t, "sd")
	old := hb.signed("old", v1, 40<<10, "healthy", hb.vendor)
	cur := hb.signed("cur", v2, 40<<10, "healthy", hb.vendor)
	hb.candidate(0, old, describe(old))
	hb.saved(cur)
	hb.provision(func(st *hardened.Store) error { return st.Raise(v2) })
	hb.boot() // no active image: the candidate is older, the saved copy is restored
	require.Equal(t, "cur", hb.running())
	require.GreaterOrEqual(t, hb.marks(MarkDowngradeRefused), 1)

	hb = newHardenedBench(t, "sd")
	old = hb.signed("old", v1, 40<<10, "healthy", hb.vendor)
	cur = hb.signed("cur", v2, 40<<10, "healthy", hb.vendor)
	hb.active(old, describe(old)) // an attacker wrote an old signed image with its header
	hb.saved(cur)
	hb.provision(func(st *hardened.Store) error { return st.Raise(v2) })
	hb.boot()
	require.Equal(t, "cur", hb.running())
	require.Contains(t, hb.serial(), "[WARN] active version 1561517193 is below the anti-rollback counter 1561520000")
}

// TestHardenedRollsBackAfterItsAttempts: a new version that never comes
// up is started MaxAttempts times (power-on boots count as much as
// lockups), then the saved copy is restored and the failed version is not
// installed again.
func TestHardenedRollsBackAfterItsAttempts(t *testing.T) {
	hb := newHardenedBench(t, "sd")
	a := hb.signed("a", v1, 40<<10, "healthy", hb.vendor)
	b := hb.signed("b", v2, 40<<10, "crash", hb.vendor)
	hb.active(a, describe(a))
	hb.candidate(0, b, describe(b))
	// The first boot installs; each lockup and each power cycle starts b
	// once more.
	hb.m.PowerOn()
	for range 2 {
		require.True(t, hb.m.Run(hb.m.Now()+time.Minute, func() bool { return hb.m.State() == sim.StateLockedUp || hb.running() != "" }))
		hb.m.PowerOff("test")
		hb.m.PowerOn()
	}
	require.True(t, hb.m.Run(hb.m.Now()+5*time.Minute, func() bool { return hb.running() == "a" }))
	require.Equal(t, DefaultHardenedAttempts, hb.marks(MarkTrialBoot))
	require.Equal(t, 1, hb.marks(MarkRollback))
	require.Equal(t, hardened.State{Status: hardened.RolledBack, Version: v2, Previous: v1}, hb.state())
	hb.m.Reset(sim.ResetPin)
	hb.run()
	require.Equal(t, "a", hb.running())
	require.Contains(t, hb.serial(), "Update image failed its trial before")
	c, err := hb.store().Counter()
	require.NoError(t, err)
	require.Zero(t, c, "nothing confirmed, nothing raised")
}

// TestHardenedNeverHalts: with nothing valid to run, the bootloader says so
// and resets after 1, 2, 4, 8, 8 s: it never halts.
func TestHardenedNeverHalts(t *testing.T) {
	hb := newHardenedBench(t, "sd")
	hb.bootUntil(func() bool { return hb.marks(MarkRetry) >= 6 })
	var at []time.Duration
	for _, e := range hb.m.Trace() {
		if e.Kind == sim.EvMark && e.Name == MarkRetry {
			at = append(at, e.Time)
		}
	}
	require.Len(t, at, 6)
	var gaps []time.Duration
	for i := 1; i < len(at); i++ {
		gaps = append(gaps, (at[i] - at[i-1]).Round(time.Second))
	}
	require.Equal(t, []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}, gaps)
	require.NotEqual(t, sim.StateHalted, hb.m.State())
	require.Contains(t, hb.serial(), "[ERR ] no bootable image: retry 6 in 8s")
}

// TestHardenedFinishesAConfirmation: a Confirmed state with the counter
// behind (power failed between the application's two writes) is finished
// by the next boot.
func TestHardenedFinishesAConfirmation(t *testing.T) {
	hb := newHardenedBench(t, "sd")
	a := hb.signed("a", v2, 40<<10, "healthy", hb.vendor)
	hb.active(a, describe(a))
	hb.provision(func(st *hardened.Store) error {
		return st.SetState(hardened.State{Status: hardened.Confirmed, Version: v2, Previous: v1})
	})
	hb.boot()
	require.Equal(t, "a", hb.running())
	require.Equal(t, 1, hb.marks(MarkCounterRaised))
	c, err := hb.store().Counter()
	require.NoError(t, err)
	require.Equal(t, uint64(v2), c)
}

// TestHardenedStartsItsWatchdog: the bootloader starts a watchdog of its
// own at entry and leaves it running for the application, which must kick
// it: one that does not (the bench's test application) is reset by it
// within the timeout.
func TestHardenedStartsItsWatchdog(t *testing.T) {
	hb := newHardenedBench(t, "sd")
	a := hb.signed("a", v1, 40<<10, "healthy", hb.vendor)
	hb.active(a, describe(a))
	hb.boot()
	require.Equal(t, "a", hb.running())
	start := hb.m.Now()
	require.True(t, hb.m.Run(start+DefaultHardenedWatchdog+time.Second, func() bool { return hb.m.ResetReason() == sim.ResetWatchdog }))
	require.LessOrEqual(t, hb.m.Now()-start, DefaultHardenedWatchdog)
}
