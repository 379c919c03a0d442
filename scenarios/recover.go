package scenarios

import (
	"fmt"
	"time"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
)

// cutState is what survives a power cut and what a recovery starts from:
// the storage as the cut left it, the update service and the client's
// configuration as they were at the cut, and what the run had shown before
// it that the invariants need.
type cutState struct {
	storage *storage.Snapshot
	// svc is the update service's state at the cut. Nobody changes it: a
	// recovery works on its own clone, so forks share the baseline's.
	svc    *cloud.Service
	client updateclient.Config
	prefix prefixFacts
	// regions asks the recovery for Result.Regions.
	regions bool
}

// prefixFacts is what the invariants need of the run before a cut: the
// highest version that ran (no-downgrade) and the first application the
// vendor did not build (authentic).
type prefixFacts struct {
	best     uint64
	bestName string
	stranger string // the stage event's detail, "" if none
}

// prefixOf reads the facts of a run's trace.
func (g *rig) prefixOf(tr []sim.Event) prefixFacts {
	var p prefixFacts
	for i := range tr {
		p.add(g.l, &tr[i])
	}
	return p
}

func (p *prefixFacts) add(l *Loaded, e *sim.Event) {
	switch {
	case e.Kind == sim.EvStage && e.Stage == sim.StageApplication && p.stranger == "":
		if f := l.Firmware.Get(e.Image); f == nil || f.Attacker {
			p.stranger = e.Detail
		}
	case e.Kind == sim.EvMark && e.Name == updateclient.MarkRunning && e.Version > p.best:
		p.best, p.bestName = e.Version, e.Image
	}
}

// recoveryState is what a recovery's runner knows beyond a run's.
type recoveryState struct {
	policy *Sweep
	prefix prefixFacts
	// firstUp is when an application first ran: boot and time, "" if
	// none did.
	firstUp     string
	firstUpBoot int
}

// recoverySeed is the seed of a recovery's machine: not the run's, so that
// the no-init RAM noise after the cut is not the noise of the first boot.
func recoverySeed(seed uint64) uint64 { return seed + 1 }

// recover powers the device on again from a cut and runs it under the
// scenario's recovery policy: until the policy's condition holds, or its
// boots or time run out. The result's expectations are the policy's (the
// condition first) and its invariants those of the recovery, with the facts
// of the run before the cut.
func (g *rig) recover(cs *cutState) *Result {
	res, _ := g.recoverMemo(cs)
	return res
}

// recoverMemo is recover, with the rig's memo if it has one; it says
// whether the result is a remembered one.
func (g *rig) recoverMemo(cs *cutState) (*Result, bool) {
	if g.memo != nil {
		if res := g.memo.find(cs); res != nil {
			return res, true
		}
	}
	res, touched, asked := g.recoverFresh(cs)
	if g.memo != nil && !asked {
		g.memo.remember(cs, touched, res)
	}
	return res, false
}

// recoverFresh runs a recovery, and says which pages it touched and whether
// it asked the update service anything.
func (g *rig) recoverFresh(cs *cutState) (*Result, storage.Touched, bool) {
	p := g.l.sweepPolicy()
	// A clone, so that what the recovery asks it is counted from zero. A
	// link drop in progress ends with the cut: the recovery's clock starts
	// at 0.
	svc := cs.svc.Clone()
	if p.Campaign == CampaignWithdrawn {
		svc.StopCampaign()
		svc = svc.Clone()
	}
	svc.SetClock(nil)
	svc.DropLinkUntil(0)
	client := cs.client
	m, err := g.l.newMachine(g.imgs, recoverySeed(g.seed), cs.storage, &client, svc)
	if err != nil {
		panic(fmt.Sprintf("scenarios: a recovery machine of a built rig: %v", err))
	}
	rec := &recoveryState{policy: p, prefix: cs.prefix}
	r := &runner{rig: g, l: g.l, m: m, imgs: g.imgs, seed: g.seed, vendor: g.vendor, svc: svc, client: &client,
		maxBoots: p.Boots, faults: &faults{}, recovery: rec,
		budget: Budget{Boots: p.Boots, Time: p.Time, Events: DefaultMaxEvents, Journal: DefaultMaxJournal}}
	m.Storage().SetInjector(r.faults)
	m.Storage().DropJournalData()
	if g.memo != nil {
		// What the recovery read and wrote is the memo's key; without a
		// memo, a map insert per page it touched is wasted.
		m.Storage().TrackTouches()
	}
	m.PowerOn()
	until := r.watch(p.Until)
	reached := m.Run(p.Time.D(), func() bool {
		if img, ok := r.appUp(); ok && rec.firstUp == "" {
			rec.firstUp = fmt.Sprintf("%s runs (boot %d, %s)", img.Desc.Name, m.Boots(), m.Now().Round(time.Millisecond))
			rec.firstUpBoot = m.Boots()
		}
		return until.holds() || m.Boots() > p.Boots
	}) && until.holds() && m.Boots() <= p.Boots
	res := &Result{Name: g.l.Name, File: g.l.File, Profile: g.l.Profile, Seed: g.seed, MaxBoots: p.Boots,
		Boots: m.Boots(), VirtualTime: m.Now(), State: m.State().String(), Running: r.running(),
		Trace: m.Trace(), Serial: m.Serial(), Journal: m.Storage().Journal()}
	res.Invariants = r.invariants(res)
	c := Check{Text: "recovery reaches " + p.Until.String(), Passed: reached}
	switch inv := findInvariant(res.Invariants, InvNoBrick); {
	case reached:
	case inv.Status == StatusFail || inv.Status == StatusWeakness:
		// No application came back: no-brick says so, as a failure or
		// as the weakness the scenario declares; the condition adds
		// nothing.
		c.Passed, c.Detail = true, "no application ran: see no-brick"
	default:
		c.Detail = fmt.Sprintf("within %d boots and %s the device is %s, %s", p.Boots, p.Time, r.describe(), m.Now().Round(time.Millisecond))
	}
	res.Expectations = append([]Check{c}, r.expectations(res)...)
	res.Passed = len(res.Failures()) == 0
	if cs.regions {
		res.Regions = r.regionStates()
	}
	var touched storage.Touched
	if g.memo != nil {
		touched = m.Storage().Touched()
	}
	// Nothing of the recovery's storage outlives it: its pages serve the
	// next recovery.
	m.Storage().Release()
	return res, touched, svc.Asked() > 0
}
