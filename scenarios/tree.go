package scenarios

import (
	"cmp"
	"fmt"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/mbedos"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// Tree is the boot-sequence tree of a chain device (the boot selector, the
// stored bootloader versions under it, the stored application versions
// under each bootloader) with the path a run took through it.
type Tree struct {
	Scenario string `json:"scenario"`
	// Bootloaders are the selector's children, newest first.
	Bootloaders []*TreeNode `json:"bootloaders"`
	// Path is the run's visits, in order: a visit is one or more
	// consecutive boots of the same (bootloader, application) pair.
	Path []*Visit `json:"path"`
	// Outcome says how the run ended: what runs, or the dead end.
	Outcome string `json:"outcome"`
}

// TreeNode is one stored version in the tree.
type TreeNode struct {
	Name    string `json:"name"`
	Version uint64 `json:"version"`
	// Trial: stored but not confirmed when the device left the factory.
	Trial bool `json:"trial,omitempty"`
	// Visits are the numbers of the path's visits to this node (from 1).
	Visits []int `json:"visits,omitempty"`
	// Left says why the run gave the node up ("" if it did not).
	Left     string      `json:"left,omitempty"`
	Children []*TreeNode `json:"children,omitempty"`
}

// Visit is one stay on a (bootloader, application) pair.
type Visit struct {
	N           int    `json:"n"`
	Bootloader  string `json:"bootloader"`
	Application string `json:"application,omitempty"`
	Boots       int    `json:"boots"`
	// End is how the last boot of the visit ended: crash, hang, reset,
	// power cut, or runs (the run ended with it running).
	End string `json:"end"`
	// Confirmed: the application confirmed itself during the visit.
	Confirmed bool `json:"confirmed,omitempty"`
}

// BootTree builds the boot-sequence tree of a chain scenario and the path
// its run took. The path is read from the trace's typed events: stage
// starts, lockups, resets, power-offs, and the stages' milestones.
func BootTree(l *Loaded, res *Result) (*Tree, error) {
	if l.Chain == nil {
		return nil, fmt.Errorf("%s: a boot-sequence tree is drawn for the chain profile (device.profile: chain); this scenario runs %s", l.Name, l.Profile)
	}
	t := &Tree{Scenario: l.Name}
	node := func(name string) *TreeNode {
		f := l.Firmware.Get(name)
		return &TreeNode{Name: name, Version: f.Version, Trial: slices.Contains(l.Factory.Trial, name)}
	}
	newestFirst := func(a, b *TreeNode) int { return cmp.Compare(b.Version, a.Version) }
	for _, b := range l.Factory.Bootloaders {
		bn := node(b)
		for _, a := range l.Factory.Applications {
			bn.Children = append(bn.Children, node(a))
		}
		slices.SortFunc(bn.Children, newestFirst)
		t.Bootloaders = append(t.Bootloaders, bn)
	}
	slices.SortFunc(t.Bootloaders, newestFirst)
	find := func(list []*TreeNode, name string) *TreeNode {
		for _, n := range list {
			if n.Name == name {
				return n
			}
		}
		return nil
	}

	boots := chainBoots(l, res.Trace, res.Journal)
	type note struct {
		at   int // the boot the milestone came in
		text string
	}
	var blLeft, appLeft []note
	for i, b := range boots {
		for _, r := range b.rollbacks {
			switch {
			case r.stage == sim.StageApplication:
				appLeft = append(appLeft, note{i, r.text})
			case r.by == sim.StageBootloader:
				// A bootloader gives itself up in its own boot.
				blLeft = append(blLeft, note{i + 1, r.text})
			default:
				// The selector gives up the bootloader of the boot
				// before.
				blLeft = append(blLeft, note{i, r.text})
			}
		}
	}
	for _, b := range boots {
		if b.bl == "" {
			continue // the selector found no bootloader: the dead end, in Outcome
		}
		if n := len(t.Path); n > 0 && t.Path[n-1].Bootloader == b.bl && t.Path[n-1].Application == b.app {
			v := t.Path[n-1]
			v.Boots++
			v.End = b.end
			v.Confirmed = v.Confirmed || b.confirmed
			continue
		}
		t.Path = append(t.Path, &Visit{N: len(t.Path) + 1, Bootloader: b.bl, Application: b.app, Boots: 1, End: b.end, Confirmed: b.confirmed})
	}
	// Versions an update brought are nodes too, where the path met them.
	for _, v := range t.Path {
		if find(t.Bootloaders, v.Bootloader) == nil && l.Firmware.Get(v.Bootloader) != nil {
			bn := node(v.Bootloader)
			t.Bootloaders = append(t.Bootloaders, bn)
			slices.SortFunc(t.Bootloaders, newestFirst)
		}
		bn := find(t.Bootloaders, v.Bootloader)
		if bn != nil && v.Application != "" && find(bn.Children, v.Application) == nil && l.Firmware.Get(v.Application) != nil {
			bn.Children = append(bn.Children, node(v.Application))
			slices.SortFunc(bn.Children, newestFirst)
		}
	}
	for _, v := range t.Path {
		bn := find(t.Bootloaders, v.Bootloader)
		if bn == nil {
			continue
		}
		if !slices.Contains(bn.Visits, v.N) {
			bn.Visits = append(bn.Visits, v.N)
		}
		if an := find(bn.Children, v.Application); an != nil {
			an.Visits = append(an.Visits, v.N)
		}
	}
	// A milestone that gives a version up names it by version; it belongs
	// to the node of that version that was visited last before it.
	lastVisitOf := func(bootIdx int) *Visit {
		// The visit holding the boot before bootIdx (the one whose
		// failure the milestone concludes), or the boot itself.
		var out *Visit
		seen := 0
		for _, v := range t.Path {
			seen += v.Boots
			out = v
			if seen >= bootIdx {
				break
			}
		}
		return out
	}
	for _, x := range appLeft {
		if v := lastVisitOf(x.at); v != nil {
			if bn := find(t.Bootloaders, v.Bootloader); bn != nil {
				if an := find(bn.Children, v.Application); an != nil {
					an.Left = x.text
				}
			}
		}
	}
	for _, x := range blLeft {
		if v := lastVisitOf(x.at); v != nil {
			if bn := find(t.Bootloaders, v.Bootloader); bn != nil {
				bn.Left = x.text
			}
		}
	}
	switch {
	case res.State == sim.StateDeadEnd.String():
		t.Outcome = "dead end: every path has failed"
	case res.Running != "":
		bl := ""
		if n := len(t.Path); n > 0 {
			bl = t.Path[n-1].Bootloader
		}
		t.Outcome = fmt.Sprintf("%s runs under %s", res.Running, bl)
	default:
		t.Outcome = "the device is " + res.State
	}
	return t, nil
}

// chainBoot is one boot of a chain device, as its trace shows it.
type chainBoot struct {
	// bl and app are the bootloader that started and the application it
	// handed over to ("" if none), app even if it never started: the one
	// stored in the slot the bootloader jumped into.
	bl, app string
	// end is how the boot ended: crash, hang, reset, power off, halt, or
	// runs.
	end       string
	confirmed bool
	rollbacks []chainRollback
}

// chainRollback is a version given up during a boot.
type chainRollback struct {
	stage sim.Stage // the stage of the version given up
	by    sim.Stage // the stage that gave it up
	text  string
}

// chainBoots reads the boots of a chain device from its trace: one pass,
// typed fields only (a boot starts where the boot selector starts).
//
// The application a bootloader handed over to is the one that started; if
// none started (a jump past its entry), the one stored in the slot it
// jumped into, as the factory left it, or "(slot N)" once an update has
// written that slot (journal holds the ops the trace's op events index).
func chainBoots(l *Loaded, trace []sim.Event, journal []storage.Op) []chainBoot {
	var boots []chainBoot
	cur := -1
	rewritten := map[int]bool{}
	regionOf := map[int]string{}
	for _, op := range journal {
		regionOf[op.Index] = op.Region
	}
	for i := range trace {
		e := &trace[i]
		if e.Kind == sim.EvOp && e.Stage == sim.StageApplication {
			for k := range l.Chain.Applications {
				if regionOf[e.Op] == chain.ApplicationRegion(k) {
					rewritten[k] = true
				}
			}
		}
		switch {
		case e.Kind == sim.EvStage && e.Stage == sim.StageBootSelector:
			boots = append(boots, chainBoot{end: "runs"})
			cur = len(boots) - 1
		case cur < 0:
		case e.Kind == sim.EvStage && e.Stage == sim.StageBootloader:
			boots[cur].bl = e.Image
		case e.Kind == sim.EvStage && e.Stage == sim.StageApplication:
			boots[cur].app = e.Image
		case e.Kind == sim.EvJump && e.Stage == sim.StageBootloader:
			for i, p := range l.Chain.Applications {
				switch {
				case e.Addr < p.Start || e.Addr >= p.End():
				case rewritten[i] || i >= len(l.Factory.Applications):
					boots[cur].app = fmt.Sprintf("(slot %d)", i)
				default:
					boots[cur].app = l.Factory.Applications[i]
				}
			}
		case e.Kind == sim.EvLockup:
			boots[cur].end = "lockup: " + e.Detail
		case e.Kind == sim.EvMark && e.Name == mbedos.MarkFatalError:
			boots[cur].end = "crash: " + e.Detail
		case e.Kind == sim.EvReset && strings.HasPrefix(boots[cur].end, "crash: "):
			boots[cur].end += ", reset (" + e.Name + ")"
		case e.Kind == sim.EvReset && boots[cur].end == "runs":
			boots[cur].end = "reset (" + e.Name + ")"
			if e.Name == sim.ResetWatchdog.String() {
				boots[cur].end = "hang: the watchdog reset it"
			}
		case e.Kind == sim.EvPowerOff:
			boots[cur].end = "power off: " + e.Detail
		case e.Kind == sim.EvHalt:
			boots[cur].end = "halt: " + e.Detail
		case e.Kind == sim.EvMark && e.Name == chain.MarkConfirmed:
			boots[cur].confirmed = true
		case e.Kind == sim.EvMark && e.Name == chain.MarkAppRolledBack:
			boots[cur].rollbacks = append(boots[cur].rollbacks, chainRollback{sim.StageApplication, e.Stage, e.Detail})
		case e.Kind == sim.EvMark && e.Name == chain.MarkBootloaderRolledBack:
			boots[cur].rollbacks = append(boots[cur].rollbacks, chainRollback{sim.StageBootloader, e.Stage, e.Detail})
		}
	}
	return boots
}
