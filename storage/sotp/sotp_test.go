package sotp

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/bootsim/bootsim/internal/testref"
	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

type vectors struct {
	FreeOffset  uint64            `json:"free_space_offset_area0"`
	ExpectedGet map[string]string `json:"expected_get"`
	Records     []struct {
		Offset uint64 `json:"offset"`
		CRC    string `json:"crc"`
	} `json:"records"`
}

func loadDump(t *testing.T, name string) (*Store, *Dump) {
	t.Helper()
	d, err := LoadDump(testref.Read(t, name), 0)
	require.NoError(t, err)
	return d.Store(), d
}

func TestReadsReferenceImage(t *testing.T) {
	var v vectors
	testref.JSON(t, "sotp_vectors.json", &v)
	s, d := loadDump(t, "sotp_two_areas_4k.bin")
	require.NoError(t, s.Init())
	area, version := s.ActiveArea()
	require.Equal(t, 0, area)
	require.Equal(t, uint16(1), version)
	require.Equal(t, v.FreeOffset, s.FreeOffset())
	require.Equal(t, InitReport{States: [2]AreaState{AreaValid, AreaEmpty}, Versions: [2]uint16{1, 0}}, s.Report())
	require.Empty(t, d.System.Journal(), "init of a clean store writes nothing")
	require.Len(t, v.ExpectedGet, 3)
	for typ, want := range v.ExpectedGet {
		tp, err := ParseType(typ)
		require.NoError(t, err)
		got, err := s.Get(tp)
		require.NoError(t, err, typ)
		require.Equal(t, want, fmt.Sprintf("%x", got), "type %s", typ)
	}
	_, err := s.Get(TypeFactoryDone)
	require.ErrorIs(t, err, ErrNotFound)

	// The record CRCs of the vector file are what this package computes.
	raw := testref.Read(t, "sotp_two_areas_4k.bin")
	for _, rec := range v.Records {
		hdr := raw[rec.Offset : rec.Offset+8]
		n := uint64(hdr[2]) | uint64(hdr[3])<<8
		c := crc(hdr[:4], raw[rec.Offset+8:rec.Offset+8+n])
		require.Equal(t, rec.CRC, fmt.Sprintf("%08x", c), "record at %d", rec.Offset)
	}
}

// TestTornRecordTriggersGC: the torn vector's record fails its CRC, so init
// compacts the three live records into area 1 (master version 2) and erases
// area 0; every value survives.
func TestTornRecordTriggersGC(t *testing.T) {
	var v vectors
	testref.JSON(t, "sotp_vectors.json", &v)
	s, d := loadDump(t, "sotp_two_areas_4k_torn.bin")
	dev := d.Device
	require.NoError(t, s.Init())
	area, version := s.ActiveArea()
	require.Equal(t, 1, area)
	require.Equal(t, uint16(2), version)
	rep := s.Report()
	require.True(t, rep.GarbageCollected)
	require.Equal(t, uint64(112), rep.BadRecord)
	for typ, want := range v.ExpectedGet {
		tp, _ := ParseType(typ)
		got, err := s.Get(tp)
		require.NoError(t, err, typ)
		require.Equal(t, want, fmt.Sprintf("%x", got))
	}
	// Area 0 is erased; area 1 holds master, then types 1, 2, 4 in type order.
	a0 := make([]byte, 4096)
	dev.Peek(0, a0)
	require.Equal(t, bytes.Repeat([]byte{0xFF}, 4096), a0)
	live, err := s.Live()
	require.NoError(t, err)
	var offs []string
	for _, r := range live {
		offs = append(offs, fmt.Sprintf("%d@%d", r.Type, r.Offset))
	}
	require.Equal(t, []string{"1@16", "2@56", "4@72"}, offs)
	require.Equal(t, uint64(96), s.FreeOffset())

	// A second init finds the compacted store and changes nothing.
	s2 := New(dev, s.areas[0], s.areas[1])
	before := len(d.System.Journal())
	require.NoError(t, s2.Init())
	require.Len(t, d.System.Journal(), before)
	a, ver := s2.ActiveArea()
	require.Equal(t, []any{1, uint16(2)}, []any{a, ver})
}

func TestProbe(t *testing.T) {
	var v vectors
	testref.JSON(t, "sotp_vectors.json", &v)
	for _, f := range []string{"sotp_two_areas_4k.bin", "sotp_two_areas_4k_torn.bin"} {
		d, err := LoadDump(testref.Read(t, f), 0)
		require.NoError(t, err)
		got, area, err := Probe(d.Device, d.Areas[0], d.Areas[1], TypeROT)
		require.NoError(t, err, f)
		require.Equal(t, 0, area)
		require.Equal(t, v.ExpectedGet["4"], fmt.Sprintf("%x", got))
		require.Empty(t, d.System.Journal(), "probe never writes")
	}
}

// TestProbeQuirkBothAreasValid: with two valid areas, init takes the higher
// version (area 0 here) but probe always ends on area 1, so the bootloader
// reads the stale ROT.
func TestProbeQuirkBothAreasValid(t *testing.T) {
	dev, a0, a1 := newFlash()
	old := New(dev, a0, a1)
	require.NoError(t, old.Init())
	require.NoError(t, old.Set(TypeROT, bytes.Repeat([]byte{1}, 16)))
	// Build a second, newer store image in area 0 by hand: copy area 0 to
	// area 1 (version 1, old ROT), then GC twice so area 0 holds version 3.
	area0 := make([]byte, a0.Size)
	dev.Peek(a0.Addr, area0)
	require.NoError(t, old.Set(TypeROT, bytes.Repeat([]byte{2}, 16)))
	require.NoError(t, old.garbageCollect(noType, nil)) // → area 1, v2
	require.NoError(t, old.garbageCollect(noType, nil)) // → area 0, v3
	dev.Load(a1.Addr, area0)                            // area 1: v1 with the old ROT

	s := New(dev, a0, a1)
	require.NoError(t, s.Init()) // erases area 1 as the older one...
	area, version := s.ActiveArea()
	require.Equal(t, 0, area)
	require.Equal(t, uint16(3), version)
	got, err := s.Get(TypeROT)
	require.NoError(t, err)
	require.Equal(t, bytes.Repeat([]byte{2}, 16), got)

	dev.Load(a1.Addr, area0) // ...so restore the stale area 1 for probe
	pr, parea, err := Probe(dev, a0, a1, TypeROT)
	require.NoError(t, err)
	require.Equal(t, 1, parea, "probe picks area 1 whenever it is valid")
	require.Equal(t, bytes.Repeat([]byte{1}, 16), pr, "and reads the older value")
}

func newFlash() (storage.Device, Area, Area) {
	dev, a0, a1, _ := newFlashSys()
	return dev, a0, a1
}

func newFlashSys() (storage.Device, Area, Area, *storage.System) {
	sys := storage.NewSystem(nil)
	f := sys.NewNORFlash(storage.NORConfig{
		Name: "internal", ProgramUnit: 8,
		Sectors:     []storage.SectorRun{{Size: 4096, Count: 4, EraseTime: 15 * time.Millisecond}},
		ProgramTime: 90 * time.Microsecond,
	})
	return f, Area{Addr: 4096, Size: 4096}, Area{Addr: 8192, Size: 4096}, sys
}

func TestVersionWrapRule(t *testing.T) {
	for _, tc := range []struct {
		v0, v1 uint16
		active int
	}{{2, 1, 0}, {1, 2, 1}, {0, 65535, 0}, {0, 1, 0}, {5, 5, 1}} {
		dev, a0, a1 := newFlash()
		for i, v := range []uint16{tc.v0, tc.v1} {
			s := New(dev, a0, a1)
			_, err := s.writeMaster(i, v)
			require.NoError(t, err)
			_, err = s.writeRecord(i, 16, uint16(TypeROT), 0, []byte{byte(i)})
			require.NoError(t, err)
		}
		s := New(dev, a0, a1)
		require.NoError(t, s.Init())
		area, _ := s.ActiveArea()
		require.Equal(t, tc.active, area, "versions %d/%d", tc.v0, tc.v1)
		got, err := s.Get(TypeROT)
		require.NoError(t, err)
		require.Equal(t, []byte{byte(tc.active)}, got)
		require.Equal(t, []int{1 - tc.active}, s.Report().Erased)
	}
}

// TestCorruptMiddleRecordDropsLaterOnes: a bit flip in a middle record makes
// init garbage-collect at it and silently lose every record after it.
func TestCorruptMiddleRecordDropsLaterOnes(t *testing.T) {
	dev, a0, a1 := newFlash()
	s := New(dev, a0, a1)
	require.NoError(t, s.Init())
	require.NoError(t, s.Set(TypeRandomSeed, []byte("seed")))
	require.NoError(t, s.Set(TypeSavedTime, []byte("time")))
	require.NoError(t, s.Set(TypeROT, []byte("0123456789abcdef")))
	// Records: master 0..16, random-seed 16..32, saved-time 32..48, rot 48..72.
	dev.FlipBit(a0.Addr+32+8, 0) // one bit of the saved-time value
	s2 := New(dev, a0, a1)
	require.NoError(t, s2.Init())
	require.True(t, s2.Report().GarbageCollected)
	_, err := s2.Get(TypeRandomSeed)
	require.NoError(t, err)
	_, err = s2.Get(TypeSavedTime)
	require.ErrorIs(t, err, ErrNotFound)
	_, err = s2.Get(TypeROT)
	require.ErrorIs(t, err, ErrNotFound, "the record after the bad one is lost too")
}

func TestSetDeleteAndGC(t *testing.T) {
	dev, a0, a1 := newFlash()
	s := New(dev, a0, a1)
	require.NoError(t, s.Init())
	require.ErrorIs(t, s.Delete(TypeROT), ErrNotFound)
	require.ErrorIs(t, s.Set(16, nil), ErrBadType)
	require.NoError(t, s.Set(TypeROT, []byte("rot")))
	require.NoError(t, s.Delete(TypeROT))
	_, err := s.Get(TypeROT)
	require.ErrorIs(t, err, ErrNotFound)
	// Fill the area many times over: each GC keeps only the latest values.
	for i := range 500 {
		require.NoError(t, s.Set(Type(i%3), []byte(fmt.Sprintf("value %d", i))))
	}
	for typ, last := range []int{498, 499, 497} { // the last i < 500 with i%3 == typ
		got, err := s.Get(Type(typ))
		require.NoError(t, err)
		require.Equal(t, fmt.Sprintf("value %d", last), string(got))
	}
	_, v := s.ActiveArea()
	require.GreaterOrEqual(t, v, uint16(3), "garbage collection ran")
	s2 := New(dev, a0, a1)
	require.NoError(t, s2.Init())
	require.False(t, s2.Report().GarbageCollected)
	got, err := s2.Get(TypeSavedTime)
	require.NoError(t, err)
	require.Equal(t, "value 497", string(got))
}

func TestParseType(t *testing.T) {
	for in, want := range map[string]Type{"4": TypeROT, "rot": TypeROT, "ROT": TypeROT, "random_seed": TypeRandomSeed, "15": 15, "saved-time": TypeSavedTime} {
		got, err := ParseType(in)
		require.NoError(t, err, in)
		require.Equal(t, want, got, in)
	}
	for _, bad := range []string{"16", "-1", "key", "", "04"} {
		_, err := ParseType(bad)
		require.Error(t, err, bad)
	}
}

// TestPowerCutDuringSets cuts power at every program and erase of a sequence
// of sets that forces garbage collection, in each mode, and checks that after
// the next init every key holds its old or its new value: never garbage,
// never missing.
func TestPowerCutDuringSets(t *testing.T) {
	type set struct {
		t Type
		v []byte
	}
	// The starting store: three keys, then enough sets of one key to fill the
	// 4 KiB area, with two other keys changed along the way.
	initial := map[Type][]byte{TypeROT: bytes.Repeat([]byte{0xAA}, 16), TypeRandomSeed: bytes.Repeat([]byte{0x55}, 32), TypeSavedTime: {1, 2, 3, 4, 5, 6, 7, 8}}
	var seq []set
	for i := range 200 {
		seq = append(seq, set{TypeSavedTime, []byte(fmt.Sprintf("time-%04d", i))})
		if i%40 == 0 {
			seq = append(seq, set{TypeROT, bytes.Repeat([]byte{byte(i)}, 16)})
		}
		if i == 100 {
			seq = append(seq, set{TypeMinFWVersion, []byte{9, 9}})
		}
	}
	build := func() (storage.Device, Area, Area, *storage.System) {
		dev, a0, a1, sys := newFlashSys()
		s := New(dev, a0, a1)
		if err := s.Init(); err != nil {
			t.Fatal(err)
		}
		for _, typ := range []Type{TypeROT, TypeRandomSeed, TypeSavedTime} {
			if err := s.Set(typ, initial[typ]); err != nil {
				t.Fatal(err)
			}
		}
		return dev, a0, a1, sys
	}
	// Baseline: count the ops of the sequence and check it garbage-collects.
	dev, a0, a1, sys := build()
	start := len(sys.Journal())
	s := New(dev, a0, a1)
	require.NoError(t, s.Init())
	for _, x := range seq {
		require.NoError(t, s.Set(x.t, x.v))
	}
	_, version := s.ActiveArea()
	require.GreaterOrEqual(t, version, uint16(2), "the sequence garbage-collects")
	ops := len(sys.Journal()) - start
	require.Greater(t, ops, 200)
	erases := 0
	for _, op := range sys.Journal()[start:] {
		if op.Kind == storage.OpErase {
			erases++
		}
	}
	require.GreaterOrEqual(t, erases, 1, "the cut points include garbage collection's erase")

	checked := 0
	for _, mode := range []storage.FaultMode{storage.FaultCutBefore, storage.FaultCutAfter, storage.FaultTorn} {
		for k := range ops {
			dev, a0, a1, sys := build()
			sys.SetInjector(&storage.Rule{Match: storage.OnIndex(start + k), Fault: storage.Fault{Mode: mode, Seed: uint64(k)}})
			s := New(dev, a0, a1)
			require.NoError(t, s.Init())
			// What each key may hold: its value before the set in progress, or
			// after it. nil stands for "absent", allowed only for a key that
			// had no value before.
			allowed := map[Type][][]byte{TypeMinFWVersion: {nil}}
			for typ, v := range initial {
				allowed[typ] = [][]byte{v}
			}
			for _, x := range seq {
				err := s.Set(x.t, x.v)
				if err != nil {
					require.ErrorIs(t, err, storage.ErrPowerLost, "mode %s op %d", mode, k)
					allowed[x.t] = append(allowed[x.t], x.v)
					break
				}
				allowed[x.t] = [][]byte{x.v}
			}
			require.False(t, sys.Powered(), "mode %s op %d: the cut happened", mode, k)
			sys.PowerOn()
			sys.SetInjector(nil)
			after := New(dev, a0, a1)
			require.NoError(t, after.Init(), "mode %s op %d", mode, k)
			for typ, vals := range allowed {
				got, err := after.Get(typ)
				if errors.Is(err, ErrNotFound) {
					require.Contains(t, vals, []byte(nil), "mode %s op %d: %s missing", mode, k, typ.Name())
					continue
				}
				require.NoError(t, err, "mode %s op %d: %s", mode, k, typ.Name())
				require.Contains(t, vals, got, "mode %s op %d: %s holds %x", mode, k, typ.Name(), got)
			}
			checked++
		}
	}
	t.Logf("%d cut points × 3 modes checked", checked/3)
}

// TestPropertyStoreMatchesMap: random sets, deletes and re-inits behave like
// a map.
func TestPropertyStoreMatchesMap(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		dev, a0, a1 := newFlash()
		s := New(dev, a0, a1)
		if err := s.Init(); err != nil {
			t.Fatal(err)
		}
		model := map[Type][]byte{}
		for i := range rapid.IntRange(1, 200).Draw(t, "ops") {
			typ := Type(rapid.IntRange(0, MaxTypes-1).Draw(t, fmt.Sprint("type-", i)))
			switch rapid.IntRange(0, 9).Draw(t, fmt.Sprint("op-", i)) {
			case 0:
				err := s.Delete(typ)
				if _, ok := model[typ]; ok {
					if err != nil {
						t.Fatal(err)
					}
					delete(model, typ)
				} else if !errors.Is(err, ErrNotFound) {
					t.Fatalf("delete of absent type: %v", err)
				}
			case 1:
				s = New(dev, a0, a1)
				if err := s.Init(); err != nil {
					t.Fatal(err)
				}
			default:
				v := rapid.SliceOfN(rapid.Byte(), 0, 200).Draw(t, fmt.Sprint("value-", i))
				if err := s.Set(typ, v); err != nil {
					t.Fatal(err)
				}
				model[typ] = v
			}
		}
		for typ := range Type(MaxTypes) {
			got, err := s.Get(typ)
			want, ok := model[typ]
			if !ok {
				if !errors.Is(err, ErrNotFound) {
					t.Fatalf("%s: want not found, got %x, %v", typ.Name(), got, err)
				}
				continue
			}
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("%s: got %x (%v), want %x", typ.Name(), got, err, want)
			}
		}
	})
}

func TestLoadDumpErrors(t *testing.T) {
	raw := testref.Read(t, "sotp_two_areas_4k.bin")
	// Every proper prefix of the 8 KiB dump fails with a 4 KiB area size.
	for n := range len(raw) {
		_, err := LoadDump(raw[:n], 4096)
		require.ErrorIs(t, err, ErrDump, "%d bytes", n)
	}
	_, err := LoadDump(raw, 1000)
	require.ErrorContains(t, err, "multiple of 128")
	_, err = LoadDump(nil, 0)
	require.ErrorContains(t, err, "empty")
	// 2 × 0x8000000000001000 wraps to 0x2000, the dump's length: refused,
	// not accepted by the overflow (issue 11).
	_, err = LoadDump(raw, 0x8000000000001000)
	require.ErrorIs(t, err, ErrDump)
}

func FuzzInit(f *testing.F) {
	f.Add(testref.Read(f, "sotp_two_areas_4k.bin")[:2048])
	f.Add(testref.Read(f, "sotp_two_areas_4k_torn.bin")[:2048])
	f.Fuzz(func(t *testing.T, area0 []byte) {
		// Arbitrary bytes in area 0, a blank area 1: init and reads never
		// panic, and whatever init keeps reads back consistently.
		img := bytes.Repeat([]byte{0xFF}, 4096)
		copy(img, area0)
		d, err := LoadDump(img, 2048)
		if err != nil {
			t.Fatal(err)
		}
		dev, a0, a1 := d.Device, d.Areas[0], d.Areas[1]
		s := New(dev, a0, a1)
		if err := s.Init(); err != nil {
			if !errors.Is(err, ErrAreaTooSmall) {
				t.Fatalf("init: %v", err)
			}
			return
		}
		if _, err := s.Live(); err != nil {
			t.Fatalf("live after init: %v", err)
		}
		_, _, _ = Probe(dev, a0, a1, TypeROT)
		if err := s.Set(TypeROT, []byte("0123456789abcdef")); err != nil && !errors.Is(err, ErrAreaTooSmall) {
			t.Fatalf("set: %v", err)
		}
	})
}
