package chain

import (
	"errors"
	"math"
	"testing"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

func sample() *Record {
	r := &Record{Seq: 7}
	r.Boot.Current, r.Boot.Attempts = 1, 2
	r.Boot.Slots[0] = SlotState{Version: 1, Status: Ready, Confirmed: true}
	r.Boot.Slots[1] = SlotState{Version: 2, Status: Ready}
	r.App.Current = 2
	r.App.Slots[0] = SlotState{Version: 10, Status: Failed, Confirmed: true}
	r.App.Slots[1] = SlotState{Version: 11, Status: Ready, Confirmed: true}
	r.App.Slots[2] = SlotState{Version: 12, Status: Ready}
	return r
}

func TestRecordRoundTrip(t *testing.T) {
	r := sample()
	b := r.Encode()
	require.Len(t, b, RecordSize)
	got, err := DecodeRecord(b)
	require.NoError(t, err)
	require.Equal(t, r, got)
}

// TestRecordErrors: every damaged or foreign record is refused with its
// sentinel, never half-read.
func TestRecordErrors(t *testing.T) {
	good := sample().Encode()
	for _, tc := range []struct {
		name string
		edit func([]byte) []byte
		want error
	}{
		{"blank", func(b []byte) []byte { return make([]byte, RecordSize) }, ErrNoRecord},
		{"erased", func(b []byte) []byte {
			for i := range b {
				b[i] = 0xFF
			}
			return b
		}, ErrNoRecord},
		{"short", func(b []byte) []byte { return b[:RecordSize-1] }, ErrBadRecord},
		{"bit flip", func(b []byte) []byte { b[20] ^= 4; return b }, ErrRecordCRC},
		{"torn crc", func(b []byte) []byte { b[RecordSize-1] = 0xFF; return b }, ErrRecordCRC},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeRecord(tc.edit(append([]byte(nil), good...)))
			require.ErrorIs(t, err, tc.want)
		})
	}
}

func TestHeaderRoundTripAndErrors(t *testing.T) {
	h := HeaderFor(sim.StageBootloader, 3, []byte("image"))
	got, err := DecodeHeader(h.Encode())
	require.NoError(t, err)
	require.Equal(t, h, got)
	b := h.Encode()
	b[30] ^= 1
	_, err = DecodeHeader(b)
	require.ErrorIs(t, err, ErrHeaderCRC)
	_, err = DecodeHeader(make([]byte, HeaderSize))
	require.ErrorIs(t, err, ErrNoHeader)
	_, err = DecodeHeader(b[:10])
	require.ErrorIs(t, err, ErrBadHeader)
}

func TestNewestSkipsFailedAndNewer(t *testing.T) {
	r := sample()
	i, ok := r.App.Select()
	require.True(t, ok)
	require.Equal(t, 2, i)
	i, ok = r.App.Newest(12)
	require.True(t, ok)
	require.Equal(t, 1, i, "v11: v10 failed")
	_, ok = r.App.Newest(11)
	require.False(t, ok)
	i, _ = r.Boot.Newest(math.MaxUint64)
	require.Equal(t, 1, i)
}

// TestLayoutOnEveryBoard: the parts lie on sector boundaries, in order,
// without overlap, inside flash, and the application slots use the rest.
func TestLayoutOnEveryBoard(t *testing.T) {
	for _, b := range sim.Boards() {
		t.Run(b.Name, func(t *testing.T) {
			l, err := NewLayout(b, Options{})
			require.NoError(t, err)
			parts := []Part{l.Selector, l.Record[0], l.Record[1]}
			parts = append(parts, l.Bootloaders...)
			parts = append(parts, l.Applications...)
			require.Len(t, l.Bootloaders, DefaultBootloaderSlots)
			require.Len(t, l.Applications, DefaultApplicationSlots)
			bounds := map[uint64]bool{uint64(b.Flash.Size()): true}
			var at uint64
			for _, s := range b.Flash.Sectors {
				for range s.Count {
					bounds[at] = true
					at += uint64(s.Size)
				}
			}
			var end uint64
			for i, p := range parts {
				require.Equal(t, end, p.Start, "part %d follows the one before", i)
				require.True(t, bounds[p.Start] && bounds[p.End()], "part %d %+v on sector boundaries", i, p)
				end = p.End()
			}
			require.Equal(t, uint64(b.Flash.Size()), end)
			require.GreaterOrEqual(t, l.Record[0].Size, uint64(RecordSize))
			require.GreaterOrEqual(t, l.Bootloaders[0].Size, uint64(DefaultBootloaderSlotSize))
			require.Len(t, l.Regions(), 3+len(l.Bootloaders)+len(l.Applications))
		})
	}
	_, err := NewLayout(sim.Boards()[0], Options{ApplicationSlots: 9})
	require.ErrorContains(t, err, "chain.application-slots")
	_, err = NewLayout(sim.Boards()[0], Options{BootloaderSlotSize: 1 << 30})
	require.ErrorContains(t, err, "needs")
}

// TestStoreSurvivesACutAnywhere: a power cut at any op of a record write,
// in any mode, leaves either the record before the write or the one after
// it, never neither.
func TestStoreSurvivesACutAnywhere(t *testing.T) {
	b := sim.Boards()[0]
	l, err := NewLayout(b, Options{})
	require.NoError(t, err)
	before, after := sample(), sample()
	after.App.Attempts = 3
	for op := range 4 {
		for _, mode := range []storage.FaultMode{storage.FaultCutBefore, storage.FaultCutAfter, storage.FaultTorn} {
			for seed := range uint64(3) {
				sys := b.NewStorage(nil)
				dev := sys.Device(sim.DeviceInternal)
				s := NewStore(dev, l)
				for range 3 { // the newest copy is b, seq 3
					require.NoError(t, s.Save(before))
				}
				sys.ClearJournal()
				sys.SetInjector(&storage.Rule{Match: storage.OnIndex(op), Fault: storage.Fault{Mode: mode, Seed: seed}})
				werr := s.Save(after)
				sys.PowerOn()
				got, err := NewStore(dev, l).Load()
				require.NoError(t, err, "op %d %s seed %d", op, mode, seed)
				got.Seq = 0
				b, a := *before, *after
				b.Seq, a.Seq = 0, 0
				if werr == nil {
					require.Equal(t, &a, got, "op %d %s seed %d: the write succeeded", op, mode, seed)
					continue
				}
				// A cut after the last op leaves the new record whole.
				require.True(t, *got == b || *got == a, "op %d %s seed %d (write error %v): %+v", op, mode, seed, werr, got)
				if mode == storage.FaultCutBefore || op == 0 {
					require.Equal(t, &b, got, "op %d %s seed %d: the record was not written", op, mode, seed)
				}
			}
		}
	}
}

func TestStoreNoRecord(t *testing.T) {
	b := sim.Boards()[0]
	l, _ := NewLayout(b, Options{})
	sys := b.NewStorage(nil)
	sys.PowerOn()
	_, err := NewStore(sys.Device(sim.DeviceInternal), l).Load()
	require.True(t, errors.Is(err, ErrNoRecord), "%v", err)
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(sample().Encode())
	f.Add(make([]byte, RecordSize))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRecord(b)
		if err != nil {
			return
		}
		// What decodes encodes to the same bytes.
		require.Equal(t, b[:RecordSize], r.Encode())
	})
}

func FuzzDecodeHeader(f *testing.F) {
	f.Add(HeaderFor(sim.StageApplication, 1, []byte("x")).Encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := DecodeHeader(b)
		if err != nil {
			return
		}
		again, err := DecodeHeader(h.Encode())
		require.NoError(t, err)
		require.Equal(t, h, again)
	})
}
