package storage

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// medium builds one kind of device on a fresh system, for the conformance suite.
type medium struct {
	name string
	make func(s *System) Device
}

func k64fFlash(s *System) *NORFlash {
	return s.NewNORFlash(NORConfig{
		Name:        "internal",
		Sectors:     []SectorRun{{Size: 4096, Count: 64, EraseTime: 14 * time.Millisecond}},
		ProgramUnit: 8, ProgramTime: 8 * time.Microsecond, ReadBandwidth: 100 << 20,
	})
}

func f429Flash(s *System) *NORFlash {
	return s.NewNORFlash(NORConfig{
		Name: "internal",
		Sectors: []SectorRun{
			{Size: 16 << 10, Count: 4, EraseTime: 250 * time.Millisecond},
			{Size: 64 << 10, Count: 1, EraseTime: 550 * time.Millisecond},
			{Size: 128 << 10, Count: 2, EraseTime: time.Second},
		},
		ProgramUnit: 4, ProgramTime: 16 * time.Microsecond,
	})
}

func spiFlash(s *System) *NORFlash {
	return s.NewNORFlash(NORConfig{
		Name:        "spi",
		Sectors:     []SectorRun{{Size: 4096, Count: 32, EraseTime: 40 * time.Millisecond}},
		ProgramUnit: 1, ProgramPage: 256, ProgramTime: 850 * time.Microsecond,
	})
}

func sdCard(s *System) *SDCard {
	return s.NewSDCard(SDConfig{
		Name: "sd", Size: 256 << 10, Blank: 0xFF,
		ReadLatency: 300 * time.Microsecond, WriteLatency: 1500 * time.Microsecond,
	})
}

var media = []medium{
	{"nor-uniform", func(s *System) Device { return k64fFlash(s) }},
	{"nor-non-uniform", func(s *System) Device { return f429Flash(s) }},
	{"nor-strict", func(s *System) Device {
		f := k64fFlash(s)
		f.cfg.Strict = true
		return f
	}},
	{"spi-nor", func(s *System) Device { return spiFlash(s) }},
	{"sd", func(s *System) Device { return sdCard(s) }},
}

// pattern returns n seeded random bytes, different for each salt. No two
// blocks or pages of it are equal, so a write that lands at the wrong
// place shows (a periodic pattern would hide a shift by its period).
func pattern(n int, salt byte) []byte {
	r := rand.New(rand.NewPCG(uint64(salt), 0x7061747465726e))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// eraseUnitAt erases the erase unit holding addr and returns its bounds.
func eraseUnitAt(t *testing.T, d Device, addr uint64) (uint64, uint64) {
	t.Helper()
	// Walk from 0 to find the unit's start: sizes may vary with the address.
	var start uint64
	for start+d.EraseSize(start) <= addr {
		start += d.EraseSize(start)
	}
	size := d.EraseSize(start)
	require.NoError(t, d.Erase(start, size))
	return start, size
}

// TestConformance runs the same contract against every device kind.
func TestConformance(t *testing.T) {
	for _, m := range media {
		t.Run(m.name, func(t *testing.T) {
			t.Run("geometry", func(t *testing.T) {
				d := m.make(NewSystem(nil))
				require.NotZero(t, d.Size())
				var total uint64
				for total < d.Size() {
					sz := d.EraseSize(total)
					require.NotZero(t, sz)
					require.Zero(t, sz%d.ProgramSize(), "erase unit is a multiple of the program unit")
					total += sz
				}
				require.Equal(t, d.Size(), total, "erase units tile the device")
			})

			t.Run("program-then-read", func(t *testing.T) {
				d := m.make(NewSystem(nil))
				start, _ := eraseUnitAt(t, d, 0)
				data := pattern(int(max(d.ProgramSize(), 512)), 0x5a)
				require.NoError(t, d.Program(start, data))
				got := make([]byte, len(data))
				require.NoError(t, d.Read(start, got))
				require.Equal(t, data, got)
			})

			t.Run("erase-value", func(t *testing.T) {
				d := m.make(NewSystem(nil))
				require.NoError(t, d.Program(0, pattern(int(max(d.ProgramSize(), 512)), 1)))
				start, size := eraseUnitAt(t, d, 0)
				got := make([]byte, size)
				require.NoError(t, d.Read(start, got))
				if v := d.EraseValue(); v >= 0 {
					require.Equal(t, bytes.Repeat([]byte{byte(v)}, int(size)), got)
				} else {
					// No erase value: the contents are whatever they were.
					require.Equal(t, pattern(int(max(d.ProgramSize(), 512)), 1), got[:max(d.ProgramSize(), 512)])
				}
			})

			t.Run("misaligned", func(t *testing.T) {
				d := m.make(NewSystem(nil))
				if d.ProgramSize() > 1 {
					require.ErrorIs(t, d.Program(1, make([]byte, d.ProgramSize())), ErrMisaligned)
					require.ErrorIs(t, d.Program(0, make([]byte, d.ProgramSize()+1)), ErrMisaligned)
				}
				require.ErrorIs(t, d.Erase(1, d.EraseSize(0)), ErrMisaligned)
				require.ErrorIs(t, d.Erase(0, d.EraseSize(0)+1), ErrMisaligned)
			})

			t.Run("out-of-bounds", func(t *testing.T) {
				d := m.make(NewSystem(nil))
				unit := d.ProgramSize()
				require.ErrorIs(t, d.Program(d.Size(), make([]byte, unit)), ErrOutOfBounds)
				require.ErrorIs(t, d.Read(d.Size()-d.ReadSize(), make([]byte, 2*d.ReadSize())), ErrOutOfBounds)
				require.ErrorIs(t, d.Erase(0, d.Size()+d.EraseSize(0)), ErrOutOfBounds)
			})

			t.Run("journal-and-clock", func(t *testing.T) {
				s := NewSystem(nil)
				d := m.make(s)
				s.SetActor("bootloader", "copy")
				require.NoError(t, d.Erase(0, d.EraseSize(0)))
				before := s.Clock().Now()
				require.NoError(t, d.Program(0, pattern(512, 3)))
				require.Greater(t, s.Clock().Now(), before, "a program takes virtual time")
				j := s.Journal()
				require.Len(t, j, 2)
				require.Equal(t, OpErase, j[0].Kind)
				require.Equal(t, Op{Index: 1, Device: d.Name(), Kind: OpProgram, Addr: 0, Len: 512,
					Data: pattern(512, 3), Time: before, Dur: s.Clock().Now() - before, Stage: "bootloader", Phase: "copy"}, j[1])
				// Reads are not journaled.
				require.NoError(t, d.Read(0, make([]byte, 512)))
				require.Len(t, s.Journal(), 2)
			})

			t.Run("clone-independent", func(t *testing.T) {
				s := NewSystem(nil)
				d := m.make(s)
				require.NoError(t, d.Program(0, pattern(512, 9)))
				c := s.Clone(nil)
				cd := c.Device(d.Name())
				require.NoError(t, cd.Program(512, pattern(512, 10)))
				require.NoError(t, d.Program(1024, pattern(512, 11)))
				got := make([]byte, 512)
				d.Peek(512, got)
				require.NotEqual(t, pattern(512, 10), got, "origin must not see the clone's write")
				cd.Peek(1024, got)
				require.NotEqual(t, pattern(512, 11), got, "clone must not see the origin's write")
				cd.Peek(0, got)
				require.Equal(t, pattern(512, 9), got, "clone keeps what was there when it was made")
			})

			t.Run("power-lost-refuses-ops", func(t *testing.T) {
				s := NewSystem(nil)
				d := m.make(s)
				s.PowerOff()
				require.ErrorIs(t, d.Program(0, make([]byte, 512)), ErrPowerLost)
				require.ErrorIs(t, d.Read(0, make([]byte, 512)), ErrPowerLost)
				require.Empty(t, s.Journal())
				s.PowerOn()
				require.NoError(t, d.Read(0, make([]byte, 512)))
			})

			// A view is a read without the copy: the same bytes (across
			// pages, written and blank), the same virtual time, the same
			// failures.
			t.Run("read-view-is-read", func(t *testing.T) {
				view := func(d Device, addr, n uint64) ([]byte, error) {
					var got []byte
					err := d.ReadView(addr, n, func(x []byte) { got = append(got, x...) })
					return got, err
				}
				s, v := NewSystem(nil), NewSystem(nil)
				d, dv := m.make(s), m.make(v)
				for _, x := range []Device{d, dv} {
					start, _ := eraseUnitAt(t, x, 0)
					require.NoError(t, x.Program(start+512, pattern(3*512, 7)))
				}
				n := uint64(pageSize + 2048) // crosses a page, ends in blank space
				want := make([]byte, n)
				require.NoError(t, d.Read(0, want))
				got, err := view(dv, 0, n)
				require.NoError(t, err)
				require.Equal(t, want, got)
				require.Equal(t, s.Clock().Now(), v.Clock().Now(), "a view costs what a read costs")
				require.True(t, dv.Holds(0, want))
				want[pageSize+7] ^= 1
				require.False(t, dv.Holds(0, want), "one bit differs in the second page")
				require.False(t, dv.Holds(0, want[:pageSize+8]))
				require.True(t, dv.Holds(0, want[:pageSize+7]))

				_, err = view(dv, dv.Size()-dv.ReadSize(), 2*dv.ReadSize())
				require.ErrorIs(t, err, ErrOutOfBounds)
				if dv.ReadSize() > 1 {
					_, err = view(dv, 1, dv.ReadSize())
					require.ErrorIs(t, err, ErrMisaligned)
				}
				v.PowerOff()
				called := false
				err = dv.ReadView(0, 512, func([]byte) { called = true })
				require.ErrorIs(t, err, ErrPowerLost)
				require.False(t, called, "a failed view shows nothing")
			})

			t.Run("io-error-changes-nothing", func(t *testing.T) {
				s := NewSystem(nil)
				d := m.make(s)
				s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultIOError}})
				err := d.Program(0, pattern(512, 4))
				require.ErrorIs(t, err, ErrIO)
				got := make([]byte, 512)
				d.Peek(0, got)
				require.NotEqual(t, pattern(512, 4), got)
				require.True(t, s.Powered())
			})
		})
	}
}

func TestNORProgramOnlyClearsBits(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	require.NoError(t, f.Program(0, []byte{0xF0, 0xFF, 0x0F, 0xAA, 0xFF, 0xFF, 0xFF, 0xFF}))
	require.NoError(t, f.Program(0, []byte{0x3C, 0x00, 0xFF, 0x55, 0xFF, 0xFF, 0xFF, 0xFF}))
	got := make([]byte, 8)
	f.Peek(0, got)
	require.Equal(t, []byte{0x30, 0x00, 0x0F, 0x00, 0xFF, 0xFF, 0xFF, 0xFF}, got)
}

func TestNORStrictRefusesUnerasedUnit(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	f.cfg.Strict = true
	require.NoError(t, f.Program(8, pattern(8, 1)))
	err := f.Program(0, pattern(16, 2))
	require.ErrorIs(t, err, ErrNotErased)
	require.Len(t, s.Journal(), 1, "a refused program is not journaled")
	require.NoError(t, f.Erase(0, 4096))
	require.NoError(t, f.Program(0, pattern(16, 2)))
}

func TestNORNonUniformSectors(t *testing.T) {
	f := f429Flash(NewSystem(nil))
	require.Equal(t, uint64(16<<10), f.EraseSize(0))
	require.Equal(t, uint64(16<<10), f.EraseSize(0xFFFF))
	require.Equal(t, uint64(64<<10), f.EraseSize(0x10000))
	require.Equal(t, uint64(128<<10), f.EraseSize(0x20000))
	require.Equal(t, uint64(128<<10), f.EraseSize(0x5FFFF))
	require.Equal(t, uint64(0x60000), f.Size())
	// An erase must cover whole sectors: 16K + 64K is fine, 16K + half of 64K is not.
	require.NoError(t, f.Erase(0xC000, 0x14000))
	require.ErrorIs(t, f.Erase(0xC000, 0xC000), ErrMisaligned)
	require.Equal(t, []uint32{0, 0, 0, 1, 1, 0, 0}, f.EraseCounts())
}

func TestNORTimingFromConfig(t *testing.T) {
	s := NewSystem(nil)
	f := f429Flash(s)
	require.NoError(t, f.Erase(0, 0x20000)) // 4×16K + 64K
	require.Equal(t, 4*250*time.Millisecond+550*time.Millisecond, s.Clock().Now())
	require.NoError(t, f.Program(0, make([]byte, 64)))
	require.Equal(t, 1550*time.Millisecond+16*16*time.Microsecond, s.Clock().Now())

	s2 := NewSystem(nil)
	spi := spiFlash(s2)
	require.NoError(t, spi.Program(0, make([]byte, 300))) // two 256-byte pages
	require.Equal(t, 2*850*time.Microsecond, s2.Clock().Now())
}

func TestNOREndurance(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	f.cfg.Endurance = 3
	for range 3 {
		require.NoError(t, f.Erase(0, 4096))
	}
	require.ErrorIs(t, f.Erase(0, 4096), ErrWornOut)
	require.ErrorIs(t, f.Program(8, make([]byte, 8)), ErrWornOut)
	require.NoError(t, f.Erase(4096, 4096), "other sectors keep working")
}

func TestSDRemovalAndBadBlocks(t *testing.T) {
	s := NewSystem(nil)
	c := sdCard(s)
	c.Remove()
	require.ErrorIs(t, c.Read(0, make([]byte, 512)), ErrNoMedia)
	require.ErrorIs(t, c.Program(0, make([]byte, 512)), ErrNoMedia)
	c.Insert()
	require.NoError(t, c.Program(0, make([]byte, 512)))
	c.SetBadBlock(3, true)
	require.ErrorIs(t, c.Read(1024, make([]byte, 2048)), ErrIO)
	require.ErrorIs(t, c.Program(3*512, make([]byte, 512)), ErrIO)
	require.NoError(t, c.Read(0, make([]byte, 1536)))
	c.SetBadBlock(3, false)
	require.NoError(t, c.Read(1024, make([]byte, 2048)))
}

// cutAt runs f with a power-loss handler that unwinds like the simulator's,
// and reports whether power was lost.
func cutAt(s *System, f func()) (lost bool) {
	type unwind struct{}
	s.SetPowerLossHandler(func(Op) { panic(unwind{}) })
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(unwind); !ok {
				panic(r)
			}
			lost = true
		}
	}()
	f()
	return false
}

func TestCutBeforeAndAfter(t *testing.T) {
	for _, tc := range []struct {
		mode    FaultMode
		applied int // programs whose bytes are on the medium
	}{
		{FaultCutBefore, 4},
		{FaultCutAfter, 5},
	} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			s := NewSystem(nil)
			f := k64fFlash(s)
			rule, err := ParseRule("kind=program,nth=5,mode=" + tc.mode.String())
			require.NoError(t, err)
			s.SetInjector(rule)
			ran := 0
			lost := cutAt(s, func() {
				for i := range 10 {
					require.NoError(t, f.Program(uint64(i)*8, pattern(8, byte(i+1))))
					ran++
				}
			})
			require.True(t, lost)
			require.Equal(t, 4, ran, "no statement after the cut op ran")
			require.False(t, s.Powered())
			for i := range 10 {
				got := make([]byte, 8)
				f.Peek(uint64(i)*8, got)
				if i < tc.applied {
					require.Equal(t, pattern(8, byte(i+1)), got, "program %d", i+1)
				} else {
					require.Equal(t, bytes.Repeat([]byte{0xFF}, 8), got, "program %d", i+1)
				}
			}
			require.Equal(t, tc.mode, s.Journal()[4].Fault.Mode)
		})
	}
}

func TestPowerLossWithoutHandlerReturnsError(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultCutAfter}})
	err := f.Program(0, pattern(8, 1))
	require.True(t, errors.Is(err, ErrPowerLost), "got %v", err)
	require.ErrorIs(t, f.Program(8, pattern(8, 1)), ErrPowerLost)
}

func TestSDRemovedFaultPullsCardDuringFlashOp(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	c := sdCard(s)
	s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultSDRemoved}})
	require.NoError(t, f.Program(0, pattern(8, 1)), "the flash op itself proceeds")
	require.False(t, c.Present())
	require.ErrorIs(t, c.Read(0, make([]byte, 512)), ErrNoMedia)
}

func TestStuckBitSurvivesEraseAndProgram(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultStuckBit, Seed: 5}})
	require.NoError(t, f.Program(0, make([]byte, 64)))
	require.Len(t, f.stuck, 1)
	st := f.stuck[0]
	check := func() {
		got := make([]byte, 1)
		f.Peek(st.addr, got)
		require.Equal(t, st.value, got[0]&st.mask)
	}
	check()
	require.NoError(t, f.Erase(0, 4096))
	check()
	require.NoError(t, f.Program(0, make([]byte, 64)))
	check()
}

// TestSnapshotRestoreConcurrently: many goroutines restore and write the same
// snapshot at once (run under -race by .ci/run); each sees only its own writes.
func TestSnapshotRestoreConcurrently(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	sdCard(s)
	f.Load(0, pattern(int(f.Size()), 1))
	sn := s.Snapshot()
	const workers = 8
	errs := make(chan error, workers)
	for w := range workers {
		go func() {
			r := sn.Restore(nil)
			dev := r.Device("internal")
			if err := dev.Erase(4096, 4096); err != nil {
				errs <- err
				return
			}
			if err := dev.Program(4096, pattern(64, byte(w))); err != nil {
				errs <- err
				return
			}
			got := make([]byte, 64)
			dev.Peek(4096, got)
			if !bytes.Equal(got, pattern(64, byte(w))) {
				errs <- fmt.Errorf("worker %d sees another worker's write", w)
				return
			}
			errs <- nil
		}()
	}
	for range workers {
		require.NoError(t, <-errs)
	}
	got := make([]byte, 64)
	f.Peek(4096, got)
	require.Equal(t, pattern(int(f.Size()), 1)[4096:4096+64], got, "the origin is untouched")
}

func TestPadToUnit(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		unit uint64
		want []byte
	}{
		{[]byte{1, 2, 3}, 4, []byte{1, 2, 3, 0xFF}},
		{[]byte{1, 2, 3, 4}, 4, []byte{1, 2, 3, 4}},
		{[]byte{1, 2, 3, 4, 5}, 4, []byte{1, 2, 3, 4, 5, 0xFF, 0xFF, 0xFF}},
		{[]byte{1, 2, 3}, 1, []byte{1, 2, 3}},
		{nil, 8, nil},
	} {
		require.Equal(t, tc.want, PadToUnit(tc.in, tc.unit), "%v to %d", tc.in, tc.unit)
	}
	in := []byte{1, 2, 3}
	PadToUnit(in, 4)[0] = 9
	require.Equal(t, byte(1), in[0], "a padded copy must not share the input")
}
