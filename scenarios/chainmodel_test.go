package scenarios

import (
	"fmt"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// chainVersion is one stored version in a generated chain device.
type chainVersion struct {
	name      string
	behaviour string
	trial     bool
}

// chainModel is the reference the chain's stages are checked against: the
// boot-sequence tree walked depth-first, newest first at each level. Under
// each bootloader (unless it hangs or crashes: then it is given up after
// its attempts), each application is visited until one runs; one that
// fails is given up after its attempts, and if it had been confirmed while
// the bootloader is on trial, the bootloader is given up at once; a
// bootloader with nothing left gives itself up in a boot of its own. It
// returns the visits, as "bootloader/application" ("bootloader/" for a
// boot that started no application), and the outcome.
func chainModel(bls, apps []chainVersion) ([]string, string) {
	var path []string
	visit := func(s string) {
		if len(path) == 0 || path[len(path)-1] != s {
			path = append(path, s)
		}
	}
	for i := len(bls) - 1; i >= 0; i-- {
		bl := bls[i]
		if bl.behaviour == "hang" || bl.behaviour == "crash" {
			visit(bl.name + "/")
			continue
		}
		for j := len(apps) - 1; j >= 0; j-- {
			app := apps[j]
			visit(bl.name + "/" + app.name)
			if app.behaviour == "healthy" && bl.behaviour == "healthy" {
				return path, app.name + " runs under " + bl.name
			}
			if !app.trial && bl.trial {
				break // blamed on the bootloader on trial
			}
		}
		visit(bl.name + "/")
	}
	return path, "dead end: every path has failed"
}

// TestChainAgainstModel: for random devices (bootloaders and applications
// that are healthy, crash or hang, some on trial, on boards that do and do
// not reset on a lockup), the path the simulated chain takes and where it
// ends are the model's.
func TestChainAgainstModel(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		board := rapid.SampledFrom([]string{"k64f", "nucleo-f429zi"}).Draw(t, "board")
		nb := rapid.IntRange(1, 2).Draw(t, "bootloaders")
		na := rapid.IntRange(1, 3).Draw(t, "applications")
		var bls, apps []chainVersion
		for i := range nb {
			bls = append(bls, chainVersion{
				name:      fmt.Sprintf("bl-v%d", i+1),
				behaviour: rapid.SampledFrom([]string{"healthy", "healthy", "hang", "crash", "wrong-entry"}).Draw(t, fmt.Sprintf("bl%d", i+1)),
				trial:     i == nb-1 && rapid.Bool().Draw(t, "bl-trial"),
			})
		}
		for i := range na {
			apps = append(apps, chainVersion{
				name:      fmt.Sprintf("app-v%d", i+1),
				behaviour: rapid.SampledFrom([]string{"healthy", "healthy", "crash", "hang"}).Draw(t, fmt.Sprintf("app%d", i+1)),
				trial:     rapid.Bool().Draw(t, fmt.Sprintf("app%d-trial", i+1)),
			})
		}
		var y strings.Builder
		fmt.Fprintf(&y, "scenario: model\nsummary: A generated chain device.\ndevice: {board: %s, profile: chain}\nfirmware:\n", board)
		var names, trial []string
		for i, b := range bls {
			fmt.Fprintf(&y, "  %s: {stage: bootloader, version: %d, size: 16KiB, behaviour: %s}\n", b.name, i+1, b.behaviour)
		}
		for i, a := range apps {
			fmt.Fprintf(&y, "  %s: {version: %d, size: 32KiB, behaviour: %s}\n", a.name, i+1, a.behaviour)
			names = append(names, a.name)
		}
		for _, v := range append(append([]chainVersion{}, bls...), apps...) {
			if v.trial {
				trial = append(trial, v.name)
			}
		}
		var blNames []string
		for _, b := range bls {
			blNames = append(blNames, b.name)
		}
		fmt.Fprintf(&y, "factory:\n  bootloaders: [%s]\n  applications: [%s]\n  trial: [%s]\n", strings.Join(blNames, ", "), strings.Join(names, ", "), strings.Join(trial, ", "))
		y.WriteString("steps:\n  - power-on\n  - wait: 3m\n")
		l, err := Load("model.yaml", []byte(y.String()), nil)
		if err != nil {
			t.Fatalf("%v\n%s", err, y.String())
		}
		res, err := Run(l, Options{})
		if err != nil {
			t.Fatal(err)
		}
		tr, err := BootTree(l, res)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range tr.Path {
			got = append(got, v.Bootloader+"/"+v.Application)
		}
		wantPath, wantOutcome := chainModel(bls, apps)
		if strings.Join(got, " ") != strings.Join(wantPath, " ") || tr.Outcome != wantOutcome {
			t.Fatalf("the chain walked\n  %s → %s\nthe model walks\n  %s → %s\n%s\n%s", strings.Join(got, " "), tr.Outcome,
				strings.Join(wantPath, " "), wantOutcome, y.String(), TreeText(tr))
		}
	})
}
