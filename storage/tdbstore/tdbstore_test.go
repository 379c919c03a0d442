package tdbstore

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

// flash is a K64F-like flash: 4 KiB sectors, 8-byte program unit, powered.
func flash(t testing.TB) *storage.NORFlash {
	t.Helper()
	sys := storage.NewSystem(nil)
	f := sys.NewNORFlash(storage.NORConfig{Name: "internal", ProgramUnit: 8,
		Sectors: []storage.SectorRun{{Size: 4 << 10, Count: 32, EraseTime: time.Millisecond}}})
	sys.PowerOn()
	return f
}

// The K64F's KVStore of internal_kvstore_with_sd.json: 32 KiB after the
// 32 KiB bootloader.
const start, end = 32 << 10, 64 << 10

var rot = []byte("0123456789abcdef")

// bitwiseCRC is calc_crc spelt out as MbedCRC's parameters say: each data
// byte reflected, shifted in MSB first through polynomial 0x04C11DB7 from
// 0xFFFFFFFF, the remainder kept as it is.
func bitwiseCRC(data []byte) uint32 {
	crc := uint32(0xFFFFFFFF)
	for _, b := range data {
		var r byte
		for i := range 8 {
			r |= (b >> i & 1) << (7 - i)
		}
		crc ^= uint32(r) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

func TestCRCIsCalcCRC(t *testing.T) {
	for _, s := range []string{"", "a", "123456789", string(rot), string(bytes.Repeat([]byte{0xA5}, 64))} {
		require.Equal(t, bitwiseCRC([]byte(s)), CRC([]byte(s)), "%q", s)
	}
}

// TestAreasSplitAsUpstream: area 0 is the whole sectors that cover half of
// size+1 bytes; area 1 has the rest, one byte too many as upstream counts.
func TestAreasSplitAsUpstream(t *testing.T) {
	f := flash(t)
	a, err := Areas(f, start, end)
	require.NoError(t, err)
	require.Equal(t, [2]Area{{start, 16 << 10}, {start + 16<<10, 16<<10 + 1}}, a)

	// An odd number of sectors: area 0 takes the middle one.
	a, err = Areas(f, 0, 12<<10)
	require.NoError(t, err)
	require.Equal(t, uint64(8<<10), a[0].Size)

	_, err = Areas(f, start, start+100)
	require.ErrorIs(t, err, ErrRange)
	_, err = Areas(f, start, f.Size()+4096)
	require.ErrorIs(t, err, ErrRange)
}

func TestInjectThenRead(t *testing.T) {
	f := flash(t)
	_, fails, err := ReadDeviceKey(f, start, end, DeviceKeySize)
	require.ErrorIs(t, err, ErrNotFound)
	require.Equal(t, []Failure{{0, "erased"}, {1, "erased"}}, fails)

	require.NoError(t, InjectDeviceKey(f, start, end, rot))
	got, fails, err := ReadDeviceKey(f, start, end, DeviceKeySize)
	require.NoError(t, err)
	require.Empty(t, fails)
	require.Equal(t, rot, got)

	// Both areas hold it, trailer {8, 16, crc} at offset 64.
	for _, addr := range []uint64{start, start + 16<<10} {
		tr := make([]byte, TrailerSize)
		require.NoError(t, f.Read(addr+MaxDataSize, tr))
		require.Equal(t, uint16(TrailerSize), binary.LittleEndian.Uint16(tr))
		require.Equal(t, uint16(16), binary.LittleEndian.Uint16(tr[2:]))
		require.Equal(t, CRC(rot), binary.LittleEndian.Uint32(tr[4:]))
	}
	require.ErrorIs(t, InjectDeviceKey(f, start, end, rot), ErrExists)
	require.ErrorIs(t, InjectDeviceKey(flash(t), start, end, make([]byte, 65)), ErrSize)
}

// TestReadFallsBackAndFails: a damaged area 0 leaves area 1's copy; what
// each area said is reported when neither has one.
func TestReadFallsBackAndFails(t *testing.T) {
	for _, tc := range []struct {
		name  string
		spoil func(f *storage.NORFlash)
		want  []Failure
		ok    bool
	}{
		{"area 0 erased", func(f *storage.NORFlash) { require.NoError(t, f.Erase(start, 4096)) }, nil, true},
		{"area 0 data changed", func(f *storage.NORFlash) { f.Tamper(start, []byte("X")) }, nil, true},
		{"area 0 too large", func(f *storage.NORFlash) { f.Tamper(start+MaxDataSize+2, []byte{17, 0}) }, nil, true},
		{"both changed", func(f *storage.NORFlash) {
			f.Tamper(start, []byte("X"))
			f.Tamper(start+16<<10+MaxDataSize+4, []byte{0, 0, 0, 0})
		}, []Failure{{0, "crc mismatch"}, {1, "crc mismatch"}}, false},
		{"both erased or large", func(f *storage.NORFlash) {
			require.NoError(t, f.Erase(start, 4096))
			f.Tamper(start+16<<10+MaxDataSize+2, []byte{0xFF, 0})
		}, []Failure{{0, "erased"}, {1, "too large"}}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := flash(t)
			require.NoError(t, InjectDeviceKey(f, start, end, rot))
			tc.spoil(f)
			got, fails, err := ReadDeviceKey(f, start, end, DeviceKeySize)
			if tc.ok {
				require.NoError(t, err)
				require.Equal(t, rot, got)
				require.Len(t, fails, 1, "area 0 failed, area 1 read")
				return
			}
			require.ErrorIs(t, err, ErrNotFound)
			require.Equal(t, tc.want, fails)
		})
	}
}

// FuzzReadDeviceKey: any bytes in the reserved areas read as a key whose
// CRC checks and whose size fits, or as a reported failure; never a panic.
func FuzzReadDeviceKey(f *testing.F) {
	g := flash(f)
	require.NoError(f, InjectDeviceKey(g, start, end, rot))
	seed := make([]byte, MaxDataSize+TrailerSize)
	require.NoError(f, g.Read(start, seed))
	f.Add(seed, seed)
	f.Add([]byte{}, seed[:10])
	f.Fuzz(func(t *testing.T, a0, a1 []byte) {
		g := flash(t)
		g.Load(start, a0[:min(len(a0), 4096)])
		g.Load(start+16<<10, a1[:min(len(a1), 4096)])
		key, fails, err := ReadDeviceKey(g, start, end, DeviceKeySize)
		if err != nil {
			require.ErrorIs(t, err, ErrNotFound)
			require.Len(t, fails, 2)
			return
		}
		require.LessOrEqual(t, len(key), DeviceKeySize)
		require.Less(t, len(fails), 2)
	})
}
