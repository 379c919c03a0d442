// Package sotp is the SOTP (software one-time-programming) key-value store of
// the Mbed client, byte-compatible with mbed-cloud-client 1.3.0's
// factory-configurator-client/mbed-client-esfs/source/sotp/sotp.c, quirks
// included (reference/mbed-stack.md §3).
//
// The store lives in two flash areas of whole sectors. The active area starts
// with a master record carrying a 16-bit version; records are appended after
// it, each a CRC-protected header and its data padded to 8 bytes, and the
// latest record of a type wins. When the area fills up, or init meets a
// record that does not check, garbage collection copies the latest record of
// every type to the other area, writes that area's master record last, and
// erases the old area.
//
// On the wire: a record is {u16 type_and_flags, u16 length, u32 crc}, little
// endian, then the data, padded with 0xFF to a multiple of the program unit
// (at least 8). The CRC is CRC-32 (reflected 0xEDB88320, initial 0xFFFFFFFF,
// no final XOR) over the first four header bytes and the data.
package sotp

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/bootsim/bootsim/storage"
)

// Type is an SOTP record type, 0..15.
type Type uint16

// The record types the Mbed client defines (sotp.h).
const (
	TypeFactoryDone            Type = 0
	TypeRandomSeed             Type = 1
	TypeSavedTime              Type = 2
	TypeLastTimeBack           Type = 3
	TypeROT                    Type = 4
	TypeTrustedTimeSrvID       Type = 5
	TypeExecutionMode          Type = 6
	TypeOEMTransferModeEnabled Type = 7
	TypeMinFWVersion           Type = 8
	// MaxTypes is the number of types; types are 0..MaxTypes-1.
	MaxTypes = 16
)

var typeNames = [MaxTypes]string{
	"factory-done", "random-seed", "saved-time", "last-time-back", "rot",
	"trusted-time-srv-id", "execution-mode", "oem-transfer-mode-enabled", "min-fw-version",
}

// Name returns the type's name ("rot"), or "type-N" for an unnamed one.
func (t Type) Name() string {
	if int(t) < len(typeNames) && typeNames[t] != "" {
		return typeNames[t]
	}
	return fmt.Sprintf("type-%d", t)
}

// ParseType parses a type by number ("4") or name ("rot", "ROT").
func ParseType(s string) (Type, error) {
	var n int
	if _, err := fmt.Sscanf(s, "%d", &n); err == nil && fmt.Sprint(n) == s {
		if n < 0 || n >= MaxTypes {
			return 0, fmt.Errorf("SOTP type %d out of range 0..%d", n, MaxTypes-1)
		}
		return Type(n), nil
	}
	for i, name := range typeNames {
		if name != "" && (name == s || equalFold(name, s)) {
			return Type(i), nil
		}
	}
	return 0, fmt.Errorf("unknown SOTP type %q (want 0..15 or a name: rot, random-seed, saved-time, …)", s)
}

func equalFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if y == '_' {
			y = '-'
		}
		if x != y {
			return false
		}
	}
	return true
}

const (
	masterType      = 0x0FFE
	noType          = 0x0FFF
	deleteFlag      = 0x8000
	flagMask        = 0xF000
	headerSize      = 8
	masterDataSize  = 8
	formatRevision  = 0
	blank           = 0xFF
	copyBufferSize  = 128 // copy_record's buffer: header and data go in chunks of this size
	emptyScanBuffer = 128 // calc_empty_space reads the area backwards in chunks of this size
)

// Errors returned by the store.
var (
	// ErrNotFound: the type has no live record.
	ErrNotFound = errors.New("sotp: not found")
	// ErrDataCorrupt: the record a type points at no longer checks.
	ErrDataCorrupt = errors.New("sotp: data corrupt")
	// ErrBadType: a type outside 0..15.
	ErrBadType = errors.New("sotp: bad type")
	// ErrAreaTooSmall: garbage collection cannot fit the live records.
	ErrAreaTooSmall = errors.New("sotp: flash area too small")
	// ErrTooLarge: a value longer than 65535 bytes.
	ErrTooLarge = errors.New("sotp: value too large")
)

// Area is one of the two flash areas, as sotp-section-N-address/size.
type Area struct {
	Addr, Size uint64
}

// crc computes the record CRC: CRC-32 without the final XOR.
func crc(hdr4, data []byte) uint32 {
	c := crc32.Update(0, crc32.IEEETable, hdr4)
	c = crc32.Update(c, crc32.IEEETable, data)
	return ^c
}

func padTo(n, unit uint64) uint64 { return (n + unit - 1) / unit * unit }

// Record is a record as read from flash.
type Record struct {
	Area   int
	Offset uint64
	Type   uint16 // 0..15, or 0x0FFE for the master record
	Flags  uint16
	Data   []byte
}

// reader reads records from an area of a device. It is shared by the store
// and by Probe.
type reader struct {
	dev   storage.Device
	areas [2]Area
	unit  uint64 // min_prog_size: max(program size, 8)
}

func newReader(dev storage.Device, a0, a1 Area) reader {
	return reader{dev: dev, areas: [2]Area{a0, a1}, unit: max(dev.ProgramSize(), headerSize)}
}

func (r *reader) read(area int, off uint64, p []byte) error {
	return r.dev.Read(r.areas[area].Addr+off, p)
}

// blankScan is a blank scan buffer, to compare a whole read with at once.
var blankScan = func() (b [emptyScanBuffer]byte) {
	for i := range b {
		b[i] = blank
	}
	return b
}()

// emptyOffset returns where the blank space at the end of an area starts
// (calc_empty_space): 0 means the area is blank.
func (r *reader) emptyOffset(area int) (uint64, error) {
	size := r.areas[area].Size
	var buf [emptyScanBuffer]byte
	for off := size; off >= emptyScanBuffer; off -= emptyScanBuffer {
		if err := r.read(area, off-emptyScanBuffer, buf[:]); err != nil {
			return 0, err
		}
		if buf == blankScan {
			continue
		}
		for j := len(buf); j > 0; j-- {
			if buf[j-1] != blank {
				return off - emptyScanBuffer + uint64(j), nil
			}
		}
	}
	return 0, nil
}

// readRecord reads and checks the record at off. It returns valid=false for
// a record whose type is impossible, that runs past the area, or whose CRC
// fails; next is the offset after the record (padded).
func (r *reader) readRecord(area int, off uint64) (rec Record, valid bool, next uint64, err error) {
	size := r.areas[area].Size
	if off+headerSize > size {
		return rec, false, 0, nil
	}
	var hdr [headerSize]byte
	if err := r.read(area, off, hdr[:]); err != nil {
		return rec, false, 0, err
	}
	tf := binary.LittleEndian.Uint16(hdr[0:])
	n := uint64(binary.LittleEndian.Uint16(hdr[2:]))
	stored := binary.LittleEndian.Uint32(hdr[4:])
	rec = Record{Area: area, Offset: off, Type: tf &^ flagMask, Flags: tf & flagMask}
	if rec.Type >= MaxTypes && rec.Type != masterType {
		return rec, false, 0, nil
	}
	// The real code reads past the area for a length that overruns it (and
	// then fails the CRC); refusing it here is the same outcome.
	if off+headerSize+n > size {
		return rec, false, 0, nil
	}
	rec.Data = make([]byte, n)
	if err := r.read(area, off+headerSize, rec.Data); err != nil {
		return rec, false, 0, err
	}
	if crc(hdr[:4], rec.Data) != stored {
		return rec, false, 0, nil
	}
	return rec, true, padTo(off+headerSize+n, r.unit), nil
}

// master reads an area's master record: its version, whether it is valid,
// and where the records after it start.
func (r *reader) master(area int) (version uint16, valid bool, next uint64, err error) {
	rec, ok, next, err := r.readRecord(area, 0)
	if err != nil || !ok || rec.Type != masterType || len(rec.Data) != masterDataSize {
		// A master record longer than its 8 bytes is what the real code
		// calls "buffer too small", and treats as corrupt.
		return 0, false, 0, err
	}
	return binary.LittleEndian.Uint16(rec.Data), true, next, nil
}
