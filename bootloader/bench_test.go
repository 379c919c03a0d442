package bootloader

import (
	"bytes"
	"crypto/sha256"
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

// bench is a board with the classic bootloader at address 0 and a minimal
// application program, for the bootloader's paper-rule tests: each test
// puts images and headers on the storage exactly as it wants them, boots,
// and reads the serial console, the milestones and the journal.
type bench struct {
	t    *testing.T
	m    *sim.Machine
	b    *sim.Board
	l    *mbedlayout.Layout
	cfg  Config
	rot  []byte
	apps map[string]*sim.Image
}

// testApp is the application program: "crash" faults in start-up code;
// "keep-heap" runs without touching the no-init RAM, so a test can read
// what the bootloader left in its heap cells; anything else clears the
// heap as libc start-up does. Both report app-running.
func testApp(m *sim.Machine, img *sim.Image) {
	switch img.Desc.Behaviour {
	case "crash":
		m.Fault("HardFault in start-up code of " + img.Desc.Name)
	case "keep-heap":
	default:
		clear(m.NoInit())
	}
	m.Mark("app-running", img.Desc.Name)
}

// newBench builds a powered-off board with the bootloader and a ROT in
// SOTP; edit may change the layout keys and the configuration first.
func newBench(t *testing.T, board, storageKind string, edit func(*mbedlayout.Layout, *Config)) *bench {
	t.Helper()
	b, err := sim.LoadBoard(board)
	require.NoError(t, err)
	l, err := mbedlayout.Raw(b, storageKind)
	require.NoError(t, err)
	cfg := DefaultConfig(l)
	if edit != nil {
		edit(l, &cfg)
	}
	require.NoError(t, l.Resolve(b))
	m, err := sim.New(sim.Config{Board: b, Regions: l.Regions(b), Seed: 1})
	require.NoError(t, err)
	m.Register("classic", NewClassic(cfg))
	m.Register("app", sim.ProgramFunc(testApp))
	desc := &sim.Descriptor{Stage: sim.StageBootloader, Impl: "classic", Name: "mbed-bootloader", Version: 1, Behaviour: "healthy", Size: 16 << 10}
	data, err := sim.BuildImage(desc, 1)
	require.NoError(t, err)
	m.AddImage(&sim.Image{Desc: desc, Bytes: data})
	bn := &bench{t: t, m: m, b: b, l: l, cfg: cfg, rot: bytes.Repeat([]byte{0x5A}, 16), apps: map[string]*sim.Image{}}
	m.Factory(func() {
		m.Internal().Load(0, data)
		a1, a2 := l.SOTPAreas()
		require.NoError(t, sotp.New(m.Internal(), a1, a2).Set(sotp.TypeROT, bn.rot))
	})
	return bn
}

// image builds an application image the machine will run.
func (bn *bench) image(name string, version, size uint64, behaviour string) *sim.Image {
	desc := &sim.Descriptor{Stage: sim.StageApplication, Impl: "app", Name: name, Version: version, Behaviour: behaviour, Size: size}
	data, err := sim.BuildImage(desc, version)
	require.NoError(bn.t, err)
	img := &sim.Image{Desc: desc, Bytes: data}
	bn.m.AddImage(img)
	bn.apps[name] = img
	return img
}

// header describes an image as a header does; tests change it to lie.
type header struct {
	version, size uint64
	hash          [32]byte
}

func describe(img *sim.Image) header {
	return header{version: img.Desc.Version, size: uint64(len(img.Bytes)), hash: sha256.Sum256(img.Bytes)}
}

// active installs an image as the active application, with its header.
func (bn *bench) active(img *sim.Image, h header) {
	ih := firmware.InternalHeader{FirmwareVersion: h.version, FirmwareSize: h.size, FirmwareHash: h.hash}
	bn.m.Factory(func() {
		bn.m.Internal().Load(uint64(bn.l.ApplicationDetails), ih.Encode())
		if img != nil {
			bn.m.Internal().Load(uint64(bn.l.ApplicationStart), img.Bytes)
		}
	})
}

// candidate puts an image (nil: none) in slot i behind a header as the
// update client writes it: internal (CRC) on internal flash, external
// (HMAC with the device key) elsewhere.
func (bn *bench) candidate(i int, img *sim.Image, h header) {
	dev := bn.m.Storage().Device(bn.l.Storage)
	var hdr []byte
	if bn.l.Storage == sim.DeviceInternal {
		ih := firmware.InternalHeader{FirmwareVersion: h.version, FirmwareSize: h.size, FirmwareHash: h.hash}
		hdr = ih.Encode()
	} else {
		key, err := firmware.DeviceKey(bn.rot, false)
		require.NoError(bn.t, err)
		eh := firmware.ExternalHeader{FirmwareVersion: h.version, FirmwareSize: h.size, FirmwareHash: h.hash, PayloadSize: h.size, PayloadHash: h.hash}
		hdr, err = eh.Encode(key)
		require.NoError(bn.t, err)
	}
	u := dev.ProgramSize()
	bn.m.Factory(func() {
		dev.Load(bn.l.Slots(bn.b)[i].Start, storage.PadToUnit(hdr, u))
		if img != nil {
			dev.Load(bn.l.SlotBody(bn.b, i, u), storage.PadToUnit(img.Bytes, u))
		}
	})
}

// settled reports whether the device has stopped on its own: an
// application is up, or the CPU halted or locked up.
func (bn *bench) settled() bool {
	m := bn.m
	switch m.State() {
	case sim.StateHalted, sim.StateLockedUp:
		return true
	case sim.StateRunning:
		return m.Stage() == "application"
	}
	return false
}

// boot powers the device on and runs it until it settles.
func (bn *bench) boot() {
	bn.t.Helper()
	bn.m.PowerOn()
	bn.run()
}

// run runs the device until it settles (after at least one more event).
func (bn *bench) run() {
	bn.t.Helper()
	m := bn.m
	start := len(m.Trace())
	require.True(bn.t, m.Run(m.Now()+10*time.Minute, func() bool { return len(m.Trace()) > start && bn.settled() }),
		"the device did not settle: %s", m.State())
}

// running returns the application that runs, "" for none.
func (bn *bench) running() string {
	if bn.m.State() == sim.StateRunning && bn.m.Stage() == "application" {
		return bn.m.Image().Desc.Name
	}
	return ""
}

// serial returns the serial console's lines since the last power-on or
// reset: one boot's log.
func (bn *bench) serial() []string {
	tr := bn.m.Trace()
	from := 0
	for i, e := range tr {
		if e.Kind == sim.EvPowerOn || e.Kind == sim.EvReset {
			from = i
		}
	}
	var out []string
	for _, e := range tr[from:] {
		if e.Kind == sim.EvSerial {
			out = append(out, e.Detail)
		}
	}
	return out
}

// marks counts the milestones of a name in the whole trace.
func (bn *bench) marks(name string) int {
	n := 0
	for _, e := range bn.m.Trace() {
		if e.Kind == sim.EvMark && e.Name == name {
			n++
		}
	}
	return n
}

// ops returns the journal's ops of a phase.
func (bn *bench) ops(phase string) []storage.Op {
	var out []storage.Op
	for _, op := range bn.m.Storage().Journal() {
		if op.Phase == phase {
			out = append(out, op)
		}
	}
	return out
}

// activeHolds reports whether the active application region holds img.
func (bn *bench) activeHolds(img *sim.Image) bool {
	b := make([]byte, len(img.Bytes))
	bn.m.Internal().Peek(uint64(bn.l.ApplicationStart), b)
	return bytes.Equal(b, img.Bytes)
}

// checks returns the failed checks the bootloader traced, as "name: detail".
func (bn *bench) failedChecks() []string {
	var out []string
	for _, e := range bn.m.Trace() {
		if e.Kind == sim.EvCheck && !e.OK {
			out = append(out, e.Name+": "+e.Detail)
		}
	}
	return out
}

// hasLine reports whether one boot's serial log has a line containing s.
func hasLine(lines []string, s string) bool {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return true
		}
	}
	return false
}
