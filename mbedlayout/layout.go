// Package mbedlayout is the classic profile's flash layout in the terms of
// the Mbed configuration keys (mbed_app.json, update-client.*,
// mbed-bootloader.*, the v3 SOTP sections): the regions it names on a
// board, the candidate slots, and the checks the real configuration makes.
// The virtual MCU (package sim) knows nothing of it.
package mbedlayout

import (
	"fmt"
	"strings"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"go.yaml.in/yaml/v3"
)

// Header sizes fixed by the metadata formats (mbed-stack.md §1).
const (
	InternalHeaderSize = 112
	ExternalHeaderSize = 296
)

// Layout is a flash layout in the terms of the real configuration keys
// (mbed_lib.json, update-client, the v3 SOTP sections), so that a user can
// copy values from their mbed_app.json.
type Layout struct {
	BootloaderSize     units.Size `yaml:"mbed-bootloader.bootloader-size"`
	SOTP1Address       units.Size `yaml:"sotp-section-1-address"`
	SOTP1Size          units.Size `yaml:"sotp-section-1-size"`
	SOTP2Address       units.Size `yaml:"sotp-section-2-address"`
	SOTP2Size          units.Size `yaml:"sotp-section-2-size"`
	ApplicationDetails units.Size `yaml:"update-client.application-details"`
	ApplicationStart   units.Size `yaml:"mbed-bootloader.application-start-address"`
	// MaxApplicationSize defaults to the end of flash, or to the candidate
	// storage when that is on internal flash and above the application.
	MaxApplicationSize units.Size `yaml:"mbed-bootloader.max-application-size"`
	// Storage names the device that holds candidates: internal, sd or spi
	// (MBED_CLOUD_CLIENT_UPDATE_STORAGE: ARM_UCP_FLASHIAP for internal,
	// ARM_UCP_FLASHIAP_BLOCKDEVICE for the others).
	Storage          string     `yaml:"-"`
	StorageAddress   units.Size `yaml:"update-client.storage-address"`
	StorageSize      units.Size `yaml:"update-client.storage-size"`
	StorageLocations int        `yaml:"update-client.storage-locations"`
	StoragePage      units.Size `yaml:"update-client.storage-page"`
	// KVStoreAddress and KVStoreSize place the internal KVStore (TDBStore)
	// of the v4 configurations (storage_tdb_internal.*): drawn and named,
	// not simulated. Zero size: none.
	KVStoreAddress units.Size `yaml:"storage_tdb_internal.internal_base_address"`
	KVStoreSize    units.Size `yaml:"storage_tdb_internal.internal_size"`
	// KVStoreROT says the bootloader reads the device key from KVStore
	// (mbed-bootloader.use-kvstore-rot, the v4 default), not from SOTP.
	KVStoreROT bool `yaml:"-"`
}

// HasSOTP says whether the layout has the SOTP key store (the v3
// configurations); the v4 ones keep the root of trust in KVStore, and
// internal_flash_no_rot needs none.
func (l *Layout) HasSOTP() bool { return l.SOTP1Size != 0 || l.SOTP2Size != 0 }

// Bounds of the configuration keys: the update client supports a handful
// of storage locations; no device here is larger than 1 TiB; no bootloader
// fits in less than 4 KiB (the real one takes 32 KiB).
const (
	MaxStorageLocations = 64
	maxAddress          = 1 << 40
	MinBootloaderSize   = 4 << 10
)

// Slot is one candidate location on the storage device.
type Slot struct {
	Start, Size uint64
}

// Region names used for the layout's parts (and in fault matchers).
const (
	RegionBootloader   = "bootloader"
	RegionSOTP1        = "sotp-1"
	RegionSOTP2        = "sotp-2"
	RegionActiveHeader = "active-header"
	RegionActiveApp    = "active-app"
	RegionKVStore      = "kvstore"
)

// SOTPAreas returns the two areas of the SOTP key store
// (sotp-section-1 and sotp-section-2).
func (l *Layout) SOTPAreas() (sotp.Area, sotp.Area) {
	return sotp.Area{Addr: uint64(l.SOTP1Address), Size: uint64(l.SOTP1Size)},
		sotp.Area{Addr: uint64(l.SOTP2Address), Size: uint64(l.SOTP2Size)}
}

// Warnings lists what in a valid layout the Mbed bootloader would trip
// over at run time.
func (l *Layout) Warnings(b *sim.Board) []string {
	var out []string
	if page := uint64(b.Flash.ProgramUnit); uint64(l.ApplicationStart)%page != 0 {
		out = append(out, fmt.Sprintf("mbed-bootloader.application-start-address 0x%x is not on a %d-byte flash page: the bootloader asserts at its first install (active_application.cpp@v4.1.3:258)", uint64(l.ApplicationStart), page))
	}
	return out
}

// SlotRegion is the region name of candidate slot i.
func SlotRegion(i int) string { return fmt.Sprintf("slot-%d", i) }

// For returns the classic layout of the board with candidates on the given
// storage ("" for the board's default), validated against the board.
func For(b *sim.Board, storageKind string) (*Layout, error) {
	l, err := Raw(b, storageKind)
	if err != nil {
		return nil, err
	}
	if err := l.Resolve(b); err != nil {
		return nil, err
	}
	return l, nil
}

// Raw returns the layout keys the board profile sets for a storage, before
// defaults and checks (Resolve): callers may override keys first.
func Raw(b *sim.Board, storageKind string) (*Layout, error) {
	if storageKind == "" {
		storageKind = b.Storage.Default
	}
	node := b.Storage.Node(storageKind)
	if node == nil || node.Kind == 0 {
		return nil, fmt.Errorf("board %s has no candidate storage %q (it has: %v)", b.Name, storageKind, b.Storages())
	}
	l := &Layout{Storage: storageKind}
	for _, n := range []*yaml.Node{&b.LayoutKeys, node} {
		if n.Kind == 0 {
			continue
		}
		if err := strictyaml.DecodeNode(b.File(), n, l); err != nil {
			return nil, err
		}
	}
	return l, nil
}

// layoutKey is one configuration key of a layout and the field it sets.
type layoutKey struct {
	name  string
	size  *units.Size
	count *int
}

// keys lists the layout's configuration keys in the order mbed_app.json
// files write them.
func (l *Layout) keys() []layoutKey {
	return []layoutKey{
		{name: "mbed-bootloader.bootloader-size", size: &l.BootloaderSize},
		{name: "sotp-section-1-address", size: &l.SOTP1Address},
		{name: "sotp-section-1-size", size: &l.SOTP1Size},
		{name: "sotp-section-2-address", size: &l.SOTP2Address},
		{name: "sotp-section-2-size", size: &l.SOTP2Size},
		{name: "update-client.application-details", size: &l.ApplicationDetails},
		{name: "mbed-bootloader.application-start-address", size: &l.ApplicationStart},
		{name: "mbed-bootloader.max-application-size", size: &l.MaxApplicationSize},
		{name: "update-client.storage-address", size: &l.StorageAddress},
		{name: "update-client.storage-size", size: &l.StorageSize},
		{name: "update-client.storage-locations", count: &l.StorageLocations},
		{name: "update-client.storage-page", size: &l.StoragePage},
		{name: "storage_tdb_internal.internal_base_address", size: &l.KVStoreAddress},
		{name: "storage_tdb_internal.internal_size", size: &l.KVStoreSize},
	}
}

// SetKey sets a layout key by its configuration name. It reports false for a
// key that is not a layout key.
func (l *Layout) SetKey(key string, v units.Size) bool {
	for _, k := range l.keys() {
		if k.name != key {
			continue
		}
		if k.count != nil {
			*k.count = int(v)
		} else {
			*k.size = v
		}
		return true
	}
	return false
}

// Resolve fills the keys that have defaults and checks the layout against the
// board's flash: what the real configuration requires (sector-aligned SOTP
// sections and header, regions that fit and do not overlap).
func (l *Layout) Resolve(b *sim.Board) error {
	flashSize := uint64(b.Flash.Size())
	switch l.Storage {
	case sim.DeviceInternal:
	case sim.DeviceSD, sim.DeviceSPI:
		if b.External.Get(l.Storage) == nil {
			return fmt.Errorf("candidate storage %s: the board has no such device", l.Storage)
		}
	default:
		return fmt.Errorf("unknown candidate storage %q (want internal, sd or spi)", l.Storage)
	}
	if l.StorageLocations == 0 {
		l.StorageLocations = 1
	}
	// Counts and sizes are checked before anything is built from them:
	// a billion locations is a billion slots.
	if l.StorageLocations < 1 || l.StorageLocations > MaxStorageLocations {
		return fmt.Errorf("update-client.storage-locations %d: want 1 to %d", l.StorageLocations, MaxStorageLocations)
	}
	for _, k := range l.keys() {
		if k.size != nil && uint64(*k.size) > maxAddress {
			return fmt.Errorf("%s 0x%x: past any device's end (0x%x)", k.name, uint64(*k.size), uint64(maxAddress))
		}
	}
	if l.StoragePage == 0 {
		l.StoragePage = 1
	}
	if l.MaxApplicationSize == 0 {
		end := flashSize
		if l.Storage == sim.DeviceInternal && uint64(l.StorageAddress) > uint64(l.ApplicationStart) {
			end = uint64(l.StorageAddress)
		}
		if end <= uint64(l.ApplicationStart) {
			return fmt.Errorf("mbed-bootloader.application-start-address 0x%x is past the end of flash", uint64(l.ApplicationStart))
		}
		l.MaxApplicationSize = units.Size(end - uint64(l.ApplicationStart))
	}
	if l.StorageSize == 0 {
		if l.Storage == sim.DeviceInternal {
			return fmt.Errorf("update-client.storage-size is required for candidates on internal flash")
		}
		// configs/internal_kvstore_with_sd.json: the maximum application size
		// times the number of locations, each slot holding a header first.
		hdr := alignUp(ExternalHeaderSize, uint64(l.StoragePage))
		l.StorageSize = units.Size((uint64(l.MaxApplicationSize) + hdr) * uint64(l.StorageLocations))
	}
	switch {
	case l.BootloaderSize == 0:
		return fmt.Errorf("mbed-bootloader.bootloader-size is required")
	case l.BootloaderSize < MinBootloaderSize:
		return fmt.Errorf("mbed-bootloader.bootloader-size %d: the bootloader needs at least %d bytes", uint64(l.BootloaderSize), MinBootloaderSize)
	case l.ApplicationStart <= l.ApplicationDetails:
		return fmt.Errorf("mbed-bootloader.application-start-address 0x%x must be above update-client.application-details 0x%x",
			uint64(l.ApplicationStart), uint64(l.ApplicationDetails))
	case uint64(l.ApplicationStart-l.ApplicationDetails) < InternalHeaderSize:
		return fmt.Errorf("the active header region (0x%x..0x%x) is smaller than the %d-byte header",
			uint64(l.ApplicationDetails), uint64(l.ApplicationStart), InternalHeaderSize)
	case l.StorageLocations < 1:
		return fmt.Errorf("update-client.storage-locations must be at least 1")
	}
	if !onSector(b, uint64(l.ApplicationDetails)) {
		return fmt.Errorf("update-client.application-details 0x%x must align to a flash erase boundary", uint64(l.ApplicationDetails))
	}
	// An application start off the flash page is not refused here: the
	// Mbed tools build it, and the bootloader asserts when it first copies
	// (Warnings).
	for i, sec := range [][2]units.Size{{l.SOTP1Address, l.SOTP1Size}, {l.SOTP2Address, l.SOTP2Size}} {
		a, n := uint64(sec[0]), uint64(sec[1])
		if !l.HasSOTP() {
			break
		}
		if n < 1024 || !onSector(b, a) || !onSector(b, a+n) {
			return fmt.Errorf("sotp-section-%d (0x%x, %d bytes) must be whole flash sectors and at least 1 KiB", i+1, a, n)
		}
	}
	if n := uint64(l.KVStoreSize); n > 0 && (!onSector(b, uint64(l.KVStoreAddress)) || !onSector(b, uint64(l.KVStoreAddress)+n)) {
		return fmt.Errorf("the KVStore (storage_tdb_internal.internal_base_address 0x%x, %d bytes) must be whole flash sectors", uint64(l.KVStoreAddress), n)
	}
	// The PALs round the area to erase boundaries, but one that runs past
	// the device is a configuration error (the real flash driver answers
	// an invalid sector size there), not a smaller area.
	devSize := b.DeviceSize(l.Storage)
	if end := uint64(l.StorageAddress + l.StorageSize); end > devSize {
		return fmt.Errorf("the candidate storage (update-client.storage-address 0x%x + update-client.storage-size 0x%x) runs past the end of %s (0x%x bytes)",
			uint64(l.StorageAddress), uint64(l.StorageSize), l.Storage, devSize)
	}
	regions := l.Regions(b)
	for _, r := range regions {
		dev := b.DeviceSize(r.Device)
		if r.End() > dev {
			return fmt.Errorf("%s (0x%x..0x%x) does not fit in %s (0x%x bytes)", r.Name, r.Start, r.End(), r.Device, dev)
		}
	}
	for i, r := range regions {
		for _, o := range regions[:i] {
			if r.Device == o.Device && r.Start < o.End() && o.Start < r.End() {
				return fmt.Errorf("%s (0x%x..0x%x) overlaps %s (0x%x..0x%x)", r.Name, r.Start, r.End(), o.Name, o.Start, o.End())
			}
		}
	}
	if len(l.Slots(b)) == 0 {
		return fmt.Errorf("update-client.storage-size 0x%x leaves no whole slot", uint64(l.StorageSize))
	}
	return nil
}

// Regions returns the layout's named regions: bootloader, SOTP areas, the
// active header and application, and one region per candidate slot.
func (l *Layout) Regions(b *sim.Board) []storage.Region {
	rs := []storage.Region{{Name: RegionBootloader, Device: sim.DeviceInternal, Start: 0, Size: uint64(l.BootloaderSize)}}
	if l.HasSOTP() {
		rs = append(rs,
			storage.Region{Name: RegionSOTP1, Device: sim.DeviceInternal, Start: uint64(l.SOTP1Address), Size: uint64(l.SOTP1Size)},
			storage.Region{Name: RegionSOTP2, Device: sim.DeviceInternal, Start: uint64(l.SOTP2Address), Size: uint64(l.SOTP2Size)})
	}
	if l.KVStoreSize > 0 {
		rs = append(rs, storage.Region{Name: RegionKVStore, Device: sim.DeviceInternal, Start: uint64(l.KVStoreAddress), Size: uint64(l.KVStoreSize)})
	}
	rs = append(rs,
		storage.Region{Name: RegionActiveHeader, Device: sim.DeviceInternal, Start: uint64(l.ApplicationDetails), Size: uint64(l.ApplicationStart - l.ApplicationDetails)},
		storage.Region{Name: RegionActiveApp, Device: sim.DeviceInternal, Start: uint64(l.ApplicationStart), Size: uint64(l.MaxApplicationSize)})
	for i, s := range l.Slots(b) {
		rs = append(rs, storage.Region{Name: SlotRegion(i), Device: l.Storage, Start: s.Start, Size: s.Size})
	}
	return rs
}

// Slots splits the candidate storage into update-client.storage-locations
// equal slots the way the PALs do (arm_uc_pal_flashiap_get_slot_addr_size and
// its block-device twin): the area's start rounded up and its end rounded
// down to erase boundaries, divided equally, each slot's start and end
// rounded down to an erase boundary.
func (l *Layout) Slots(b *sim.Board) []Slot {
	start, end := uint64(l.StorageAddress), uint64(l.StorageAddress+l.StorageSize)
	e := l.boundaries(b)
	start, end = e.up(start), e.down(end)
	if end <= start || l.StorageLocations < 1 {
		return nil
	}
	per := (end - start) / uint64(l.StorageLocations)
	var out []Slot
	for i := range uint64(l.StorageLocations) {
		s := e.down(start + i*per)
		t := e.down(s + per)
		if t <= s {
			return nil
		}
		out = append(out, Slot{Start: s, Size: t - s})
	}
	return out
}

// SlotBody returns where the firmware of candidate slot i starts: after the
// slot's header (the 112-byte internal header on internal flash, the
// 296-byte external one elsewhere), rounded up to the storage device's
// program unit, as the PALs lay a slot out.
func (l *Layout) SlotBody(b *sim.Board, i int, programUnit uint64) uint64 {
	hdr := uint64(ExternalHeaderSize)
	if l.Storage == sim.DeviceInternal {
		hdr = InternalHeaderSize
	}
	return l.Slots(b)[i].Start + alignUp(hdr, programUnit)
}

// erase rounds addresses on the candidate storage to its erase boundaries:
// the internal flash's sectors, or a unit (an SPI flash's sector, an SD
// card's block). A value, not closures: Slots runs at every boot.
type erase struct {
	b    *sim.Board
	unit uint64 // 0: the internal flash's sectors
}

func (l *Layout) boundaries(b *sim.Board) erase {
	switch l.Storage {
	case sim.DeviceInternal:
		return erase{b: b}
	case sim.DeviceSPI:
		return erase{b: b, unit: uint64(b.External.Get(sim.DeviceSPI).SectorSize)}
	}
	return erase{b: b, unit: storage.SDBlockSize}
}

// down rounds a down to an erase boundary.
func (e erase) down(a uint64) uint64 {
	if e.unit == 0 {
		return sectorFloor(e.b, a)
	}
	return a / e.unit * e.unit
}

// up rounds a up to an erase boundary.
func (e erase) up(a uint64) uint64 {
	if e.unit == 0 {
		if f, n := sectorAt(e.b, a); f != a {
			return f + n
		}
		return a
	}
	return alignUp(a, e.unit)
}

// sectorAt returns the start and size of the internal-flash sector holding
// addr (for addresses past the end of flash: the end, and the last sector's
// size).
func sectorAt(b *sim.Board, addr uint64) (start, size uint64) {
	var at uint64
	for _, s := range b.Flash.Sectors {
		for range s.Count {
			if addr < at+uint64(s.Size) {
				return at, uint64(s.Size)
			}
			at += uint64(s.Size)
		}
	}
	return at, uint64(b.Flash.Sectors[len(b.Flash.Sectors)-1].Size)
}

func sectorFloor(b *sim.Board, addr uint64) uint64 {
	start, _ := sectorAt(b, addr)
	return start
}

func onSector(b *sim.Board, addr uint64) bool { return sectorFloor(b, addr) == addr }

func alignUp(a, unit uint64) uint64 {
	if unit <= 1 {
		return a
	}
	return (a + unit - 1) / unit * unit
}

// Keys returns the layout as (config key, value) pairs in a stable order, as
// mbed_app.json would set them: addresses and sizes in hex, counts in decimal.
func (l *Layout) Keys() [][2]string {
	var out [][2]string
	for _, k := range l.keys() {
		switch {
		case strings.HasPrefix(k.name, "sotp-section-") && !l.HasSOTP(),
			strings.HasPrefix(k.name, "storage_tdb_internal.") && l.KVStoreSize == 0:
			continue // what the layout does not have
		}
		v := ""
		switch {
		case k.count != nil:
			v = fmt.Sprint(*k.count)
		case k.name == "update-client.storage-page":
			v = fmt.Sprint(uint64(*k.size))
		default:
			v = fmt.Sprintf("0x%x", uint64(*k.size))
		}
		out = append(out, [2]string{k.name, v})
	}
	return out
}
