package storage

import "errors"

// Errors returned by device operations. Callers test them with errors.Is; the
// returned errors wrap them with the device, address and length involved.
var (
	// ErrOutOfBounds is returned for an op that reaches past the end of a device.
	ErrOutOfBounds = errors.New("storage: address out of bounds")
	// ErrMisaligned is returned for an op whose address or length is not a
	// multiple of the unit the device requires (read, program or erase unit).
	ErrMisaligned = errors.New("storage: misaligned address or length")
	// ErrNotErased is returned in strict mode when a program targets a unit
	// that is not fully erased.
	ErrNotErased = errors.New("storage: program of a unit that is not erased")
	// ErrIO is a media error: the op failed and changed nothing.
	ErrIO = errors.New("storage: I/O error")
	// ErrWornOut is returned for an erase or program of a sector that has
	// reached its endurance.
	ErrWornOut = errors.New("storage: sector worn out")
	// ErrNoMedia is returned for any op on a removed SD card.
	ErrNoMedia = errors.New("storage: no media (card removed)")
	// ErrPowerLost is returned by an op during which power failed, when the
	// power-loss handler returns instead of unwinding, and by every op issued
	// while the system is unpowered.
	ErrPowerLost = errors.New("storage: power lost")
)
