package scenarios

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/sim"
	"github.com/cockroachdb/datadriven"
)

// TestTranscripts replays the datadriven transcripts in testdata/transcripts:
// what the device printed and did, event by event, for chosen scenarios.
//
// If this fails after a change, run "go test ./scenarios -run
// TestTranscripts -rewrite" and read the diff: commit it only if you
// understand why the device now behaves differently.
//
// Commands:
//
//	run name=<scenario> [seed=N] [kinds=stage,mark,...] [fails]
//	    the trace without storage ops (or only the given event kinds)
//	journal name=<scenario> [seed=N] [fails]
//	    the storage ops, counted by stage, phase, kind and region
//
// A transcript records a run that passes: a run that fails its
// expectations, or whose steps stop with an error, fails the test (a
// -rewrite cannot record it) unless the command says "fails", and then a
// run that passes fails the test.
func TestTranscripts(t *testing.T) {
	datadriven.Walk(t, "testdata/transcripts", func(t *testing.T, path string) {
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			var name string
			d.ScanArgs(t, "name", &name)
			l, err := Find(name)
			if err != nil {
				t.Fatalf("%s: %v", d.Pos, err)
			}
			var opts Options
			if d.HasArg("seed") {
				var s string
				d.ScanArgs(t, "seed", &s)
				seed, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				opts.Seed = &seed
			}
			res, err := Run(l, opts)
			if err != nil {
				t.Fatalf("%s: %v", d.Pos, err)
			}
			switch fails := d.HasArg("fails"); {
			case !fails && !res.Passed:
				t.Errorf("%s: %s failed:\n%s", d.Pos, name, strings.Join(res.Failures(), "\n"))
			case fails && res.Passed:
				t.Errorf("%s: %s was expected to fail, and passed", d.Pos, name)
			}
			var b strings.Builder
			switch d.Cmd {
			case "run":
				var kinds []string
				if d.HasArg("kinds") {
					for _, a := range d.CmdArgs {
						if a.Key == "kinds" {
							kinds = a.Vals
						}
					}
				}
				for _, e := range res.Trace {
					if e.Kind == sim.EvOp || (kinds != nil && !slices.Contains(kinds, e.Kind.String())) {
						continue
					}
					fmt.Fprintln(&b, e)
				}
			case "journal":
				type key struct{ stage, phase, kind, region string }
				var order []key
				counts := map[key]int{}
				for _, op := range res.Journal {
					k := key{op.Stage, op.Phase, op.Kind.String(), op.Region}
					if counts[k] == 0 {
						order = append(order, k)
					}
					counts[k]++
				}
				for _, k := range order {
					fmt.Fprintf(&b, "%s %s %s %s: %d\n", k.stage, k.phase, k.kind, k.region, counts[k])
				}
				fmt.Fprintf(&b, "total: %d ops\n", len(res.Journal))
			default:
				t.Fatalf("unknown command %s", d.Cmd)
			}
			fmt.Fprintf(&b, "result: passed=%v boots=%d time=%s running=%q state=%s\n",
				res.Passed, res.Boots, res.VirtualTime, res.Running, res.State)
			return b.String()
		})
	})
}
