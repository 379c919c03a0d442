package storage

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"time"
)

// SectorRun is a run of equal erase sectors: STM32F4 bank 1, for example, is
// {16 KiB × 4}, {64 KiB × 1}, {128 KiB × 7}.
type SectorRun struct {
	Size      uint64
	Count     int
	EraseTime time.Duration // to erase one sector of the run
}

// NORConfig describes a NOR flash part: internal flash or SPI NOR.
type NORConfig struct {
	Name    string
	Sectors []SectorRun
	// ProgramUnit is the smallest program: an address and length must be a
	// multiple of it (8 bytes on K64F, 1 on SPI NOR).
	ProgramUnit uint64
	// ProgramPage is the chunk ProgramTime applies to: the program unit for
	// internal flash, the 256-byte page for SPI NOR. 0 means ProgramUnit.
	ProgramPage uint64
	ProgramTime time.Duration
	// ReadUnit is the read granularity, 1 for every part modelled here.
	ReadUnit uint64
	// ReadBandwidth in bytes per second and ReadLatency per read op.
	ReadBandwidth uint64
	ReadLatency   time.Duration
	// Strict refuses to program a unit that is not fully erased, as MCUboot's
	// simulator does, instead of ANDing the new bits into the old ones.
	Strict bool
	// Endurance is the number of erase cycles a sector survives; 0 is unlimited.
	Endurance int
}

// NORFlash is a NOR flash device: erased to 0xFF by whole sectors, programmed
// only from 1 to 0 in program-unit multiples.
type NORFlash struct {
	base
	cfg    NORConfig
	starts []uint64        // starts[i] is sector i's address; starts[len-1] is the size
	erase  []time.Duration // erase time of sector i
	erases []uint32        // erase cycles of sector i
	worn   []bool
	// wearShared says erases and worn are a snapshot's (see ownWear).
	wearShared bool
}

// NewNORFlash adds a NOR flash device to the system. It panics on an invalid
// configuration: a board profile is validated before it gets here.
func (s *System) NewNORFlash(cfg NORConfig) *NORFlash {
	if cfg.ProgramUnit == 0 || len(cfg.Sectors) == 0 {
		panic(fmt.Sprintf("storage: NOR %q needs sectors and a program unit", cfg.Name))
	}
	if cfg.ProgramPage == 0 {
		cfg.ProgramPage = cfg.ProgramUnit
	}
	if cfg.ReadUnit == 0 {
		cfg.ReadUnit = 1
	}
	f := &NORFlash{cfg: cfg}
	var addr uint64
	for _, run := range cfg.Sectors {
		if run.Size == 0 || run.Count <= 0 || run.Size%cfg.ProgramUnit != 0 {
			panic(fmt.Sprintf("storage: NOR %q: bad sector run %+v", cfg.Name, run))
		}
		for range run.Count {
			f.starts = append(f.starts, addr)
			f.erase = append(f.erase, run.EraseTime)
			addr += run.Size
		}
	}
	f.starts = append(f.starts, addr)
	f.erases = make([]uint32, len(f.erase))
	f.worn = make([]bool, len(f.erase))
	f.base = base{name: cfg.Name, sys: s, mem: newMemory(addr, 0xFF)}
	s.add(f)
	return f
}

// Config returns the part's configuration.
func (f *NORFlash) Config() NORConfig { return f.cfg }

// ReadSize implements Device.
func (f *NORFlash) ReadSize() uint64 { return f.cfg.ReadUnit }

// ProgramSize implements Device.
func (f *NORFlash) ProgramSize() uint64 { return f.cfg.ProgramUnit }

// EraseValue implements Device.
func (f *NORFlash) EraseValue() int { return 0xFF }

// sector returns the index of the sector holding addr (addr < size).
func (f *NORFlash) sector(addr uint64) int {
	return sort.Search(len(f.starts)-1, func(i int) bool { return f.starts[i+1] > addr })
}

// EraseSize implements Device. Past the end it returns the last sector's size.
func (f *NORFlash) EraseSize(addr uint64) uint64 {
	i := min(f.sector(addr), len(f.erase)-1)
	return f.starts[i+1] - f.starts[i]
}

// Sectors returns the number of sectors.
func (f *NORFlash) Sectors() int { return len(f.erase) }

// SectorBounds returns the start address and size of sector i.
func (f *NORFlash) SectorBounds(i int) (start, size uint64) {
	return f.starts[i], f.starts[i+1] - f.starts[i]
}

// EraseCounts returns the erase cycles of every sector.
func (f *NORFlash) EraseCounts() []uint32 { return slices.Clone(f.erases) }

// Read implements Device.
func (f *NORFlash) Read(addr uint64, p []byte) error {
	n := uint64(len(p))
	if err := f.beginRead(addr, n); err != nil {
		return err
	}
	if f.sys.readInjector != nil {
		if op, ok := f.sys.readFault(f.name, addr, n); ok {
			f.sys.clock.Advance(f.readDuration(n, f.cfg.ReadBandwidth, f.cfg.ReadLatency))
			at := 0
			return faultedRead(op, func(g func([]byte)) { f.mem.view(addr, n, g) }, func(b []byte) { at += copy(p[at:], b) })
		}
	}
	f.mem.read(addr, p)
	f.sys.clock.Advance(f.readDuration(n, f.cfg.ReadBandwidth, f.cfg.ReadLatency))
	return nil
}

// beginRead makes the checks of a read (Read and ReadView make the same).
func (f *NORFlash) beginRead(addr, n uint64) error {
	if err := f.checkRange("read", addr, n, f.cfg.ReadUnit); err != nil {
		return err
	}
	if !f.sys.powered {
		return fmt.Errorf("%s read 0x%x: %w", f.name, addr, ErrPowerLost)
	}
	return nil
}

// ReadView implements Device.
func (f *NORFlash) ReadView(addr, n uint64, fn func([]byte)) error {
	if err := f.beginRead(addr, n); err != nil {
		return err
	}
	if f.sys.readInjector != nil {
		if op, ok := f.sys.readFault(f.name, addr, n); ok {
			f.sys.clock.Advance(f.readDuration(n, f.cfg.ReadBandwidth, f.cfg.ReadLatency))
			return faultedRead(op, func(g func([]byte)) { f.mem.view(addr, n, g) }, fn)
		}
	}
	f.mem.view(addr, n, fn)
	f.sys.clock.Advance(f.readDuration(n, f.cfg.ReadBandwidth, f.cfg.ReadLatency))
	return nil
}

// Program implements Device.
func (f *NORFlash) Program(addr uint64, p []byte) error {
	n := uint64(len(p))
	if ok, err := f.checkProgram(addr, n); !ok {
		return err
	}
	return f.sys.mutate(f, OpProgram, addr, p, n)
}

// ProgramPages programs p at addr one page per op, as a driver does that
// calls the HAL's page program in a loop (mbed-bootloader's
// arm_uc_flashiap_program calls flash_program_page once per page): fault
// rules see, count and cut each page; the journal keeps the pages up to a
// fault as one record. page must be a multiple of the program unit and
// divide len(p).
func (f *NORFlash) ProgramPages(addr uint64, p []byte, page uint64) error {
	n := uint64(len(p))
	if page == 0 || page%f.cfg.ProgramUnit != 0 || n%page != 0 {
		return fmt.Errorf("%s program pages 0x%x+%d in pages of %d: %w", f.name, addr, n, page, ErrMisaligned)
	}
	if ok, err := f.checkProgram(addr, n); !ok {
		return err
	}
	return f.sys.mutatePages(f, addr, p, page, f.programTime(page))
}

// checkProgram checks a program of n bytes at addr before it is issued:
// range and alignment, worn sectors, and (strict) units not erased. It
// reports whether there is anything to program; a refusal comes with its
// error, an empty program with none.
func (f *NORFlash) checkProgram(addr, n uint64) (bool, error) {
	if err := f.checkRange("program", addr, n, f.cfg.ProgramUnit); err != nil {
		return false, err
	}
	if n == 0 {
		return false, nil
	}
	if err := f.checkNotWorn("program", addr, n); err != nil {
		return false, err
	}
	if f.cfg.Strict {
		if off, ok := f.firstUnerasedUnit(addr, n); !ok {
			return false, fmt.Errorf("%s program 0x%x+%d: unit at 0x%x: %w", f.name, addr, n, off, ErrNotErased)
		}
	}
	return true, nil
}

// Erase implements Device. The range must start and end on sector boundaries.
func (f *NORFlash) Erase(addr, size uint64) error {
	if err := f.checkRange("erase", addr, size, 1); err != nil {
		return err
	}
	if size == 0 {
		return nil
	}
	first, last := f.sector(addr), f.sector(addr+size-1)
	if f.starts[first] != addr || f.starts[last+1] != addr+size {
		return fmt.Errorf("%s erase 0x%x+0x%x: not on sector boundaries: %w", f.name, addr, size, ErrMisaligned)
	}
	if err := f.checkNotWorn("erase", addr, size); err != nil {
		return err
	}
	return f.sys.mutate(f, OpErase, addr, nil, size)
}

func (f *NORFlash) checkNotWorn(op string, addr, n uint64) error {
	for i := f.sector(addr); i < len(f.worn) && f.starts[i] < addr+n; i++ {
		if f.worn[i] {
			return fmt.Errorf("%s %s 0x%x: sector %d: %w", f.name, op, addr, i, ErrWornOut)
		}
	}
	return nil
}

func (f *NORFlash) firstUnerasedUnit(addr, n uint64) (uint64, bool) {
	buf := make([]byte, n)
	f.mem.read(addr, buf)
	u := f.cfg.ProgramUnit
	for off := uint64(0); off < n; off += u {
		for _, b := range buf[off : off+u] {
			if b != 0xFF {
				return addr + off, false
			}
		}
	}
	return 0, true
}

func (f *NORFlash) programTime(n uint64) time.Duration {
	pages := (n + f.cfg.ProgramPage - 1) / f.cfg.ProgramPage
	return time.Duration(pages) * f.cfg.ProgramTime
}

// apply implements device.
func (f *NORFlash) apply(op *Op) (time.Duration, error) {
	switch op.Kind {
	case OpProgram:
		return f.applyProgram(op)
	case OpErase:
		return f.applyErase(op)
	}
	panic(fmt.Sprintf("storage: NOR cannot apply %s", op))
}

// programBits ANDs data into the medium: NOR programming only clears bits.
func (f *NORFlash) programBits(addr uint64, data []byte) {
	f.mem.update(addr, uint64(len(data)), func(b []byte, at uint64) {
		andBytes(b, data[at:at+uint64(len(b))])
	})
	f.enforceStuck(addr, uint64(len(data)))
}

func (f *NORFlash) applyProgram(op *Op) (time.Duration, error) {
	full := f.programTime(op.Len)
	switch op.Fault.Mode {
	case FaultCutBefore:
		return 0, nil
	case FaultIOError:
		return full, ErrIO
	case FaultWearOut:
		f.ownWear()
		f.worn[f.sector(op.Addr)] = true
		return full, ErrWornOut
	case FaultTorn:
		r := op.Fault.rng(op.Index)
		u := f.cfg.ProgramUnit
		units := op.Len / u
		k := r.Uint64N(units) // the unit in progress
		f.programBits(op.Addr, op.Data[:k*u])
		partial := make([]byte, u)
		cur := make([]byte, u)
		f.mem.read(op.Addr+k*u, cur)
		for i := range partial {
			partial[i] = 0xFF
			for bit := range 8 {
				m := byte(1) << bit
				// A bit the op clears (1→0) is cleared or not, at random;
				// no other bit changes.
				if cur[i]&m != 0 && op.Data[k*u+uint64(i)]&m == 0 && r.IntN(2) == 0 {
					partial[i] &^= m
				}
			}
		}
		f.programBits(op.Addr+k*u, partial)
		return f.programTime(k*u + 1), nil
	}
	f.programBits(op.Addr, op.Data)
	switch op.Fault.Mode {
	case FaultBitFlip:
		f.flipSeeded(op)
	case FaultStuckBit:
		f.stickSeeded(op)
	}
	return full, nil
}

func (f *NORFlash) eraseSector(i int) {
	start, size := f.SectorBounds(i)
	f.mem.fill(start, size, 0xFF)
	f.enforceStuck(start, size)
	f.ownWear()
	f.erases[i]++
	if f.cfg.Endurance > 0 && int(f.erases[i]) >= f.cfg.Endurance {
		f.worn[i] = true
	}
}

func (f *NORFlash) applyErase(op *Op) (time.Duration, error) {
	first, last := f.sector(op.Addr), f.sector(op.Addr+op.Len-1)
	var full time.Duration
	for i := first; i <= last; i++ {
		full += f.erase[i]
	}
	switch op.Fault.Mode {
	case FaultCutBefore:
		return 0, nil
	case FaultIOError:
		return full, ErrIO
	case FaultWearOut:
		f.ownWear()
		f.worn[first] = true
		return full, ErrWornOut
	case FaultTorn:
		r := op.Fault.rng(op.Index)
		k := first + r.IntN(last-first+1)
		var spent time.Duration
		for i := first; i < k; i++ {
			f.eraseSector(i)
			spent += f.erase[i]
		}
		// The torn sector got part of its erase pulses: each cell still at 0
		// has risen to 1 with a probability set by how far the erase got
		// (in 256ths, from 5 % to 95 %). Cells differ, so the result is
		// scattered, not a clean prefix.
		q := 13 + r.IntN(231)
		start, size := f.SectorBounds(k)
		f.mem.update(start, size, func(b []byte, _ uint64) {
			for len(b) >= 8 {
				binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)|bitsWithChance(r, q))
				b = b[8:]
			}
			for j, m := 0, bitsWithChance(r, q); j < len(b); j, m = j+1, m>>8 {
				b[j] |= byte(m)
			}
		})
		f.enforceStuck(start, size)
		f.ownWear()
		f.erases[k]++
		return spent + f.erase[k]*time.Duration(q)/256, nil
	}
	for i := first; i <= last; i++ {
		f.eraseSector(i)
	}
	switch op.Fault.Mode {
	case FaultBitFlip:
		f.flipSeeded(op)
	case FaultStuckBit:
		f.stickSeeded(op)
	}
	return full, nil
}

func (f *NORFlash) frozen() device {
	c := *f
	c.base = f.frozenBase()
	c.erases = slices.Clone(f.erases)
	c.worn = slices.Clone(f.worn)
	return &c
}

func (f *NORFlash) restore(sys *System) device {
	c := *f
	c.base = f.restoreBase(sys)
	c.wearShared = true // the snapshot's, copied at the first erase
	return &c
}

// ownWear gives f its own erase counts and worn flags before it changes
// them, if it still shares the snapshot's.
func (f *NORFlash) ownWear() {
	if f.wearShared {
		f.erases = slices.Clone(f.erases)
		f.worn = slices.Clone(f.worn)
		f.wearShared = false
	}
}

// meta implements device: the erase counts matter only to a flash that
// wears out. It is built without fmt: a sweep compares it for every point.
func (f *NORFlash) meta() string {
	b := appendStuck(make([]byte, 0, 64), f.stuck)
	for _, w := range f.worn {
		if w {
			b = append(b, '1')
		} else {
			b = append(b, '0')
		}
	}
	if f.cfg.Endurance > 0 {
		for _, e := range f.erases {
			b = binary.AppendUvarint(b, uint64(e))
		}
	}
	return string(b)
}

// appendStuck appends a binary form of stuck bits.
func appendStuck(b []byte, stuck []stuckBit) []byte {
	b = binary.AppendUvarint(b, uint64(len(stuck)))
	for _, s := range stuck {
		b = binary.AppendUvarint(b, s.addr)
		b = append(b, s.mask, s.value)
	}
	return b
}

// andBytes ANDs src into dst (of the same length), a word at a time: the
// copy of a large image programs megabytes through it.
func andBytes(dst, src []byte) {
	i := 0
	for ; i+8 <= len(dst); i += 8 {
		binary.LittleEndian.PutUint64(dst[i:], binary.LittleEndian.Uint64(dst[i:])&binary.LittleEndian.Uint64(src[i:]))
	}
	for ; i < len(dst); i++ {
		dst[i] &= src[i]
	}
}

// bitsWithChance returns 64 bits, each 1 with probability q/256 and
// independent of the others, from 8 draws (not one per bit): each draw
// either sets or keeps the bits by one binary digit of q, from the lowest.
func bitsWithChance(r *rand.Rand, q int) uint64 {
	var m uint64
	for i := range 8 {
		if q>>i&1 == 1 {
			m |= r.Uint64()
		} else {
			m &= r.Uint64()
		}
	}
	return m
}
