package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math"
)

// MaxSlots is the most slots a stage can have.
const MaxSlots = 4

// Status is what the record says of a slot.
type Status uint8

// Slot statuses.
const (
	// Empty: nothing stored, or what is stored is not to be run.
	Empty Status = iota
	// Ready: a version that may run (confirmed or not yet tried).
	Ready
	// Failed: a version that used up its attempts or failed a check. For
	// an application it means failed under the running bootloader: the
	// boot selector makes failed applications ready again when it changes
	// bootloader (each bootloader is its own subtree).
	Failed
)

var statusNames = [...]string{"empty", "ready", "failed"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

// SlotState is the record's entry for one slot.
type SlotState struct {
	Version uint64
	Status  Status
	// Confirmed: the version has completed a boot (an application
	// confirmed itself; a bootloader booted an application that did).
	Confirmed bool
}

// StageState is the record's part for one stage.
type StageState struct {
	// Current is the slot that runs (or ran last).
	Current uint8
	// Attempts counts the boots of Current, of every reset kind, since it
	// last completed one.
	Attempts uint8
	Slots    [MaxSlots]SlotState
}

// Newest returns the ready slot with the highest version below the given
// one (math.MaxUint64: any), or false.
func (s *StageState) Newest(below uint64) (int, bool) {
	best, found := 0, false
	for i, sl := range s.Slots {
		if sl.Status == Ready && sl.Version < below && (!found || sl.Version > s.Slots[best].Version) {
			best, found = i, true
		}
	}
	return best, found
}

// Select returns the slot a stage should run: the newest ready one.
func (s *StageState) Select() (int, bool) { return s.Newest(math.MaxUint64) }

// Record is the boot record: for the bootloader stage and the application
// stage, which stored version runs, how often it has tried, and the state
// of every slot.
//
//	0   magic u32 "BREC"
//	4   seq u32: the copy with the higher seq is the newer
//	8   bootloader stage (68 bytes), then application stage (68 bytes):
//	      current u8, attempts u8, 2 bytes zero,
//	      4 slots of: version u64, status u8, confirmed u8, 6 bytes zero
//	144 crc32 (IEEE) of bytes 0..143, u32
type Record struct {
	Seq  uint32
	Boot StageState
	App  StageState
}

// RecordSize is the encoded record's length.
const RecordSize = 148

const recordMagic = 0x43455242 // "BREC"

// Errors of DecodeRecord.
var (
	ErrNoRecord  = errors.New("chain: no boot record (blank or another format)")
	ErrRecordCRC = errors.New("chain: boot record CRC mismatch")
	ErrBadRecord = errors.New("chain: malformed boot record")
)

// Encode returns the record's bytes.
func (r *Record) Encode() []byte {
	b := make([]byte, RecordSize)
	binary.LittleEndian.PutUint32(b[0:], recordMagic)
	binary.LittleEndian.PutUint32(b[4:], r.Seq)
	for k, st := range []*StageState{&r.Boot, &r.App} {
		o := 8 + k*68
		b[o], b[o+1] = st.Current, st.Attempts
		for i, sl := range st.Slots {
			p := o + 4 + i*16
			binary.LittleEndian.PutUint64(b[p:], sl.Version)
			b[p+8] = byte(sl.Status)
			if sl.Confirmed {
				b[p+9] = 1
			}
		}
	}
	binary.LittleEndian.PutUint32(b[144:], crc32.ChecksumIEEE(b[:144]))
	return b
}

// DecodeRecord reads a record from the start of b.
func DecodeRecord(b []byte) (*Record, error) {
	if len(b) < RecordSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrBadRecord, len(b), RecordSize)
	}
	if binary.LittleEndian.Uint32(b[0:]) != recordMagic {
		return nil, ErrNoRecord
	}
	if got, want := crc32.ChecksumIEEE(b[:144]), binary.LittleEndian.Uint32(b[144:]); got != want {
		return nil, fmt.Errorf("%w: stored 0x%08x, computed 0x%08x", ErrRecordCRC, want, got)
	}
	r := &Record{Seq: binary.LittleEndian.Uint32(b[4:])}
	for k, st := range []*StageState{&r.Boot, &r.App} {
		o := 8 + k*68
		st.Current, st.Attempts = b[o], b[o+1]
		if st.Current >= MaxSlots {
			return nil, fmt.Errorf("%w: current slot %d", ErrBadRecord, st.Current)
		}
		for i := range st.Slots {
			p := o + 4 + i*16
			sl := &st.Slots[i]
			sl.Version = binary.LittleEndian.Uint64(b[p:])
			if b[p+8] > byte(Failed) || b[p+9] > 1 {
				return nil, fmt.Errorf("%w: slot %d status %d confirmed %d", ErrBadRecord, i, b[p+8], b[p+9])
			}
			sl.Status, sl.Confirmed = Status(b[p+8]), b[p+9] == 1
		}
	}
	return r, nil
}
