package sotp

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/bootsim/bootsim/storage"
)

// AreaState is what init found in an area.
type AreaState uint8

// The area states of sotp_init.
const (
	AreaEmpty   AreaState = iota + 1 // blank
	AreaInvalid                      // not blank, no valid master record: init erased it
	AreaValid                        // a valid master record
)

func (s AreaState) String() string {
	switch s {
	case AreaEmpty:
		return "empty"
	case AreaInvalid:
		return "invalid (erased)"
	case AreaValid:
		return "valid"
	}
	return "unknown"
}

// InitReport says what Init found and did.
type InitReport struct {
	States   [2]AreaState
	Versions [2]uint16
	// Erased lists the areas init erased (invalid, or the older of two valid ones).
	Erased []int
	// GarbageCollected is set when init met a record that does not check and
	// compacted the store into the other area; BadRecord is its offset.
	GarbageCollected bool
	BadRecord        uint64
	BadRecordArea    int
}

// ref locates a live record; the zero value means "none" (a record is never
// at offset 0, where the master record is).
type ref struct {
	area int
	off  uint64
}

// Store is an SOTP store over two areas of a flash device. Its methods issue
// the same sequence of reads, programs and erases as the real code, so a
// power cut at any op leaves the same bytes on flash.
type Store struct {
	reader
	initDone bool
	active   int
	version  uint16
	free     uint64
	offsets  [MaxTypes]ref
	report   InitReport
}

// New returns a store over the two areas of dev. Each area must be whole
// erase sectors; Init must run before use.
func New(dev storage.Device, a0, a1 Area) *Store {
	return &Store{reader: newReader(dev, a0, a1)}
}

// Report returns what the last Init found and did.
func (s *Store) Report() InitReport { return s.report }

// ActiveArea returns the active area (0 or 1) and its master version.
func (s *Store) ActiveArea() (int, uint16) { return s.active, s.version }

// FreeOffset returns where the next record goes in the active area.
func (s *Store) FreeOffset() uint64 { return s.free }

func (s *Store) erase(area int) error {
	return s.dev.Erase(s.areas[area].Addr, s.areas[area].Size)
}

// program writes data at an offset of an area, padded with 0xFF to the
// device's program unit (as pal_internalFlashWrite pads a short write).
func (s *Store) program(area int, off uint64, data []byte) error {
	u := s.dev.ProgramSize()
	if n := uint64(len(data)); n%u != 0 {
		padded := make([]byte, padTo(n, u))
		copy(padded, data)
		for i := n; i < uint64(len(padded)); i++ {
			padded[i] = blank
		}
		data = padded
	}
	return s.dev.Program(s.areas[area].Addr+off, data)
}

// writeRecord writes a record as write_record does: the header as one
// program, then the data as another (when the program unit is the 8-byte
// header; a larger unit carries the start of the data with the header).
func (s *Store) writeRecord(area int, off uint64, typ, flags uint16, data []byte) (uint64, error) {
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint16(hdr[0:], typ|flags)
	binary.LittleEndian.PutUint16(hdr[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(hdr[4:], crc(hdr[:4], data))
	first := hdr[:]
	rest := data
	if s.unit > headerSize {
		k := min(uint64(len(data)), s.unit-headerSize)
		first = append(append([]byte{}, hdr[:]...), data[:k]...)
		rest = data[k:]
	}
	if err := s.program(area, off, first); err != nil {
		return 0, err
	}
	at := off + uint64(len(first))
	if len(rest) > 0 {
		if err := s.program(area, at, rest); err != nil {
			return 0, err
		}
		at += uint64(len(rest))
	}
	return padTo(at, s.unit), nil
}

func (s *Store) writeMaster(area int, version uint16) (uint64, error) {
	var d [masterDataSize]byte
	binary.LittleEndian.PutUint16(d[0:], version)
	binary.LittleEndian.PutUint16(d[2:], formatRevision)
	return s.writeRecord(area, 0, masterType, 0, d[:])
}

// copyRecord copies the record at from (in area 1-to) to offset to of the
// other area, in copy_record's chunks: header plus the first 120 data bytes,
// then 128 bytes at a time.
func (s *Store) copyRecord(from ref, to uint64) (uint64, error) {
	var hdr [headerSize]byte
	if err := s.read(from.area, from.off, hdr[:]); err != nil {
		return 0, err
	}
	if binary.LittleEndian.Uint16(hdr[0:])&deleteFlag != 0 {
		return padTo(to, s.unit), nil
	}
	total := headerSize + uint64(binary.LittleEndian.Uint16(hdr[2:]))
	dst := 1 - from.area
	if to+padTo(total, s.unit) >= s.areas[dst].Size {
		return 0, fmt.Errorf("%w: copying the record at 0x%x", ErrAreaTooSmall, from.off)
	}
	buf := max(s.unit, copyBufferSize)
	src := from.off
	for remaining := total; remaining > 0; {
		n := min(remaining, buf)
		chunk := make([]byte, n)
		if err := s.read(from.area, src, chunk); err != nil {
			return 0, err
		}
		if err := s.program(dst, to, chunk); err != nil {
			return 0, err
		}
		src += n
		to += n
		remaining -= n
	}
	return padTo(to, s.unit), nil
}

// garbageCollect compacts the store into the other area. A set that
// triggered it passes its record, which is written first.
func (s *Store) garbageCollect(typ uint16, data []byte) error {
	dst := 1 - s.active
	next := padTo(headerSize+masterDataSize, s.unit)
	if typ != noType {
		n, err := s.writeRecord(dst, next, typ, 0, data)
		if err != nil {
			return err
		}
		s.offsets[typ] = ref{area: dst, off: next}
		next = n
	}
	for t := range MaxTypes {
		r := s.offsets[t]
		if r.off == 0 || r.area != s.active {
			continue
		}
		n, err := s.copyRecord(r, next)
		if err != nil {
			return err
		}
		s.offsets[t] = ref{area: dst, off: next}
		next = n
	}
	s.version++
	if _, err := s.writeMaster(dst, s.version); err != nil {
		return err
	}
	s.free = next
	s.active = dst
	return s.erase(1 - dst)
}

// Init reads the areas as sotp_init does: it erases an area that holds data
// but no valid master record, picks the active area (the higher version, or
// area 0 when its version is 0, the u16 wrap rule), erases the other one,
// walks the records, and garbage-collects at the first record that does not
// check, dropping it and every record after it.
func (s *Store) Init() error {
	s.report = InitReport{}
	s.offsets = [MaxTypes]ref{}
	s.initDone = true
	var empty [2]uint64
	for area := range 2 {
		e, err := s.emptyOffset(area)
		if err != nil {
			return err
		}
		empty[area] = e
		if e == 0 {
			s.report.States[area] = AreaEmpty
			continue
		}
		v, ok, next, err := s.master(area)
		if err != nil {
			return err
		}
		if !ok {
			s.report.States[area] = AreaInvalid
			s.report.Erased = append(s.report.Erased, area)
			if err := s.erase(area); err != nil {
				return err
			}
			continue
		}
		s.report.States[area] = AreaValid
		s.report.Versions[area] = v
		s.free = next
		s.active, s.version = area, v
	}
	valid := func(a int) bool { return s.report.States[a] == AreaValid }
	switch {
	case !valid(0) && !valid(1):
		s.active, s.version = 0, 1
		next, err := s.writeMaster(0, 1)
		if err != nil {
			return err
		}
		s.free = next
		return nil
	case valid(0) && valid(1):
		v0, v1 := s.report.Versions[0], s.report.Versions[1]
		if v0 > v1 || v0 == 0 {
			s.active = 0
		} else {
			s.active = 1
		}
		s.version = s.report.Versions[s.active]
		s.report.Erased = append(s.report.Erased, 1-s.active)
		if err := s.erase(1 - s.active); err != nil {
			return err
		}
	}
	for s.free < empty[s.active] {
		rec, ok, next, err := s.readRecord(s.active, s.free)
		if err != nil {
			return err
		}
		if !ok {
			s.report.GarbageCollected = true
			s.report.BadRecord, s.report.BadRecordArea = s.free, s.active
			return s.garbageCollect(noType, nil)
		}
		if rec.Type < MaxTypes {
			if rec.Flags&deleteFlag != 0 {
				s.offsets[rec.Type] = ref{}
			} else {
				s.offsets[rec.Type] = ref{area: s.active, off: s.free}
			}
		}
		s.free = next
	}
	return nil
}

func (s *Store) ensureInit() error {
	if s.initDone {
		return nil
	}
	return s.Init()
}

// Get returns the live value of a type.
func (s *Store) Get(t Type) ([]byte, error) {
	if err := s.ensureInit(); err != nil {
		return nil, err
	}
	if t >= MaxTypes {
		return nil, fmt.Errorf("%w: %d", ErrBadType, t)
	}
	r := s.offsets[t]
	if r.off == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, t.Name())
	}
	rec, ok, _, err := s.readRecord(r.area, r.off)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: %s at area %d offset 0x%x", ErrDataCorrupt, t.Name(), r.area, r.off)
	}
	return rec.Data, nil
}

// Set writes a new value for a type, garbage-collecting first when the record
// would reach the end of the active area.
func (s *Store) Set(t Type, data []byte) error {
	return s.set(t, data, 0)
}

// Delete writes a deletion record for a type that has a live value.
func (s *Store) Delete(t Type) error {
	return s.set(t, nil, deleteFlag)
}

func (s *Store) set(t Type, data []byte, flags uint16) error {
	if err := s.ensureInit(); err != nil {
		return err
	}
	if t >= MaxTypes {
		return fmt.Errorf("%w: %d", ErrBadType, t)
	}
	if len(data) > 0xFFFF {
		return fmt.Errorf("%w: %d bytes", ErrTooLarge, len(data))
	}
	if flags&deleteFlag != 0 && s.offsets[t].off == 0 {
		return fmt.Errorf("%w: %s", ErrNotFound, t.Name())
	}
	size := padTo(headerSize+uint64(len(data)), s.unit)
	at := s.free
	if at+size >= s.areas[s.active].Size {
		return s.garbageCollect(uint16(t), data)
	}
	// The space is reserved before the write, as the real code's atomic add
	// does: a record cut short by power loss still occupies it.
	s.free = at + size
	if _, err := s.writeRecord(s.active, at, uint16(t), flags, data); err != nil {
		return err
	}
	if flags&deleteFlag != 0 {
		s.offsets[t] = ref{}
	} else {
		s.offsets[t] = ref{area: s.active, off: at}
	}
	return nil
}

// Live returns the live record of every type that has one, in type order.
func (s *Store) Live() ([]Record, error) {
	if err := s.ensureInit(); err != nil {
		return nil, err
	}
	var out []Record
	for t := range MaxTypes {
		r := s.offsets[t]
		if r.off == 0 {
			continue
		}
		rec, ok, _, err := s.readRecord(r.area, r.off)
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("%w: %s at area %d offset 0x%x", ErrDataCorrupt, Type(t).Name(), r.area, r.off)
		}
		out = append(out, rec)
	}
	return slices.Clip(out), nil
}

// Probe reads one type without initialising or writing anything, as the
// bootloader's sotp_probe does. Its choice of area differs from Init's: it
// takes area 0 if only area 0 has a valid master record, and area 1 whenever
// area 1 has one, whatever the versions (the real code's check for two valid
// areas can never fire). It walks that area to the first record that does
// not check and returns the latest value of the type there.
func Probe(dev storage.Device, a0, a1 Area, t Type) ([]byte, int, error) {
	r := newReader(dev, a0, a1)
	sel, start := -1, uint64(0)
	for area := range 2 {
		_, ok, next, err := r.master(area)
		if err != nil {
			return nil, -1, err
		}
		if ok {
			sel, start = area, next
		}
	}
	if sel < 0 {
		return nil, -1, fmt.Errorf("%w: no area has a valid master record", ErrNotFound)
	}
	end, err := r.emptyOffset(sel)
	if err != nil {
		return nil, sel, err
	}
	var found []byte
	for off := start; off < end; {
		rec, ok, next, err := r.readRecord(sel, off)
		if err != nil {
			return nil, sel, err
		}
		if !ok {
			break
		}
		if rec.Type == uint16(t) {
			found = nil
			if rec.Flags&deleteFlag == 0 {
				found = rec.Data
			}
		}
		off = next
	}
	if found == nil {
		return nil, sel, fmt.Errorf("%w: %s", ErrNotFound, t.Name())
	}
	return found, sel, nil
}
