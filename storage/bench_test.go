package storage

import (
	"crypto/sha256"
	"testing"
	"time"
)

func benchBoard() (*System, *NORFlash, *SDCard) {
	s := NewSystem(nil)
	f := s.NewNORFlash(NORConfig{
		Name:        "internal",
		Sectors:     []SectorRun{{Size: 4096, Count: 256, EraseTime: 14 * time.Millisecond}},
		ProgramUnit: 8, ProgramTime: 8 * time.Microsecond,
	})
	sd := s.NewSDCard(SDConfig{Name: "sd", Size: 64 << 20, Blank: 0xFF})
	return s, f, sd
}

// BenchmarkNORProgram16K programs 16 KiB chunks, the bootloader's copy unit,
// across a 1 MiB flash, erasing each sector before it is programmed again.
func BenchmarkNORProgram16K(b *testing.B) {
	s, f, _ := benchBoard()
	data := pattern(16<<10, 1)
	b.SetBytes(int64(len(data)))
	var at uint64
	for b.Loop() {
		if at+uint64(len(data)) > f.Size() {
			// Start over on a blank flash; this costs 1/64 of an iteration.
			at = 0
			s.journal = s.journal[:0]
			f.mem.fill(0, f.Size(), 0xFF)
		}
		if err := f.Program(at, data); err != nil {
			b.Fatal(err)
		}
		at += uint64(len(data))
	}
}

// BenchmarkNORErase4K erases one 4 KiB sector after loading it with data (the
// load, a 4 KiB copy, is part of the figure).
func BenchmarkNORErase4K(b *testing.B) {
	s, f, _ := benchBoard()
	data := pattern(4096, 1)
	b.SetBytes(4096)
	for b.Loop() {
		s.journal = s.journal[:0]
		f.mem.write(0, data)
		if err := f.Erase(0, 4096); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkClone clones a board with a full 1 MiB flash and a 64 MiB SD card
// holding a 1 MiB candidate, then writes one page in the clone, as a sweep
// fork does before its recovery boot.
func BenchmarkClone(b *testing.B) {
	s, f, sd := benchBoard()
	f.Load(0, pattern(int(f.Size()), 3))
	sd.Load(0, pattern(1<<20, 4))
	for b.Loop() {
		c := s.Clone(nil)
		c.Device("internal").Load(0x10000, data8)
	}
}

var data8 = pattern(8, 9)

// BenchmarkSnapshotRestore restores a frozen snapshot, the sweep's per-point cost.
func BenchmarkSnapshotRestore(b *testing.B) {
	s, f, sd := benchBoard()
	f.Load(0, pattern(int(f.Size()), 3))
	sd.Load(0, pattern(1<<20, 4))
	sn := s.Snapshot()
	for b.Loop() {
		_ = sn.Restore(nil)
	}
}

// BenchmarkNORRead1M reads a whole 1 MiB flash in 16 KiB chunks, as an image
// check does before hashing.
func BenchmarkNORRead1M(b *testing.B) {
	_, f, _ := benchBoard()
	f.Load(0, pattern(int(f.Size()), 3))
	buf := make([]byte, 16<<10)
	b.SetBytes(int64(f.Size()))
	for b.Loop() {
		for at := uint64(0); at < f.Size(); at += uint64(len(buf)) {
			if err := f.Read(at, buf); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkSHA256_1M is the reference: hashing 1 MiB with the standard library.
func BenchmarkSHA256_1M(b *testing.B) {
	data := pattern(1<<20, 5)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = sha256.Sum256(data)
	}
}
