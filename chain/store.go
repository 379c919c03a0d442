package chain

import (
	"fmt"

	"github.com/bootsim/bootsim/storage"
)

// Store keeps the boot record in two sectors. A write goes to the sector
// that does not hold the newest copy (erase, then program, sequence number
// one higher), so a power cut at any point of it leaves the newest copy
// as it was: a write either happened whole or did not happen.
type Store struct {
	dev    storage.Device
	lay    *Layout
	newest int // the copy holding the newest valid record, -1 if none
	seq    uint32
}

// NewStore returns a store over the layout's record sectors on dev.
func NewStore(dev storage.Device, lay *Layout) *Store {
	return &Store{dev: dev, lay: lay, newest: -1}
}

// Load reads both copies and returns the newest valid record, or an error
// wrapping ErrNoRecord if neither is valid.
func (s *Store) Load() (*Record, error) {
	var best *Record
	s.newest = -1
	var errs [2]error
	for i, p := range s.lay.Record {
		b := make([]byte, RecordSize)
		if err := s.dev.Read(p.Start, b); err != nil {
			return nil, err
		}
		r, err := DecodeRecord(b)
		if err != nil {
			errs[i] = err
			continue
		}
		if best == nil || r.Seq > best.Seq {
			best, s.newest = r, i
		}
	}
	if best == nil {
		return nil, fmt.Errorf("%w: copy a: %v; copy b: %v", ErrNoRecord, errs[0], errs[1])
	}
	s.seq = best.Seq
	return best, nil
}

// Save writes r as the newest record (its Seq is set). A store saves after
// it has loaded: one that has not writes copy A with sequence 1, as on a
// device that has no record yet.
func (s *Store) Save(r *Record) error {
	to := 0
	if s.newest == 0 {
		to = 1
	}
	s.seq++
	r.Seq = s.seq
	p := s.lay.Record[to]
	if err := s.dev.Erase(p.Start, p.Size); err != nil {
		return err
	}
	if err := s.dev.Program(p.Start, storage.PadToUnit(r.Encode(), s.dev.ProgramSize())); err != nil {
		return err
	}
	s.newest = to
	return nil
}

// Peek reads the newest valid record as a debugger would: without costing
// the device time, whatever its power. It returns nil if neither copy is
// valid.
func Peek(dev storage.Device, lay *Layout) *Record {
	var best *Record
	for _, p := range lay.Record {
		b := make([]byte, RecordSize)
		dev.Peek(p.Start, b)
		if r, err := DecodeRecord(b); err == nil && (best == nil || r.Seq > best.Seq) {
			best = r
		}
	}
	return best
}
