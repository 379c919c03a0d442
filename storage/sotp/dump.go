package sotp

import (
	"errors"
	"fmt"

	"github.com/bootsim/bootsim/storage"
)

// ErrDump is returned for a dump file whose size does not fit two areas.
var ErrDump = errors.New("sotp: bad dump")

// Dump is a dump file loaded on an in-memory flash.
type Dump struct {
	System *storage.System
	Device storage.Device
	Areas  [2]Area
}

// Store returns a store over the dump's areas.
func (d *Dump) Store() *Store { return New(d.Device, d.Areas[0], d.Areas[1]) }

// LoadDump puts a dump of the two areas (area 0 then area 1) on an
// in-memory flash with an 8-byte program unit, one sector per area, and
// returns it. areaSize 0 means half the dump. The
// dump itself is never modified: Init's erases and garbage collection happen
// on the copy.
func LoadDump(data []byte, areaSize uint64) (*Dump, error) {
	n := uint64(len(data))
	if areaSize == 0 {
		areaSize = n / 2
	}
	switch {
	case n == 0:
		return nil, fmt.Errorf("%w: the file is empty", ErrDump)
	case areaSize < 1024 || areaSize%emptyScanBuffer != 0:
		return nil, fmt.Errorf("%w: area size %d must be a multiple of %d bytes and at least 1 KiB", ErrDump, areaSize, emptyScanBuffer)
	case areaSize > n || n != 2*areaSize:
		// areaSize > n first: 2*areaSize may overflow into a match.
		return nil, fmt.Errorf("%w: %d bytes is not two areas of %d bytes", ErrDump, n, areaSize)
	}
	sys := storage.NewSystem(nil)
	dev := sys.NewNORFlash(storage.NORConfig{
		Name:        "dump",
		Sectors:     []storage.SectorRun{{Size: areaSize, Count: 2}},
		ProgramUnit: 8,
	})
	dev.Load(0, data)
	return &Dump{System: sys, Device: dev, Areas: [2]Area{{Addr: 0, Size: areaSize}, {Addr: areaSize, Size: areaSize}}}, nil
}
