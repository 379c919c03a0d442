package sotp

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

// Edges of the record format and the store: the first and last valid type,
// records that end exactly at the end of an area, the largest value, the
// padding, and how writes are split for other program units.

// TestTypeNameEdges: names for the named types, type-N for the others, up
// to the last type and past it.
func TestTypeNameEdges(t *testing.T) {
	require.Equal(t, "factory-done", TypeFactoryDone.Name())
	require.Equal(t, "min-fw-version", TypeMinFWVersion.Name())
	require.Equal(t, "type-9", Type(9).Name())
	require.Equal(t, "type-15", Type(15).Name())
	require.Equal(t, "type-16", Type(16).Name())
	_, err := ParseType("16")
	require.EqualError(t, err, "SOTP type 16 out of range 0..15")
	_, err = ParseType("-1")
	require.EqualError(t, err, "SOTP type -1 out of range 0..15")
	got, err := ParseType("RANDOM_SEED")
	require.NoError(t, err)
	require.Equal(t, TypeRandomSeed, got)
	got, err = ParseType("0")
	require.NoError(t, err)
	require.Equal(t, TypeFactoryDone, got)
}

// record encodes a record as it lies on flash, unpadded.
func record(typ, flags uint16, data []byte) []byte {
	var hdr [headerSize]byte
	binary.LittleEndian.PutUint16(hdr[0:], typ|flags)
	binary.LittleEndian.PutUint16(hdr[2:], uint16(len(data)))
	binary.LittleEndian.PutUint32(hdr[4:], crc(hdr[:4], data))
	return append(hdr[:], data...)
}

// TestRecordAtAreaEnd: a record may end on the last byte of its area; one
// that would run one byte past it, or whose header would, is not a record.
func TestRecordAtAreaEnd(t *testing.T) {
	dev, a0, a1 := newFlash()
	r := newReader(dev, a0, a1)
	size := a0.Size
	dev.Load(a0.Addr+size-24, record(uint16(TypeROT), 0, make([]byte, 16)))
	rec, ok, next, err := r.readRecord(0, size-24)
	require.NoError(t, err)
	require.True(t, ok, "a record ending on the area's last byte")
	require.Equal(t, size, next)
	require.Len(t, rec.Data, 16)

	dev.Load(a0.Addr+size-24, record(uint16(TypeROT), 0, make([]byte, 17))[:24])
	_, ok, _, err = r.readRecord(0, size-24)
	require.NoError(t, err)
	require.False(t, ok, "a length one byte past the area")

	dev.Load(a0.Addr+size-8, record(uint16(TypeROT)|deleteFlag, 0, nil))
	_, ok, next, err = r.readRecord(0, size-8)
	require.NoError(t, err)
	require.True(t, ok, "an empty record in the last 8 bytes")
	require.Equal(t, size, next)
	_, ok, _, err = r.readRecord(0, size-7)
	require.NoError(t, err)
	require.False(t, ok, "a header that would run past the area")
}

// TestRecordTypes: types 0..15 and the master type are records; 16 and up
// are not.
func TestRecordTypes(t *testing.T) {
	dev, a0, a1 := newFlash()
	r := newReader(dev, a0, a1)
	for _, tc := range []struct {
		typ uint16
		ok  bool
	}{{0, true}, {15, true}, {16, false}, {masterType - 1, false}, {masterType, true}, {noType, false}} {
		dev.Load(a0.Addr, record(tc.typ, 0, []byte{1, 2, 3}))
		_, ok, _, err := r.readRecord(0, 0)
		require.NoError(t, err)
		require.Equal(t, tc.ok, ok, "type 0x%x", tc.typ)
	}
}

// TestStoreEdges: a type past the last is refused by Get and Set; the
// largest value is 0xFFFF bytes; a record is padded with 0xFF to the
// program unit; a Set that would reach the end of the area compacts first.
func TestStoreEdges(t *testing.T) {
	dev, a0, a1 := newFlash()
	s := New(dev, a0, a1)
	_, err := s.Get(16)
	require.ErrorIs(t, err, ErrBadType)
	_, err = s.Get(15)
	require.ErrorIs(t, err, ErrNotFound)

	// Padding: a 3-byte value takes 16 bytes, the last 5 of them 0xFF.
	require.NoError(t, s.Set(TypeROT, []byte{1, 2, 3}))
	at := s.FreeOffset() - 16
	got := make([]byte, 16)
	dev.Peek(a0.Addr+at, got)
	require.Equal(t, append(record(uint16(TypeROT), 0, []byte{1, 2, 3}), 0xFF, 0xFF, 0xFF, 0xFF, 0xFF), got)

	// Fill the area to exactly its end: the master takes 16 bytes, 63
	// records of 64 bytes reach 4048, and a 48-byte record would end at
	// 4096. That one compacts into the other area first.
	s = New(dev, a0, a1)
	require.NoError(t, dev.Erase(a0.Addr, a0.Size))
	require.NoError(t, dev.Erase(a1.Addr, a1.Size))
	for range 63 {
		require.NoError(t, s.Set(TypeSavedTime, make([]byte, 56)))
	}
	require.Equal(t, uint64(4048), s.FreeOffset())
	area, version := s.ActiveArea()
	require.Equal(t, 0, area)
	require.NoError(t, s.Set(TypeRandomSeed, make([]byte, 40)))
	area, version = s.ActiveArea()
	require.Equal(t, []any{1, uint16(2)}, []any{area, version}, "the set that would reach the end compacted first")
}

// TestLargestValue: a value of 0xFFFF bytes is stored; one more byte is
// refused.
func TestLargestValue(t *testing.T) {
	sys := storage.NewSystem(nil)
	f := sys.NewNORFlash(storage.NORConfig{Name: "internal", ProgramUnit: 8,
		Sectors: []storage.SectorRun{{Size: 128 << 10, Count: 2, EraseTime: time.Millisecond}}})
	s := New(f, Area{Addr: 0, Size: 128 << 10}, Area{Addr: 128 << 10, Size: 128 << 10})
	big := bytes.Repeat([]byte{0x5A}, 0xFFFF)
	require.NoError(t, s.Set(TypeRandomSeed, big))
	got, err := s.Get(TypeRandomSeed)
	require.NoError(t, err)
	require.Equal(t, big, got)
	require.ErrorIs(t, s.Set(TypeRandomSeed, append(big, 0)), ErrTooLarge)
}

// TestWriteSplitByUnit: write_record programs the header, then the data;
// with a program unit above 8 bytes the first program carries the start of
// the data, and with a unit of 1 the two programs are exactly the header
// and the data.
func TestWriteSplitByUnit(t *testing.T) {
	for _, tc := range []struct {
		unit uint64
		lens []uint64
	}{{1, []uint64{8, 20}}, {8, []uint64{8, 24}}, {16, []uint64{16, 16}}, {32, []uint64{32}}} {
		sys := storage.NewSystem(nil)
		f := sys.NewNORFlash(storage.NORConfig{Name: "nor", ProgramUnit: tc.unit,
			Sectors: []storage.SectorRun{{Size: 4096, Count: 2, EraseTime: time.Millisecond}}})
		s := New(f, Area{Addr: 0, Size: 4096}, Area{Addr: 4096, Size: 4096})
		require.NoError(t, s.Init())
		before := len(sys.Journal())
		value := bytes.Repeat([]byte{7}, 20)
		require.NoError(t, s.Set(TypeROT, value))
		var lens []uint64
		for _, op := range sys.Journal()[before:] {
			lens = append(lens, op.Len)
		}
		require.Equal(t, tc.lens, lens, "unit %d", tc.unit)
		got, err := New(f, Area{Addr: 0, Size: 4096}, Area{Addr: 4096, Size: 4096}).Get(TypeROT)
		require.NoError(t, err)
		require.Equal(t, value, got, "unit %d", tc.unit)
	}
}

// TestProbeWithoutMaster: with no valid master record anywhere, probe says
// so and names no area.
func TestProbeWithoutMaster(t *testing.T) {
	dev, a0, a1 := newFlash()
	_, area, err := Probe(dev, a0, a1, TypeROT)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "no area has a valid master record")
	require.Equal(t, -1, area)
}
