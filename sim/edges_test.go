package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

// Edges of the machine, the descriptor format, the trace's text and the
// layout checks: the value at each boundary and the one past it.

// TestNames: reset reasons, states and event kinds print their names, and
// an unknown value prints its number.
func TestNames(t *testing.T) {
	require.Equal(t, "lockup", ResetLockup.String())
	require.Equal(t, "ResetReason(6)", ResetReason(6).String())
	require.Equal(t, "locked-up", StateLockedUp.String())
	require.Equal(t, "dead-end", StateDeadEnd.String())
	require.Equal(t, "State(6)", State(6).String())
	require.Equal(t, "mark", EvMark.String())
	require.Equal(t, "EventKind(0)", EventKind(0).String())
	require.Equal(t, "led", EvLED.String())
	require.Equal(t, "EventKind(16)", EventKind(16).String())
}

// TestEventText: an event prints its time, kind, stage, name, outcome and
// detail, each only when it has one.
func TestEventText(t *testing.T) {
	for _, tc := range []struct {
		e    Event
		want string
	}{
		{Event{Time: 12345678901 * time.Nanosecond, Kind: EvPowerOn}, "   12.345678 power-on"},
		{Event{Time: time.Hour, Kind: EvMark, Stage: "bootloader", Name: "copy-begin", Detail: "slot 0"}, " 3600.000000 mark [bootloader] copy-begin: slot 0"},
		{Event{Kind: EvCheck, Name: "active-hash", OK: true}, "    0.000000 check active-hash ok"},
		{Event{Kind: EvCheck, Name: "active-hash", Detail: "bad"}, "    0.000000 check active-hash FAILED: bad"},
		{Event{Kind: EvMark, Name: "x", OK: true}, "    0.000000 mark x"},
		{Event{Kind: EvReset, Stage: "application", Name: "lockup"}, "    0.000000 reset [application] lockup"},
	} {
		require.Equal(t, tc.want, tc.e.String())
	}
}

// TestDescriptorEdges: a descriptor may fill its image and the 1024 bytes
// it is allowed, not one byte more; errors say which line is wrong;
// parameters come in strict order.
func TestDescriptorEdges(t *testing.T) {
	// The smallest image is all descriptor: find the size whose encoding
	// (which spells the size) is exactly that long.
	d := &Descriptor{Stage: "a", Impl: "b", Name: "c", Version: 1, Behaviour: "h"}
	for d.Size = 1; ; d.Size++ {
		enc, err := d.Encode()
		if err == nil {
			require.Len(t, enc, int(d.Size), "the first size that encodes is the descriptor's own length")
			break
		}
		require.ErrorContains(t, err, "smaller than its")
	}
	long := &Descriptor{Stage: "a", Impl: "b", Name: "c", Version: 1, Behaviour: "h", Size: 4096}
	base, _ := long.Encode()
	pad := maxDescriptor - len(base) - len("p=\n")
	long.Params = [][2]string{{"p", strings.Repeat("x", pad)}}
	got, err := long.Encode()
	require.NoError(t, err)
	require.Len(t, got, maxDescriptor)
	long.Params[0][1] += "x"
	_, err = long.Encode()
	require.ErrorContains(t, err, "more than 1024")

	_, _, err = ParseDescriptor([]byte(descriptorMagic + "stage=a\nimpl=b\nnam=c\nversion=1\nbehaviour=h\nsize=999\n\x00"))
	require.ErrorContains(t, err, `line 3 is "nam", want name`)
	_, _, err = ParseDescriptor([]byte(descriptorMagic + "stage=a\nimpl=b\nname=c\nversion=1\nbehaviour=h\nsize=999\nk=1\nk=2\n\x00"))
	require.ErrorContains(t, err, "parameter k out of order or repeated")
	ok := descriptorMagic + "stage=a\nimpl=b\nname=c\nversion=1\nbehaviour=h\nsize=999\n\x00"
	_, n, err := ParseDescriptor([]byte(ok))
	require.NoError(t, err)
	require.Equal(t, len(ok), n)
	// A size equal to the descriptor's own length (its terminator
	// included) parses; one less does not.
	own := strings.Replace(ok, "size=999", "size=71", 1)
	require.Len(t, own, 71)
	_, _, err = ParseDescriptor([]byte(own))
	require.NoError(t, err)
	_, _, err = ParseDescriptor([]byte(strings.Replace(ok, "size=999", "size=70", 1)))
	require.ErrorContains(t, err, "size 70 is smaller than the descriptor")
	_, _, err = ParseDescriptor([]byte(descriptorMagic + strings.Repeat("x", 2000)))
	require.ErrorContains(t, err, "no terminator in the first 1024 bytes")
}

// TestImageFiller: the filler after the descriptor comes 8 bytes at a
// time, for any image size (not only multiples of 8); images built with the
// same seed from other descriptors differ.
func TestImageFiller(t *testing.T) {
	d := &Descriptor{Stage: "a", Impl: "b", Name: "c", Version: 1, Behaviour: "h"}
	for size := uint64(1001); size <= 1009; size++ {
		d.Size = size
		img, err := BuildImage(d, 5)
		require.NoError(t, err)
		require.Len(t, img, int(size))
	}
	img, _ := BuildImage(d, 5)
	d.Name = "d"
	other, _ := BuildImage(d, 5)
	enc, _ := d.Encode()
	require.NotEqual(t, img[len(enc):], other[len(enc):])
}

// TestRunEdges: an event exactly at the deadline runs; timers due at the
// same time run in the order they were set; a kick due exactly at the
// watchdog's deadline is in time.
func TestRunEdges(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	var order []string
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		m.StartWatchdog(10 * time.Millisecond)
		for _, name := range []string{"a", "b", "c"} {
			m.After(10*time.Millisecond, func() { order = append(order, name); m.KickWatchdog() })
		}
	}))
	m.PowerOn()
	m.Run(11*time.Millisecond, nil) // boot at 1 ms; the timers and the deadline at 11 ms
	require.Equal(t, []string{"a", "b", "c"}, order)
	require.Equal(t, 1, m.Boots(), "the kicks at the deadline came in time")
	require.Equal(t, 11*time.Millisecond, m.Now())
}

// TestArmedCutEdges: a cut armed for a time stops stage code when the
// clock reaches that time exactly; a cut armed for time 0 fires at power-on;
// a cut fires once and is gone.
func TestArmedCutEdges(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	statements := 0
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		for range 100 {
			m.Spend(time.Millisecond)
			statements++
		}
	}))
	m.CutPowerAt(11 * time.Millisecond)
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, StateOff, m.State())
	require.Equal(t, 9, statements, "boot at 1 ms; the 10th millisecond of work reaches 11 ms")
	// Power comes back: the cut has fired and does not fire again.
	statements = 0
	m.PowerOn()
	m.Run(m.Now()+time.Second, nil)
	require.Equal(t, 100, statements)
	require.Equal(t, StateRunning, m.State())

	m = testMachine(t, 1)
	install(t, m, 0, bootDesc())
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) { t.Error("the stage ran") }))
	m.CutPowerAt(0)
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, StateOff, m.State())
}

// TestCutOnMarkStopsAtOnce: with no delay, a cut on a milestone stops the
// stage right after it reports it: nothing it does next happens.
func TestCutOnMarkStopsAtOnce(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		m.Mark("verify-begin", "")
		m.Print("after\n")
	}))
	m.CutPowerOnMark("verify-begin", 0)
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, StateOff, m.State())
	require.Empty(t, serialText(m))
	for _, e := range m.Trace() {
		if e.Kind == EvMark {
			require.Equal(t, StageBootloader, e.Stage, "events carry the stage that reported them")
		}
	}
}

// TestPrintLines: a line ends at every newline, a leading one included;
// carriage returns are dropped; a partial line is kept until it ends.
func TestPrintLines(t *testing.T) {
	m := testMachine(t, 1)
	m.Print("\nabc\r\nde")
	m.Print("f\n")
	require.Equal(t, []string{"", "abc", "def"}, serialText(m))
}

// TestJumpEdges: a jump to the end of flash or past it faults as "outside
// flash"; a jump just before the end reads what is there; an image that
// ends on the last byte of flash runs, and one changed in its last byte
// does not.
func TestJumpEdges(t *testing.T) {
	for _, tc := range []struct {
		at   func(size uint64) uint64
		want string
	}{
		{func(s uint64) uint64 { return s }, "outside flash"},
		{func(s uint64) uint64 { return s + 8 }, "outside flash"},
		{func(s uint64) uint64 { return s - 16 }, "erased flash"},
	} {
		m := testMachine(t, 1)
		install(t, m, 0, bootDesc())
		size := m.Internal().Size()
		m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) { m.Jump(tc.at(size)) }))
		m.PowerOn()
		m.Run(2*time.Millisecond, nil)
		var lockup string
		for _, e := range m.Trace() {
			if e.Kind == EvLockup {
				lockup = e.Detail
			}
		}
		require.Contains(t, lockup, tc.want)
	}

	for _, damage := range []bool{false, true} {
		m := testMachine(t, 1)
		install(t, m, 0, bootDesc())
		d := appDesc()
		d.Size = 100<<10 + 8 // two 64 KiB comparisons, the second short
		at := m.Internal().Size() - d.Size
		img := install(t, m, at, d)
		m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) { m.Jump(at) }))
		m.Register("test-app", ProgramFunc(func(m *Machine, _ *Image) {}))
		if damage {
			m.Internal().FlipBit(at+uint64(len(img.Bytes))-1, 0)
		}
		m.PowerOn()
		m.Run(2*time.Millisecond, nil)
		require.Equal(t, !damage, m.State() == StateRunning && m.Stage() == "application", "damaged %v", damage)
	}
}

// TestBoardSectorRuns: a sector run needs sectors.
func TestBoardSectorRuns(t *testing.T) {
	k, err := boardFiles.ReadFile("boards/k64f.yaml")
	require.NoError(t, err)
	_, err = ParseBoard("mine.yaml", []byte(strings.Replace(string(k), "count: 256", "count: 0", 1)))
	require.ErrorContains(t, err, "flash.sectors[0]: want a size that is a multiple of the program unit and a count > 0")
}

// TestDisarmAndTransitions: Disarm cancels both kinds of armed cut; a
// state-machine transition is traced as "from → to".
func TestDisarmAndTransitions(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		m.Transition("update-client", "IDLE", "NOTIFIED")
		m.Mark("verify-begin", "")
		m.Spend(5 * time.Millisecond)
	}))
	m.CutPowerAt(3 * time.Millisecond)
	m.CutPowerOnMark("verify-begin", 0)
	m.Disarm()
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, StateRunning, m.State())
	var states []string
	for _, e := range m.Trace() {
		if e.Kind == EvState {
			states = append(states, e.Name+": "+e.Detail)
		}
	}
	require.Equal(t, []string{"update-client: IDLE → NOTIFIED"}, states)
}

// TestJumpCheckByDigest: a digest a stage left for exactly the image's
// pages proves the image when it is the image's SHA-256, and only then;
// another digest proves nothing, and a change to the pages voids it.
func TestJumpCheckByDigest(t *testing.T) {
	m := testMachine(t, 1)
	addr := k64fAppStart
	img := install(t, m, addr, appDesc())
	dev := m.Internal()
	n := uint64(len(img.Bytes))

	// Damaged pages, with a digest that is not the image's: compared, and
	// refused.
	dev.FlipBit(addr+10, 1)
	other := img.Sum()
	other[0] ^= 1
	m.cache.Put(dev.Name(), addr, n, storage.TagSHA256, dev.Stamp(addr, n), other)
	require.False(t, m.verify(dev, addr, img))

	// The image's digest for exactly these pages is proof.
	dev.FlipBit(addr+10, 1)
	m.cache.Put(dev.Name(), addr, n, storage.TagSHA256, dev.Stamp(addr, n), img.Sum())
	require.True(t, m.verify(dev, addr, img))

	// A change to the pages voids digest and verdict.
	dev.FlipBit(addr+10, 1)
	require.False(t, m.verify(dev, addr, img))
}
