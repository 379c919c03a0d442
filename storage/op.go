package storage

import (
	"fmt"
	"time"
)

// OpKind is the kind of a mutating device operation.
type OpKind uint8

// The mutating op kinds. Reads are not journaled: they change nothing and a
// power cut between two reads is the same as one before the next mutation.
const (
	OpProgram OpKind = iota + 1 // program (NOR) or write (SD)
	OpErase                     // erase (NOR) or trim (SD, a no-op on the medium)
	// OpRead is a read, as a read fault rule (kind=read) sees it: never
	// journaled; its Index counts the reads of the system from 0.
	OpRead
)

var opKindNames = [...]string{OpProgram: "program", OpErase: "erase", OpRead: "read"}

func (k OpKind) String() string {
	if int(k) < len(opKindNames) && opKindNames[k] != "" {
		return opKindNames[k]
	}
	return fmt.Sprintf("OpKind(%d)", uint8(k))
}

// ParseOpKind parses "program" (or its alias "write") and "erase".
func ParseOpKind(s string) (OpKind, error) {
	switch s {
	case "program", "write":
		return OpProgram, nil
	case "erase":
		return OpErase, nil
	case "read":
		return OpRead, nil
	}
	return 0, fmt.Errorf("unknown op kind %q (want program, erase or read)", s)
}

// Op is one mutating operation as the journal records it.
type Op struct {
	// Index is the op's position in the system's journal, from 0.
	Index int
	// Device names the device the op was issued to.
	Device string
	Kind   OpKind
	Addr   uint64
	Len    uint64
	// Data is a copy of the bytes programmed (nil for erases). The journal
	// keeps it so that a sweep can rebuild the state at any op by applying the
	// journal to a snapshot, without re-running the firmware that issued it.
	Data []byte
	// Time is the virtual time at which the op started, Dur how long it took
	// (up to the cut, for a torn op).
	Time time.Duration
	Dur  time.Duration
	// Stage and Phase say which firmware stage issued the op and what it was
	// doing (for example "bootloader", "copy-body").
	Stage, Phase string
	// Region is the name of the first region the op overlaps, or "".
	Region string
	// Fault is the fault injected at this op; its Mode is FaultNone if none was.
	Fault Fault
	// Pages, when above 1, says the record stands for that many ops: page
	// programs of Len/Pages bytes each, issued one after another by one
	// driver call (ProgramPages), with the indices Index to Last. They are
	// kept as one record so that a copy of a megabyte in 8-byte pages does
	// not cost a record per page; a fault rule still sees each page.
	Pages int
}

// Count returns how many ops the record stands for.
func (o Op) Count() int { return max(o.Pages, 1) }

// Last returns the index of the record's last op.
func (o Op) Last() int { return o.Index + o.Count() - 1 }

// PageSize returns the size of each op of a record of page programs.
func (o Op) PageSize() uint64 { return o.Len / uint64(o.Count()) }

// Page returns op k of a record of page programs as an op of its own (the
// op a fault rule sees): its index, address, bytes and start time.
func (o Op) Page(k int, pageTime time.Duration) Op {
	ps := o.PageSize()
	p := o
	p.Pages = 0
	p.Index = o.Index + k
	p.Addr = o.Addr + uint64(k)*ps
	p.Len = ps
	if o.Data != nil {
		p.Data = o.Data[uint64(k)*ps : uint64(k+1)*ps]
	}
	p.Time = o.Time + time.Duration(k)*pageTime
	p.Dur = 0
	return p
}

// TornPage returns which page of a record of page programs a torn fault
// with f's seed tears, when a sweep tears the record as a whole: a pure
// function of the seed and the record's first index, so that the point can
// be named, and replayed, by that page's own index.
func (o Op) TornPage(f Fault) int {
	if o.Count() == 1 {
		return 0
	}
	return int(f.rng(o.Index).Uint64N(uint64(o.Count())))
}

func (o Op) String() string {
	if o.Count() > 1 {
		s := fmt.Sprintf("#%d-#%d %s %s 0x%x+%d (%d pages)", o.Index, o.Last(), o.Device, o.Kind, o.Addr, o.Len, o.Count())
		if o.Region != "" {
			s += " [" + o.Region + "]"
		}
		return s
	}
	s := fmt.Sprintf("#%d %s %s 0x%x+%d", o.Index, o.Device, o.Kind, o.Addr, o.Len)
	if o.Region != "" {
		s += " [" + o.Region + "]"
	}
	if o.Fault.Mode != FaultNone {
		s += " " + o.Fault.String()
	}
	return s
}
