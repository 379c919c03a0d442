package scenarios

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
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

// updateFlow is an update through the service on a board: app-v1 runs,
// a campaign delivers app-v2 (size), the bootloader installs it.
func updateFlow(b *testing.B, board, size string) *Loaded {
	l, err := Load("bench.yaml", []byte(`scenario: bench-update
summary: An update through the service, to sweep.
device: {board: `+board+`}
firmware:
  app-v1: {version: 1561517193, size: 100KiB}
  app-v2: {version: 1561520000, size: `+size+`}
factory: {active: app-v1}
steps:
  - power-on
  - wait: {until: {event: registered}, timeout: 30s}
  - campaign: {firmware: app-v2}
  - wait: {until: {running: app-v2}, timeout: 10m}
expect:
  - running: app-v2
`), nil)
	if err != nil {
		b.Fatal(err)
	}
	return l
}

// benchSweep sweeps l with opts once per iteration and reports points per
// second of wall time (the baseline run included).
func benchSweep(b *testing.B, l *Loaded, opts SweepOptions) {
	points := 0
	for b.Loop() {
		rep, err := SweepScenario(l, opts)
		if err != nil {
			b.Fatal(err)
		}
		if rep.Failed > 0 {
			b.Fatalf("%d points failed", rep.Failed)
		}
		points = rep.Runs
	}
	b.ReportMetric(float64(points), "points")
	b.ReportMetric(float64(points)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkSweep128K is issue 9's target (a): a 128 KiB update on K64F
// (4 KiB sectors), download and install, every op × before, after and torn
// (one seed), on 2 workers.
func BenchmarkSweep128K(b *testing.B) {
	benchSweep(b, updateFlow(b, "k64f", "128KiB"), SweepOptions{TornSeeds: 1, Workers: 2})
}

// BenchmarkSweep1MiB is target (b): the update flow with a 1 MiB image on
// nucleo-f429zi, download included, every op × before, after and 4 torn
// seeds, on 2 workers.
func BenchmarkSweep1MiB(b *testing.B) {
	benchSweep(b, updateFlow(b, "nucleo-f429zi", "1MiB"), SweepOptions{Workers: 2})
}

// BenchmarkSweep1MiBReplay is the same sweep the naive way (every point
// from the start), on a sample of the ops: one op in 50.
func BenchmarkSweep1MiBReplay(b *testing.B) {
	l := updateFlow(b, "nucleo-f429zi", "1MiB")
	g, err := newRig(l, l.Seed)
	if err != nil {
		b.Fatal(err)
	}
	base, err := g.recordBaseline()
	if err != nil {
		b.Fatal(err)
	}
	points := 0
	for b.Loop() {
		points = 0
		for i := 0; i < len(base.journal); i += 50 {
			rep, err := SweepScenario(l, SweepOptions{Replay: true, Workers: 2, Filter: OpFilter{From: i, Until: i + 1}})
			if err != nil {
				b.Fatal(err)
			}
			points += rep.Runs
		}
	}
	b.ReportMetric(float64(points), "points")
	b.ReportMetric(float64(points)*float64(b.N)/b.Elapsed().Seconds(), "points/s")
}

// BenchmarkRecovery1MiB is one recovery of the 1 MiB flow from a cut in
// the middle of its download: the unit cost a sweep should approach.
func BenchmarkRecovery1MiB(b *testing.B) {
	l := updateFlow(b, "nucleo-f429zi", "1MiB")
	g, err := newRig(l, l.Seed)
	if err != nil {
		b.Fatal(err)
	}
	base, err := g.recordBaseline()
	if err != nil {
		b.Fatal(err)
	}
	f := base.forker()
	if err := f.seek(len(base.journal) / 3); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		cs, err := f.cut(storage.Fault{Mode: storage.FaultCutBefore})
		if err != nil {
			b.Fatal(err)
		}
		if res := g.recover(cs); !res.Passed {
			b.Fatal(res.Failures())
		}
	}
}
