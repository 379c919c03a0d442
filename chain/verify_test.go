package chain

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"math"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/sim"
	"github.com/stretchr/testify/require"
)

// machine is a K64F with the chain layout, for the helpers stages call.
func machine(t *testing.T) (*sim.Machine, *Layout) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	l, err := NewLayout(b, Options{})
	require.NoError(t, err)
	m, err := sim.New(sim.Config{Board: b, Regions: l.Regions(), Seed: 1})
	require.NoError(t, err)
	return m, l
}

// TestVerify: a slot verifies when its header is valid, for its stage,
// fits the slot and matches the image's SHA-256; each way of failing is
// refused, and hashing costs virtual time.
func TestVerify(t *testing.T) {
	m, l := machine(t)
	img := []byte(strings.Repeat("bootloader image ", 2000))
	slot := l.Bootloaders[0]
	put := func(h *Header, body []byte) {
		m.Internal().Erase(slot.Start, slot.Size)
		m.Internal().Load(slot.Start, h.Encode())
		m.Internal().Load(slot.Body(), body)
	}
	m.Factory(func() {
		put(HeaderFor(sim.StageBootloader, 3, img), img)
		before := m.Now()
		h, err := Verify(m, slot, sim.StageBootloader, nil)
		require.NoError(t, err)
		require.Equal(t, uint64(3), h.Version)
		require.Greater(t, m.Now(), before, "hashing takes time")

		_, err = Verify(m, slot, sim.StageApplication, nil)
		require.ErrorIs(t, err, ErrBadHeader, "a bootloader in an application slot")

		bad := append([]byte(nil), img...)
		bad[100] ^= 1
		put(HeaderFor(sim.StageBootloader, 3, img), bad)
		_, err = Verify(m, slot, sim.StageBootloader, nil)
		require.ErrorContains(t, err, "SHA-256 mismatch")

		h = HeaderFor(sim.StageBootloader, 3, img)
		h.Size = uint32(slot.Size - HeaderSpace + 1)
		put(h, img)
		_, err = Verify(m, slot, sim.StageBootloader, nil)
		require.ErrorIs(t, err, ErrBadHeader, "larger than its slot")
		h.Size = uint32(slot.Size - HeaderSpace)
		put(h, img)
		_, err = Verify(m, slot, sim.StageBootloader, nil)
		require.ErrorContains(t, err, "SHA-256 mismatch", "exactly the slot: checked, then refused by its hash")
		h.Size = 0
		put(h, img)
		_, err = Verify(m, slot, sim.StageBootloader, nil)
		require.ErrorIs(t, err, ErrBadHeader, "empty")

		m.Internal().Erase(slot.Start, slot.Size)
		_, err = Verify(m, slot, sim.StageBootloader, nil)
		require.ErrorIs(t, err, ErrNoHeader)
	})
}

// TestVerifySigned: with a vendor key a slot verifies only when its image
// ends in the vendor's signature for the header's version; a valid slot
// header over someone else's signed image, or the vendor's image under a
// header that claims another version, is refused.
func TestVerifySigned(t *testing.T) {
	m, l := machine(t)
	key := func(label string) *ecdsa.PrivateKey {
		d := sha256.Sum256([]byte("verify_test " + label))
		k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
		require.NoError(t, err)
		return k
	}
	vendor, attacker := key("vendor"), key("attacker")
	img := []byte(strings.Repeat("application image ", 1000))
	good, err := firmware.Sign(img, 4, vendor)
	require.NoError(t, err)
	forged, err := firmware.Sign(img, 4, attacker)
	require.NoError(t, err)
	slot := l.Applications[0]
	put := func(h *Header, body []byte) {
		m.Internal().Erase(slot.Start, slot.Size)
		m.Internal().Load(slot.Start, h.Encode())
		m.Internal().Load(slot.Body(), body)
	}
	m.Factory(func() {
		put(HeaderFor(sim.StageApplication, 4, good), good)
		_, err := Verify(m, slot, sim.StageApplication, &vendor.PublicKey)
		require.NoError(t, err)
		put(HeaderFor(sim.StageApplication, 4, forged), forged)
		_, err = Verify(m, slot, sim.StageApplication, &vendor.PublicKey)
		require.ErrorIs(t, err, ErrSignature, "another key")
		_, err = Verify(m, slot, sim.StageApplication, nil)
		require.NoError(t, err, "without a key only the hash is checked")
		put(HeaderFor(sim.StageApplication, 5, good), good)
		_, err = Verify(m, slot, sim.StageApplication, &vendor.PublicKey)
		require.ErrorIs(t, err, ErrSignature, "a header that claims another version")
		put(HeaderFor(sim.StageApplication, 4, img), img)
		_, err = Verify(m, slot, sim.StageApplication, &vendor.PublicKey)
		require.ErrorIs(t, err, ErrSignature, "not signed")
	})
}

// TestConfirm: a confirmation clears the application's attempts and
// confirms it and the bootloader; it refuses a version the record does not
// say is running.
func TestConfirm(t *testing.T) {
	m, l := machine(t)
	m.Factory(func() {
		rec := &Record{}
		rec.Boot.Slots[1] = SlotState{Version: 2, Status: Ready}
		rec.Boot.Current = 1
		rec.App.Slots[2] = SlotState{Version: 7, Status: Ready}
		rec.App.Current, rec.App.Attempts = 2, 2
		require.NoError(t, NewStore(m.Internal(), l).Save(rec))

		require.ErrorContains(t, Confirm(m, l, 6), "current application is version 7")
		require.NoError(t, Confirm(m, l, 7))
		got := Peek(m.Internal(), l)
		require.Zero(t, got.App.Attempts)
		require.True(t, got.App.Slots[2].Confirmed)
		require.True(t, got.Boot.Slots[1].Confirmed)
		require.Equal(t, uint32(2), got.Seq)

		st := NewStore(m.Internal(), l)
		got, err := st.Load()
		require.NoError(t, err)
		got.App.Slots[2].Status = Failed
		require.NoError(t, st.Save(got))
		require.Error(t, Confirm(m, l, 7), "a failed version is not confirmed")
	})
}

// TestRebuild: without a record, every slot with a valid header for its
// stage is ready and confirmed, the newest current.
func TestRebuild(t *testing.T) {
	m, l := machine(t)
	m.Factory(func() {
		for i, v := range []uint64{4, 9} {
			img := []byte(strings.Repeat("x", 100+i))
			m.Internal().Load(l.Applications[i].Start, HeaderFor(sim.StageApplication, v, img).Encode())
		}
		m.Internal().Load(l.Bootloaders[1].Start, HeaderFor(sim.StageBootloader, 5, []byte("b")).Encode())
		m.Internal().Load(l.Bootloaders[0].Start, HeaderFor(sim.StageApplication, 6, []byte("a")).Encode()) // wrong stage
		r := Rebuild(m, l)
		require.Equal(t, SlotState{Version: 5, Status: Ready, Confirmed: true}, r.Boot.Slots[1])
		require.Equal(t, Empty, r.Boot.Slots[0].Status, "a header for the other stage")
		require.Equal(t, uint8(1), r.Boot.Current)
		require.Equal(t, uint8(1), r.App.Current, "version 9, the newest")
		require.Equal(t, Ready, r.App.Slots[0].Status)
		require.Nil(t, Peek(m.Internal(), l), "no record was written")
	})
}

// TestStoreFirstWriteGoesToA: the first record goes to copy A, the next to
// B, then A again; a store made after reads the newest.
func TestStoreFirstWriteGoesToA(t *testing.T) {
	m, l := machine(t)
	m.Factory(func() {
		s := NewStore(m.Internal(), l)
		_, err := s.Load()
		require.ErrorIs(t, err, ErrNoRecord)
		copyOf := func() int {
			for i, p := range l.Record {
				b := make([]byte, RecordSize)
				m.Internal().Peek(p.Start, b)
				if r, err := DecodeRecord(b); err == nil && r.Seq == Peek(m.Internal(), l).Seq {
					return i
				}
			}
			return -1
		}
		for i, want := range []int{0, 1, 0} {
			r := &Record{}
			r.App.Attempts = uint8(i)
			require.NoError(t, s.Save(r))
			require.Equal(t, want, copyOf(), "write %d", i)
		}
		got, err := NewStore(m.Internal(), l).Load()
		require.NoError(t, err)
		require.Equal(t, uint8(2), got.App.Attempts)
		require.Equal(t, uint32(3), got.Seq)
	})
}

func TestOptionsChecked(t *testing.T) {
	b := sim.Boards()[0]
	for _, o := range []Options{{BootloaderSlots: MaxSlots + 1}, {ApplicationSlots: -1}, {MaxAttempts: 101}, {MaxAttempts: -1}} {
		_, err := NewLayout(b, o)
		require.Error(t, err, "%+v", o)
	}
	for _, o := range []Options{{BootloaderSlots: MaxSlots, ApplicationSlots: 1}, {MaxAttempts: 100}, {MaxAttempts: 1}} {
		_, err := NewLayout(b, o)
		require.NoError(t, err, "%+v", o)
	}
	l, err := NewLayout(b, Options{SelectorSize: 8 << 10})
	require.NoError(t, err)
	require.Equal(t, uint64(8<<10), l.Selector.Size, "a smaller selector on 4 KiB sectors")
	require.Equal(t, uint64(DefaultSelectorSize), mustLayout(t, b).Selector.Size)
	require.Equal(t, l.Bootloaders[0].Start+HeaderSpace, l.Bootloaders[0].Body())
	require.Equal(t, "record-a", RecordRegion(0))
	require.Equal(t, "record-b", RecordRegion(1))
	require.Equal(t, l.Bootloaders, l.Slots(sim.StageBootloader))
	require.Equal(t, l.Applications, l.Slots(sim.StageApplication))
}

func mustLayout(t *testing.T, b *sim.Board) *Layout {
	l, err := NewLayout(b, Options{})
	require.NoError(t, err)
	return l
}

// TestNewestBoundary: a version equal to the bound is not below it.
func TestNewestBoundary(t *testing.T) {
	var s StageState
	s.Slots[0] = SlotState{Version: 5, Status: Ready}
	_, ok := s.Newest(5)
	require.False(t, ok)
	i, ok := s.Newest(6)
	require.True(t, ok)
	require.Equal(t, 0, i)
	_, ok = s.Newest(math.MaxUint64)
	require.True(t, ok)
	require.Equal(t, "ready", Ready.String())
	require.Equal(t, "Status(9)", Status(9).String())
}

// TestRecordCurrentInRange: a record whose current slot is past the last
// is malformed.
func TestRecordCurrentInRange(t *testing.T) {
	r := sample()
	r.App.Current = MaxSlots - 1
	_, err := DecodeRecord(r.Encode())
	require.NoError(t, err)
	r.App.Current = MaxSlots
	_, err = DecodeRecord(r.Encode())
	require.ErrorIs(t, err, ErrBadRecord)
}

// TestLayoutFlashExhausted: parts that take the whole flash leave none for
// the application slots, and the layout says so instead of indexing past
// the last sector.
func TestLayoutFlashExhausted(t *testing.T) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	// 16 KiB selector, two 4 KiB records, then two bootloader slots of
	// half of what is left each: nothing remains.
	half := (uint64(b.Flash.Size()) - 24<<10) / 2
	_, err = NewLayout(b, Options{BootloaderSlotSize: half})
	require.ErrorContains(t, err, "no flash left on k64f for application slots")
	_, err = NewLayout(b, Options{BootloaderSlots: 4, BootloaderSlotSize: half})
	require.ErrorContains(t, err, "no flash left on k64f for the bootloader slot 2")
	require.Equal(t, "Status(3)", Status(3).String())
	require.Equal(t, "failed", Failed.String())
}
