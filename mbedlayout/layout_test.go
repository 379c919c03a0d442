package mbedlayout

import (
	"os"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestEveryBoardLays: every built-in board gives a valid layout for every
// candidate storage it names, whose regions a storage system accepts.
func TestEveryBoardLays(t *testing.T) {
	for _, b := range sim.Boards() {
		s := b.NewStorage(nil)
		for _, kind := range b.Storages() {
			l, err := For(b, kind)
			require.NoError(t, err, "%s %s", b.Name, kind)
			for _, r := range l.Regions(b) {
				require.NoError(t, s.AddRegion(r), "%s: %s", kind, r.Name)
			}
		}
	}
}

// TestK64FClassicLayout checks the default K64F layout against the v3.3.0
// configuration (configs/internal_flash_sotp.json) and the SD variant.
func TestK64FClassicLayout(t *testing.T) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	l, err := For(b, "")
	require.NoError(t, err)
	require.Equal(t, sim.DeviceSD, l.Storage)
	want := []storage.Region{
		{Name: "bootloader", Device: "internal", Start: 0, Size: 0x8000},
		{Name: "sotp-1", Device: "internal", Start: 0x8000, Size: 0x1000},
		{Name: "sotp-2", Device: "internal", Start: 0x9000, Size: 0x1000},
		{Name: "active-header", Device: "internal", Start: 0xA000, Size: 0x400},
		{Name: "active-app", Device: "internal", Start: 0xA400, Size: 0x100000 - 0xA400},
		// One slot: the external header (296 B, padded to a 512 B block) and the
		// largest application.
		{Name: "slot-0", Device: "sd", Start: 0, Size: 0x200 + 0x100000 - 0xA400},
	}
	require.Empty(t, cmp.Diff(want, l.Regions(b)))

	li, err := For(b, "internal")
	require.NoError(t, err)
	require.Equal(t, uint64(436<<10-41<<10), uint64(li.MaxApplicationSize), "max-application-size = storage-address - application-start-address")
	require.Equal(t, []Slot{{Start: 436 << 10, Size: 388 << 10}}, li.Slots(b))
}

func TestLayoutSlots(t *testing.T) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	l, err := For(b, "internal")
	require.NoError(t, err)
	// Two locations over 388 KiB of 4 KiB sectors: 194 KiB each, on sector boundaries.
	l.StorageLocations = 2
	require.Equal(t, []Slot{{Start: 436 << 10, Size: 192 << 10}, {Start: 630 << 10 / 4096 * 4096, Size: 192 << 10}}, l.Slots(b))
	// A storage area that starts off a sector boundary is rounded up.
	l.StorageLocations = 1
	l.StorageAddress = 436<<10 + 100
	require.Equal(t, []Slot{{Start: 440 << 10, Size: 384 << 10}}, l.Slots(b))
}

func TestLayoutErrors(t *testing.T) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		change func(*Layout)
		want   string
	}{
		{"header-unaligned", func(l *Layout) { l.ApplicationDetails = 0xA100 }, "must align to a flash erase boundary"},
		{"app-below-header", func(l *Layout) { l.ApplicationStart = 0x9800 }, "must be above update-client.application-details"},
		{"header-region-too-small", func(l *Layout) { l.ApplicationStart = 0xA040 }, "smaller than the 112-byte header"},
		{"sotp-partial-sector", func(l *Layout) { l.SOTP2Size = 0x800 }, "sotp-section-2"},
		{"overlap", func(l *Layout) { l.SOTP2Address = 0x8000 }, "sotp-2 (0x8000..0x9000) overlaps sotp-1"},
		{"past-end", func(l *Layout) { l.MaxApplicationSize = 0x100000 }, "active-app (0xa400..0x10a400) does not fit in internal"},
		{"internal-needs-size", func(l *Layout) { l.Storage = sim.DeviceInternal; l.StorageSize = 0; l.StorageAddress = 0x80000 }, "storage-size is required"},
		{"no-spi", func(l *Layout) { l.Storage = sim.DeviceSPI }, "the board has no such device"},
		{"storage-past-end", func(l *Layout) {
			l.Storage, l.StorageAddress, l.StorageSize, l.MaxApplicationSize = sim.DeviceInternal, 0x80000, 0x81000, 0x70000
		}, "(update-client.storage-address 0x80000 + update-client.storage-size 0x81000) runs past the end of internal (0x100000 bytes)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l, err := For(b, "")
			require.NoError(t, err)
			l.MaxApplicationSize, l.StorageSize = 0, 0
			tc.change(l)
			require.ErrorContains(t, l.Resolve(b), tc.want)
		})
	}
}

// TestSlotBody: a slot's firmware follows its header rounded up to the
// program unit: 0x70 on internal flash with 8-byte pages (the smoke test's
// storage-address + 0x70), 0x200 on an SD card, 296 on SPI NOR.
func TestSlotBody(t *testing.T) {
	k, _ := sim.LoadBoard("k64f")
	li, _ := For(k, "internal")
	require.Equal(t, uint64(436<<10+0x70), li.SlotBody(k, 0, 8))
	ls, _ := For(k, "sd")
	require.Equal(t, uint64(0x200), ls.SlotBody(k, 0, 512))
	d, _ := sim.LoadBoard("disco-l475vg")
	lq, _ := For(d, "spi")
	require.Equal(t, uint64(296), lq.SlotBody(d, 0, 1))
}

// TestLayoutEdges: the defaults a layout fills and the checks at their
// edges.
func TestLayoutEdges(t *testing.T) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	fresh := func(kind string) *Layout {
		l, err := Raw(b, kind)
		require.NoError(t, err)
		return l
	}

	// Defaults: one location, the application up to the end of flash, and
	// on an SD card one slot per location of a header plus the maximum
	// application size.
	l := fresh("sd")
	require.NoError(t, l.Resolve(b))
	require.Equal(t, 1, l.StorageLocations)
	require.Equal(t, uint64(1<<20-41<<10), uint64(l.MaxApplicationSize))
	require.Equal(t, []Slot{{Start: 0, Size: uint64(l.MaxApplicationSize) + 512}}, l.Slots(b))
	l = fresh("sd")
	l.StorageLocations = 2
	require.NoError(t, l.Resolve(b))
	require.Equal(t, 2, l.StorageLocations, "a given number of locations is kept")
	max := uint64(l.MaxApplicationSize) + 512
	require.Equal(t, []Slot{{Start: 0, Size: max}, {Start: max, Size: max}}, l.Slots(b))

	// Candidates on internal flash above the application end it.
	l = fresh("internal")
	require.NoError(t, l.Resolve(b))
	require.Equal(t, uint64(436<<10-41<<10), uint64(l.MaxApplicationSize))

	// Regions may touch: SOTP at the end of flash (K64F's default place)
	// right after an application region that ends where it starts.
	l = fresh("sd")
	l.SOTP1Address, l.SOTP2Address = 0xFE000, 0xFF000
	l.MaxApplicationSize = 0xFE000 - 0xA400
	require.NoError(t, l.Resolve(b))
	l = fresh("sd")
	l.SOTP1Address, l.SOTP2Address = 0xFE000, 0xFF000
	l.MaxApplicationSize = 0xFE000 - 0xA400 + 8
	require.ErrorContains(t, l.Resolve(b), "active-app (0xa400..0xfe008) overlaps sotp-1 (0xfe000..0xff000)")

	// Slots smaller than a sector are no slots.
	l = fresh("internal")
	l.StorageSize, l.StorageLocations = 8<<10, 3
	require.ErrorContains(t, l.Resolve(b), "leaves no whole slot")
	l = fresh("internal")
	l.StorageSize, l.StorageLocations = 8<<10, 2
	require.NoError(t, l.Resolve(b))

	// An application start at the end of flash leaves no room.
	l = fresh("sd")
	l.ApplicationDetails, l.ApplicationStart = 0xFF000, 0x100000
	require.ErrorContains(t, l.Resolve(b), "past the end of flash")
}

// TestLayoutKeys: a layout's keys are set by their configuration names and
// printed as mbed_app.json writes them.
func TestLayoutKeys(t *testing.T) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	l, err := For(b, "internal")
	require.NoError(t, err)
	require.True(t, l.SetKey("update-client.storage-locations", 2))
	require.True(t, l.SetKey("update-client.storage-size", 0x20000))
	require.False(t, l.SetKey("update-client.storage-sizes", 1))
	require.Equal(t, 2, l.StorageLocations)
	keys := map[string]string{}
	for _, kv := range l.Keys() {
		keys[kv[0]] = kv[1]
	}
	require.Equal(t, "2", keys["update-client.storage-locations"])
	require.Equal(t, "0x20000", keys["update-client.storage-size"])
	require.Equal(t, "8", keys["update-client.storage-page"])
	require.Equal(t, "0xa400", keys["mbed-bootloader.application-start-address"])
	require.Len(t, l.Keys(), len(keys))
}

// TestBoardFileLayoutChecked: a board file whose layout keys make no valid
// layout parses (the board is hardware), and the layout says why.
func TestBoardFileLayoutChecked(t *testing.T) {
	k, err := os.ReadFile("../sim/boards/k64f.yaml")
	require.NoError(t, err)
	b, err := sim.ParseBoard("mine.yaml", []byte(strings.Replace(string(k), "(41*1024)", "(40*1024)+64", 1)))
	require.NoError(t, err)
	_, err = For(b, "")
	require.ErrorContains(t, err, "smaller than the 112-byte header")
}
