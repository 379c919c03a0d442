package storage

import (
	"fmt"
	"time"
)

// ChangeKind is what an external change does to a device.
type ChangeKind uint8

// The external changes: what happens to a device that no firmware issued.
const (
	ChangeFlipBit   ChangeKind = iota + 1 // a bit inverts (retention loss, a probe)
	ChangeRemove                          // the SD card leaves its slot
	ChangeInsert                          // the SD card goes back in
	ChangeBadBlock                        // an SD block starts failing
	ChangeGoodBlock                       // a failing SD block heals
	ChangeWrite                           // bytes written with the medium in hand (an attacker)
)

var changeKindNames = [...]string{
	ChangeFlipBit:   "flip-bit",
	ChangeRemove:    "remove",
	ChangeInsert:    "insert",
	ChangeBadBlock:  "bad-block",
	ChangeGoodBlock: "good-block",
	ChangeWrite:     "write",
}

func (k ChangeKind) String() string {
	if int(k) < len(changeKindNames) && changeKindNames[k] != "" {
		return changeKindNames[k]
	}
	return fmt.Sprintf("ChangeKind(%d)", uint8(k))
}

// Change is an external change to a device, as the system's change log
// records it. The journal holds the ops firmware issued; the change log holds
// everything else that altered a device during a run (a scenario's corrupt
// step, an SD card pulled out and put back, a block gone bad), so that a
// snapshot of the run's start, the journal and the change log rebuild the
// state at any op (see Rebuilder).
type Change struct {
	// Before is the index of the first op issued after the change: it
	// happened between op Before-1 and op Before.
	Before int
	Device string
	Kind   ChangeKind
	// Addr is the byte of a flipped bit, or the block of a bad or healed one.
	Addr uint64
	// Bit is the flipped bit, 0..7 from the least significant.
	Bit uint
	// Data are the bytes a write put at Addr.
	Data []byte
	Time time.Duration
}

func (c Change) String() string {
	switch c.Kind {
	case ChangeFlipBit:
		return fmt.Sprintf("before #%d %s flip-bit 0x%x bit %d", c.Before, c.Device, c.Addr, c.Bit)
	case ChangeBadBlock, ChangeGoodBlock:
		return fmt.Sprintf("before #%d %s %s %d", c.Before, c.Device, c.Kind, c.Addr)
	case ChangeWrite:
		return fmt.Sprintf("before #%d %s write 0x%x+%d", c.Before, c.Device, c.Addr, len(c.Data))
	}
	return fmt.Sprintf("before #%d %s %s", c.Before, c.Device, c.Kind)
}

// logChange records an external change to a device of the system.
func (s *System) logChange(c Change) {
	if s == nil {
		return
	}
	c.Before = len(s.journal)
	c.Time = s.clock.Now()
	s.changes = append(s.changes, c)
}

// Changes returns the external changes made so far, in order. The slice is
// shared: callers must not modify it.
func (s *System) Changes() []Change { return s.changes[:len(s.changes):len(s.changes)] }

// ApplyChange makes a recorded external change again and logs it, as
// Apply does for an op.
func (s *System) ApplyChange(c Change) error {
	d := s.Device(c.Device)
	if d == nil {
		return fmt.Errorf("apply %s: no device %q", c, c.Device)
	}
	sd, isSD := d.(*SDCard)
	switch {
	case c.Kind == ChangeFlipBit:
		if c.Addr >= d.Size() || c.Bit > 7 {
			return fmt.Errorf("apply %s: out of bounds", c)
		}
		d.FlipBit(c.Addr, c.Bit)
	case c.Kind == ChangeWrite:
		if c.Addr > d.Size() || uint64(len(c.Data)) > d.Size()-c.Addr {
			return fmt.Errorf("apply %s: out of bounds", c)
		}
		d.Tamper(c.Addr, c.Data)
	case !isSD:
		return fmt.Errorf("apply %s: %s is not an SD card", c, c.Device)
	case c.Kind == ChangeRemove:
		sd.Remove()
	case c.Kind == ChangeInsert:
		sd.Insert()
	case c.Kind == ChangeBadBlock, c.Kind == ChangeGoodBlock:
		sd.SetBadBlock(c.Addr, c.Kind == ChangeBadBlock)
	default:
		return fmt.Errorf("apply %s: unknown change", c)
	}
	return nil
}
