package scenarios

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/sim"
	"github.com/stretchr/testify/require"
)

// files is a ReadFile over a map, for scenarios that name files.
func files(m map[string]string) ReadFile {
	return func(name string) ([]byte, error) {
		if s, ok := m[name]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

// TestOwnBoardFile: a scenario names a board file of its own, written from
// a built-in one (bootsim boards --show); the board's figures are the
// file's, and the scenario runs on it as on the built-in board.
func TestOwnBoardFile(t *testing.T) {
	src, _, err := sim.BoardSource("k64f")
	require.NoError(t, err)
	// A slower part: twice the sector erase time.
	mine := strings.Replace(strings.Replace(string(src), "name: k64f", "name: my-k64f", 1), "erase-time: 15ms", "erase-time: 30ms", 1)
	scen := strings.Replace(base, "board: k64f", "board: boards/mine.yaml", 1)
	l, err := Load("s.yaml", []byte(scen), files(map[string]string{"boards/mine.yaml": mine}))
	require.NoError(t, err)
	require.Equal(t, "my-k64f", l.Board.Name)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	require.True(t, res.Passed, res.Failures())

	ref, err := Load("s.yaml", []byte(base), nil)
	require.NoError(t, err)
	refRes, err := Run(ref, Options{})
	require.NoError(t, err)
	// The same install, each of its erases twice as long.
	require.Greater(t, res.VirtualTime, refRes.VirtualTime)
	require.Equal(t, refRes.Boots, res.Boots)
}

// TestBoardByMbedTarget: the Mbed target name picks the built-in board.
func TestBoardByMbedTarget(t *testing.T) {
	for target, name := range map[string]string{"K64F": "k64f", "nucleo_f429zi": "nucleo-f429zi", "DISCO_L475VG_IOT01A": "disco-l475vg"} {
		b, err := sim.LoadBoard(target)
		require.NoError(t, err, target)
		require.Equal(t, name, b.Name)
	}
	_, err := sim.LoadBoard("K66F")
	require.True(t, errors.Is(err, sim.ErrUnknownBoard))
	require.ErrorContains(t, err, "K64F, NUCLEO_F429ZI")
}

// TestOwnBoardFileErrors: a board file that does not exist or does not
// parse is reported where the scenario names it, with the board file's
// own line and column.
func TestOwnBoardFileErrors(t *testing.T) {
	scen := strings.Replace(base, "board: k64f", "board: mine.yaml", 1)
	_, err := Load("s.yaml", []byte(scen), files(nil))
	require.ErrorContains(t, err, "s.yaml:4:10: device.board: open mine.yaml: file does not exist")

	src, _, err := sim.BoardSource("k64f")
	require.NoError(t, err)
	line := 1 + strings.Count(string(src[:strings.Index(string(src), "program-unit: 8 ")]), "\n")
	for _, tc := range []struct{ edit, want string }{
		{strings.Replace(string(src), "program-unit: 8 ", "program-unit: eight ", 1), fmt.Sprintf("s.yaml:4:10: device.board: mine.yaml:%d:17: size \"eight\"", line)},
		{strings.Replace(string(src), "count: 256", "count: 2000000", 1), "flash.sectors[0]: 2000000 sectors of 4KiB: past any microcontroller's flash"},
		{strings.Replace(string(src), "size: 64MiB", "size: 4096GiB", 1), "external.size 4096GiB: at most 1 TiB"},
		{strings.Replace(string(src), "name: k64f", "name: my board", 1), `name "my board"`},
	} {
		_, err := Load("s.yaml", []byte(scen), files(map[string]string{"mine.yaml": tc.edit}))
		require.ErrorContains(t, err, tc.want)
	}
	_, err = Load("s.yaml", []byte(scen), nil)
	require.ErrorContains(t, err, "cannot name files")
}

// TestMbedAppScenario: a scenario laid out by upstream's
// internal_flash_no_rot.json for K64F (device: {mbed-app, target}, the
// board the target's): the candidate in the second bank installs over
// the active image right after the 32 KiB bootloader; no SOTP is
// provisioned (there is none), so sotp-intact does not apply.
func TestMbedAppScenario(t *testing.T) {
	cfg, err := os.ReadFile("../mbedlayout/testdata/internal_flash_no_rot.json")
	require.NoError(t, err)
	src := `scenario: no-rot
summary: An install as internal_flash_no_rot.json lays K64F out.
device: {mbed-app: mbed_app.json, target: K64F}
firmware:
  app-v1: {version: 1561517193, size: 200KiB}
  app-v2: {version: 1561520000, size: 210KiB}
factory: {active: app-v1, slots: [app-v2]}
steps:
  - power-on
  - wait: {until: {running: app-v2}, timeout: 60s}
expect:
  - running: app-v2
  - region: {region: active-app, firmware: app-v2}
  - region: {region: slot-0, firmware: app-v2}
`
	l, err := Load("s.yaml", []byte(src), files(map[string]string{"mbed_app.json": string(cfg)}))
	require.NoError(t, err)
	require.Equal(t, "k64f", l.Board.Name)
	require.Equal(t, uint64(0x8400), uint64(l.Layout.ApplicationStart))
	require.Equal(t, uint64(0x88000), uint64(l.Layout.StorageAddress))
	require.Nil(t, l.ROT)
	res, err := Run(l, Options{RegionContents: true})
	require.NoError(t, err)
	require.True(t, res.Passed, res.Failures())
	for _, inv := range res.Invariants {
		if inv.Name == InvSOTPIntact {
			require.Equal(t, StatusNA, inv.Status, inv.Detail)
		}
	}
	for _, r := range res.Regions {
		require.NotContains(t, []string{"sotp-1", "sotp-2"}, r.Name)
	}

	// device.config still applies on top of the file, and errors point at
	// what is wrong.
	withCfg := strings.Replace(src, "target: K64F}", "target: K64F, config: {mbed-bootloader.max-boot-retries: 5}}", 1)
	l, err = Load("s.yaml", []byte(withCfg), files(map[string]string{"mbed_app.json": string(cfg)}))
	require.NoError(t, err)
	require.Equal(t, 5, l.Boot.MaxBootRetries)
	for _, tc := range []struct{ src, cfg, want string }{
		{src, `{"macros": ["MBED_CLOUD_CLIENT_UPDATE_STORAGE=ARM_UCP_FLASHIAP"]}`, "s.yaml:3:9: device.mbed-app: mbed_app.json for K64F: mbed-bootloader.application-start-address is required"},
		{src, "{", "s.yaml:3:9: device.mbed-app: mbed_app.json:1:2: not an mbed_app.json: the file ends too soon"},
		{strings.Replace(src, "target: K64F}", "target: K64F, storage: sd}", 1), string(cfg), "device.storage: the mbed_app.json says where candidates live"},
		{strings.Replace(src, "target: K64F}", "target: K64F, profile: chain}", 1), string(cfg), "the chain profile lays its device out itself"},
		{strings.Replace(src, "target: K64F}", "target: K66F}", 1), string(cfg), `device.board: unknown board "K66F"`},
	} {
		_, err := Load("s.yaml", []byte(tc.src), files(map[string]string{"mbed_app.json": tc.cfg}))
		require.ErrorContains(t, err, tc.want)
	}
	// The v3.3.0 K64F configuration (SOTP, candidates on internal flash)
	// runs as it is, with a root of trust provisioned.
	v33, err := os.ReadFile("../mbedlayout/testdata/v3.3.0_internal_flash_sotp.json")
	require.NoError(t, err)
	l, err = Load("s.yaml", []byte(src), files(map[string]string{"mbed_app.json": string(v33)}))
	require.NoError(t, err)
	require.Equal(t, uint64(0x6d000), uint64(l.Layout.StorageAddress))
	require.NotNil(t, l.ROT)
	res, err = Run(l, Options{})
	require.NoError(t, err)
	require.True(t, res.Passed, res.Failures())

	// Upstream's v4 configuration keeps the root of trust in the internal
	// KVStore and candidates on the SD card: on each of its targets the ROT
	// is provisioned there and read back by the bootloader, which installs.
	kv, err := os.ReadFile("../mbedlayout/testdata/internal_kvstore_with_sd.json")
	require.NoError(t, err)
	for _, target := range []string{"K64F", "NUCLEO_F429ZI", "DISCO_L475VG_IOT01A"} {
		y := strings.Replace(src, "target: K64F}", "target: "+target+"}", 1)
		y = strings.Replace(y, "  - region: {region: slot-0, firmware: app-v2}\n", "", 1)
		l, err = Load("s.yaml", []byte(y), files(map[string]string{"mbed_app.json": string(kv)}))
		require.NoError(t, err, target)
		require.True(t, l.Layout.KVStoreROT, target)
		require.Equal(t, "kvstore", l.Layout.ROTSource())
		require.NotNil(t, l.ROT, target)
		res, err = Run(l, Options{})
		require.NoError(t, err)
		require.True(t, res.Passed, "%s: %v", target, res.Failures())
		for _, inv := range res.Invariants {
			if inv.Name == InvSOTPIntact {
				require.Equal(t, StatusPass, inv.Status, inv.Detail)
				require.Contains(t, inv.Detail, "KVStore")
			}
		}
	}
	_, err = Load("s.yaml", []byte(strings.Replace(src, "target: K64F}", "target: K64F, bootloader: v3.3}", 1)), files(map[string]string{"mbed_app.json": string(kv)}))
	require.ErrorContains(t, err, "came with mbed-bootloader v4; v3.3 reads it from SOTP")
}
