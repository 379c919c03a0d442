package chain

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// readChunk is the size of the reads a stage hashes an image in.
const readChunk = 16 << 10

// Verify reads a slot's header and hashes the image after it, as a stage
// does before it runs it (the reads and the hashing cost virtual time): it
// returns the header if the header is valid, is for the stage, fits the
// slot, and the image's SHA-256 matches it. With a vendor key the image must
// also end in the vendor's signature trailer (firmware.Sign) for the
// header's version: then the signed digest is what the image is checked
// against, and a slot header anyone can write proves nothing.
func Verify(m *sim.Machine, slot Part, stage sim.Stage, vendor *ecdsa.PublicKey) (*Header, error) {
	dev := m.Internal()
	b := make([]byte, HeaderSize)
	if err := dev.Read(slot.Start, b); err != nil {
		return nil, err
	}
	h, err := DecodeHeader(b)
	switch {
	case err != nil:
		return nil, err
	case h.Stage != stage:
		return nil, fmt.Errorf("%w: a %s image in a %s slot", ErrBadHeader, h.Stage, stage)
	case uint64(h.Size) > slot.Size-HeaderSpace || h.Size == 0:
		return nil, fmt.Errorf("%w: size %d in a slot of %d", ErrBadHeader, h.Size, slot.Size-HeaderSpace)
	}
	if vendor != nil {
		return h, verifySigned(m, dev, slot, h, vendor)
	}
	sum, err := hash(m, dev, slot.Body(), uint64(h.Size))
	if err != nil {
		return nil, err
	}
	if sum != h.Hash {
		return nil, fmt.Errorf("chain: %s version %d: SHA-256 mismatch", stage, h.Version)
	}
	return h, nil
}

// ErrSignature: a slot's image is not signed by the vendor for its version.
var ErrSignature = errors.New("chain: not signed by the vendor")

// verifySigned checks a slot's image against its signature trailer.
func verifySigned(m *sim.Machine, dev storage.Device, slot Part, h *Header, vendor *ecdsa.PublicKey) error {
	size := uint64(h.Size)
	if size < firmware.TrailerSize {
		return fmt.Errorf("%w: %d bytes, no room for a signature", ErrSignature, size)
	}
	tb := make([]byte, firmware.TrailerSize)
	if err := dev.Read(slot.Body()+size-firmware.TrailerSize, tb); err != nil {
		return err
	}
	t, err := firmware.ParseTrailer(tb)
	switch {
	case err != nil:
		return fmt.Errorf("%w: %v", ErrSignature, err)
	case t.Size != size-firmware.TrailerSize || t.Version != h.Version:
		return fmt.Errorf("%w: the trailer is for version %d, %d bytes", ErrSignature, t.Version, t.Size)
	}
	sum, err := hash(m, dev, slot.Body(), t.Size)
	if err != nil {
		return err
	}
	if sum != t.Digest {
		return fmt.Errorf("%w: the image does not match its signed digest", ErrSignature)
	}
	m.Spend(m.Board().VerifyTime())
	if !firmware.VerifyCached(vendor, tb, t) {
		return fmt.Errorf("%w: the signature is another key's", ErrSignature)
	}
	return nil
}

// hash hashes n bytes at addr in reads of readChunk; the digest of pages
// the machine's cache knows is not computed again (the reads and their time
// are kept).
func hash(m *sim.Machine, dev storage.Device, addr, n uint64) ([32]byte, error) {
	cache := m.Cache()
	stamp := dev.Stamp(addr, n)
	known, hit := cache.Get(dev.Name(), addr, n, storage.TagSHA256, stamp)
	h := sha256.New()
	for off := uint64(0); off < n; off += readChunk {
		k := min(n-off, readChunk)
		if err := dev.ReadView(addr+off, k, func(b []byte) {
			if !hit {
				h.Write(b)
			}
		}); err != nil {
			return [32]byte{}, err
		}
		m.SpendHashing(k)
	}
	if hit {
		return known.([32]byte), nil
	}
	var out [32]byte
	h.Sum(out[:0])
	cache.Put(dev.Name(), addr, n, storage.TagSHA256, stamp, out)
	return out, nil
}

// Rebuild makes a record from the slots when neither copy of the record is
// valid: every slot with a valid header for its stage is ready and counts
// as confirmed (nothing says otherwise), the newest current.
func Rebuild(m *sim.Machine, l *Layout) *Record {
	r := &Record{}
	for _, st := range []struct {
		stage sim.Stage
		state *StageState
	}{{sim.StageBootloader, &r.Boot}, {sim.StageApplication, &r.App}} {
		for i, slot := range l.Slots(st.stage) {
			b := make([]byte, HeaderSize)
			if err := m.Internal().Read(slot.Start, b); err != nil {
				continue
			}
			if h, err := DecodeHeader(b); err == nil && h.Stage == st.stage {
				st.state.Slots[i] = SlotState{Version: h.Version, Status: Ready, Confirmed: true}
			}
		}
		if i, ok := st.state.Select(); ok {
			st.state.Current = uint8(i)
		}
	}
	return r
}

// Confirm records that the running application completed its boot: its
// attempts start again from zero, it and the bootloader that booted it are
// confirmed. version is the running application's; a record whose current
// application is another version is left alone (an error).
func Confirm(m *sim.Machine, l *Layout, version uint64) error {
	st := NewStore(m.Internal(), l)
	rec, err := st.Load()
	if err != nil {
		return err
	}
	sl := &rec.App.Slots[rec.App.Current]
	if sl.Version != version || sl.Status != Ready {
		return fmt.Errorf("chain: the record's current application is version %d (%s), not %d", sl.Version, sl.Status, version)
	}
	sl.Confirmed = true
	rec.App.Attempts = 0
	rec.Boot.Slots[rec.Boot.Current].Confirmed = true
	return st.Save(rec)
}

// Milestones the chain's stages report (Machine.Mark).
const (
	// MarkAppRolledBack and MarkBootloaderRolledBack: a version of the
	// stage was given up; the detail says which and why (RolledBack).
	MarkAppRolledBack        = "app-rolled-back"
	MarkBootloaderRolledBack = "bootloader-rolled-back"
	// MarkDeadEnd: nothing is left to run.
	MarkDeadEnd = "dead-end"
	// MarkConfirmed: the application confirmed itself.
	MarkConfirmed = "confirmed"
)

// RolledBack reports that a version of a stage was given up, and why.
func RolledBack(m *sim.Machine, stage sim.Stage, version uint64, why string) {
	name := MarkAppRolledBack
	if stage == sim.StageBootloader {
		name = MarkBootloaderRolledBack
	}
	m.Mark(name, fmt.Sprintf("version %d: %s", version, why))
}

// ErrRecordVersion: a slot holds another version than the record says.
var ErrRecordVersion = errors.New("chain: the header's version is not the record's")
