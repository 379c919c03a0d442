package storage

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
	"time"
)

// SDBlockSize is the SD card's read, program and erase unit.
const SDBlockSize = 512

// SDConfig describes an SD card.
type SDConfig struct {
	Name string
	Size uint64
	// Blank is what a block that was never written reads as.
	Blank byte
	// ReadLatency and WriteLatency are paid once per op; the bandwidths per byte.
	ReadLatency    time.Duration
	WriteLatency   time.Duration
	ReadBandwidth  uint64
	WriteBandwidth uint64
}

// SDCard is an SD card in SPI mode as Mbed's SDBlockDevice drives it: 512-byte
// blocks written whole, no erase needed (erase is accepted and changes
// nothing), removable, with blocks that can fail.
type SDCard struct {
	base
	cfg     SDConfig
	removed bool
	bad     map[uint64]bool // block numbers that fail every read and write
}

// NewSDCard adds an SD card to the system.
func (s *System) NewSDCard(cfg SDConfig) *SDCard {
	if cfg.Size == 0 || cfg.Size%SDBlockSize != 0 {
		panic(fmt.Sprintf("storage: SD %q: size %d is not a positive multiple of %d", cfg.Name, cfg.Size, SDBlockSize))
	}
	c := &SDCard{cfg: cfg, base: base{name: cfg.Name, sys: s, mem: newMemory(cfg.Size, cfg.Blank)}}
	s.add(c)
	return c
}

// Config returns the card's configuration.
func (c *SDCard) Config() SDConfig { return c.cfg }

// ReadSize implements Device.
func (c *SDCard) ReadSize() uint64 { return SDBlockSize }

// ProgramSize implements Device.
func (c *SDCard) ProgramSize() uint64 { return SDBlockSize }

// EraseSize implements Device.
func (c *SDCard) EraseSize(uint64) uint64 { return SDBlockSize }

// EraseValue implements Device: an SD erase leaves the contents undefined, so
// firmware must not rely on it (Mbed's SDBlockDevice reports -1 too).
func (c *SDCard) EraseValue() int { return -1 }

// Remove takes the card out: every op fails with ErrNoMedia until Insert.
// The system's change log records it.
func (c *SDCard) Remove() {
	c.removed = true
	c.sys.logChange(Change{Device: c.name, Kind: ChangeRemove})
}

// Insert puts the card back. The system's change log records it.
func (c *SDCard) Insert() {
	c.removed = false
	c.sys.logChange(Change{Device: c.name, Kind: ChangeInsert})
}

// Present reports whether the card is in its slot.
func (c *SDCard) Present() bool { return !c.removed }

// SetBadBlock makes block lba fail every read and write with ErrIO (or heals
// it). The system's change log records it.
func (c *SDCard) SetBadBlock(lba uint64, bad bool) {
	kind := ChangeGoodBlock
	if bad {
		kind = ChangeBadBlock
	}
	c.sys.logChange(Change{Device: c.name, Kind: kind, Addr: lba})
	if c.bad == nil {
		c.bad = map[uint64]bool{}
	}
	if bad {
		c.bad[lba] = true
	} else {
		delete(c.bad, lba)
	}
}

func (c *SDCard) check(op string, addr, n uint64) error {
	if err := c.checkRange(op, addr, n, SDBlockSize); err != nil {
		return err
	}
	if c.removed {
		return fmt.Errorf("%s %s 0x%x: %w", c.name, op, addr, ErrNoMedia)
	}
	for lba := addr / SDBlockSize; lba < (addr+n)/SDBlockSize; lba++ {
		if c.bad[lba] {
			return fmt.Errorf("%s %s 0x%x: block %d: %w", c.name, op, addr, lba, ErrIO)
		}
	}
	return nil
}

// Read implements Device.
func (c *SDCard) Read(addr uint64, p []byte) error {
	at := 0
	return c.ReadView(addr, uint64(len(p)), func(x []byte) { at += copy(p[at:], x) })
}

// ReadView implements Device.
func (c *SDCard) ReadView(addr, n uint64, f func([]byte)) error {
	if err := c.check("read", addr, n); err != nil {
		return err
	}
	if !c.sys.powered {
		return fmt.Errorf("%s read 0x%x: %w", c.name, addr, ErrPowerLost)
	}
	if c.sys.readInjector != nil {
		if op, ok := c.sys.readFault(c.name, addr, n); ok {
			c.sys.clock.Advance(c.readDuration(n, c.cfg.ReadBandwidth, c.cfg.ReadLatency))
			return faultedRead(op, func(g func([]byte)) { c.mem.view(addr, n, g) }, f)
		}
	}
	c.mem.view(addr, n, f)
	c.sys.clock.Advance(c.readDuration(n, c.cfg.ReadBandwidth, c.cfg.ReadLatency))
	return nil
}

// Program implements Device.
func (c *SDCard) Program(addr uint64, p []byte) error {
	n := uint64(len(p))
	if err := c.check("program", addr, n); err != nil {
		return err
	}
	if n == 0 {
		return nil
	}
	return c.sys.mutate(c, OpProgram, addr, p, n)
}

// Erase implements Device.
func (c *SDCard) Erase(addr, size uint64) error {
	if err := c.check("erase", addr, size); err != nil {
		return err
	}
	if size == 0 {
		return nil
	}
	return c.sys.mutate(c, OpErase, addr, nil, size)
}

func (c *SDCard) writeTime(n uint64) time.Duration {
	return readTime(n, c.cfg.WriteBandwidth, c.cfg.WriteLatency)
}

// apply implements device.
func (c *SDCard) apply(op *Op) (time.Duration, error) {
	full := c.writeTime(op.Len)
	if op.Kind == OpErase {
		full = c.cfg.WriteLatency
	}
	switch op.Fault.Mode {
	case FaultCutBefore:
		return 0, nil
	case FaultIOError, FaultWearOut:
		return full, ErrIO
	case FaultSDRemoved:
		return 0, ErrNoMedia
	}
	if op.Kind == OpErase {
		// A trim: the card is free to keep the old contents, and does.
		return full, nil
	}
	if op.Fault.Mode == FaultTorn {
		r := op.Fault.rng(op.Index)
		blocks := op.Len / SDBlockSize
		k := r.Uint64N(blocks)
		c.mem.write(op.Addr, op.Data[:k*SDBlockSize])
		at := op.Addr + k*SDBlockSize
		switch r.IntN(3) {
		case 0: // the torn block keeps its old contents
		case 1:
			c.mem.write(at, op.Data[k*SDBlockSize:(k+1)*SDBlockSize])
		case 2:
			garbage := make([]byte, SDBlockSize)
			for i := range garbage {
				garbage[i] = byte(r.Uint32())
			}
			c.mem.write(at, garbage)
		}
		c.enforceStuck(op.Addr, (k+1)*SDBlockSize)
		return c.writeTime((k + 1) * SDBlockSize), nil
	}
	c.mem.write(op.Addr, op.Data)
	c.enforceStuck(op.Addr, op.Len)
	switch op.Fault.Mode {
	case FaultBitFlip:
		c.flipSeeded(op)
	case FaultStuckBit:
		c.stickSeeded(op)
	}
	return full, nil
}

func (c *SDCard) frozen() device {
	x := *c
	x.base = c.frozenBase()
	x.bad = cloneSet(c.bad)
	return &x
}

func (c *SDCard) restore(sys *System) device {
	x := *c
	x.base = c.restoreBase(sys)
	x.bad = cloneSet(c.bad)
	return &x
}

func cloneSet(m map[uint64]bool) map[uint64]bool {
	if m == nil {
		return nil
	}
	out := make(map[uint64]bool, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// meta implements device.
func (c *SDCard) meta() string {
	b := appendStuck(make([]byte, 0, 32), c.stuck)
	if c.removed {
		b = append(b, 'R')
	}
	for _, lba := range slices.Sorted(maps.Keys(c.bad)) {
		b = binary.AppendUvarint(b, lba)
	}
	return string(b)
}
