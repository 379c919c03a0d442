package mbedlayout

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/bootsim/bootsim/mbedapp"
	"github.com/bootsim/bootsim/sim"
	"github.com/stretchr/testify/require"
)

// The testdata files are upstream's (PelionIoT/mbed-bootloader):
// configs/internal_flash_no_rot.json and internal_kvstore_with_sd.json at
// d02afab, the K64F configuration of v3.3.0 (internal_flash_sotp.json),
// and the smoke test's table of offsets (TESTS/smoke/configs.md).

func appLayout(t *testing.T, file, target string) *AppLayout {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	require.NoError(t, err)
	app, err := mbedapp.Parse(file, data)
	require.NoError(t, err)
	b, err := sim.LoadBoard(target)
	require.NoError(t, err)
	al, err := FromMbedApp(b, app, target)
	require.NoError(t, err, "%s for %s", file, target)
	return al
}

// smokeTable reads the smoke test's offsets per target: header, app,
// update header, update app (relative to MBED_ROM_START).
func smokeTable(t *testing.T) map[string][4]uint64 {
	data, err := os.ReadFile("testdata/smoke_configs.md")
	require.NoError(t, err)
	out := map[string][4]uint64{}
	row := regexp.MustCompile(`(?m)^\|([A-Z0-9_]+)\|[^|]*\|(0x[0-9a-f]+)\|(0x[0-9a-f]+)\|(0x[0-9a-f]+)\|(0x[0-9a-f]+)\|$`)
	for _, m := range row.FindAllStringSubmatch(string(data), -1) {
		var v [4]uint64
		for i := range v {
			v[i], err = strconv.ParseUint(m[i+2], 0, 64)
			require.NoError(t, err)
		}
		out[m[1]] = v
	}
	require.Len(t, out, 8)
	return out
}

// TestNoROTConfigMatchesSmokeTable: internal_flash_no_rot.json lays every
// built-in board out as the smoke test expects: the active header right
// after the 32 KiB bootloader, the application 1 KiB later, the
// candidate's header at the start of the second bank, its body 0x70
// after. The table predates the KVStore the configuration now puts at
// the second bank's start (its comment draws it), so the candidate sits
// KVSTORE_SIZE above the table's offset.
func TestNoROTConfigMatchesSmokeTable(t *testing.T) {
	table := smokeTable(t)
	kvstore := map[string]uint64{"K64F": 2 * 16 << 10, "NUCLEO_F429ZI": 2 * 64 << 10, "DISCO_L475VG_IOT01A": 2 * 16 << 10}
	for _, target := range sim.MbedTargets() {
		b, err := sim.LoadBoard(target)
		require.NoError(t, err)
		al := appLayout(t, "internal_flash_no_rot.json", target)
		l := al.Layout
		want := table[target]
		require.Equal(t, sim.DeviceInternal, l.Storage, target)
		require.Equal(t, want[0], uint64(l.ApplicationDetails), "%s header offset", target)
		require.Equal(t, want[1], uint64(l.ApplicationStart), "%s app offset", target)
		require.Equal(t, want[2]+kvstore[target], uint64(l.StorageAddress), "%s update header offset", target)
		require.Equal(t, want[3]+kvstore[target], l.SlotBody(b, 0, uint64(b.Flash.ProgramUnit)), "%s update app offset", target)
		require.False(t, l.HasSOTP(), "no root of trust")
		require.False(t, l.KVStoreROT, "mbed-bootloader.use-kvstore-rot: 0")
		for _, r := range l.Regions(b) {
			require.NotContains(t, []string{RegionSOTP1, RegionSOTP2}, r.Name)
		}
	}
}

// TestKVStoreWithSDConfig: the v4 default configuration: the KVStore
// right after the bootloader, the header after it, candidates on the
// board's external device from address 0, sized for the largest
// application; the root of trust is in KVStore.
func TestKVStoreWithSDConfig(t *testing.T) {
	for _, target := range []string{"K64F", "NUCLEO_F429ZI", "DISCO_L475VG_IOT01A"} {
		b, err := sim.LoadBoard(target)
		require.NoError(t, err)
		l := appLayout(t, "internal_kvstore_with_sd.json", target).Layout
		require.Equal(t, b.External.Devices()[0], l.Storage)
		require.Equal(t, uint64(0x8000), uint64(l.KVStoreAddress))
		require.Equal(t, uint64(0x8000), uint64(l.KVStoreSize), "APP_KVSTORE_SIZE=(2*16*1024)")
		require.Equal(t, uint64(0x10000), uint64(l.ApplicationDetails))
		require.Equal(t, uint64(0x10400), uint64(l.ApplicationStart))
		require.Equal(t, uint64(b.Flash.Size())-0x10400, uint64(l.MaxApplicationSize), "DEFAULT_MAX_APPLICATION_SIZE")
		require.Equal(t, uint64(0), uint64(l.StorageAddress))
		require.Equal(t, uint64(l.MaxApplicationSize), uint64(l.StorageSize))
		require.True(t, l.KVStoreROT)
		require.False(t, l.HasSOTP())
	}
}

// TestV33SOTPConfig: the v3.3.0 bootloader's K64F configuration is the
// built-in K64F layout with candidates on internal flash, key for key;
// its application-level keys (application-start-address,
// sotp-section-*) are read as the v3.3.0 code did.
func TestV33SOTPConfig(t *testing.T) {
	b, err := sim.LoadBoard("K64F")
	require.NoError(t, err)
	al := appLayout(t, "v3.3.0_internal_flash_sotp.json", "K64F")
	builtin, err := For(b, sim.DeviceInternal)
	require.NoError(t, err)
	require.Equal(t, builtin.Keys(), al.Layout.Keys())
	require.Contains(t, al.Sources["update-client.storage-size"], "(388*1024) (target_overrides K64F)")
	require.Contains(t, al.Ignored, "platform.stdio-baud-rate")
	require.Contains(t, al.Ignored, "target.features_add")
	require.NotContains(t, al.Ignored, "update-client.storage-size")

	// For a target the file has no overrides for, the error says so.
	data, err := os.ReadFile("testdata/v3.3.0_internal_flash_sotp.json")
	require.NoError(t, err)
	app, err := mbedapp.Parse("v3.json", data)
	require.NoError(t, err)
	f429, err := sim.LoadBoard("NUCLEO_F429ZI")
	require.NoError(t, err)
	_, err = FromMbedApp(f429, app, "NUCLEO_F429ZI")
	require.ErrorContains(t, err, "mbed-bootloader.application-start-address is required (mbed-bootloader declares it so): where the active application starts (the file has no target_overrides for NUCLEO_F429ZI; it has them for: K64F)")
}

// TestMbedAppErrors: what a configuration gets wrong is said in its
// terms.
func TestMbedAppErrors(t *testing.T) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	for src, want := range map[string]string{
		`{}`: "does not say where candidates live: set MBED_CLOUD_CLIENT_UPDATE_STORAGE",
		`{"macros": ["MBED_CLOUD_CLIENT_UPDATE_STORAGE=ARM_UCP_SDCARD"]}`:               "MBED_CLOUD_CLIENT_UPDATE_STORAGE=ARM_UCP_SDCARD: bootsim models ARM_UCP_FLASHIAP and ARM_UCP_FLASHIAP_BLOCKDEVICE",
		`{"macros": ["MBED_CLOUD_CLIENT_UPDATE_STORAGE=ARM_UCP_FLASHIAP_BLOCKDEVICE"]}`: "mbed-bootloader.application-start-address is required",
		`{"macros": ["MBED_CLOUD_CLIENT_UPDATE_STORAGE=ARM_UCP_FLASHIAP_BLOCKDEVICE"], "target_overrides": {"*": {"mbed-bootloader.application-start-address": "0x8400", "update-client.application-details": "0x8000", "target.mbed_rom_size": "0x80000"}}}`:       "the configuration places the ROM at 0x0, 524288 bytes; board k64f has it at 0x0, 1048576 bytes",
		`{"macros": ["MBED_CLOUD_CLIENT_UPDATE_STORAGE=ARM_UCP_FLASHIAP_BLOCKDEVICE"], "target_overrides": {"*": {"mbed-bootloader.application-start-address": "0x8400", "update-client.application-details": "0x9000"}}}`:                                          "must be above update-client.application-details",
		`{"macros": ["MBED_CLOUD_CLIENT_UPDATE_STORAGE=ARM_UCP_FLASHIAP"], "target_overrides": {"*": {"mbed-bootloader.application-start-address": "0x8400", "update-client.application-details": "(MBED_ROM_START - 1)"}}}`:                                        `update-client.application-details = "(MBED_ROM_START - 1)" (target_overrides *): "(MBED_ROM_START - 1)": 0 - 1 is below zero`,
		`{"macros": ["MBED_CLOUD_CLIENT_UPDATE_STORAGE=ARM_UCP_FLASHIAP_BLOCKDEVICE"], "target_overrides": {"*": {"mbed-bootloader.application-start-address": "0x8400", "update-client.application-details": "0x8000", "mbed-bootloader.max-boot-retries": 300}}}`: "mbed-bootloader.max-boot-retries = 300: at most 255",
	} {
		app, err := mbedapp.Parse("mbed_app.json", []byte(src))
		require.NoError(t, err)
		_, err = FromMbedApp(b, app, "K64F")
		require.ErrorContains(t, err, want, src)
	}
}
