package scenarios

import (
	"errors"
	"testing"
	"time"

	"github.com/bootsim/bootsim/strictyaml"
)

// FuzzLoad: any bytes either load or fail with a positioned error, never a
// panic; a scenario that loads also runs without an internal error.
func FuzzLoad(f *testing.F) {
	for _, l := range Library() {
		f.Add(l.Source)
	}
	f.Add([]byte(base + "  - power-cut: {torn: {index: 3}}\n"))
	f.Add([]byte(sweepable))
	f.Add([]byte(base + "sweep: {boots: 2, time: 5s, until: {running: app-v2}, campaign: withdrawn, expect: [weakness: no-brick]}\n"))
	for name, src := range hostile() {
		if len(src) < 64<<10 {
			f.Add([]byte(src))
		}
		_ = name
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := Load("f.yaml", data, nil)
		if err != nil {
			var se *strictyaml.Error
			if !errors.As(err, &se) {
				t.Fatalf("error of type %T: %v", err, err)
			}
			return
		}
		if len(l.Steps) > 20 {
			return // keep each run short
		}
		// Small budgets: the property is "runs to a verdict", not "runs
		// long".
		if _, err := Run(l, Options{MaxBoots: 30, MaxTime: time.Hour, MaxEvents: 20_000}); err != nil {
			t.Fatalf("a scenario that loads must run: %v", err)
		}
	})
}
