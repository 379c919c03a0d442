package updateclient

import (
	"crypto/sha256"
	"fmt"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// The chain profile's side of the client: a manifest names the stage it
// updates (a v1 manifest by its payload's storage identifier, "default"
// for the application and "bootloader" for the bootloader; a v3 manifest
// by its component, MAIN or BOOT), the client stores the new version in a
// slot of that stage on internal flash, and the boot record, not a
// candidate header, tells the stages it is there.

// Storage identifiers and components that name the bootloader stage.
const (
	StorageBootloader   = "bootloader"
	ComponentBootloader = "BOOT"
)

// chainStage returns the stage a manifest's storage identifier or
// component names, or false.
func chainStage(component string) (sim.Stage, bool) {
	switch component {
	case "", "default", "MAIN":
		return sim.StageApplication, true
	case StorageBootloader, ComponentBootloader:
		return sim.StageBootloader, true
	}
	return "", false
}

// chainUpdate is where a chain update goes: the stage and the slot.
type chainUpdate struct {
	stage sim.Stage
	slot  int
}

// chainPlan picks the slot a new version of a stage goes to, and reads
// the version the stage runs now: an empty slot, else a failed one, else
// the oldest version that is neither the one running nor the last known
// good (the newest confirmed). It reports why none can be used.
func chainPlan(m *sim.Machine, lay *chain.Layout, stage sim.Stage) (slot int, current uint64, err error) {
	rec, err := chain.NewStore(m.Internal(), lay).Load()
	if err != nil {
		return 0, 0, err
	}
	st := &rec.App
	if stage == sim.StageBootloader {
		st = &rec.Boot
	}
	n := len(lay.Slots(stage))
	current = st.Slots[st.Current].Version
	good := -1
	for i := range n {
		if s := st.Slots[i]; s.Status == chain.Ready && s.Confirmed && (good < 0 || s.Version > st.Slots[good].Version) {
			good = i
		}
	}
	best := -1
	rank := func(i int) int { // lower is better to evict
		switch st.Slots[i].Status {
		case chain.Empty:
			return 0
		case chain.Failed:
			return 1
		}
		return 2
	}
	for i := range n {
		if i == int(st.Current) || i == good {
			continue
		}
		if best < 0 || rank(i) < rank(best) || (rank(i) == rank(best) && st.Slots[i].Version < st.Slots[best].Version) {
			best = i
		}
	}
	if best < 0 {
		return 0, current, fmt.Errorf("every %s slot holds the running or the last known good version", stage)
	}
	return best, current, nil
}

// chainRelease forgets what a slot holds before the new version is written
// there: the record first, so that a cut in the middle of the write never
// leaves a slot the stages would run.
func chainRelease(m *sim.Machine, lay *chain.Layout, u chainUpdate) (evicted uint64, err error) {
	st := chain.NewStore(m.Internal(), lay)
	rec, err := st.Load()
	if err != nil {
		return 0, err
	}
	s := slotOf(rec, u)
	evicted = s.Version
	if s.Status == chain.Empty && s.Version == 0 {
		return 0, nil
	}
	*s = chain.SlotState{}
	return evicted, st.Save(rec)
}

// chainCommit writes the new version's header, then records it as ready
// and unconfirmed: the stage before it boots it on trial.
func chainCommit(m *sim.Machine, lay *chain.Layout, u chainUpdate, fw fwInfo) error {
	dev := m.Internal()
	part := lay.Slots(u.stage)[u.slot]
	h := chain.Header{Stage: u.stage, Version: fw.version, Size: uint32(fw.size), Hash: fw.hash}
	if err := dev.Program(part.Start, storage.PadToUnit(h.Encode(), dev.ProgramSize())); err != nil {
		return err
	}
	st := chain.NewStore(dev, lay)
	rec, err := st.Load()
	if err != nil {
		return err
	}
	*slotOf(rec, u) = chain.SlotState{Version: fw.version, Status: chain.Ready}
	return st.Save(rec)
}

func slotOf(rec *chain.Record, u chainUpdate) *chain.SlotState {
	if u.stage == sim.StageBootloader {
		return &rec.Boot.Slots[u.slot]
	}
	return &rec.App.Slots[u.slot]
}

// PlantChain is what a compromised application of the chain profile can
// do with the update client's own code: write an image of its choosing
// into an application slot, as an update would (the slot released in the
// record, erased, the image programmed, the header written, the version
// recorded as ready and on trial). It does not reboot.
func PlantChain(m *sim.Machine, lay *chain.Layout, image []byte, version uint64) error {
	slot, _, err := chainPlan(m, lay, sim.StageApplication)
	if err != nil {
		return err
	}
	u := chainUpdate{stage: sim.StageApplication, slot: slot}
	if _, err := chainRelease(m, lay, u); err != nil {
		return err
	}
	dev := m.Internal()
	part := lay.Applications[slot]
	for at := part.Start; at < part.End(); at += dev.EraseSize(at) {
		if err := dev.Erase(at, dev.EraseSize(at)); err != nil {
			return err
		}
	}
	if err := dev.Program(part.Body(), storage.PadToUnit(image, dev.ProgramSize())); err != nil {
		return err
	}
	return chainCommit(m, lay, u, fwInfo{version: version, size: uint64(len(image)), hash: sha256.Sum256(image)})
}
