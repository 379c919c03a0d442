package mbedlayout

import (
	"errors"
	"fmt"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
	"github.com/bootsim/bootsim/storage/tdbstore"
)

// ROTSource names where a layout's bootloader reads the root of trust.
func (l *Layout) ROTSource() string {
	switch {
	case l.KVStoreROT:
		return "kvstore"
	case l.HasSOTP():
		return "sotp"
	}
	return "none"
}

// KVStoreRange returns the internal TDBStore's range [start, end) that
// direct_access_to_devicekey reads (storage_tdb_internal.*).
func (l *Layout) KVStoreRange() (start, end uint64) {
	return uint64(l.KVStoreAddress), uint64(l.KVStoreAddress + l.KVStoreSize)
}

// ErrNoROTStore is returned by ReadROT and ProvisionROT for a layout with
// neither SOTP nor a KVStore root of trust.
var ErrNoROTStore = errors.New("the layout keeps no root of trust")

// ReadROT reads the 16-byte root of trust from internal flash as the
// layout's bootloader does, without writing: from the KVStore's reserved
// area (mbed-bootloader v4 source/kvstore_rot.cpp, through
// direct_access_to_devicekey) or by probing SOTP (v3.3.0
// source/sotp_rot.c). A value of another size is an error, as upstream's
// callers require exactly 16 bytes.
func (l *Layout) ReadROT(dev storage.Device) ([]byte, error) {
	var rot []byte
	switch l.ROTSource() {
	case "kvstore":
		start, end := l.KVStoreRange()
		key, fails, err := tdbstore.ReadDeviceKey(dev, start, end, tdbstore.DeviceKeySize)
		if err != nil {
			if len(fails) > 0 {
				return nil, fmt.Errorf("%w (area 0: %s, area 1: %s)", err, fails[0].Reason, fails[len(fails)-1].Reason)
			}
			return nil, err
		}
		rot = key
	case "sotp":
		a1, a2 := l.SOTPAreas()
		v, _, err := sotp.Probe(dev, a1, a2, sotp.TypeROT)
		if err != nil {
			return nil, err
		}
		rot = v
	default:
		return nil, ErrNoROTStore
	}
	if len(rot) != tdbstore.DeviceKeySize {
		return nil, fmt.Errorf("ROT of %d bytes, want %d", len(rot), tdbstore.DeviceKeySize)
	}
	return rot, nil
}

// ClientROT reads the root of trust as the application's client does: from
// the KVStore's reserved area (DeviceKey reads it without writing), or
// through the SOTP store, which sotp_get initialises (it may write a
// master record on a blank area).
func (l *Layout) ClientROT(dev storage.Device) ([]byte, error) {
	if l.KVStoreROT {
		return l.ReadROT(dev)
	}
	a1, a2 := l.SOTPAreas()
	return sotp.New(dev, a1, a2).Get(sotp.TypeROT)
}

// ProvisionROT writes the root of trust where the layout keeps it, as the
// factory tools do: a fresh SOTP store with the ROT record, or the
// KVStore's reserved area (DeviceKey's root-of-trust injection).
func (l *Layout) ProvisionROT(dev storage.Device, rot []byte) error {
	switch l.ROTSource() {
	case "kvstore":
		start, end := l.KVStoreRange()
		return tdbstore.InjectDeviceKey(dev, start, end, rot)
	case "sotp":
		a1, a2 := l.SOTPAreas()
		st := sotp.New(dev, a1, a2)
		if err := st.Init(); err != nil {
			return err
		}
		return st.Set(sotp.TypeROT, rot)
	}
	return ErrNoROTStore
}
