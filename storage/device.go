package storage

import (
	"bytes"
	"fmt"
	"slices"
	"time"
)

// PageProgrammer is a device that can program a run of pages one page per
// op (NORFlash): a driver's loop over the HAL's page program.
type PageProgrammer interface {
	ProgramPages(addr uint64, p []byte, page uint64) error
}

// Device is one block device as firmware sees it, after Mbed OS's BlockDevice
// (and FlashIAP, which has the same shape).
//
// Addresses are byte offsets from the start of the device. Read, Program and
// Erase take and return whole units: an address or length that is not a
// multiple of the read, program or erase size fails with ErrMisaligned and
// touches nothing. Program and Erase are the mutating ops: each one is
// journaled, may be hit by a fault, and advances the virtual clock.
type Device interface {
	Name() string
	// Size is the device's size in bytes.
	Size() uint64
	// ReadSize is the read unit in bytes.
	ReadSize() uint64
	// ProgramSize is the program unit in bytes.
	ProgramSize() uint64
	// EraseSize is the size of the erase unit (sector) that holds addr.
	EraseSize(addr uint64) uint64
	// EraseValue is the byte an erase leaves, or -1 if erase does not change
	// the contents (SD cards).
	EraseValue() int
	Read(addr uint64, p []byte) error
	// ReadView is Read for a caller that only looks at the bytes: it calls
	// f on the contents of [addr, addr+n), in order, in pieces f must
	// neither keep nor modify. Its cost, checks and failures are those of
	// Read of the same range; it only saves the host the copy.
	ReadView(addr, n uint64, f func([]byte)) error
	Program(addr uint64, p []byte) error
	Erase(addr, size uint64) error

	// Peek copies contents without costing time, checking power or media:
	// what a debugger or a test sees, not what firmware does.
	Peek(addr uint64, p []byte)
	// Holds reports whether the device holds p at addr, as Peek would see
	// it, without a copy.
	Holds(addr uint64, p []byte) bool
	// Load writes contents directly, bypassing physics, journal and faults:
	// what a factory programmer does before the device first powers up.
	Load(addr uint64, data []byte)
	// FlipBit inverts one bit (0..7 from the least significant) at addr, as
	// retention loss or an attacker with a probe would. It is not an op: it
	// costs no time and meets no fault; the system's change log records it.
	FlipBit(addr uint64, bit uint)
	// Tamper writes bytes directly, as an attacker who holds the medium
	// (an SD card in a reader, a probe on the flash) does: no op, no time,
	// no fault, no erase needed; the system's change log records it.
	Tamper(addr uint64, data []byte)
	// Stamp identifies the current contents of [addr, addr+n): a later Stamp
	// of the same range is Equal only if no byte in it may have changed.
	Stamp(addr, n uint64) Stamp
}

// PadToUnit returns p padded with 0xFF to a whole number of units, as
// firmware fills the tail of a program through a block device; it returns p
// itself when p is already whole units.
func PadToUnit(p []byte, unit uint64) []byte {
	n := uint64(len(p))
	if unit <= 1 || n%unit == 0 {
		return p
	}
	out := bytes.Repeat([]byte{0xFF}, int((n+unit-1)/unit*unit))
	copy(out, p)
	return out
}

// stuckBit is a bit that no program or erase changes any more.
type stuckBit struct {
	addr  uint64
	mask  byte
	value byte // mask or 0
}

// base holds what every medium has: a name, contents and stuck bits.
type base struct {
	name  string
	sys   *System
	mem   *memory
	stuck []stuckBit
	// lastRead remembers the duration of the last read size: a stage reads
	// in runs of one size (the SOTP scan 127 times 128 bytes, a hash 64
	// times its buffer), and each read spares readTime's 64-bit division.
	lastRead struct {
		n uint64
		d time.Duration
	}
}

// readDuration is readTime for this device's reads of n bytes.
func (b *base) readDuration(n, bytesPerSec uint64, latency time.Duration) time.Duration {
	if n != b.lastRead.n || n == 0 {
		b.lastRead.n, b.lastRead.d = n, readTime(n, bytesPerSec, latency)
	}
	return b.lastRead.d
}

func (b *base) Name() string { return b.name }

func (b *base) memory() *memory { return b.mem }

func (b *base) Size() uint64 { return b.mem.size }

func (b *base) checkRange(op string, addr, n, unit uint64) error {
	if addr > b.mem.size || n > b.mem.size-addr {
		return fmt.Errorf("%s %s 0x%x+%d (size 0x%x): %w", b.name, op, addr, n, b.mem.size, ErrOutOfBounds)
	}
	if unit > 1 && (addr%unit != 0 || n%unit != 0) { // most reads are by the byte: skip two divisions
		return fmt.Errorf("%s %s 0x%x+%d (unit %d): %w", b.name, op, addr, n, unit, ErrMisaligned)
	}
	return nil
}

// Peek implements Device.
func (b *base) Peek(addr uint64, p []byte) {
	if addr > b.mem.size || uint64(len(p)) > b.mem.size-addr {
		panic(fmt.Sprintf("storage: peek %s 0x%x+%d out of bounds", b.name, addr, len(p)))
	}
	b.mem.read(addr, p)
}

// Holds implements Device.
func (b *base) Holds(addr uint64, p []byte) bool {
	if addr > b.mem.size || uint64(len(p)) > b.mem.size-addr {
		panic(fmt.Sprintf("storage: holds %s 0x%x+%d out of bounds", b.name, addr, len(p)))
	}
	same := true
	b.mem.view(addr, uint64(len(p)), func(x []byte) {
		if same {
			same = bytes.Equal(x, p[:len(x)])
		}
		p = p[len(x):]
	})
	return same
}

// Load implements Device.
func (b *base) Load(addr uint64, data []byte) {
	if addr > b.mem.size || uint64(len(data)) > b.mem.size-addr {
		panic(fmt.Sprintf("storage: load %s 0x%x+%d out of bounds", b.name, addr, len(data)))
	}
	b.mem.write(addr, data)
	b.enforceStuck(addr, uint64(len(data)))
}

// FlipBit implements Device.
func (b *base) FlipBit(addr uint64, bit uint) {
	b.flip(addr, bit)
	b.sys.logChange(Change{Device: b.name, Kind: ChangeFlipBit, Addr: addr, Bit: bit})
}

// Tamper implements Device.
func (b *base) Tamper(addr uint64, data []byte) {
	if addr > b.mem.size || uint64(len(data)) > b.mem.size-addr {
		panic(fmt.Sprintf("storage: tamper %s 0x%x+%d out of bounds", b.name, addr, len(data)))
	}
	b.mem.write(addr, data)
	b.enforceStuck(addr, uint64(len(data)))
	b.sys.logChange(Change{Device: b.name, Kind: ChangeWrite, Addr: addr, Data: slices.Clone(data)})
}

// flip inverts a bit without logging it: a fault's flip is part of its op.
func (b *base) flip(addr uint64, bit uint) {
	if addr >= b.mem.size || bit > 7 {
		panic(fmt.Sprintf("storage: flip bit %d at %s 0x%x out of bounds", bit, b.name, addr))
	}
	b.mem.update(addr, 1, func(x []byte, _ uint64) { x[0] ^= 1 << bit })
	b.enforceStuck(addr, 1)
}

// Stamp implements Device.
func (b *base) Stamp(addr, n uint64) Stamp { return b.mem.stamp(addr, n) }

// enforceStuck puts every stuck bit in [addr, addr+n) back to its value.
func (b *base) enforceStuck(addr, n uint64) {
	for _, s := range b.stuck {
		if s.addr < addr || s.addr >= addr+n {
			continue
		}
		b.mem.update(s.addr, 1, func(x []byte, _ uint64) { x[0] = x[0]&^s.mask | s.value })
	}
}

// flipSeeded flips one seeded bit of [addr, addr+n).
func (b *base) flipSeeded(op *Op) {
	r := op.Fault.rng(op.Index)
	b.flip(op.Addr+r.Uint64N(op.Len), uint(r.IntN(8)))
}

// stickSeeded sticks one seeded bit of [addr, addr+n) at a seeded value.
func (b *base) stickSeeded(op *Op) {
	r := op.Fault.rng(op.Index)
	s := stuckBit{addr: op.Addr + r.Uint64N(op.Len), mask: 1 << uint(r.IntN(8))}
	if r.IntN(2) == 1 {
		s.value = s.mask
	}
	b.stuck = append(b.stuck, s)
	b.enforceStuck(s.addr, 1)
}

func (b *base) frozenBase() base {
	return base{name: b.name, mem: b.mem.share(), stuck: slices.Clone(b.stuck)}
}

// freeze makes the device a snapshot's: no system, and a memory whose every
// chunk and page is now foreign to it, so that nothing writes them in place.
func (b *base) freeze() {
	b.sys = nil
	b.mem.owner = newOwner()
}

func (b *base) restoreBase(sys *System) base {
	return base{name: b.name, sys: sys, mem: b.mem.frozenCopy(), stuck: slices.Clone(b.stuck)}
}

// readTime is the time to read n bytes at a bandwidth in bytes per second plus
// a fixed latency per op.
func readTime(n uint64, bytesPerSec uint64, latency time.Duration) time.Duration {
	if bytesPerSec == 0 {
		return latency
	}
	return latency + time.Duration(n*uint64(time.Second)/bytesPerSec)
}
