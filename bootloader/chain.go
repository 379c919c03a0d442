package bootloader

import (
	"crypto/ecdsa"
	"time"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
)

// Behaviours a chain bootloader image can have (its descriptor's
// behaviour), beside healthy.
const (
	// ChainCrash: a HardFault before it selects anything.
	ChainCrash = "crash"
	// ChainHang: stops without handing over; the boot selector's watchdog
	// resets it.
	ChainHang = "hang"
	// ChainCorruptsApp: selects and verifies as a healthy one, then
	// scribbles over the application before jumping to it (a bug that
	// writes to the wrong address).
	ChainCorruptsApp = "corrupts-app"
	// ChainWrongEntry: selects and verifies as a healthy one, then jumps
	// past the application's entry (a layout bug): no application starts
	// under it, and none is damaged.
	ChainWrongEntry = "wrong-entry"
)

// ChainBehaviours lists the behaviours of a chain bootloader image.
func ChainBehaviours() []string {
	return []string{"healthy", ChainCrash, ChainHang, ChainCorruptsApp, ChainWrongEntry}
}

// HandoverWatchdog is the watchdog a stage of the chain starts before it
// jumps to the next: a stage that hangs is reset, and the reset counts as
// one of its attempts.
const HandoverWatchdog = 2 * time.Second

// Chain is the bootloader of the chain profile (implementation "chain"):
// it selects among the stored application versions, boots a new one on
// trial, and rolls back one that does not confirm within its attempts, to
// the newest older version still ready. When no application is left it
// gives itself up, and the boot selector rolls it back in turn.
type Chain struct {
	Layout *chain.Layout
	// Vendor, if set, is the key every application must be signed with.
	Vendor *ecdsa.PublicKey
}

// Run implements sim.Program.
func (c Chain) Run(m *sim.Machine, img *sim.Image) {
	d := img.Desc
	switch d.Behaviour {
	case ChainCrash:
		m.Fault("HardFault in bootloader " + d.Name)
	case ChainHang:
		return // spins; the selector's watchdog bites
	}
	lay := c.Layout
	m.Printf("[BOOT] chain bootloader version %d\r\n", d.Version)
	st := chain.NewStore(m.Internal(), lay)
	m.SetPhase("select")
	rec, err := st.Load()
	if err != nil {
		m.Printf("[BOOT] no valid boot record: rebuilding it from the slots\r\n")
		rec = chain.Rebuild(m, lay)
	}
	app := &rec.App
	for {
		i, ok := app.Select()
		if !ok {
			m.Printf("[BOOT] no application version left under bootloader version %d: giving it up\r\n", d.Version)
			c.giveUp(m, st, rec, "no application left under it")
		}
		sl := &app.Slots[i]
		if uint8(i) != app.Current {
			app.Current, app.Attempts = uint8(i), 0
		}
		if int(app.Attempts) >= lay.MaxAttempts {
			m.Printf("[BOOT] application version %d did not confirm in %d attempts: rolling back\r\n", sl.Version, lay.MaxAttempts)
			sl.Status = chain.Failed
			chain.RolledBack(m, sim.StageApplication, sl.Version, "not confirmed in its attempts")
			c.blameIfOnTrial(m, st, rec, sl)
			continue
		}
		h, err := chain.Verify(m, lay.Applications[i], sim.StageApplication, c.Vendor)
		if err == nil && h.Version != sl.Version {
			err = chain.ErrRecordVersion
		}
		if err != nil {
			m.Printf("[BOOT] application version %d fails verification: %v\r\n", sl.Version, err)
			sl.Status = chain.Failed
			chain.RolledBack(m, sim.StageApplication, sl.Version, "failed verification")
			c.blameIfOnTrial(m, st, rec, sl)
			continue
		}
		app.Attempts++
		rec.Boot.Attempts = 0 // handed over
		c.save(m, st, rec)
		if !sl.Confirmed {
			m.Printf("[BOOT] application version %d on trial, attempt %d of %d\r\n", sl.Version, app.Attempts, lay.MaxAttempts)
		}
		body := lay.Applications[i].Body()
		if d.Behaviour == ChainCorruptsApp {
			m.SetPhase("scribble")
			_ = m.Internal().Program(body+1024, make([]byte, m.Internal().ProgramSize()))
		}
		if d.Behaviour == ChainWrongEntry {
			body += 0x200
		}
		m.StartWatchdog(HandoverWatchdog)
		m.Jump(body)
	}
}

// blameIfOnTrial gives the running bootloader up if it is on trial and
// the application that just failed under it had been confirmed: it worked
// before this bootloader came, so the new bootloader is the change to undo
// first.
func (c Chain) blameIfOnTrial(m *sim.Machine, st *chain.Store, rec *chain.Record, failed *chain.SlotState) {
	boot := &rec.Boot.Slots[rec.Boot.Current]
	if !failed.Confirmed || boot.Confirmed {
		return
	}
	m.Printf("[BOOT] it ran before bootloader version %d, which is on trial\r\n", boot.Version)
	c.giveUp(m, st, rec, "a confirmed application failed under it")
}

// giveUp marks the running bootloader failed and resets: the boot selector
// rolls it back.
func (c Chain) giveUp(m *sim.Machine, st *chain.Store, rec *chain.Record, why string) {
	b := &rec.Boot.Slots[rec.Boot.Current]
	b.Status = chain.Failed
	chain.RolledBack(m, sim.StageBootloader, b.Version, why)
	c.save(m, st, rec)
	m.SystemReset()
}

func (c Chain) save(m *sim.Machine, st *chain.Store, rec *chain.Record) {
	m.SetPhase("record")
	if err := st.Save(rec); err != nil {
		m.Printf("[BOOT] boot record not written: %v\r\n", err)
	}
	m.SetPhase("select")
}
