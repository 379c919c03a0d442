package scenarios

import (
	"errors"
	"testing"

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
		if _, err := Run(l, Options{MaxBoots: 30}); err != nil {
			t.Fatalf("a scenario that loads must run: %v", err)
		}
	})
}
