package storage

import (
	"bytes"
	"fmt"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

// norModel is the dumb reference: a byte array where program ANDs and erase
// sets 0xFF, with the same sector map as the device under test.
type norModel struct {
	bytes  []byte
	erases []uint32
}

func newNORModel(f *NORFlash) *norModel {
	m := &norModel{bytes: bytes.Repeat([]byte{0xFF}, int(f.Size())), erases: make([]uint32, f.Sectors())}
	f.Peek(0, m.bytes)
	return m
}

func (m *norModel) clone() *norModel {
	return &norModel{bytes: bytes.Clone(m.bytes), erases: append([]uint32(nil), m.erases...)}
}

func (m *norModel) program(addr uint64, data []byte) {
	for i, b := range data {
		m.bytes[addr+uint64(i)] &= b
	}
}

func (m *norModel) erase(f *NORFlash, addr, size uint64) {
	for i := f.sector(addr); i < f.Sectors(); i++ {
		start, n := f.SectorBounds(i)
		if start >= addr+size {
			break
		}
		for j := start; j < start+n; j++ {
			m.bytes[j] = 0xFF
		}
		m.erases[i]++
	}
}

func contents(d Device) []byte {
	b := make([]byte, d.Size())
	d.Peek(0, b)
	return b
}

// drawSectorRange draws a whole-sector range of f.
func drawSectorRange(t *rapid.T, f *NORFlash, label string) (uint64, uint64) {
	first := rapid.IntRange(0, f.Sectors()-1).Draw(t, label+"-first")
	last := rapid.IntRange(first, min(first+2, f.Sectors()-1)).Draw(t, label+"-last")
	start, _ := f.SectorBounds(first)
	ls, lsz := f.SectorBounds(last)
	return start, ls + lsz - start
}

// drawProgram draws an aligned program of at most 3 sectors' worth of units.
func drawProgram(t *rapid.T, f *NORFlash, label string) (uint64, []byte) {
	u := f.ProgramSize()
	units := f.Size() / u
	n := rapid.Uint64Range(1, 64).Draw(t, label+"-units")
	at := rapid.Uint64Range(0, units-n).Draw(t, label+"-at")
	data := rapid.SliceOfN(rapid.Byte(), int(n*u), int(n*u)).Draw(t, label+"-data")
	return at * u, data
}

func smallNOR(t *rapid.T) (*System, *NORFlash) {
	s := NewSystem(nil)
	var f *NORFlash
	if rapid.Bool().Draw(t, "non-uniform") {
		f = s.NewNORFlash(NORConfig{Name: "nor", ProgramUnit: 4, Sectors: []SectorRun{
			{Size: 1024, Count: 4}, {Size: 4096, Count: 1}, {Size: 8192, Count: 2}}})
	} else {
		f = s.NewNORFlash(NORConfig{Name: "nor", ProgramUnit: 8, Sectors: []SectorRun{{Size: 2048, Count: 12}}})
	}
	return s, f
}

// TestPropertyNORMatchesModel: any sequence of programs and erases leaves the
// device equal to the dumb model, and its erase counters equal the model's.
func TestPropertyNORMatchesModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		_, f := smallNOR(t)
		m := newNORModel(f)
		for i := range rapid.IntRange(1, 30).Draw(t, "ops") {
			if rapid.Bool().Draw(t, fmt.Sprintf("erase-%d", i)) {
				a, n := drawSectorRange(t, f, fmt.Sprint(i))
				if err := f.Erase(a, n); err != nil {
					t.Fatal(err)
				}
				m.erase(f, a, n)
			} else {
				a, d := drawProgram(t, f, fmt.Sprint(i))
				if err := f.Program(a, d); err != nil {
					t.Fatal(err)
				}
				m.program(a, d)
			}
		}
		if !bytes.Equal(m.bytes, contents(f)) {
			t.Fatal("device differs from the model")
		}
		if fmt.Sprint(m.erases) != fmt.Sprint(f.EraseCounts()) {
			t.Fatalf("erase counts %v, model %v", f.EraseCounts(), m.erases)
		}
	})
}

// TestPropertyCloneIsolation: after a clone, the clone and its origin each see
// exactly their own later writes and erases, whatever the interleaving,
// including clones of clones and two systems restored from one snapshot
// (which share its chunks and wear until they write).
func TestPropertyCloneIsolation(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, f := smallNOR(t)
		systems := []*System{s}
		models := []*norModel{newNORModel(f)}
		for i := range rapid.IntRange(1, 40).Draw(t, "steps") {
			k := rapid.IntRange(0, len(systems)-1).Draw(t, fmt.Sprintf("which-%d", i))
			dev := systems[k].Device("nor").(*NORFlash)
			switch rapid.IntRange(0, 3).Draw(t, fmt.Sprintf("action-%d", i)) {
			case 0:
				if len(systems) < 6 {
					systems = append(systems, systems[k].Clone(nil))
					models = append(models, models[k].clone())
				}
			case 3:
				if len(systems) < 5 {
					sn := systems[k].Snapshot()
					systems = append(systems, sn.Restore(nil), sn.Restore(nil))
					models = append(models, models[k].clone(), models[k].clone())
				}
			case 1:
				a, n := drawSectorRange(t, dev, fmt.Sprint(i))
				if err := dev.Erase(a, n); err != nil {
					t.Fatal(err)
				}
				models[k].erase(dev, a, n)
			case 2:
				a, d := drawProgram(t, dev, fmt.Sprint(i))
				if err := dev.Program(a, d); err != nil {
					t.Fatal(err)
				}
				models[k].program(a, d)
			}
		}
		for k, sys := range systems {
			dev := sys.Device("nor").(*NORFlash)
			if !bytes.Equal(models[k].bytes, contents(dev)) {
				t.Fatalf("system %d differs from its model", k)
			}
			if fmt.Sprint(models[k].erases) != fmt.Sprint(dev.EraseCounts()) {
				t.Fatalf("system %d erase counts %v, model %v", k, dev.EraseCounts(), models[k].erases)
			}
		}
	})
}

// TestPropertyTornNORProgram: a torn program never raises a bit from 0 to 1,
// never touches a byte outside its range, never clears a bit the op would not
// have cleared, and leaves whole units before the torn one fully programmed.
func TestPropertyTornNORProgram(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, f := smallNOR(t)
		// Start from arbitrary contents: a few programs.
		for i := range rapid.IntRange(0, 5).Draw(t, "setup") {
			a, d := drawProgram(t, f, fmt.Sprint("setup", i))
			if err := f.Program(a, d); err != nil {
				t.Fatal(err)
			}
		}
		before := contents(f)
		addr, data := drawProgram(t, f, "torn")
		seed := rapid.Uint64().Draw(t, "seed")
		s.SetInjector(&Rule{Match: &Nth{Filter: OpFilter{}, N: 1}, Fault: Fault{Mode: FaultTorn, Seed: seed}})
		if err := f.Program(addr, data); err == nil {
			t.Fatal("torn program returned no error")
		}
		after := contents(f)
		for i := range after {
			if rose := ^before[i] & after[i]; rose != 0 {
				t.Fatalf("byte 0x%x: bits %08b went 0→1", i, rose)
			}
			inRange := uint64(i) >= addr && uint64(i) < addr+uint64(len(data))
			if !inRange && after[i] != before[i] {
				t.Fatalf("byte 0x%x outside the op changed", i)
			}
			if inRange {
				want := before[i] & data[uint64(i)-addr]
				if cleared, allowed := before[i]&^after[i], before[i]&^want; cleared&^allowed != 0 {
					t.Fatalf("byte 0x%x: cleared a bit the op does not clear", i)
				}
			}
		}
		// The units before the first unit that differs from the full result
		// must all be complete, and at most one unit is partial.
		u := f.ProgramSize()
		partial := -1
		for k := uint64(0); k < uint64(len(data))/u; k++ {
			full := true
			for j := k * u; j < (k+1)*u; j++ {
				if after[addr+j] != before[addr+j]&data[j] {
					full = false
				}
			}
			if full {
				continue
			}
			if partial >= 0 {
				// Later units must be untouched.
				for j := k * u; j < (k+1)*u; j++ {
					if after[addr+j] != before[addr+j] {
						t.Fatalf("unit %d after the torn unit %d was touched", k, partial)
					}
				}
				continue
			}
			partial = int(k)
		}
	})
}

// TestPropertyJournalReplay: applying the journal of a run, faults included,
// to a snapshot of the run's start reproduces the run's final bytes and wear.
func TestPropertyJournalReplay(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s := NewSystem(nil)
		f := s.NewNORFlash(NORConfig{Name: "nor", ProgramUnit: 8, Sectors: []SectorRun{{Size: 2048, Count: 8}}})
		sd := s.NewSDCard(SDConfig{Name: "sd", Size: 16 << 10, Blank: 0x00})
		start := s.Snapshot()
		modes := []FaultMode{FaultNone, FaultBitFlip, FaultStuckBit, FaultIOError, FaultTorn, FaultCutAfter, FaultCutBefore}
		var rules Rules
		for i := range rapid.IntRange(0, 4).Draw(t, "faults") {
			rules = append(rules, &Rule{
				Match: OnIndex(rapid.IntRange(0, 30).Draw(t, fmt.Sprint("fault-at-", i))),
				Fault: Fault{Mode: rapid.SampledFrom(modes).Draw(t, fmt.Sprint("mode-", i)), Seed: rapid.Uint64().Draw(t, fmt.Sprint("seed-", i))},
			})
		}
		s.SetInjector(rules)
		for i := range rapid.IntRange(1, 30).Draw(t, "ops") {
			s.PowerOn() // the run carries on after a cut, as a new boot would
			label := fmt.Sprint(i)
			switch rapid.IntRange(0, 2).Draw(t, "kind-"+label) {
			case 0:
				a, n := drawSectorRange(t, f, label)
				_ = f.Erase(a, n)
			case 1:
				a, d := drawProgram(t, f, label)
				_ = f.Program(a, d)
			case 2:
				blocks := rapid.Uint64Range(1, 4).Draw(t, "blocks-"+label)
				at := rapid.Uint64Range(0, 32-blocks).Draw(t, "lba-"+label)
				_ = sd.Program(at*SDBlockSize, rapid.SliceOfN(rapid.Byte(), int(blocks*SDBlockSize), int(blocks*SDBlockSize)).Draw(t, "sd-"+label))
			}
		}
		r := start.Restore(nil)
		for _, op := range s.Journal() {
			_ = r.Apply(op)
		}
		for _, name := range []string{"nor", "sd"} {
			if !bytes.Equal(contents(s.Device(name)), contents(r.Device(name))) {
				t.Fatalf("%s: replay differs from the run", name)
			}
		}
		if fmt.Sprint(f.EraseCounts()) != fmt.Sprint(r.Device("nor").(*NORFlash).EraseCounts()) {
			t.Fatal("replayed erase counts differ")
		}
	})
}

// TestPropertyEraseCountsMatchJournal: the erase counter of every sector
// equals the number of journaled erases covering it.
func TestPropertyEraseCountsMatchJournal(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		s, f := smallNOR(t)
		for i := range rapid.IntRange(1, 25).Draw(t, "ops") {
			a, n := drawSectorRange(t, f, fmt.Sprint(i))
			if err := f.Erase(a, n); err != nil {
				t.Fatal(err)
			}
		}
		want := make([]uint32, f.Sectors())
		for _, op := range s.Journal() {
			for i := range want {
				st, sz := f.SectorBounds(i)
				if op.Kind == OpErase && st < op.Addr+op.Len && op.Addr < st+sz {
					want[i]++
				}
			}
		}
		if fmt.Sprint(want) != fmt.Sprint(f.EraseCounts()) {
			t.Fatalf("erase counts %v, journal says %v", f.EraseCounts(), want)
		}
	})
}

// TestPropertyStampsNeverLie: over random programs, erases, bit flips,
// clones and releases of several systems, a stamp taken of a range earlier
// equals a fresh stamp of it only if the range's bytes are the ones it was
// taken over (the cache trusts equal stamps), and a range none of whose
// pages was written since is still stamped equal (the cache gets to reuse
// it). Released systems give their pages back to the pool, to be reused by
// the others' writes. Stamps that point into frozen chunks and stamps that
// copy owned ones are both exercised.
func TestPropertyStampsNeverLie(t *testing.T) {
	type taken struct {
		sys       int
		at, n     uint64
		st        Stamp
		bytes     []byte
		untouched bool
	}
	rapid.Check(t, func(t *rapid.T) {
		s, f := smallNOR(t)
		systems := []*System{s}
		var stamps []taken
		for i := range rapid.IntRange(1, 50).Draw(t, "steps") {
			k := rapid.IntRange(0, len(systems)-1).Draw(t, fmt.Sprintf("which-%d", i))
			dev := systems[k].Device("nor").(*NORFlash)
			wrote := func(a, n uint64) {
				for j := range stamps {
					// Stamps are by page: a write to a page of the range
					// may change the stamp without touching its bytes.
					lo, hi := stamps[j].at/pageSize, (stamps[j].at+stamps[j].n-1)/pageSize
					if stamps[j].sys == k && a/pageSize <= hi && lo <= (a+n-1)/pageSize {
						stamps[j].untouched = false
					}
				}
			}
			switch rapid.IntRange(0, 5).Draw(t, fmt.Sprintf("action-%d", i)) {
			case 0:
				if len(systems) < 5 {
					systems = append(systems, systems[k].Clone(nil))
				}
			case 5:
				// The last system ends; its pages go back to the pool and
				// the next writes anywhere reuse them.
				if last := len(systems) - 1; last > 0 {
					systems[last].Release()
					systems = systems[:last]
					stamps = slices.DeleteFunc(stamps, func(x taken) bool { return x.sys == last })
				}
			case 1:
				a, n := drawSectorRange(t, dev, fmt.Sprint(i))
				if err := dev.Erase(a, n); err != nil {
					t.Fatal(err)
				}
				wrote(a, n)
			case 2:
				a, d := drawProgram(t, dev, fmt.Sprint(i))
				if err := dev.Program(a, d); err != nil {
					t.Fatal(err)
				}
				wrote(a, uint64(len(d)))
			case 3:
				a := rapid.Uint64Range(0, dev.Size()-1).Draw(t, fmt.Sprintf("flip-%d", i))
				dev.FlipBit(a, uint(rapid.IntRange(0, 7).Draw(t, fmt.Sprintf("bit-%d", i))))
				wrote(a, 1)
			case 4:
				a := rapid.Uint64Range(0, dev.Size()-1).Draw(t, fmt.Sprintf("at-%d", i))
				n := rapid.Uint64Range(1, dev.Size()-a).Draw(t, fmt.Sprintf("n-%d", i))
				b := make([]byte, n)
				dev.Peek(a, b)
				stamps = append(stamps, taken{sys: k, at: a, n: n, st: dev.Stamp(a, n), bytes: b, untouched: true})
			}
			for _, x := range stamps {
				d := systems[x.sys].Device("nor")
				now := make([]byte, x.n)
				d.Peek(x.at, now)
				equal := x.st.Equal(d.Stamp(x.at, x.n))
				if equal && !bytes.Equal(now, x.bytes) {
					t.Fatalf("system %d [%#x, +%d): the stamp is equal but the bytes changed", x.sys, x.at, x.n)
				}
				if x.untouched && !equal {
					t.Fatalf("system %d [%#x, +%d): nothing wrote the range, yet the stamp differs", x.sys, x.at, x.n)
				}
			}
		}
		_ = f
	})
}
