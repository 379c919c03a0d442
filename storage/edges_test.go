package storage

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Edges: the first and last byte of every range a device checks, the
// copy-on-write pages' boundaries, and how names print.

// TestRangeEdges: an op may reach the last byte of a device and no
// further; a zero-length op at the very end is allowed.
func TestRangeEdges(t *testing.T) {
	for _, m := range media {
		t.Run(m.name, func(t *testing.T) {
			s := NewSystem(nil)
			d := m.make(s)
			size, unit := d.Size(), d.ProgramSize()
			require.NoError(t, d.Read(size, nil))
			require.ErrorIs(t, d.Read(size+1, nil), ErrOutOfBounds)
			require.ErrorIs(t, d.Read(size-unit, make([]byte, 2*unit)), ErrOutOfBounds)
			require.NoError(t, d.Read(size-unit, make([]byte, unit)))
			require.NoError(t, d.Program(size-unit, make([]byte, unit)))
			require.ErrorIs(t, d.Program(size, make([]byte, unit)), ErrOutOfBounds)
			require.NoError(t, d.Program(size, nil))
			last := d.EraseSize(size - 1)
			require.NoError(t, d.Erase(size-last, last))
			require.ErrorIs(t, d.Erase(size, last), ErrOutOfBounds)

			d.Peek(size-1, make([]byte, 1))
			d.Load(size-1, []byte{0})
			d.Peek(size, nil)
			d.Load(size, nil)
			d.FlipBit(size-1, 7)
			require.Panics(t, func() { d.Peek(size, make([]byte, 1)) })
			require.Panics(t, func() { d.Peek(size+1, nil) })
			require.Panics(t, func() { d.Load(size, []byte{0}) })
			require.Panics(t, func() { d.Load(size+1, nil) })
			require.Panics(t, func() { d.FlipBit(size, 0) })
			require.Panics(t, func() { d.FlipBit(0, 8) })
		})
	}
}

// TestPadToUnitReturnsWholeInput: an input that is whole units comes back
// as it is, not as a copy; a short one is padded with 0xFF.
func TestPadToUnitReturnsWholeInput(t *testing.T) {
	p := make([]byte, 16)
	require.Same(t, &p[0], &PadToUnit(p, 8)[0])
	require.Same(t, &p[0], &PadToUnit(p, 1)[0])
	require.Equal(t, append(make([]byte, 17), bytes.Repeat([]byte{0xFF}, 7)...), PadToUnit(make([]byte, 17), 8))
}

// TestStuckBitAtRangeEdges: a stuck bit keeps its value under a write that
// starts at it, ends at it, or covers it.
func TestStuckBitAtRangeEdges(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	f.stuck = []stuckBit{{addr: 100, mask: 0x10, value: 0x10}}
	stuck := func() bool {
		b := make([]byte, 1)
		f.Peek(100, b)
		return b[0]&0x10 != 0
	}
	for _, w := range []struct{ at, n uint64 }{{100, 1}, {96, 5}, {96, 8}, {0, 4096}} {
		f.Load(w.at, make([]byte, w.n))
		require.True(t, stuck(), "a write of %d bytes at %d", w.n, w.at)
	}
	require.NoError(t, f.Erase(0, 4096))
	f.FlipBit(100, 4)
	require.True(t, stuck(), "a bit flip")
}

// TestMemoryAcrossPages: reads, writes and fills that start inside a
// 4 KiB page and run into the next, over written and never-written pages.
func TestMemoryAcrossPages(t *testing.T) {
	m := newMemory(5*pageSize, 0xFF)
	data := pattern(3*pageSize, 9)
	m.write(pageSize+100, data[:pageSize]) // pages 1 and 2 written, 0, 3, 4 blank
	want := bytes.Repeat([]byte{0xFF}, 5*pageSize)
	copy(want[pageSize+100:], data[:pageSize])
	got := make([]byte, 3*pageSize)
	m.read(100, got)
	require.Equal(t, want[100:100+3*pageSize], got)

	m.fill(pageSize-10, pageSize+20, 0x00)
	for i := pageSize - 10; i < 2*pageSize+10; i++ {
		want[i] = 0
	}
	all := make([]byte, 5*pageSize)
	m.read(0, all)
	require.Equal(t, want, all)
}

// TestEraseDoesNotAllocate: erasing whole never-written pages, or pages
// that hold only the blank value, drops them instead of writing them.
func TestEraseDoesNotAllocate(t *testing.T) {
	m := newMemory(1<<20, 0xFF)
	require.Zero(t, testing.AllocsPerRun(10, func() { m.fill(0, 1<<20, 0xFF) }))
	m.write(0, []byte{1})
	m.fill(0, pageSize, 0xFF)
	require.Nil(t, m.pageAt(0), "the written page was dropped")
	m.fill(0, 100, 0xFF) // part of a page is written
	require.NotNil(t, m.pageAt(0))
}

// TestStampCoversItsRange: a stamp changes when any page holding a byte of
// its range is written, and not when the pages just before or after are.
func TestStampCoversItsRange(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	f.Load(0, pattern(5*pageSize, 3))
	for _, r := range []struct{ at, n uint64 }{{pageSize, pageSize}, {pageSize + 8, 2*pageSize - 16}, {pageSize, 1}, {2*pageSize - 1, 1}} {
		st := f.Stamp(r.at, r.n)
		f.FlipBit(pageSize-1, 0)   // the byte before the first page
		f.FlipBit(3*pageSize+5, 0) // the page after the last
		if r.at+r.n <= 2*pageSize {
			f.FlipBit(2*pageSize, 0) // the first byte of the next page
		}
		require.True(t, st.Equal(f.Stamp(r.at, r.n)), "%+v: writes outside the range", r)
		f.FlipBit(r.at+r.n-1, 1)
		require.False(t, st.Equal(f.Stamp(r.at, r.n)), "%+v: a write to its last byte", r)
		st = f.Stamp(r.at, r.n)
		f.FlipBit(r.at, 2)
		require.False(t, st.Equal(f.Stamp(r.at, r.n)), "%+v: a write to its first byte", r)
	}
	require.False(t, f.Stamp(0, 0).Equal(f.Stamp(0, 0)), "an empty stamp names nothing")
}

// TestNames: fault modes, op kinds and ops print as the journal and the
// command line write them, unknown values included.
func TestNames(t *testing.T) {
	require.Equal(t, []FaultMode{FaultCutBefore, FaultCutAfter, FaultTorn, FaultBitFlip, FaultIOError, FaultStuckBit, FaultWearOut, FaultSDRemoved}, FaultModes())
	require.Equal(t, "sd-removed", FaultSDRemoved.String())
	require.Equal(t, "FaultMode(9)", FaultMode(9).String())
	require.Equal(t, "FaultMode(200)", FaultMode(200).String())
	require.Equal(t, "erase", OpErase.String())
	require.Equal(t, "OpKind(0)", OpKind(0).String())
	require.Equal(t, "read", OpRead.String())
	require.Equal(t, "OpKind(4)", OpKind(4).String())
	op := Op{Index: 4, Device: "sd", Kind: OpProgram, Addr: 0x200, Len: 512}
	require.Equal(t, "#4 sd program 0x200+512", op.String())
	op.Region, op.Fault = "slot-0", Fault{Mode: FaultTorn, Seed: 3}
	require.Equal(t, "#4 sd program 0x200+512 [slot-0] mode=torn,seed=3", op.String())
}

// TestRuleEdges: a time rule fires at an op that starts exactly at its
// time; op=0 is a journal index like any other; a negative time is refused.
func TestRuleEdges(t *testing.T) {
	r, err := ParseRule("time=20ms")
	require.NoError(t, err)
	_, ok := r.Inject(&Op{Index: 3, Time: 20 * time.Millisecond})
	require.True(t, ok)
	_, err = ParseRule("op=0,region=x")
	require.ErrorContains(t, err, "op names one op; it takes no device, region or kind")
	r, err = ParseRule("time=0s")
	require.NoError(t, err, "time 0 is the first op")
	_, ok = r.Inject(&Op{})
	require.True(t, ok)
	_, err = ParseRule("time=-5ms")
	require.ErrorContains(t, err, "time=-5ms: must not be negative")
	_, err = ParseRule("nth=0")
	require.ErrorContains(t, err, "must be ≥ 1")
	r, err = ParseRule("nth=1")
	require.NoError(t, err)
	_, ok = r.Inject(&Op{})
	require.True(t, ok)
}

// TestNORGeometryEdges: an erase size asked past the end is the last
// sector's; a sector run of no sectors is a programming error; a worn
// sector refuses ops that reach into it, and only those.
func TestNORGeometryEdges(t *testing.T) {
	s := NewSystem(nil)
	f := f429Flash(s)
	require.Equal(t, uint64(128<<10), f.EraseSize(f.Size()+100))
	require.Panics(t, func() {
		NewSystem(nil).NewNORFlash(NORConfig{Name: "x", ProgramUnit: 8, Sectors: []SectorRun{{Size: 4096, Count: 0}}})
	})
	f.worn[1] = true
	require.NoError(t, f.Program(16<<10-4, make([]byte, 4)), "the last unit before the worn sector")
	require.ErrorIs(t, f.Program(16<<10-4, make([]byte, 8)), ErrWornOut)
	require.NoError(t, f.Program(32<<10, make([]byte, 4)), "the first unit after it")
	last := f.Sectors() - 1
	f.worn[last] = true
	start, size := f.SectorBounds(last)
	require.ErrorIs(t, f.Program(start+size-4, make([]byte, 4)), ErrWornOut)
}

// TestStrictNamesTheUnit: strict mode's refusal names the first unit that
// is not erased.
func TestStrictNamesTheUnit(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	f.cfg.Strict = true
	f.Load(24, []byte{0x7F})
	err := f.Program(8, make([]byte, 32))
	require.ErrorIs(t, err, ErrNotErased)
	require.ErrorContains(t, err, "unit at 0x18")
}

// TestSDTimes: an SD write costs the write latency plus its bytes at the
// write bandwidth; a trim costs the latency alone; a torn write costs up to
// the end of the torn block.
func TestSDTimes(t *testing.T) {
	s := NewSystem(nil)
	c := s.NewSDCard(SDConfig{Name: "sd", Size: 1 << 20, WriteLatency: time.Millisecond, WriteBandwidth: 512000})
	require.NoError(t, c.Program(0, make([]byte, 2048)))
	require.Equal(t, time.Millisecond+4*time.Millisecond, s.Clock().Now())
	require.NoError(t, c.Erase(0, 1<<20))
	require.Equal(t, 6*time.Millisecond, s.Clock().Now())

	// A torn write: the blocks before the torn one are new and the torn one
	// old, new or garbage; the time is that of the blocks up to the torn
	// one, so it is that of the new prefix, or of one block more.
	old, neu := pattern(8*512, 1), pattern(8*512, 2)
	for seed := range uint64(40) {
		s := NewSystem(nil)
		c := s.NewSDCard(SDConfig{Name: "sd", Size: 1 << 20, WriteLatency: time.Millisecond, WriteBandwidth: 512000})
		c.Load(0, old)
		s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultTorn, Seed: seed}})
		require.ErrorIs(t, c.Program(0, neu), ErrPowerLost)
		got := contents(c)
		n := time.Duration(0)
		for n < 8 && bytes.Equal(got[n*512:(n+1)*512], neu[n*512:(n+1)*512]) {
			n++
		}
		took := s.Clock().Now()
		require.True(t, took == time.Millisecond+n*time.Millisecond || took == time.Millisecond+(n+1)*time.Millisecond,
			"seed %d: %d new blocks in %s", seed, n, took)
	}
}

// TestReadTimes: a read costs the device's read latency plus its bytes at
// the read bandwidth.
func TestReadTimes(t *testing.T) {
	s := NewSystem(nil)
	f := s.NewNORFlash(NORConfig{Name: "nor", ProgramUnit: 8, Sectors: []SectorRun{{Size: 4096, Count: 4}},
		ReadBandwidth: 2_000_000, ReadLatency: 3 * time.Microsecond})
	c := s.NewSDCard(SDConfig{Name: "sd", Size: 1 << 20, ReadLatency: time.Millisecond, ReadBandwidth: 1_024_000})
	require.NoError(t, f.Read(0, make([]byte, 1000)))
	require.Equal(t, 3*time.Microsecond+500*time.Microsecond, s.Clock().Now())
	require.NoError(t, c.Read(0, make([]byte, 1024)))
	require.Equal(t, 503*time.Microsecond+2*time.Millisecond, s.Clock().Now())
}

// TestTornSDWriteKeepsStuckBits: a stuck bit in a block that a torn write
// reached keeps its value.
func TestTornSDWriteKeepsStuckBits(t *testing.T) {
	for seed := range uint64(60) {
		s := NewSystem(nil)
		c := sdCard(s)
		c.stuck = []stuckBit{{addr: 5, mask: 0x01, value: 0x01}, {addr: 3*512 + 7, mask: 0x80, value: 0x80}}
		c.Load(0, bytes.Repeat([]byte{0xFF}, 8*512))
		s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultTorn, Seed: seed}})
		require.ErrorIs(t, c.Program(0, make([]byte, 8*512)), ErrPowerLost)
		b := make([]byte, 3*512+8)
		c.Peek(0, b)
		require.Equal(t, byte(0x01), b[5]&0x01, "seed %d: block 0", seed)
		require.Equal(t, byte(0x80), b[3*512+7]&0x80, "seed %d: block 3", seed)
	}
}

// TestSDCloneKeepsBadBlocks: a clone of a card has the same bad blocks,
// and healing one in the clone leaves the original's alone.
func TestSDCloneKeepsBadBlocks(t *testing.T) {
	s := NewSystem(nil)
	c := sdCard(s)
	c.SetBadBlock(3, true)
	cl := s.Clone(nil).Device("sd").(*SDCard)
	require.ErrorIs(t, cl.Read(3*512, make([]byte, 512)), ErrIO)
	cl.SetBadBlock(3, false)
	require.NoError(t, cl.Read(3*512, make([]byte, 512)))
	require.ErrorIs(t, c.Read(3*512, make([]byte, 512)), ErrIO)
	clean := NewSystem(nil)
	sdCard(clean)
	require.NoError(t, clean.Clone(nil).Device("sd").Read(3*512, make([]byte, 512)))
}

// TestRegions: a region must lie inside its device; an op is attributed
// to the first region it touches, and touching means sharing a byte (a
// zero-length op at an address touches the region holding that byte).
func TestRegions(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	require.ErrorContains(t, s.AddRegion(Region{Name: "x", Device: "nope", Start: 0, Size: 8}), `no device "nope"`)
	require.ErrorContains(t, s.AddRegion(Region{Name: "x", Device: "internal", Start: 0, Size: 0}), "does not fit")
	require.ErrorContains(t, s.AddRegion(Region{Name: "x", Device: "internal", Start: f.Size() - 8, Size: 16}), "does not fit")
	require.ErrorContains(t, s.AddRegion(Region{Name: "x", Device: "internal", Start: 1 << 63, Size: 1 << 63}), "does not fit")
	require.NoError(t, s.AddRegion(Region{Name: "last", Device: "internal", Start: f.Size() - 4096, Size: 4096}))
	require.NoError(t, s.AddRegion(Region{Name: "a", Device: "internal", Start: 4096, Size: 4096}))
	require.NoError(t, s.AddRegion(Region{Name: "b", Device: "internal", Start: 8192, Size: 4096}))
	r, ok := s.Region("b")
	require.True(t, ok)
	require.Equal(t, uint64(12288), r.End())
	_, ok = s.Region("c")
	require.False(t, ok)
	for _, tc := range []struct {
		addr, n uint64
		want    string
	}{{4096, 8, "a"}, {8184, 8, "a"}, {8184, 16, "a"}, {8192, 8, "b"}, {4088, 8, ""}, {4088, 16, "a"}, {12288, 8, ""}, {12280, 0, "b"}, {12288, 0, ""}} {
		require.Equal(t, tc.want, s.regionOf("internal", tc.addr, tc.n), "0x%x+%d", tc.addr, tc.n)
	}
	require.Equal(t, "", s.regionOf("sd", 4096, 8))
	require.NoError(t, f.Program(8192, make([]byte, 8)))
	require.Equal(t, "b", s.Journal()[0].Region)
}

// TestAndBytes: the word-at-a-time AND is the byte-wise one, at every
// length and alignment of the tail.
func TestAndBytes(t *testing.T) {
	for n := range 40 {
		dst, src := pattern(n, 1), pattern(n, 2)
		want := make([]byte, n)
		for i := range want {
			want[i] = dst[i] & src[i]
		}
		andBytes(dst, src)
		require.Equal(t, want, dst, "n=%d", n)
	}
}

// TestProgramPagesIsOneOpPerPage: a run of page programs is one op per
// page to fault rules (nth counts pages, op= names one), one record in
// the journal up to the page a rule hits, and a fork of the record torn
// at a seed's page leaves what a replay cutting that page leaves.
func TestProgramPagesIsOneOpPerPage(t *testing.T) {
	newFlash := func() (*System, *NORFlash) {
		sys := NewSystem(nil)
		f := sys.NewNORFlash(NORConfig{Name: "internal", ProgramUnit: 8, ProgramTime: time.Microsecond,
			Sectors: []SectorRun{{Size: 4096, Count: 4, EraseTime: time.Millisecond}}})
		sys.PowerOn()
		return sys, f
	}
	data := make([]byte, 256)
	for i := range data {
		data[i] = byte(i)
	}

	// No rule: one record for 32 pages, indices 0 to 31.
	sys, f := newFlash()
	require.NoError(t, f.ProgramPages(0, data, 8))
	j := sys.Journal()
	require.Len(t, j, 1)
	require.Equal(t, 32, j[0].Count())
	require.Equal(t, 31, j[0].Last())
	require.Equal(t, "#0-#31 internal program 0x0+256 (32 pages)", j[0].String())
	require.NoError(t, f.Program(4096, make([]byte, 8)))
	require.Equal(t, 32, sys.Journal()[1].Index, "the next op follows the last page")

	// nth=3: the third page fails; the two before it are one record.
	sys, f = newFlash()
	rule, err := ParseRule("kind=program,nth=3,mode=io-error")
	require.NoError(t, err)
	sys.SetInjector(rule)
	require.ErrorIs(t, f.ProgramPages(0, data, 8), ErrIO)
	j = sys.Journal()
	require.Len(t, j, 2)
	require.Equal(t, 2, j[0].Count())
	require.Equal(t, 2, j[1].Index)
	require.Equal(t, uint64(16), j[1].Addr)

	// replayed returns what a run left in the first 256 bytes whose rule
	// cuts op at with fault, and read returns a forked system's.
	replayed := func(at int, fault Fault) []byte {
		run, rf := newFlash()
		rule, err := ParseRule(fmt.Sprintf("op=%d,mode=%s,seed=%d", at, fault.Mode, fault.Seed))
		require.NoError(t, err)
		run.SetInjector(rule)
		_ = rf.ProgramPages(0, data, 8)
		run.PowerOn()
		out := make([]byte, 256)
		require.NoError(t, rf.Read(0, out))
		return out
	}
	read := func(forked *System) []byte {
		forked.PowerOn()
		out := make([]byte, 256)
		require.NoError(t, forked.Device("internal").Read(0, out))
		return out
	}
	base, bf := newFlash()
	start := base.Snapshot()
	require.NoError(t, bf.ProgramPages(0, data, 8))
	rb := start.Rebuild(base.Journal(), nil)

	// A sweep's torn fork of the whole record equals a run cut at the
	// page the seed picks.
	for seed := uint64(1); seed <= 6; seed++ {
		fault := Fault{Mode: FaultTorn, Seed: seed}
		at := rb.FaultedOp(fault)
		forked, err := rb.Fork(fault, nil)
		require.NoError(t, err)
		require.Equal(t, replayed(at, fault), read(forked), "seed %d, page %d", seed, at)
	}

	// ForkPage: a cut of any mode at any page of the record equals a run
	// cut at that page's index.
	for k := range 32 {
		for _, fault := range []Fault{{Mode: FaultCutBefore}, {Mode: FaultCutAfter}, {Mode: FaultTorn, Seed: uint64(k)}} {
			forked, err := rb.ForkPage(k, fault, nil)
			require.NoError(t, err)
			require.Equal(t, replayed(k, fault), read(forked), "page %d %s", k, fault.Mode)
		}
	}
}
