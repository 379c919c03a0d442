package bootloader

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
	"github.com/stretchr/testify/require"
)

// Paper-rule tests of the classic bootloader: each states one behaviour of
// mbed-bootloader (source/upgrade.cpp, source/active_application.cpp,
// source/main.cpp) and ends with the section of reference/mbed-stack.md
// that records it.

const (
	v1 = 1561517193
	v2 = 1561520000
	v3 = 1561530000
)

// TestCleanBoot: a valid active image and an empty slot: the log of a
// clean boot, no storage op, and a jump to the application. §2.2, §2.4.
func TestCleanBoot(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	app := bn.image("app-v1", v1, 100<<10, "healthy")
	bn.active(app, describe(app))
	bn.boot()
	require.Equal(t, "app-v1", bn.running())
	require.Equal(t, []string{"", "Mbed Bootloader", "No Update image", "[DBG ] Active firmware up-to-date", "booting...", ""}, bn.serial())
	require.Empty(t, bn.m.Storage().Journal())
	require.Equal(t, 1, bn.marks(MarkActiveValid))
	require.Zero(t, bn.marks(MarkCopyBegin))
}

// TestInstall: a newer valid candidate is copied erase → header → body →
// verify, with the real log, and runs. §2.2, §2.3.
func TestInstall(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	old := bn.image("app-v1", v1, 100<<10, "healthy")
	neu := bn.image("app-v2", v2, 110<<10, "healthy")
	bn.active(old, describe(old))
	bn.candidate(0, neu, describe(neu))
	bn.boot()
	require.Equal(t, "app-v2", bn.running())
	require.Equal(t, []string{"", "Mbed Bootloader", "[DBG ] Update active firmware", "[DBG ] Erase active application",
		"[DBG ] Write header", "[DBG ] Copy application", "[DBG ] Verify application", "[DBG ] New active firmware is valid",
		"booting...", ""}, bn.serial())
	for _, m := range []string{MarkActiveValid, MarkCandidateFound, MarkCopyBegin, MarkEraseBegin, MarkHeaderBegin, MarkBodyBegin, MarkVerifyBegin, MarkCopyDone, MarkBooting} {
		require.Equal(t, 1, bn.marks(m), m)
	}
	require.True(t, bn.activeHolds(neu))
	var hdr [firmware.InternalHeaderSize]byte
	bn.m.Internal().Peek(uint64(bn.l.ApplicationDetails), hdr[:])
	h, err := firmware.DecodeInternalHeader(hdr[:])
	require.NoError(t, err)
	require.Equal(t, describe(neu), header{version: h.FirmwareVersion, size: h.FirmwareSize, hash: h.FirmwareHash})
	// Phases in order, and nothing written outside the active region.
	var phases []string
	for _, op := range bn.m.Storage().Journal() {
		if len(phases) == 0 || phases[len(phases)-1] != op.Phase {
			phases = append(phases, op.Phase)
		}
		require.Equal(t, sim.DeviceInternal, op.Device)
		require.GreaterOrEqual(t, op.Addr, uint64(bn.l.ApplicationDetails))
		require.LessOrEqual(t, op.Addr+op.Len, uint64(bn.l.ApplicationStart+bn.l.MaxApplicationSize))
	}
	require.Equal(t, []string{"erase", "header", "body"}, phases)
}

// TestSelection: which candidate the scan picks, and what it says about
// each one it does not. §2.2 (selection rule).
func TestSelection(t *testing.T) {
	type slot struct {
		name    string // firmware in the slot, "" for a header with no body
		version uint64
		hdr     func(*header) // lies the header tells
	}
	for _, tc := range []struct {
		name        string
		storage     string
		locations   int
		breakActive bool
		slots       []slot
		running     string
		says        []string
	}{
		{name: "newer wins", slots: []slot{{name: "b", version: v2}}, running: "b"},
		{name: "older is ignored", slots: []slot{{name: "b", version: v1 - 1}}, running: "a", says: []string{"Update image is older"}},
		{name: "equal is ignored", slots: []slot{{name: "b", version: v1}}, running: "a", says: []string{"Update image is older"}},
		{name: "empty header is ignored", slots: []slot{{name: "", version: v2, hdr: func(h *header) { h.size = 0; h.hash = emptyHash }}},
			running: "a", says: []string{"Update image is older"}},
		{name: "body that fails its hash", slots: []slot{{name: "b", version: v2, hdr: func(h *header) { h.hash[0] ^= 1 }}},
			running: "a", says: []string{"Update image integrity check failed"}},
		{name: "larger than the active region", slots: []slot{{name: "big", version: v2}},
			running: "a", says: []string{"Update image too large"}},
		{name: "no header", slots: nil, running: "a", says: []string{"No Update image"}},
		{name: "invalid active takes an older one", breakActive: true, slots: []slot{{name: "b", version: v1 - 1}}, running: "b",
			says: []string{"[DBG ] Active firmware integrity check failed"}},
		{name: "invalid active takes an equal one", breakActive: true, slots: []slot{{name: "b", version: v1}}, running: "b"},
		{name: "invalid active and an empty slot: dead end", breakActive: true,
			slots:   []slot{{name: "", version: v2, hdr: func(h *header) { h.size = 0; h.hash = emptyHash }}},
			running: "", says: []string{"Update image is older", "[ERR ] Active firmware invalid", "Failed to jump to application!"}},
		{name: "newest of two", storage: "internal", locations: 2, slots: []slot{{name: "b", version: v2}, {name: "c", version: v3}}, running: "c"},
		{name: "newest of two, first", storage: "internal", locations: 2, slots: []slot{{name: "c", version: v3}, {name: "b", version: v2}}, running: "c"},
		{name: "first of two equal", storage: "internal", locations: 2, slots: []slot{{name: "b", version: v2}, {name: "c", version: v2}}, running: "b"},
		{name: "internal header with a bad CRC", storage: "internal", slots: []slot{{name: "b", version: v2, hdr: func(h *header) { h.version = 0 }}},
			running: "a", says: []string{"No Update image"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.storage
			if st == "" {
				st = "sd"
			}
			bn := newBench(t, "k64f", st, func(l *mbedlayout.Layout, c *Config) {
				if tc.locations > 0 {
					l.StorageLocations = tc.locations
				}
				l.MaxApplicationSize = 300 << 10
			})
			a := bn.image("a", v1, 100<<10, "healthy")
			ha := describe(a)
			if tc.breakActive {
				ha.hash[5] ^= 0x10
			}
			bn.active(a, ha)
			for i, s := range tc.slots {
				size := uint64(110<<10 + i*1024)
				if s.name == "big" {
					size = 300<<10 + 8
				}
				var img *sim.Image
				h := header{version: s.version}
				if s.name != "" {
					img = bn.image(s.name, s.version, size, "healthy")
					h = describe(img)
				}
				if s.hdr != nil {
					s.hdr(&h)
				}
				if bn.l.Storage == sim.DeviceInternal && s.name == "b" && tc.name == "internal header with a bad CRC" {
					bn.candidate(i, img, h)
					// Spoil the CRC: flip a bit of the stored version.
					bn.m.Factory(func() { bn.m.Storage().Device(bn.l.Storage).FlipBit(bn.l.Slots(bn.b)[i].Start+8, 0) })
					continue
				}
				bn.candidate(i, img, h)
			}
			bn.boot()
			require.Equal(t, tc.running, bn.running(), "%v", bn.serial())
			for _, s := range tc.says {
				require.True(t, hasLine(bn.serial(), s), "want %q in %v", s, bn.serial())
			}
			copies := 0
			if tc.running != "a" && tc.running != "" {
				copies = 1
			}
			require.Equal(t, copies, bn.marks(MarkCopyBegin), "copies")
			if tc.running == "" {
				require.Equal(t, sim.StateHalted, bn.m.State())
				require.Equal(t, 1, bn.marks(MarkDeadEnd))
				require.Empty(t, bn.m.Storage().Journal(), "a dead end writes nothing")
				// main returns -1: _exit → mbed_die, SOS on LED1, then nothing.
				tr := bn.m.Trace()
				require.GreaterOrEqual(t, len(tr), 2)
				require.Equal(t, sim.EvLED, tr[len(tr)-2].Kind)
				require.Equal(t, sim.LEDSOS, tr[len(tr)-2].Name)
				require.Equal(t, sim.EvHalt, tr[len(tr)-1].Kind)
			}
		})
	}
}

// emptyHash is the SHA-256 of no bytes: what the client writes for an
// empty payload.
var emptyHash = [32]byte{0xe3, 0xb0, 0xc4, 0x42, 0x98, 0xfc, 0x1c, 0x14, 0x9a, 0xfb, 0xf4, 0xc8, 0x99, 0x6f, 0xb9, 0x24,
	0x27, 0xae, 0x41, 0xe4, 0x64, 0x9b, 0x93, 0x4c, 0xa4, 0x95, 0x99, 0x1b, 0x78, 0x52, 0xb8, 0x55}

// TestEmptyCandidateDoesNotBrick: the slot the client leaves after a
// manifest for an empty payload (a valid header of size 0) is skipped: the
// active image keeps running, nothing is erased. §2.2 (c.size > 0).
func TestEmptyCandidateDoesNotBrick(t *testing.T) {
	for _, st := range []string{"sd", "internal"} {
		bn := newBench(t, "k64f", st, nil)
		a := bn.image("a", v1, 100<<10, "healthy")
		bn.active(a, describe(a))
		bn.candidate(0, nil, header{version: v2, size: 0, hash: emptyHash})
		bn.boot()
		require.Equal(t, "a", bn.running(), st)
		require.Empty(t, bn.m.Storage().Journal(), st)
		require.True(t, hasLine(bn.serial(), "Update image is older"), "%s: %v", st, bn.serial())
	}
}

// TestHeapVersionSkipsCandidate: the scan skips a candidate whose version
// equals the version in the heap cell while the active image is valid
// (firmwareDifferentFromActive is computed against the heap, not the
// header), whatever the reset reason: a pin reset does not update the
// cells, but the scan still reads them. §2.2, §2.5.
func TestHeapVersionSkipsCandidate(t *testing.T) {
	for _, tc := range []struct {
		heap    uint64
		running string
	}{{v2, "a"}, {0, "b"}, {v1, "b"}} {
		bn := newBench(t, "k64f", "sd", nil)
		a := bn.image("a", v1, 100<<10, "healthy")
		b := bn.image("b", v2, 100<<10, "healthy")
		bn.active(a, describe(a))
		bn.boot()
		require.Equal(t, "a", bn.running())
		// While a runs, the candidate lands in the slot and the heap cell
		// holds a version.
		key, err := firmware.DeviceKey(bn.rot, false)
		require.NoError(t, err)
		h := describe(b)
		eh := firmware.ExternalHeader{FirmwareVersion: h.version, FirmwareSize: h.size, FirmwareHash: h.hash, PayloadSize: h.size, PayloadHash: h.hash}
		raw, err := eh.Encode(key)
		require.NoError(t, err)
		dev := bn.m.Storage().Device(bn.l.Storage)
		dev.Load(bn.l.Slots(bn.b)[0].Start, storage.PadToUnit(raw, dev.ProgramSize()))
		dev.Load(bn.l.SlotBody(bn.b, 0, dev.ProgramSize()), storage.PadToUnit(b.Bytes, dev.ProgramSize()))
		binary.LittleEndian.PutUint64(bn.m.NoInit()[heapVersionOffset:], tc.heap)
		bn.m.Reset(sim.ResetPin)
		bn.run()
		require.Equal(t, tc.running, bn.running(), "heap version %d", tc.heap)
		if tc.running == "a" {
			require.True(t, hasLine(bn.serial(), "Update image is older"), "%v", bn.serial())
		}
	}
}

// TestBootCounter: the counter in the heap counts only resets from the
// configured reason on (watchdog in v4.1): a crashing image is given up on
// at the boot that finds the counter at max-boot-retries, and re-copied from
// the slot because its version now counts as different. §2.5.
func TestBootCounter(t *testing.T) {
	for _, tc := range []struct {
		name    string
		retries int
		// boots until the bootloader gives up on the crashing image the
		// first time: one to install, then one per counted lockup.
		giveUpAt int
	}{
		{"default", 3, 5},
		{"one retry", 1, 3},
		{"five retries", 5, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bn := newBench(t, "k64f", "sd", func(_ *mbedlayout.Layout, c *Config) { c.MaxBootRetries = tc.retries })
			a := bn.image("a", v1, 100<<10, "healthy")
			b := bn.image("b", v2, 100<<10, "crash")
			bn.active(a, describe(a))
			bn.candidate(0, b, describe(b))
			bn.m.PowerOn()
			m := bn.m
			require.True(t, m.Run(time.Hour, func() bool { return bn.marks(MarkBootRetries) > 0 }))
			require.Equal(t, tc.giveUpAt, m.Boots())
			require.Equal(t, fmt.Sprintf("boot counter %d", tc.retries), lastMark(m, MarkBootRetries))
			require.Equal(t, 1, countLines(m, "[DBG ] Failed to boot active application"))
			require.Equal(t, 2, bn.marks(MarkCopyBegin), "the same image is copied again at once")
		})
	}
}

func countLines(m *sim.Machine, s string) int {
	n := 0
	for _, l := range m.Serial() {
		if strings.Contains(l.Text, s) {
			n++
		}
	}
	return n
}

func lastMark(m *sim.Machine, name string) string {
	tr := m.Trace()
	for i := len(tr) - 1; i >= 0; i-- {
		if tr[i].Kind == sim.EvMark && tr[i].Name == name {
			return tr[i].Detail
		}
	}
	return ""
}

// heapCells reads the bootloader's uninitialised heap cells.
func heapCells(m *sim.Machine) (uint64, uint8) {
	ram := m.NoInit()
	return binary.LittleEndian.Uint64(ram[heapVersionOffset:]), ram[bootCounterOffset]
}

// TestBootCounterResetReasons: which reset reasons update the heap cells,
// per generation: every one in v3.3 and v4.0 (no reset-reason check), from
// software on in v4.1.0-v4.1.2, from watchdog on in v4.1.3 (commit
// 833ca0b). §2.5.
func TestBootCounterResetReasons(t *testing.T) {
	all := []sim.ResetReason{sim.ResetPin, sim.ResetBrownOut, sim.ResetSoftware, sim.ResetWatchdog, sim.ResetLockup}
	for _, tc := range []struct {
		gen     Generation
		counted []sim.ResetReason
	}{
		{GenV33, all},
		{GenV40, all},
		{GenV41, []sim.ResetReason{sim.ResetSoftware, sim.ResetWatchdog, sim.ResetLockup}},
		{GenV413, []sim.ResetReason{sim.ResetWatchdog, sim.ResetLockup}},
	} {
		for _, reason := range all {
			bn := newBench(t, "k64f", "sd", func(_ *mbedlayout.Layout, c *Config) { c.SetGeneration(tc.gen) })
			a := bn.image("a", v1, 100<<10, "keep-heap")
			bn.active(a, describe(a))
			bn.boot()
			ram := bn.m.NoInit()
			binary.LittleEndian.PutUint64(ram[heapVersionOffset:], v1)
			ram[bootCounterOffset] = 1
			bn.m.Reset(reason)
			bn.run()
			require.Equal(t, "a", bn.running())
			want := uint8(1)
			if slices.Contains(tc.counted, reason) {
				want = 2
			}
			hv, c := heapCells(bn.m)
			require.Equal(t, uint64(v1), hv, "%s, after a %s reset", tc.gen, reason)
			require.Equal(t, want, c, "%s, after a %s reset", tc.gen, reason)
		}
	}
	require.Equal(t, GenV413, DefaultConfig(nil).Generation)
	require.Panics(t, func() { (&Config{}).SetGeneration("v9") })
}

// TestBootCounterCountsAndResets: after a counted reset the counter grows
// when the heap holds the active version, and restarts at 0 with the
// active version when it does not; at max-boot-retries the active image is
// given up on (and with no candidate the dead end zeroes the counter).
// §2.2 step 1, §2.5.
func TestBootCounterCountsAndResets(t *testing.T) {
	for _, tc := range []struct {
		hv      uint64
		c       uint8
		wv      uint64
		want    uint8
		running string
	}{
		{v1, 0, v1, 1, "a"},
		{v1, 1, v1, 2, "a"},
		{v2, 2, v1, 0, "a"},
		{0, 7, v1, 0, "a"},
		{v1, 2, v1, 0, ""},
		{v1, 254, v1, 0, ""},
	} {
		bn := newBench(t, "k64f", "sd", nil)
		a := bn.image("a", v1, 100<<10, "keep-heap")
		bn.active(a, describe(a))
		bn.boot()
		ram := bn.m.NoInit()
		binary.LittleEndian.PutUint64(ram[heapVersionOffset:], tc.hv)
		ram[bootCounterOffset] = tc.c
		bn.m.Reset(sim.ResetWatchdog)
		bn.run()
		hv, c := heapCells(bn.m)
		require.Equal(t, tc.running, bn.running(), "heap %d/%d", tc.hv, tc.c)
		require.Equal(t, tc.wv, hv, "heap %d/%d", tc.hv, tc.c)
		require.Equal(t, tc.want, c, "heap %d/%d", tc.hv, tc.c)
		if tc.running == "" {
			require.Equal(t, fmt.Sprintf("boot counter %d", tc.c+1), lastMark(bn.m, MarkBootRetries))
			require.Equal(t, []string{"", "Mbed Bootloader", "[DBG ] Failed to boot active application", "No Update image",
				"[ERR ] Active firmware invalid", "Failed to jump to application!"}, bn.serial())
		}
	}
}

// TestEraseBounds: the erase is refused when the sector-rounded end of the
// new image passes the maximum application size; the copy fails before any
// write and the bootloader, having set activeValid from the copy, stops at
// its dead end although the old image is intact. §2.3 step 1.
func TestEraseBounds(t *testing.T) {
	// A maximum that is not a whole number of sectors: 100 KiB + 512.
	const maxApp = 100<<10 + 512
	bn := newBench(t, "k64f", "sd", func(l *mbedlayout.Layout, _ *Config) { l.MaxApplicationSize = maxApp })
	a := bn.image("a", v1, 64<<10, "healthy")
	b := bn.image("b", v2, maxApp, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, sim.StateHalted, bn.m.State())
	require.Empty(t, bn.m.Storage().Journal(), "nothing is erased past the bound")
	require.Equal(t, []string{"erase-bounds: erase to 0x24000 passes the maximum application size"}, bn.failedChecks())
	require.True(t, hasLine(bn.serial(), "[DBG ] Firmware update failed"))
	require.True(t, hasLine(bn.serial(), "[DBG ] Firmware size rounded up to the nearest sector boundary is larger than the maximum application size"),
		"active_application.cpp@v4.1.3:189")
	require.True(t, bn.activeHolds(a))
	require.Equal(t, 1, bn.marks(MarkCopyFailed))

	// With the bound on a sector boundary, an image of the maximum size
	// rounds up to exactly the bound, and is copied.
	const aligned = 0x24000 - 0xA400
	bn = newBench(t, "k64f", "sd", func(l *mbedlayout.Layout, _ *Config) { l.MaxApplicationSize = aligned })
	a = bn.image("a", v1, 64<<10, "healthy")
	b = bn.image("b", v2, aligned, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, "b", bn.running())
}

// TestCopyRetries: a copy that fails is tried again up to
// max-copy-retries times; with the default of 1 a failed copy is the end.
// §2.2 step 3.
func TestCopyRetries(t *testing.T) {
	for _, tc := range []struct {
		retries int
		running string
	}{{1, ""}, {2, "b"}} {
		bn := newBench(t, "k64f", "sd", func(_ *mbedlayout.Layout, c *Config) { c.MaxCopyRetries = tc.retries })
		a := bn.image("a", v1, 64<<10, "healthy")
		b := bn.image("b", v2, 64<<10, "healthy")
		bn.active(a, describe(a))
		bn.candidate(0, b, describe(b))
		// The first body page fails with an I/O error: the copy programs
		// one 8-byte page per op, after the header's 14.
		rule, err := storage.ParseRule("region=active-app,kind=program,nth=1,mode=io-error")
		require.NoError(t, err)
		bn.m.Storage().SetInjector(rule)
		bn.boot()
		require.Equal(t, tc.running, bn.running(), "retries %d", tc.retries)
		require.Equal(t, tc.retries, bn.marks(MarkCopyBegin))
		require.Equal(t, 1, bn.marks(MarkCopyFailed))
		require.Equal(t, []string{"copy: #31 internal program 0xa400+8 [active-app] mode=io-error,seed=0: storage: I/O error"}, bn.failedChecks())
	}
}

// TestNoCardHalts: without the SD card the storage does not initialise and
// main returns before looking at the active image. §2.2 step 3.
func TestNoCardHalts(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	a := bn.image("a", v1, 64<<10, "healthy")
	bn.active(a, describe(a))
	bn.m.Storage().Device(bn.l.Storage).(*storage.SDCard).Remove()
	bn.boot()
	require.Equal(t, sim.StateHalted, bn.m.State())
	require.Equal(t, []string{"", "Mbed Bootloader", "Failed to initialize update storage"}, bn.serial())
	require.Zero(t, bn.marks(MarkActiveValid))
}

// TestNoROT: without a ROT the device key cannot be derived, so external
// headers cannot be checked and every slot reads as empty; the active
// image still boots. mbed-stack.md §2.6 (cloud-client-example #45).
func TestNoROT(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	a := bn.image("a", v1, 64<<10, "healthy")
	b := bn.image("b", v2, 64<<10, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	a1, a2 := bn.l.SOTPAreas()
	bn.m.Factory(func() {
		require.NoError(t, bn.m.Internal().Erase(a1.Addr, a1.Size))
		require.NoError(t, bn.m.Internal().Erase(a2.Addr, a2.Size))
	})
	bn.boot()
	require.Equal(t, "a", bn.running())
	require.Equal(t, []string{"", "Mbed Bootloader", "[ERR ] Couldn't find valid DeviceKey", "No Update image",
		"[DBG ] Active firmware up-to-date", "booting...", ""}, bn.serial())
}

// TestWrongDeviceKey: an external header made with another device's key
// fails its HMAC and the slot reads as empty. §1.2.
func TestWrongDeviceKey(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	a := bn.image("a", v1, 64<<10, "healthy")
	b := bn.image("b", v2, 64<<10, "healthy")
	bn.active(a, describe(a))
	bn.rot = make([]byte, 16) // the candidate is written for another ROT
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, "a", bn.running())
	require.True(t, hasLine(bn.serial(), "No Update image"))
	require.Len(t, bn.failedChecks(), 1)
	require.Contains(t, bn.failedChecks()[0], "slot-0-header: ")
}

// TestActiveHeaderChecks: the active header's version is checked before
// its magic, and both before its CRC; an erased header is an empty slot,
// which is not a failed integrity check. §1.1.
func TestActiveHeaderChecks(t *testing.T) {
	for _, tc := range []struct {
		offset uint64
		check  string
		says   string
	}{
		{7, "active-header: firmware: unsupported header version", "[DBG ] Active firmware integrity check failed"},
		{0, "active-header: firmware: bad header magic", "[DBG ] Active firmware integrity check failed"},
		{20, "active-header: firmware: header CRC mismatch", "[DBG ] Active firmware integrity check failed"},
	} {
		bn := newBench(t, "k64f", "sd", nil)
		a := bn.image("a", v1, 64<<10, "healthy")
		bn.active(a, describe(a))
		bn.m.Factory(func() { bn.m.Internal().FlipBit(uint64(bn.l.ApplicationDetails)+tc.offset, 0) })
		bn.boot()
		require.Equal(t, sim.StateHalted, bn.m.State())
		require.Contains(t, bn.failedChecks()[0], tc.check)
		require.True(t, hasLine(bn.serial(), tc.says), "%v", bn.serial())
	}

	// A header of size 0 is an empty active slot.
	bn := newBench(t, "k64f", "sd", nil)
	bn.active(nil, header{version: v1, hash: emptyHash})
	bn.boot()
	require.Equal(t, sim.StateHalted, bn.m.State())
	require.True(t, hasLine(bn.serial(), "[DBG ] Active firmware slot is empty"), "%v", bn.serial())
	require.Equal(t, 1, bn.marks(MarkActiveEmpty))
	for _, c := range bn.failedChecks() {
		require.NotContains(t, c, "active", "an empty slot is not a failed check")
	}
}

// TestCopyGranularity: the copy erases one sector per op, from the header
// sector when the header shares it with the application; programs the
// header as one page-padded op; and the body in reads of 16 KiB rounded
// down to the page. §2.3.
func TestCopyGranularity(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	a := bn.image("a", v1, 100<<10, "healthy")
	b := bn.image("b", v2, 110<<10, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, "b", bn.running())
	erases, headers, bodies := bn.ops("erase"), bn.ops("header"), bn.ops("body")
	// 0xA000 + 0x400 + 110 KiB ends at 0x25C00: sectors 0xA000..0x25000, 28 ops.
	require.Len(t, erases, 28)
	for i, op := range erases {
		require.Equal(t, storage.OpErase, op.Kind)
		require.Equal(t, uint64(0xA000+i*0x1000), op.Addr)
		require.Equal(t, uint64(0x1000), op.Len)
	}
	require.Len(t, headers, 1)
	require.Equal(t, uint64(0xA000), headers[0].Addr)
	require.Equal(t, uint64(112), headers[0].Len, "112 bytes is already a multiple of the 8-byte page")
	require.Len(t, bodies, 7) // 110 KiB in 16 KiB reads
	for i, op := range bodies {
		require.Equal(t, uint64(0xA400+i*16384), op.Addr)
		require.Equal(t, b.Bytes[i*16384:i*16384+int(op.Len)], op.Data)
	}
	require.Equal(t, uint64(110<<10-6*16384), bodies[6].Len)
}

// TestCopyErasesHeaderSectorApart: when the header's sector does not run
// into the application's, the header sectors are erased first, then the
// application's from its start; the sector between them is kept. §2.3 step 1.
func TestCopyErasesHeaderSectorApart(t *testing.T) {
	bn := newBench(t, "k64f", "sd", func(l *mbedlayout.Layout, _ *Config) { l.ApplicationStart = 0xC000 })
	a := bn.image("a", v1, 20<<10, "healthy")
	b := bn.image("b", v2, 9<<10, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, "b", bn.running())
	var addrs []uint64
	for _, op := range bn.ops("erase") {
		addrs = append(addrs, op.Addr)
	}
	require.Equal(t, []uint64{0xA000, 0xC000, 0xD000, 0xE000}, addrs)
}

// TestLastProgramTailIsStaleBuffer: when the image size is not a multiple
// of the page, the last program is rounded up and its tail is whatever the
// 16 KiB buffer held from the previous read. §2.3 step 3.
func TestLastProgramTailIsStaleBuffer(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	a := bn.image("a", v1, 20<<10, "healthy")
	b := bn.image("b", v2, 20003, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, "b", bn.running())
	tail := make([]byte, 5)
	bn.m.Internal().Peek(0xA400+20003, tail)
	// The last read (bytes 16384..20002) filled buffer[0:3619]; the 5 bytes
	// after it in the buffer are still from the first read, at 3619..3623.
	require.Equal(t, b.Bytes[3619:3624], tail)
	bodies := bn.ops("body")
	require.Len(t, bodies, 2)
	require.Equal(t, uint64(20008-16384), bodies[1].Len)
}

// TestStaleTailComesFromTheActiveHash: a candidate smaller than the
// buffer leaves the buffer's tail as the reads before its copy left it: the
// hash of the candidate (its one read), and before it the hash of the
// active image, whose last two reads of 16 KiB decide the rest.
func TestStaleTailComesFromTheActiveHash(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	a := bn.image("a", v1, 3*BufferSize+100, "healthy") // four reads: 16 K, 16 K, 16 K, 100
	b := bn.image("b", v2, 5003, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, "b", bn.running())
	tail := make([]byte, 5)
	bn.m.Internal().Peek(0xA400+5003, tail)
	// The candidate's hash filled buffer[0:5003]; the active hash's last
	// read only buffer[0:100]; the read before it (bytes 32 K…48 K) the rest.
	require.Equal(t, a.Bytes[2*BufferSize+5003:2*BufferSize+5008], tail)
}

// TestBufferStartsZeroAtEveryBoot: buffer_array is in .bss, so a boot that
// programs a tail no read of its own has filled writes zeros there, whatever
// an earlier boot (of this machine or another one in the same process) left
// in the buffer. The first boot fills the whole buffer with an image's
// bytes; the second one has no active image and one candidate shorter than
// the buffer, which it hashes (one read) and copies: its last program unit
// runs past the candidate's bytes.
func TestBufferStartsZeroAtEveryBoot(t *testing.T) {
	first := newBench(t, "k64f", "sd", nil)
	a := first.image("a", v1, 3*BufferSize, "healthy")
	first.active(a, describe(a))
	first.boot()
	require.Equal(t, "a", first.running())

	bn := newBench(t, "k64f", "sd", nil)
	b := bn.image("b", v2, 5003, "healthy")
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, "b", bn.running())
	tail := make([]byte, 5)
	bn.m.Internal().Peek(0xA400+5003, tail)
	require.Equal(t, make([]byte, 5), tail, "the program unit after the candidate's last byte")
}

// TestReadAlignedReadsWholeBlocks: a read from a device whose read unit is
// larger than the request (an SD card) goes through a bounce buffer of the
// whole blocks that cover it: the bytes asked for, at the cost of those
// blocks. A read on the unit's boundaries is one plain read.
func TestReadAlignedReadsWholeBlocks(t *testing.T) {
	const latency, bandwidth = 500 * time.Microsecond, 1_000_000
	blockTime := latency + 512*time.Microsecond
	for _, tc := range []struct {
		addr, n uint64
		took    time.Duration
	}{
		{0, 296, blockTime},
		{512, 512, blockTime},
		{400, 200, latency + 1024*time.Microsecond},
		{1000, 1100, latency + 2048*time.Microsecond},
		{1024, 1536, latency + 1536*time.Microsecond},
	} {
		s := storage.NewSystem(nil)
		sd := s.NewSDCard(storage.SDConfig{Name: "sd", Size: 64 << 10, ReadLatency: latency, ReadBandwidth: bandwidth})
		data := make([]byte, 8192)
		for i := range data {
			data[i] = byte(i * 7)
		}
		sd.Load(0, data)
		r := &run{}
		buf := make([]byte, tc.n)
		require.NoError(t, r.readAligned(sd, tc.addr, buf))
		require.Equal(t, data[tc.addr:tc.addr+tc.n], buf, "read %d at %d", tc.n, tc.addr)
		require.Equal(t, tc.took, s.Clock().Now(), "read %d at %d", tc.n, tc.addr)
	}
}

// TestShortROT: a ROT record of the wrong length gives no device key, and
// says why. §3 (SOTP), §2.6.
func TestShortROT(t *testing.T) {
	bn := newBench(t, "k64f", "sd", nil)
	a := bn.image("a", v1, 64<<10, "healthy")
	bn.active(a, describe(a))
	a1, a2 := bn.l.SOTPAreas()
	bn.m.Factory(func() {
		require.NoError(t, bn.m.Internal().Erase(a1.Addr, a1.Size))
		require.NoError(t, bn.m.Internal().Erase(a2.Addr, a2.Size))
		require.NoError(t, sotp.New(bn.m.Internal(), a1, a2).Set(sotp.TypeROT, make([]byte, 8)))
	})
	bn.boot()
	require.Equal(t, "a", bn.running())
	require.Equal(t, []string{"device-key: ROT of 8 bytes, want 16"}, bn.failedChecks())
	require.True(t, hasLine(bn.serial(), "[ERR ] Couldn't find valid DeviceKey"))
}

// TestHeaderErasedSeparately: when the header's sector does not reach the
// application (a gap between them), the header sector is erased on its own
// first, and the bootloader says so; the application's sectors follow.
// active_application.cpp@v4.1.3:163-171.
func TestHeaderErasedSeparately(t *testing.T) {
	bn := newBench(t, "k64f", "sd", func(l *mbedlayout.Layout, _ *Config) { l.ApplicationStart = 0xC000 })
	a := bn.image("a", v1, 64<<10, "healthy")
	b := bn.image("b", v2, 64<<10, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.Equal(t, "b", bn.running())
	require.True(t, hasLine(bn.serial(), "[DBG ] Erasing header separately from active application"))
	var erased []uint64
	for _, op := range bn.m.Storage().Journal() {
		if op.Kind == storage.OpErase {
			erased = append(erased, op.Addr)
		}
	}
	require.Equal(t, uint64(0xA000), erased[0], "the header's sector first")
	require.Equal(t, uint64(0xC000), erased[1], "then the application's, from its start: the gap is left alone")
	require.NotContains(t, erased, uint64(0xB000))

	// Contiguous (the built-in K64F layout): no such line.
	bn = newBench(t, "k64f", "sd", nil)
	a = bn.image("a", v1, 64<<10, "healthy")
	b = bn.image("b", v2, 64<<10, "healthy")
	bn.active(a, describe(a))
	bn.candidate(0, b, describe(b))
	bn.boot()
	require.False(t, hasLine(bn.serial(), "[DBG ] Erasing header separately from active application"))
}

// TestExternalHeaderHMACIsTheCheck: a candidate header whose magic and
// header version are wrong but whose HMAC is right (whoever holds the
// device key can write one) is accepted and installed: the PAL checks the
// HMAC and nothing else. One with the right magic and a wrong HMAC is not.
// arm_uc_metadata_header_v2.c@v4.1.3:141-201.
func TestExternalHeaderHMACIsTheCheck(t *testing.T) {
	for _, tc := range []struct {
		name    string
		edit    func(b []byte, key []byte)
		running string
	}{
		{"wrong magic, right HMAC", func(b, key []byte) {
			binary.BigEndian.PutUint32(b[0:], 0xDEADBEEF)
			binary.BigEndian.PutUint32(b[4:], 7)
			mac, err := firmware.HMACSHA256(key, b[:firmware.ExternalHeaderSize-64])
			require.NoError(t, err)
			copy(b[firmware.ExternalHeaderSize-64:], mac)
		}, "b"},
		{"right magic, wrong HMAC", func(b, _ []byte) { b[firmware.ExternalHeaderSize-64] ^= 1 }, "a"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bn := newBench(t, "k64f", "sd", nil)
			a := bn.image("a", v1, 64<<10, "healthy")
			b := bn.image("b", v2, 64<<10, "healthy")
			bn.active(a, describe(a))
			bn.candidate(0, b, describe(b))
			key, err := firmware.DeviceKey(bn.rot, false)
			require.NoError(t, err)
			dev := bn.m.Storage().Device(bn.l.Storage)
			start := bn.l.Slots(bn.b)[0].Start
			hdr := make([]byte, firmware.ExternalHeaderSize)
			dev.Peek(start, hdr)
			tc.edit(hdr, key)
			bn.m.Factory(func() { dev.Load(start, hdr) })
			bn.boot()
			require.Equal(t, tc.running, bn.running())
		})
	}
}

// TestReadFaultsPerPAL: a failed read of a candidate on internal flash is
// reported by the FlashIAP PAL: the hash loop says "ARM_UCP_Read returned 0
// bytes" and stops, and the candidate fails its check. On the SD card the
// block-device PAL swallows the same failure: the hash goes on over the
// stale buffer, which fails the check too, without a word.
func TestReadFaultsPerPAL(t *testing.T) {
	for _, tc := range []struct {
		storage string
		says    bool
	}{{"internal", true}, {"sd", false}} {
		t.Run(tc.storage, func(t *testing.T) {
			bn := newBench(t, "k64f", tc.storage, nil)
			a := bn.image("a", v1, 64<<10, "healthy")
			b := bn.image("b", v2, 64<<10, "healthy")
			bn.active(a, describe(a))
			bn.candidate(0, b, describe(b))
			rule, err := storage.ParseRule("kind=read,region=slot-0,nth=3,mode=io-error")
			require.NoError(t, err)
			bn.m.Storage().SetReadInjector(storage.Rules{rule.Arm()})
			bn.boot()
			require.Equal(t, "a", bn.running())
			require.True(t, hasLine(bn.serial(), "Update image integrity check failed"))
			require.Equal(t, tc.says, hasLine(bn.serial(), "[DBG ] ARM_UCP_Read returned 0 bytes"))
		})
	}
}

// TestAssertOnMisalignedApplication: an application start off the flash
// page passes the tools and the boot check of the active image, and stops
// the first install at MBED_BOOTLOADER_ASSERT, after the erase and the
// header: v4.1 prints "[ERR ] ASSERT", v3.3 and v4.0 the message itself.
// active_application.cpp@v4.1.3:258-262, bootloader_common.h@v4.1.3:66-72.
func TestAssertOnMisalignedApplication(t *testing.T) {
	for gen, want := range map[Generation]string{
		GenV413: "[ERR ] ASSERT",
		GenV40:  "[ERR ] Application (0xA404) does not start on a page size (0x8) aligned address",
		GenV33:  "[ERR ] Application (0xA404) does not start on a page size (0x8) aligned address",
	} {
		bn := newBench(t, "k64f", "sd", func(l *mbedlayout.Layout, c *Config) {
			l.ApplicationStart = 0xA404
			c.SetGeneration(gen)
		})
		a := bn.image("a", v1, 64<<10, "healthy")
		b := bn.image("b", v2, 64<<10, "healthy")
		bn.active(a, describe(a))
		bn.candidate(0, b, describe(b))
		bn.boot()
		require.Equal(t, sim.StateHalted, bn.m.State(), gen)
		require.True(t, hasLine(bn.serial(), want), "%s: %q", gen, bn.serial())
		var programs []uint64
		for _, op := range bn.m.Storage().Journal() {
			if op.Kind == storage.OpProgram && op.Device == sim.DeviceInternal {
				programs = append(programs, op.Addr)
			}
		}
		require.Equal(t, []uint64{0xA000}, programs, "%s: the header, then nothing", gen)
	}
	// The layout itself says it.
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	l, err := mbedlayout.Raw(b, "sd")
	require.NoError(t, err)
	l.ApplicationStart = 0xA404
	require.NoError(t, l.Resolve(b))
	require.Len(t, l.Warnings(b), 1)
}

// TestV40KeepsV33Words: v4.0 kept v3.3's main() and tr_* words (only the
// banner's M is capital) but already erased a header apart from the image
// on its own, silently (tr_debug prints nothing); v4.1 says so with a
// "[DBG ]" line. main.cpp@v4.0.0:108, active_application.cpp@v4.0.0:225-236.
func TestV40KeepsV33Words(t *testing.T) {
	for _, tc := range []struct {
		gen        Generation
		banner     string
		debugLines bool
		separate   bool
	}{
		{GenV33, "[BOOT] mbed Bootloader", false, false},
		{GenV40, "[BOOT] Mbed Bootloader", false, true},
		{GenV413, "Mbed Bootloader", true, true},
	} {
		bn := newBench(t, "k64f", "sd", func(l *mbedlayout.Layout, c *Config) {
			l.ApplicationStart = 0xC000
			c.SetGeneration(tc.gen)
		})
		a := bn.image("a", v1, 64<<10, "healthy")
		b := bn.image("b", v2, 64<<10, "healthy")
		bn.active(a, describe(a))
		bn.candidate(0, b, describe(b))
		bn.boot()
		require.Equal(t, "b", bn.running(), tc.gen)
		serial := bn.serial()
		require.True(t, hasLine(serial, tc.banner), "%s: %q", tc.gen, serial)
		require.Equal(t, tc.debugLines, hasLine(serial, "[DBG ] Erase active application"), tc.gen)
		require.Equal(t, tc.debugLines, hasLine(serial, "[DBG ] Erasing header separately from active application"), tc.gen)
		var erased []uint64
		for _, op := range bn.m.Storage().Journal() {
			if op.Kind == storage.OpErase && op.Device == sim.DeviceInternal {
				erased = append(erased, op.Addr)
			}
		}
		// Separately: the header's sector, then the image's from 0xC000;
		// together: every sector from the header's through the image.
		require.Equal(t, tc.separate, !slices.Contains(erased, 0xB000), "%s: %x", tc.gen, erased)
	}
}
