// Package hardened holds what the hardened profile's bootloader and
// application share on the device: the boot state and the anti-rollback
// counter, both records of the SOTP key store.
//
// The Mbed stack keeps its boot counter in uninitialised RAM, counts only
// some reset kinds, and has no monotonic counter (mbed-stack.md §7,
// weaknesses 3 and 4). The hardened profile keeps both in SOTP, whose
// records carry a CRC and whose init drops a record cut short by power
// loss: every write below either happens whole or leaves the previous
// value in force.
package hardened

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
)

// SOTP record types. The counter is the Mbed client's own
// "minimal firmware version" type, which the Mbed stack defines and never
// enforces (mbed-cloud-client's factory configurator reserves it); the
// state takes a type the Mbed stack leaves free (9 is the update
// client's download resume record).
const (
	TypeCounter sotp.Type = sotp.TypeMinFWVersion
	TypeState   sotp.Type = 10
)

// Status is where the device is in an update.
type Status uint8

// The statuses of State.
const (
	// Idle: no record yet (a device fresh from the factory): the active
	// image is the factory's, trusted as confirmed.
	Idle Status = iota
	// Installing: the previous version is saved (Previous, 0 if there was
	// none), and Version is being copied into the active region.
	Installing
	// Trial: Version is installed and boots on trial; Attempts boots have
	// started it so far.
	Trial
	// Confirmed: the application confirmed Version. The counter may not
	// have caught up yet if power failed between the two writes.
	Confirmed
	// RolledBack: Version failed its trial and Previous was restored.
	RolledBack
)

var statusNames = [...]string{"idle", "installing", "trial", "confirmed", "rolled-back"}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return fmt.Sprintf("status(%d)", s)
}

// State is the boot state record.
type State struct {
	Status   Status
	Version  uint64 // the version the status is about
	Previous uint64 // the version in the saved copy, 0 if none
	Attempts uint8  // boots started on trial
}

// stateSize is the encoded size of a State.
const stateSize = 18

// ErrBadState: a state record that does not decode (a record of another
// size or status; the SOTP CRC already caught torn writes).
var ErrBadState = errors.New("hardened: bad state record")

// Encode returns the record's bytes.
func (s State) Encode() []byte {
	b := make([]byte, stateSize)
	b[0] = byte(s.Status)
	binary.BigEndian.PutUint64(b[1:], s.Version)
	binary.BigEndian.PutUint64(b[9:], s.Previous)
	b[17] = s.Attempts
	return b
}

// DecodeState decodes a state record.
func DecodeState(b []byte) (State, error) {
	if len(b) != stateSize || b[0] > byte(RolledBack) {
		return State{}, fmt.Errorf("%w: %d bytes, status %d", ErrBadState, len(b), firstByte(b))
	}
	return State{Status: Status(b[0]), Version: binary.BigEndian.Uint64(b[1:]),
		Previous: binary.BigEndian.Uint64(b[9:]), Attempts: b[17]}, nil
}

func firstByte(b []byte) int {
	if len(b) == 0 {
		return -1
	}
	return int(b[0])
}

// Store reads and writes the records over an SOTP store.
type Store struct {
	st *sotp.Store
}

// Open initialises the SOTP store over the two areas of dev (sotp_init: it
// may erase or compact an area) and returns the records' store.
func Open(dev storage.Device, a1, a2 sotp.Area) (*Store, error) {
	st := sotp.New(dev, a1, a2)
	if err := st.Init(); err != nil {
		return nil, err
	}
	return &Store{st: st}, nil
}

// State returns the boot state; a missing record is Idle. A record that
// does not decode is reported, and reads as Idle.
func (s *Store) State() (State, error) {
	b, err := s.st.Get(TypeState)
	if errors.Is(err, sotp.ErrNotFound) {
		return State{}, nil
	}
	if err != nil {
		return State{}, err
	}
	return DecodeState(b)
}

// SetState writes the boot state.
func (s *Store) SetState(st State) error { return s.st.Set(TypeState, st.Encode()) }

// Counter returns the anti-rollback counter: the lowest version the device
// may install or boot. A missing record is 0.
func (s *Store) Counter() (uint64, error) {
	b, err := s.st.Get(TypeCounter)
	if errors.Is(err, sotp.ErrNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	if len(b) != 8 {
		return 0, fmt.Errorf("hardened: counter record of %d bytes", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}

// Raise sets the counter to v if v is higher: the counter only moves up.
func (s *Store) Raise(v uint64) error {
	cur, err := s.Counter()
	if err != nil {
		return err
	}
	if v <= cur {
		return nil
	}
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return s.st.Set(TypeCounter, b[:])
}

// Confirm is what a running application does once it is sure of itself:
// if version is on trial, the state becomes Confirmed, and then the counter
// is raised to it. A cut between the two writes leaves Confirmed with the
// counter behind; the bootloader raises it at its next start. Confirming a
// version that is not on trial changes nothing (it was confirmed before).
func (s *Store) Confirm(version uint64) (bool, error) {
	done, err := s.ConfirmState(version)
	if !done || err != nil {
		return done, err
	}
	return true, s.Raise(version)
}

// ConfirmState is the first half of Confirm: the state write.
func (s *Store) ConfirmState(version uint64) (bool, error) {
	st, err := s.State()
	if err != nil {
		return false, err
	}
	if st.Status != Trial || st.Version != version {
		return false, nil
	}
	st.Status, st.Attempts = Confirmed, 0
	return true, s.SetState(st)
}

// Areas are the two SOTP areas the records live in.
type Areas struct{ A1, A2 sotp.Area }
