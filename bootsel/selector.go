// Package bootsel is the boot selector of the chain profile: the immutable
// first stage at address 0. It keeps the boot record's bootloader part,
// verifies the bootloader version it selects and jumps to it; it never
// writes an image. A bootloader that does not hand over to an application
// within its attempts is rolled back to the newest older one still ready,
// and when none is left the selector says so and stops in a dead end.
package bootsel

import (
	"crypto/ecdsa"
	"time"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
)

// handoverWatchdog is the watchdog the selector starts before it jumps to
// a bootloader: one that hangs is reset, which counts as an attempt.
const handoverWatchdog = 2 * time.Second

// Selector is the boot selector program (implementation "bootsel").
type Selector struct {
	Layout *chain.Layout
	// Vendor, if set, is the key every bootloader must be signed with.
	Vendor *ecdsa.PublicKey
}

// Run implements sim.Program.
func (s Selector) Run(m *sim.Machine, _ *sim.Image) {
	lay := s.Layout
	st := chain.NewStore(m.Internal(), lay)
	m.SetPhase("select")
	rec, err := st.Load()
	if err != nil {
		m.Printf("[SEL] no valid boot record: rebuilding it from the slots\r\n")
		rec = chain.Rebuild(m, lay)
	}
	bl := &rec.Boot
	for {
		i, ok := bl.Select()
		if !ok {
			m.Printf("[SEL] dead end: every bootloader version has failed\r\n")
			s.save(m, st, rec)
			m.Mark(chain.MarkDeadEnd, "no bootloader left")
			m.DeadEnd("boot selector: no bootloader left")
		}
		sl := &bl.Slots[i]
		if uint8(i) != bl.Current {
			// Another bootloader is another subtree: its applications
			// have not failed under it yet.
			m.Printf("[SEL] switching to bootloader version %d\r\n", sl.Version)
			bl.Current, bl.Attempts = uint8(i), 0
			for k := range rec.App.Slots {
				if rec.App.Slots[k].Status == chain.Failed {
					rec.App.Slots[k].Status = chain.Ready
				}
			}
			rec.App.Attempts = 0
		}
		if int(bl.Attempts) >= lay.MaxAttempts {
			m.Printf("[SEL] bootloader version %d did not hand over in %d attempts: rolling back\r\n", sl.Version, lay.MaxAttempts)
			sl.Status = chain.Failed
			chain.RolledBack(m, sim.StageBootloader, sl.Version, "no hand-over in its attempts")
			continue
		}
		h, err := chain.Verify(m, lay.Bootloaders[i], sim.StageBootloader, s.Vendor)
		if err == nil && h.Version != sl.Version {
			err = chain.ErrRecordVersion
		}
		if err != nil {
			m.Printf("[SEL] bootloader version %d fails verification: %v\r\n", sl.Version, err)
			sl.Status = chain.Failed
			chain.RolledBack(m, sim.StageBootloader, sl.Version, "failed verification")
			continue
		}
		bl.Attempts++
		s.save(m, st, rec)
		if sl.Confirmed {
			m.Printf("[SEL] bootloader version %d\r\n", sl.Version)
		} else {
			m.Printf("[SEL] bootloader version %d on trial, attempt %d of %d\r\n", sl.Version, bl.Attempts, lay.MaxAttempts)
		}
		m.StartWatchdog(handoverWatchdog)
		m.Jump(lay.Bootloaders[i].Body())
	}
}

func (s Selector) save(m *sim.Machine, st *chain.Store, rec *chain.Record) {
	m.SetPhase("record")
	if err := st.Save(rec); err != nil {
		// The copy on flash stays the older one; the attempt is counted
		// again at the next boot, or the next write succeeds.
		m.Printf("[SEL] boot record not written: %v\r\n", err)
	}
	m.SetPhase("select")
}
