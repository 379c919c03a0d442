package scenarios

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/bootsim/bootsim/sim"
)

// bootBench is a nucleo-f429zi whose active image is 1 MiB, ready to boot.
func bootBench(b *testing.B) (*Loaded, *images, *sim.Machine) {
	l, err := Load("bench.yaml", []byte(`scenario: bench
summary: A clean boot of a 1 MiB image.
device: {board: nucleo-f429zi}
firmware:
  app: {version: 1, size: 1MiB}
factory: {active: app}
steps: [power-on]
`), nil)
	if err != nil {
		b.Fatal(err)
	}
	imgs, err := l.buildImages()
	if err != nil {
		b.Fatal(err)
	}
	m, err := l.newMachine(imgs, 1, nil, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	if err := l.programFactory(m, imgs); err != nil {
		b.Fatal(err)
	}
	return l, imgs, m
}

// BenchmarkCleanBoot1MiB is one power-on to a running application with a
// 1 MiB active image: the bootloader reads and SHA-256-hashes the image, then
// the simulator checks the bytes it jumps to. Each iteration restores the
// factory state on a new machine, as a sweep point does.
func BenchmarkCleanBoot1MiB(b *testing.B) {
	l, imgs, m := bootBench(b)
	snap := m.Storage().Snapshot()
	b.SetBytes(1 << 20)
	for b.Loop() {
		m, err := l.newMachine(imgs, 1, snap, nil, nil)
		if err != nil {
			b.Fatal(err)
		}
		m.PowerOn()
		r := &runner{l: l, m: m, imgs: imgs}
		if !m.Run(time.Minute, func() bool { _, ok := r.appUp(); return ok }) {
			b.Fatal("the application did not start")
		}
	}
}

// BenchmarkSHA256_1MiB is the reference for BenchmarkCleanBoot1MiB.
func BenchmarkSHA256_1MiB(b *testing.B) {
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		_ = sha256.Sum256(data)
	}
}

// BenchmarkRunLibrary runs every built-in scenario once, invariants included.
func BenchmarkRunLibrary(b *testing.B) {
	lib := Library()
	for b.Loop() {
		for _, l := range lib {
			res, err := Run(l, Options{})
			if err != nil || !res.Passed {
				b.Fatalf("%s: %v %v", l.Name, err, res.Failures())
			}
		}
	}
}
