package mbedlayout

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/mbedapp"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/units"
)

// appKey is a layout key and the mbed_app.json parameters that set it,
// the first that is set winning: the v4 libraries' names, then the names
// the v3.3.0 bootloader's own mbed_app.json gave its application config.
type appKey struct {
	key     string
	params  []string
	address bool // an address on internal flash: relative to MBED_ROM_START
}

var appKeys = []appKey{
	{"mbed-bootloader.bootloader-size", []string{"mbed-bootloader.bootloader-size"}, false},
	{"sotp-section-1-address", []string{"app.sotp-section-1-address", "mbed-bootloader.sotp-section-1-address"}, true},
	{"sotp-section-1-size", []string{"app.sotp-section-1-size", "mbed-bootloader.sotp-section-1-size"}, false},
	{"sotp-section-2-address", []string{"app.sotp-section-2-address", "mbed-bootloader.sotp-section-2-address"}, true},
	{"sotp-section-2-size", []string{"app.sotp-section-2-size", "mbed-bootloader.sotp-section-2-size"}, false},
	{"update-client.application-details", []string{"update-client.application-details"}, true},
	{"mbed-bootloader.application-start-address", []string{"app.application-start-address", "mbed-bootloader.application-start-address"}, true},
	{"mbed-bootloader.max-application-size", []string{"app.max-application-size", "mbed-bootloader.max-application-size"}, false},
	{"update-client.storage-address", []string{"update-client.storage-address"}, true}, // relative only on internal flash
	{"update-client.storage-size", []string{"update-client.storage-size"}, false},
	{"update-client.storage-locations", []string{"update-client.storage-locations"}, false},
	{"update-client.storage-page", []string{"update-client.storage-page"}, false},
	{"storage_tdb_internal.internal_base_address", []string{"storage_tdb_internal.internal_base_address"}, true},
	{"storage_tdb_internal.internal_size", []string{"storage_tdb_internal.internal_size"}, false},
}

// Update storages named by MBED_CLOUD_CLIENT_UPDATE_STORAGE.
const (
	ucpFlashIAP            = "ARM_UCP_FLASHIAP"
	ucpFlashIAPBlockDevice = "ARM_UCP_FLASHIAP_BLOCKDEVICE"
)

// AppLayout is a layout read from an mbed_app.json: the layout, where
// each key came from, and what bootsim does not model.
type AppLayout struct {
	Layout *Layout
	// Sources gives, per layout key set, the expression and where it is
	// written: `(MBED_ROM_START + MBED_BOOTLOADER_SIZE)` (target_overrides *).
	Sources map[string]string
	// Ignored lists the overrides that place nothing bootsim models.
	Ignored []string
	// MaxBootRetries and MaxCopyRetries are the bootloader's
	// (mbed-bootloader.max-boot-retries, max-copy-retries).
	MaxBootRetries, MaxCopyRetries int
}

// FromMbedApp lays a board out as an mbed_app.json configures it for a
// target: the parameters are evaluated with MBED_ROM_START at the board's
// mbed-rom-start and MBED_ROM_SIZE its flash size, and addresses on
// internal flash are taken relative to MBED_ROM_START (the simulator
// addresses flash from 0). Candidates live on internal flash when
// MBED_CLOUD_CLIENT_UPDATE_STORAGE is ARM_UCP_FLASHIAP, on the board's
// external device when it is ARM_UCP_FLASHIAP_BLOCKDEVICE. The layout is
// resolved and checked against the board.
func FromMbedApp(b *sim.Board, app *mbedapp.App, target string) (*AppLayout, error) {
	rom := mbedapp.ROM{Start: uint64(b.MbedROMStart), Size: uint64(b.Flash.Size())}
	r, err := app.Resolve(target, rom)
	if err != nil {
		return nil, err
	}
	out, err := fromResolved(b, r, rom)
	if err != nil && len(app.Targets()) > 0 && !slices.Contains(app.Targets(), target) {
		// The usual cause: a file written for other targets.
		err = fmt.Errorf("%w (the file has no target_overrides for %s; it has them for: %s)", err, target, strings.Join(app.Targets(), ", "))
	}
	return out, err
}

func fromResolved(b *sim.Board, r *mbedapp.Resolved, rom mbedapp.ROM) (*AppLayout, error) {
	target := r.Target
	if r.ROM() != rom {
		return nil, fmt.Errorf("target %s: the configuration places the ROM at 0x%x, %d bytes; board %s has it at 0x%x, %d bytes",
			target, r.ROM().Start, r.ROM().Size, b.Name, rom.Start, rom.Size)
	}
	out := &AppLayout{Layout: &Layout{}, Sources: map[string]string{}}
	l := out.Layout
	switch st, _ := r.Macro("MBED_CLOUD_CLIENT_UPDATE_STORAGE"); st {
	case ucpFlashIAP:
		l.Storage = sim.DeviceInternal
	case ucpFlashIAPBlockDevice:
		// The block device the board uses by default, else its first.
		switch devs := b.External.Devices(); {
		case len(devs) == 0:
			return nil, fmt.Errorf("MBED_CLOUD_CLIENT_UPDATE_STORAGE=%s: board %s has no external storage", st, b.Name)
		case slices.Contains(devs, b.Storage.Default):
			l.Storage = b.Storage.Default
		default:
			l.Storage = devs[0]
		}
	case "":
		return nil, fmt.Errorf("the configuration does not say where candidates live: set MBED_CLOUD_CLIENT_UPDATE_STORAGE in macros (%s for internal flash, %s for a block device)", ucpFlashIAP, ucpFlashIAPBlockDevice)
	default:
		return nil, fmt.Errorf("MBED_CLOUD_CLIENT_UPDATE_STORAGE=%s: bootsim models %s and %s", st, ucpFlashIAP, ucpFlashIAPBlockDevice)
	}
	if p, q := r.Param("mbed-bootloader.application-start-address"), r.Param("app.application-start-address"); (p == nil || p.Value == "") && (q == nil || q.Value == "") {
		return nil, fmt.Errorf("mbed-bootloader.application-start-address is required (mbed-bootloader declares it so): where the active application starts")
	}
	used := map[string]bool{}
	for _, k := range appKeys {
		for _, name := range k.params {
			v, set, err := r.Value(name)
			if err != nil {
				return nil, err
			}
			used[name] = true
			if !set {
				continue
			}
			if k.address && (k.key != "update-client.storage-address" || l.Storage == sim.DeviceInternal) {
				if v < rom.Start {
					return nil, fmt.Errorf("%s = 0x%x is below MBED_ROM_START (0x%x)", name, v, rom.Start)
				}
				v -= rom.Start
			}
			if !l.SetKey(k.key, units.Size(v)) {
				panic("mbedlayout: an app key that is not a layout key: " + k.key)
			}
			out.Sources[k.key] = fmt.Sprintf("%s (%s)", r.Param(name).Value, r.Param(name).Source)
			break
		}
	}
	if l.KVStoreSize > 0 && l.KVStoreAddress == 0 && out.Sources["storage_tdb_internal.internal_base_address"] == "" {
		// Without a base address TDBStore places itself at run time:
		// nothing to draw.
		l.KVStoreSize = 0
	}
	rot, _, err := r.Value("mbed-bootloader.use-kvstore-rot")
	if err != nil {
		return nil, err
	}
	used["mbed-bootloader.use-kvstore-rot"] = true
	l.KVStoreROT = rot != 0 && !l.HasSOTP()
	if p := r.Param("storage.storage_type"); p != nil {
		// get_expected_internal_TDBStore_position (DirectAccessDevicekey.cpp)
		// looks for the device key where the storage type puts the
		// internal TDBStore; bootsim models TDB_INTERNAL's place.
		kind := strings.Trim(p.Value, `"`)
		if l.KVStoreROT && kind != "TDB_INTERNAL" {
			return nil, fmt.Errorf("storage.storage_type %s: bootsim reads the device key from the internal TDBStore of TDB_INTERNAL (storage_tdb_internal.*) only", kind)
		}
		used["storage.storage_type"] = true
	}

	for name, dst := range map[string]*int{"mbed-bootloader.max-boot-retries": &out.MaxBootRetries, "mbed-bootloader.max-copy-retries": &out.MaxCopyRetries} {
		v, _, err := r.Value(name)
		if err != nil {
			return nil, err
		}
		if v > 255 {
			return nil, fmt.Errorf("%s = %d: at most 255", name, v)
		}
		*dst = int(v)
		used[name] = true
	}
	out.Ignored = append(out.Ignored, r.Ignored...)
	for _, k := range r.Unreferenced() {
		if !used[k] && !slices.Contains(out.Ignored, k) {
			out.Ignored = append(out.Ignored, k)
		}
	}
	slices.Sort(out.Ignored)
	if err := l.Resolve(b); err != nil {
		return nil, err
	}
	if l.KVStoreROT && l.KVStoreSize == 0 {
		return nil, fmt.Errorf("mbed-bootloader.use-kvstore-rot = 1 with no storage_tdb_internal.internal_base_address and internal_size: bootsim cannot place the KVStore that holds the device key")
	}
	return out, nil
}
