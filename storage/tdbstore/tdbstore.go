// Package tdbstore is the part of Mbed OS's TDBStore that holds the device
// key: the reserved area at the start of each of the store's two areas,
// read as mbed-bootloader v4 reads its root of trust (mbed-os
// DirectAccessDevicekey.cpp, direct_access_to_devicekey, without mounting
// the store) and written as DeviceKey's root-of-trust injection writes it
// (TDBStore::reserved_data_set).
//
// On the wire, in each area: the key data at offset 0 (at most 64 bytes),
// then at offset 64 a trailer {u16 trailer_size, u16 data_size, u32 crc},
// little endian. A trailer of erased bytes means no key in that area. The
// CRC is MbedCRC<POLY_32BIT_ANSI, 32>(initial 0xFFFFFFFF, final XOR 0,
// reflected data, unreflected remainder) over the data.
//
// The range is split as calc_area_params splits it: area 0 is the first
// whole erase sectors that cover half of (end - start + 1) bytes - the +1 is
// upstream's - and area 1 is the rest.
package tdbstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"math/bits"

	"github.com/bootsim/bootsim/storage"
)

// Sizes of the reserved area.
const (
	// MaxDataSize is MAX_DEVICEKEY_DATA_SIZE: the key data's room.
	MaxDataSize = 64
	// TrailerSize is sizeof(reserved_trailer_t).
	TrailerSize = 8
	// DeviceKeySize is the root of trust's size (DEVICE_KEY_SIZE_IN_BYTES,
	// mbed-bootloader source/kvstore_rot.cpp).
	DeviceKeySize = 16
)

// Errors of ReadDeviceKey and InjectDeviceKey. Each matches the Mbed OS
// status direct_access_to_devicekey or reserved_data_set returns.
var (
	// ErrNotFound: neither area holds the key (MBED_ERROR_ITEM_NOT_FOUND).
	ErrNotFound = errors.New("tdbstore: no valid device key in either area")
	// ErrRange: the range is too small for two reserved areas or lies past
	// the flash (MBED_ERROR_INVALID_ARGUMENT).
	ErrRange = errors.New("tdbstore: invalid range")
	// ErrExists: a key is already written (MBED_ERROR_WRITE_FAILED).
	ErrExists = errors.New("tdbstore: the reserved area is not blank")
	// ErrSize: the data does not fit the reserved area
	// (MBED_ERROR_INVALID_SIZE).
	ErrSize = errors.New("tdbstore: reserved data too large")
)

// Area is one of the two areas of a TDBStore.
type Area struct{ Addr, Size uint64 }

// Areas splits the range [start, end) of dev into the two areas, as
// calc_area_params does.
func Areas(dev storage.Device, start, end uint64) ([2]Area, error) {
	if end < start+2*(MaxDataSize+TrailerSize)-1 || end > dev.Size() {
		return [2]Area{}, fmt.Errorf("%w: 0x%x to 0x%x on %s (0x%x bytes)", ErrRange, start, end, dev.Name(), dev.Size())
	}
	bd := end - start + 1
	cur := uint64(0)
	for cur < bd/2 {
		cur += dev.EraseSize(start + cur)
	}
	return [2]Area{{start, cur}, {start + cur, bd - cur}}, nil
}

// Failure says why one area's reserved data did not read, as
// reserved_data_get does.
type Failure struct {
	Area   int
	Reason string // "erased", "read failed", "too large", "crc mismatch"
}

// ReadDeviceKey reads the device key as direct_access_to_devicekey does:
// area 0, then area 1; the first whose trailer is not blank, whose size
// fits bufSize and whose CRC checks gives the data. The bootloader then
// requires exactly DeviceKeySize bytes. On failure it returns ErrNotFound
// (or ErrRange) with what each area said.
func ReadDeviceKey(dev storage.Device, start, end uint64, bufSize int) ([]byte, []Failure, error) {
	areas, err := Areas(dev, start, end)
	if err != nil {
		return nil, nil, err
	}
	var fails []Failure
	for i, a := range areas {
		data, why := reservedData(dev, a, bufSize)
		if why == "" {
			return data, fails, nil
		}
		fails = append(fails, Failure{i, why})
	}
	return nil, fails, ErrNotFound
}

func reservedData(dev storage.Device, a Area, bufSize int) ([]byte, string) {
	var tr [TrailerSize]byte
	if err := dev.Read(a.Addr+MaxDataSize, tr[:]); err != nil {
		return nil, "read failed"
	}
	blank := true
	for _, b := range tr {
		if b != 0xFF {
			blank = false
		}
	}
	if blank {
		return nil, "erased"
	}
	size := int(binary.LittleEndian.Uint16(tr[2:]))
	if size > bufSize {
		return nil, "too large"
	}
	data := make([]byte, size)
	if err := dev.Read(a.Addr, data); err != nil {
		return nil, "read failed"
	}
	if CRC(data) != binary.LittleEndian.Uint32(tr[4:]) {
		return nil, "crc mismatch"
	}
	return data, ""
}

// InjectDeviceKey writes key as the reserved data of both areas, as
// TDBStore::reserved_data_set does in Mbed OS 6 (data at offset 0, trailer
// at MaxDataSize), after erasing the start of the second area when it is
// not blank. It refuses a store that already holds reserved data.
func InjectDeviceKey(dev storage.Device, start, end uint64, key []byte) error {
	if len(key) > MaxDataSize {
		return fmt.Errorf("%w: %d bytes, at most %d", ErrSize, len(key), MaxDataSize)
	}
	areas, err := Areas(dev, start, end)
	if err != nil {
		return err
	}
	if _, _, err := ReadDeviceKey(dev, start, end, MaxDataSize); err == nil {
		return ErrExists
	}
	unit := dev.ProgramSize()
	for _, a := range areas {
		if !blank(dev, a.Addr, MaxDataSize+TrailerSize) {
			if err := dev.Erase(a.Addr, dev.EraseSize(a.Addr)); err != nil {
				return err
			}
		}
		var tr [TrailerSize]byte
		binary.LittleEndian.PutUint16(tr[0:], TrailerSize)
		binary.LittleEndian.PutUint16(tr[2:], uint16(len(key)))
		binary.LittleEndian.PutUint32(tr[4:], CRC(key))
		if err := dev.Program(a.Addr, storage.PadToUnit(key, unit)); err != nil {
			return err
		}
		if err := dev.Program(a.Addr+MaxDataSize, storage.PadToUnit(tr[:], unit)); err != nil {
			return err
		}
	}
	return nil
}

func blank(dev storage.Device, addr, n uint64) bool {
	b := make([]byte, n)
	if dev.Read(addr, b) != nil {
		return false
	}
	for _, x := range b {
		if x != 0xFF {
			return false
		}
	}
	return true
}

// CRC is TDBStore's calc_crc: CRC-32 polynomial 0x04C11DB7 over reflected
// data from 0xFFFFFFFF, with the remainder neither reflected nor inverted.
// In terms of the usual (IEEE) CRC-32, which reflects both and inverts
// the result, that is the IEEE value inverted and bit-reversed.
func CRC(data []byte) uint32 {
	return bits.Reverse32(^crc32.ChecksumIEEE(data))
}
