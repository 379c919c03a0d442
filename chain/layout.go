package chain

import (
	"fmt"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// Layout is where the chain's parts live on internal flash. Every part
// starts and ends on a sector boundary, so each can be erased alone.
type Layout struct {
	// Selector is the boot selector's place, from address 0.
	Selector Part
	// Record holds the two copies of the boot record, a sector each.
	Record [2]Part
	// Bootloaders and Applications are the slots of the stored versions.
	Bootloaders  []Part
	Applications []Part
	// MaxAttempts bounds the boots a version may take without completing
	// (a bootloader: handing over; an application: confirming).
	MaxAttempts int
	// Options are the keys the layout was made from, defaults filled in.
	Options Options
}

// Part is a range of internal flash.
type Part struct {
	Start, Size uint64
}

// End is the address after the part.
func (p Part) End() uint64 { return p.Start + p.Size }

// Body is where a slot's image starts: after its header.
func (p Part) Body() uint64 { return p.Start + HeaderSpace }

// Options are the layout's configuration keys (chain.*), zero meaning the
// default.
type Options struct {
	BootloaderSlots    int    // chain.bootloader-slots (default 2)
	ApplicationSlots   int    // chain.application-slots (default 3)
	BootloaderSlotSize uint64 // chain.bootloader-slot-size (default 64 KiB)
	SelectorSize       uint64 // chain.selector-size (default 16 KiB)
	MaxAttempts        int    // chain.max-attempts (default 3)
}

// Defaults of Options.
const (
	DefaultBootloaderSlots    = 2
	DefaultApplicationSlots   = 3
	DefaultBootloaderSlotSize = 64 << 10
	DefaultSelectorSize       = 16 << 10
	DefaultMaxAttempts        = 3
)

// NewLayout lays the chain out on a board's internal flash: the selector
// from 0, the two record sectors, the bootloader slots, then the rest of
// flash shared evenly by the application slots, each part rounded up to
// whole sectors.
func NewLayout(b *sim.Board, o Options) (*Layout, error) {
	if o.BootloaderSlots == 0 {
		o.BootloaderSlots = DefaultBootloaderSlots
	}
	if o.ApplicationSlots == 0 {
		o.ApplicationSlots = DefaultApplicationSlots
	}
	if o.BootloaderSlotSize == 0 {
		o.BootloaderSlotSize = DefaultBootloaderSlotSize
	}
	if o.SelectorSize == 0 {
		o.SelectorSize = DefaultSelectorSize
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	switch {
	case o.BootloaderSlots < 1 || o.BootloaderSlots > MaxSlots:
		return nil, fmt.Errorf("chain.bootloader-slots: %d, want 1 to %d", o.BootloaderSlots, MaxSlots)
	case o.ApplicationSlots < 1 || o.ApplicationSlots > MaxSlots:
		return nil, fmt.Errorf("chain.application-slots: %d, want 1 to %d", o.ApplicationSlots, MaxSlots)
	case o.MaxAttempts < 1 || o.MaxAttempts > 100:
		return nil, fmt.Errorf("chain.max-attempts: %d, want 1 to 100", o.MaxAttempts)
	}
	var sectors []Part
	var at uint64
	for _, s := range b.Flash.Sectors {
		for range s.Count {
			sectors = append(sectors, Part{Start: at, Size: uint64(s.Size)})
			at += uint64(s.Size)
		}
	}
	next := 0
	// take returns the next whole sectors that hold at least n bytes.
	take := func(what string, n uint64) (Part, error) {
		if next >= len(sectors) {
			return Part{}, fmt.Errorf("chain layout: no flash left on %s for the %s", b.Name, what)
		}
		p := Part{Start: sectors[next].Start}
		for p.Size < n {
			if next >= len(sectors) {
				return Part{}, fmt.Errorf("chain layout: the %s needs %d bytes; %s has only %d left", what, n, b.Name, p.Size)
			}
			p.Size += sectors[next].Size
			next++
		}
		return p, nil
	}
	l := &Layout{MaxAttempts: o.MaxAttempts, Options: o}
	var err error
	if l.Selector, err = take("boot selector", o.SelectorSize); err != nil {
		return nil, err
	}
	for i := range l.Record {
		if l.Record[i], err = take("boot record", RecordSize); err != nil {
			return nil, err
		}
	}
	for i := range o.BootloaderSlots {
		p, err := take(fmt.Sprintf("bootloader slot %d", i), o.BootloaderSlotSize)
		if err != nil {
			return nil, err
		}
		l.Bootloaders = append(l.Bootloaders, p)
	}
	if next >= len(sectors) {
		return nil, fmt.Errorf("chain layout: no flash left on %s for application slots", b.Name)
	}
	left := uint64(b.Flash.Size()) - sectors[next].Start
	for i := range o.ApplicationSlots {
		share := left / uint64(o.ApplicationSlots-i)
		p, err := take(fmt.Sprintf("application slot %d", i), share)
		if err != nil {
			return nil, err
		}
		left -= p.Size
		l.Applications = append(l.Applications, p)
	}
	if l.Applications[len(l.Applications)-1].Size <= HeaderSpace {
		return nil, fmt.Errorf("chain layout: %s's flash is too small for %d application slots", b.Name, o.ApplicationSlots)
	}
	return l, nil
}

// Slots returns a stage's slots.
func (l *Layout) Slots(stage sim.Stage) []Part {
	if stage == sim.StageBootloader {
		return l.Bootloaders
	}
	return l.Applications
}

// Region names of the chain's parts.
const (
	RegionSelector = "bootsel"
)

// RecordRegion, BootloaderRegion and ApplicationRegion name the parts.
func RecordRegion(i int) string      { return fmt.Sprintf("record-%c", 'a'+i) }
func BootloaderRegion(i int) string  { return fmt.Sprintf("bootloader-%d", i) }
func ApplicationRegion(i int) string { return fmt.Sprintf("app-%d", i) }

// Regions names every part, for the journal and fault matchers.
func (l *Layout) Regions() []storage.Region {
	rs := []storage.Region{{Name: RegionSelector, Device: sim.DeviceInternal, Start: l.Selector.Start, Size: l.Selector.Size}}
	for i, p := range l.Record {
		rs = append(rs, storage.Region{Name: RecordRegion(i), Device: sim.DeviceInternal, Start: p.Start, Size: p.Size})
	}
	for i, p := range l.Bootloaders {
		rs = append(rs, storage.Region{Name: BootloaderRegion(i), Device: sim.DeviceInternal, Start: p.Start, Size: p.Size})
	}
	for i, p := range l.Applications {
		rs = append(rs, storage.Region{Name: ApplicationRegion(i), Device: sim.DeviceInternal, Start: p.Start, Size: p.Size})
	}
	return rs
}
