package scenarios

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestLibrary: every built-in scenario passes, and tells its story in one
// line with at least one expectation.
func TestLibrary(t *testing.T) {
	lib := Library()
	require.GreaterOrEqual(t, len(lib), 12)
	for _, l := range lib {
		t.Run(l.Name, func(t *testing.T) {
			require.NotContains(t, l.Summary, "\n")
			require.NotEmpty(t, l.Expect)
			res, err := Run(l, Options{})
			require.NoError(t, err)
			require.True(t, res.Passed, "%s", strings.Join(res.Failures(), "\n"))
		})
	}
}

// traceText renders what must be byte-identical between two runs.
func traceText(r *Result) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %v %d %s %s %s\n", r.Name, r.Passed, r.Boots, r.VirtualTime, r.Running, r.State)
	for _, e := range r.Trace {
		fmt.Fprintln(&b, e)
	}
	for _, op := range r.Journal {
		fmt.Fprintf(&b, "%s %s %x\n", op, op.Dur, op.Data)
	}
	for _, c := range r.Expectations {
		fmt.Fprintln(&b, c)
	}
	for _, inv := range r.Invariants {
		fmt.Fprintln(&b, inv)
	}
	return b.String()
}

// TestSameSeedSameRun: a scenario and a seed give the same run, byte for
// byte; another seed gives other images (and so other bytes on flash).
func TestSameSeedSameRun(t *testing.T) {
	for _, l := range Library() {
		a, err := Run(l, Options{})
		require.NoError(t, err)
		b, err := Run(l, Options{})
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(traceText(a), traceText(b)), l.Name)
	}
	l, err := Find("install-from-sd")
	require.NoError(t, err)
	seed := uint64(99)
	flash := func(opts Options) [32]byte {
		r, err := start(l, opts)
		require.NoError(t, err)
		res := r.play()
		require.True(t, res.Passed, "%v", res.Failures())
		return r.m.Storage().Snapshot().Fingerprint()
	}
	require.Equal(t, flash(Options{}), flash(Options{}))
	require.NotEqual(t, flash(Options{}), flash(Options{Seed: &seed}))
}

const base = `scenario: test
summary: A test scenario.
device:
  board: k64f
firmware:
  app-v1: {version: 1561517193, size: 200KiB}
  app-v2: {version: 1561520000, size: 210KiB}
factory:
  active: app-v1
  slots: [app-v2]
steps:
  - power-on
  - wait: {until: app-running, timeout: 60s}
`

// TestLoadErrors: misspelt keys, wrong types and meaningless references are
// rejected at file:line:col.
func TestLoadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"misspelt key", strings.Replace(base, "summary:", "sumary:", 1), `t.yaml:2:1: unknown field "sumary" (did you mean "summary"?)`},
		{"misspelt nested key", strings.Replace(base, "board: k64f", "bord: k64f", 1), `t.yaml:4:3: unknown field "bord" (did you mean "board"?)`},
		{"wrong type", strings.Replace(base, "version: 1561517193", "version: soon", 1), `t.yaml:6:21: want a non-negative integer, got "soon"`},
		{"bad size", strings.Replace(base, "size: 200KiB", "size: big", 1), `t.yaml:6:39: size "big": want a number of bytes`},
		{"unknown firmware", strings.Replace(base, "active: app-v1", "active: app-v9", 1), `t.yaml:9:11: factory.active: unknown firmware "app-v9" (the scenario defines app-v1, app-v2)`},
		{"unknown slot firmware", strings.Replace(base, "slots: [app-v2]", "slots: [app-v3]", 1), `t.yaml:10:11: factory.slots[0]: unknown firmware "app-v3"`},
		{"too many slots", strings.Replace(base, "slots: [app-v2]", "slots: [app-v2, app-v1]", 1), `t.yaml:10:10: factory.slots: 2 images for 1 slot(s)`},
		{"unknown step", base + "  - reboot\n", `t.yaml:14:5: unknown step "reboot" (want one of: app, attack, campaign, corrupt, fault, insert-sd, network, power-cut, power-on, remove-sd, reset, wait)`},
		{"step needs value", base + "  - wait\n", `t.yaml:14:5: step "wait" needs a value (write wait: …)`},
		{"unknown region", base + "  - corrupt: {region: slot-7, offset: 0, bit: 1}\n", `t.yaml:14:14: unknown region "slot-7" (this layout has bootloader, sotp-1, sotp-2, active-header, active-app, slot-0)`},
		{"unknown region in cut", base + "  - power-cut: {after: {op: program, region: nowhere}}\n", `t.yaml:14:5: unknown region "nowhere"`},
		{"two cut triggers", base + "  - power-cut: {after: {op: program}, in: 5ms}\n", `t.yaml:14:16: a power-cut takes exactly one of before, after, torn, rule, event or in (got 2)`},
		{"bad fault rule", base + "  - fault: \"kind=read\"\n", `t.yaml:14:12: fault rule "kind=read": a read takes mode io-error or bit-flip (a read changes nothing to cut or tear)`},
		{"bad fault kind", base + "  - fault: kind=peek\n", `t.yaml:14:12: fault rule "kind=peek": kind=peek: unknown op kind "peek" (want program, erase or read)`},
		{"unknown condition", base + "  - wait: {until: running-app}\n", `t.yaml:14:19: unknown condition "running-app"`},
		{"unknown running firmware", base + "expect:\n  - running: app-v7\n", `t.yaml:15:5: running: unknown firmware "app-v7"`},
		{"unknown expectation", base + "expect:\n  - runing: app-v2\n", `t.yaml:15:5: unknown expectation "runing"`},
		{"unknown weakness", base + "expect:\n  - weakness: bricks\n", `t.yaml:15:5: weakness "bricks": want an invariant`},
		{"unknown bootloader release", strings.Replace(base, "board: k64f", "board: k64f\n  bootloader: v5", 1), `t.yaml:4:3: device.bootloader "v5": want one of v3.3, v4.0, v4.1, v4.1.3`},
		{"bootloader release of another profile", strings.Replace(base, "board: k64f", "board: k64f\n  bootloader: v4.0\n  profile: hardened", 1), `t.yaml:4:3: device.bootloader picks a release of the Mbed bootloader (the classic profile); the hardened profile has its own`},
		{"unknown board", strings.Replace(base, "board: k64f", "board: pico", 1), `t.yaml:4:10: device.board: unknown board "pico"`},
		{"storage the board lacks", strings.Replace(base, "board: k64f", "board: k64f\n  storage: spi", 1), `device.storage "spi": board k64f keeps candidates on sd, internal`},
		{"profile not available", strings.Replace(base, "board: k64f", "board: k64f\n  profile: secure-boot", 1), `device.profile "secure-boot" is not available in this version`},
		{"overlapping regions", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    sotp-section-2-address: 0x8000", 1), `t.yaml:6:29: layout: sotp-2 (0x8000..0x9000) overlaps sotp-1 (0x8000..0x9000)`},
		{"unknown config key", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-retries: 3", 1), `t.yaml:6:34: unknown configuration key "mbed-bootloader.max-retries"`},
		{"firmware too large", strings.Replace(base, "app-v1: {version: 1561517193, size: 200KiB}", "app-v1: {version: 1561517193, size: 990KiB}", 1), `t.yaml:6:3: firmware app-v1: size 990KiB fits neither the active region (983KiB) nor a slot`},
		{"active too large", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-application-size: 150KiB\n    update-client.storage-size: 1MiB", 1), `t.yaml:12:11: factory.active: app-v1 (200KiB) is larger than the maximum application size 150KiB`},
		{"reboot max out of range", strings.Replace(base, "size: 210KiB}", "size: 210KiB, behaviour: crash, platform: {error-reboot-max: 256}}", 1), `t.yaml:7:3: firmware app-v2: platform.error-reboot-max 256: want 0 to 255`},
		{"misspelt platform key", strings.Replace(base, "size: 210KiB}", "size: 210KiB, platform: {auto-reboot: true}}", 1), `unknown field "auto-reboot"`},
		{"after on a lockup-free image", strings.Replace(base, "size: 210KiB}", "size: 210KiB, after: 1s}", 1), `firmware app-v2: after applies to crash, lockup and hang`},
		{"no name", strings.Replace(base, "scenario: test", "scenario: ''", 1), `t.yaml:1:11: scenario: a name is required`},
		{"bad name", strings.Replace(base, "scenario: test", "scenario: My Test", 1), `name "My Test": use lower-case words`},
		{"file in built-in", strings.Replace(base, "size: 210KiB", "file: app.bin", 1), `t.yaml:7:3: firmware app-v2: this scenario cannot name files`},
		{"yaml syntax", base + "  - wait: {until: [\n", `t.yaml:14:3: did not find expected node content`},
		{"no copy retries", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-copy-retries: 0", 1), `t.yaml:6:39: mbed-bootloader.max-copy-retries: out of range`},
		{"too many copy retries", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-copy-retries: 101", 1), `mbed-bootloader.max-copy-retries: out of range`},
		{"no boot retries", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-boot-retries: 0", 1), `mbed-bootloader.max-boot-retries: out of range`},
		{"too many boot retries", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-boot-retries: 256", 1), `mbed-bootloader.max-boot-retries: out of range`},
		{"too many bits", base + "  - corrupt: {region: active-app, bits: 1048577}\n", `t.yaml:14:14: bits: want 0..1048576`},
		{"negative bits", base + "  - corrupt: {region: active-app, bits: -1}\n", `t.yaml:14:14: bits: want 0..1048576`},
		{"offset past the region", base + "  - corrupt: {region: sotp-1, offset: 4096, bit: 0}\n", `t.yaml:14:14: offset 4KiB is outside region sotp-1 (4KiB)`},
		{"bit 8", base + "  - corrupt: {region: sotp-1, offset: 0, bit: 8}\n", `t.yaml:14:14: bit 8: want 0..7`},
		{"zero boots", base + "  - wait: {until: {boots: 0}}\n", `t.yaml:14:19: boots: want at least 1`},
		{"unknown device in cut", base + "  - power-cut: {after: {op: program, device: spi}}\n", `t.yaml:14:5: unknown device "spi" (this board has internal, sd)`},
		{"unknown planted firmware", base + "  - app: {plant: evil}\n", `t.yaml:14:10: app.plant: unknown firmware "evil"`},
		{"unknown campaign firmware", base + "  - campaign: {firmware: app-v9}\n", `t.yaml:14:15: campaign: unknown firmware "app-v9"`},
		{"unknown replayed firmware", base + "  - campaign: {firmware: app-v2, attack: replay, replay: app-v0}\n", `t.yaml:14:15: campaign.replay: unknown firmware "app-v0"`},
		{"unknown region expected", base + "expect:\n  - region: {region: slot-3, erased: true}\n", `t.yaml:15:5: unknown region "slot-3"`},
		{"bad rot", strings.Replace(base, "slots: [app-v2]", "slots: [app-v2]\n  rot: 00112233", 1), `t.yaml:11:8: factory.rot: want 32 hex digits (16 bytes) or none`},
		{"unknown client", strings.Replace(base, "board: k64f", "board: k64f\n  client: \"3.5\"", 1), `t.yaml:4:3: device.client "3.5": want 3.3, 3.4 or fota`},
		{"resume without fota", strings.Replace(base, "board: k64f", "board: k64f\n  resume: true", 1), `t.yaml:4:3: device.resume: a download that resumes after a reset is the FOTA client's behaviour, not the Pelion update client's (it starts over): write device.client: fota`},
		{"v3 manifest without fota", strings.Replace(base, "board: k64f", "board: k64f", 1) + "  - campaign: {firmware: app-v2, manifest: v3}\n", `campaign: v3 manifests are read by a FOTA-style client (device.client: fota); the Pelion update client reads v1`},
		{"below the smallest generated image", strings.Replace(base, "size: 210KiB}", "size: 1023}", 1), `t.yaml:7:3: firmware app-v2: size 1023B is below the 1 KiB minimum of a generated image`},
		{"no steps", strings.Replace(base, "steps:\n  - power-on\n  - wait: {until: app-running, timeout: 60s}\n", "steps: []\n", 1), `t.yaml:11:8: steps: at least one step is required`},
		{"empty running", base + "expect:\n  - running: \"\"\n", `t.yaml:15:14: running needs a value`},
		{"empty service", base + "expect:\n  - service: {}\n", `t.yaml:15:14: service needs at least one of updated, result, state, notifications`},
		{"region with nothing to check", base + "expect:\n  - region: {region: slot-0}\n", `t.yaml:15:13: a region expectation takes exactly one of firmware, erased or sha256`},
		{"region with two checks", base + "expect:\n  - region: {region: slot-0, erased: true, firmware: app-v1}\n", `a region expectation takes exactly one of firmware, erased or sha256`},
		{"bad sha256", base + "expect:\n  - region: {region: slot-0, sha256: 00ff}\n", `t.yaml:15:5: sha256: want 64 hex digits`},
		{"unknown reset", base + "  - reset: soft\n", `t.yaml:14:12: reset "soft": want pin, brown-out or debugger`},
		{"index with an op kind", base + "  - power-cut: {torn: {index: 3, op: program}}\n", `t.yaml:14:16: index names one op; it takes no op, device, region or nth`},
		{"index with a device", base + "  - power-cut: {torn: {index: 3, device: sd}}\n", `index names one op; it takes no op, device, region or nth`},
		{"index with a region", base + "  - power-cut: {torn: {index: 3, region: slot-0}}\n", `index names one op; it takes no op, device, region or nth`},
		{"index with nth", base + "  - power-cut: {torn: {index: 3, nth: 2}}\n", `index names one op; it takes no op, device, region or nth`},
		{"negative nth", base + "  - power-cut: {torn: {op: program, nth: -1}}\n", `t.yaml:14:16: nth must be at least 1`},
		{"active larger than the region", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-application-size: 204799\n    update-client.storage-size: 1MiB", 1), `factory.active: app-v1 (200KiB) is larger than the maximum application size 204799B`},
		{"larger than a slot", strings.Replace(strings.Replace(base, "board: k64f", slotLimited, 1), "size: 210KiB", "size: 306689", 1),
			`t.yaml:10:3: firmware app-v2: size 306689B fits neither the active region (250KiB) nor a slot`},
	} {
		t.Run(tc.name, func(t *testing.T) { requireRefused(t, tc.yaml, tc.want) })
	}
}

// slotLimited is a layout whose slot (300 KiB, of which 512 bytes are for
// the header) is larger than the active region (250 KiB).
const slotLimited = "board: k64f\n  config:\n    mbed-bootloader.max-application-size: 250KiB\n    update-client.storage-size: 300KiB"

// TestLoadBoundaries: the values at the edge of what the loader accepts
// load (the values one past them are in TestLoadErrors).
func TestLoadBoundaries(t *testing.T) {
	for _, tc := range []struct{ name, yaml string }{
		{"one copy attempt", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-copy-retries: 1", 1)},
		{"100 copy attempts", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-copy-retries: 100", 1)},
		{"one boot retry", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-boot-retries: 1", 1)},
		{"255 boot retries", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-boot-retries: 255", 1)},
		{"most bits", base + "  - corrupt: {region: active-app, bits: 1048576}\n"},
		{"last byte of a region", base + "  - corrupt: {region: sotp-1, offset: 4095, bit: 7}\n"},
		{"one boot", base + "  - wait: {until: {boots: 1}}\n"},
		{"a cut on each device", base + "  - power-cut: {after: {op: program, device: internal}}\n  - power-cut: {after: {op: program, device: sd}}\n"},
		{"the smallest generated image", strings.Replace(base, "size: 210KiB}", "size: 1KiB}", 1)},
		{"as large as a slot", strings.Replace(strings.Replace(base, "board: k64f", slotLimited, 1), "size: 210KiB", "size: 306688", 1)},
		{"a user binary that is healthy", strings.Replace(base, "size: 210KiB}", "file: app.bin, behaviour: healthy}", 1)},
		{"active as large as the region", strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-application-size: 200KiB\n    update-client.storage-size: 1MiB", 1)},
		{"a given ROT", strings.Replace(base, "slots: [app-v2]", "slots: [app-v2]\n  rot: 000102030405060708090a0b0c0d0e0f", 1)},
	} {
		_, err := Load("t.yaml", []byte(tc.yaml), func(string) ([]byte, error) { return make([]byte, 3000), nil })
		require.NoError(t, err, tc.name)
	}
	y := strings.Replace(base, "size: 210KiB}", "file: app.bin, behaviour: crash}", 1)
	_, err := Load("t.yaml", []byte(y), func(string) ([]byte, error) { return make([]byte, 3000), nil })
	require.ErrorContains(t, err, "t.yaml:7:3: firmware app-v2: a user binary runs as a healthy application")

	// A user binary may fill the active region, not one byte more.
	y = strings.Replace(base, "size: 210KiB}", "file: app.bin}", 1)
	for _, tc := range []struct {
		size int
		err  string
	}{{983 << 10, ""}, {983<<10 + 1, "t.yaml:7:3: firmware app-v2: app.bin is 1006593 bytes; want 1 to 1006592 (the maximum application size)"}, {0, "app.bin is 0 bytes"}} {
		_, err = Load("t.yaml", []byte(y), func(string) ([]byte, error) { return make([]byte, tc.size), nil })
		if tc.err == "" {
			require.NoError(t, err, tc.size)
		} else {
			require.ErrorContains(t, err, tc.err)
		}
	}
}

// TestUserBinary: a firmware from a file runs as a healthy application of
// its true size; the file is read through the given reader.
func TestUserBinary(t *testing.T) {
	bin := make([]byte, 5000)
	for i := range bin {
		bin[i] = byte(i * 13)
	}
	y := strings.Replace(base, "app-v2: {version: 1561520000, size: 210KiB}", "app-v2: {version: 1561520000, file: app.bin}", 1)
	y = strings.Replace(y, "{until: app-running,", "{until: {running: app-v2},", 1)
	var asked string
	l, err := Load("t.yaml", []byte(y), func(name string) ([]byte, error) { asked = name; return bin, nil })
	require.NoError(t, err)
	require.Equal(t, "app.bin", asked)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	require.True(t, res.Passed, "%v", res.Failures())
	require.Equal(t, "app-v2", res.Running)

	_, err = Load("t.yaml", []byte(y), func(string) ([]byte, error) { return nil, errors.New("no such file") })
	require.ErrorContains(t, err, "t.yaml:7:3: firmware app-v2: no such file")
}

// startRun loads a scenario and builds its device in the factory state,
// for tests that play the steps themselves.
func startRun(t *testing.T, y string) *runner {
	t.Helper()
	l, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	r, err := start(l, Options{})
	require.NoError(t, err)
	return r
}

func mustRun(t *testing.T, y string) *Result {
	t.Helper()
	l, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	return res
}

func serialHas(r *Result, s string) bool {
	for _, l := range r.Serial {
		if strings.Contains(l.Text, s) {
			return true
		}
	}
	return false
}

// TestSelectionRules checks the classic selection rules (mbed-stack.md
// §2.2) on scenarios built for each.
func TestSelectionRules(t *testing.T) {
	t.Run("first slot wins ties", func(t *testing.T) {
		y := strings.Replace(base, "board: k64f", "board: k64f\n  storage: internal\n  config:\n    update-client.storage-locations: 2", 1)
		y = strings.Replace(y, "app-v2: {version: 1561520000, size: 210KiB}", "app-v2: {version: 1561520000, size: 150KiB}\n  app-v2b: {version: 1561520000, size: 160KiB}", 1)
		y = strings.Replace(y, "slots: [app-v2]", "slots: [app-v2, app-v2b]", 1)
		r := mustRun(t, y+"expect:\n  - running: app-v2\n")
		require.True(t, r.Passed, "%v", r.Failures())
		require.Equal(t, 1, countEvents(r.Trace, "copy-begin"))
	})
	t.Run("newest slot wins", func(t *testing.T) {
		y := strings.Replace(base, "board: k64f", "board: k64f\n  storage: internal\n  config:\n    update-client.storage-locations: 2", 1)
		y = strings.Replace(y, "app-v2: {version: 1561520000, size: 210KiB}", "app-v2: {version: 1561520000, size: 150KiB}\n  app-v3: {version: 1561530000, size: 160KiB}", 1)
		y = strings.Replace(y, "slots: [app-v2]", "slots: [app-v2, app-v3]", 1)
		r := mustRun(t, y+"expect:\n  - running: app-v3\n")
		require.True(t, r.Passed, "%v", r.Failures())
	})
	t.Run("too large", func(t *testing.T) {
		y := strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-application-size: 205KiB\n    update-client.storage-size: 1MiB", 1)
		r := mustRun(t, y+"expect:\n  - running: app-v1\n")
		require.True(t, r.Passed, "%v", r.Failures())
		require.True(t, serialHas(r, "Update image too large"))
	})
	t.Run("invalid active accepts older", func(t *testing.T) {
		y := strings.Replace(base, "slots: [app-v2]", "slots: [app-v1]", 1)
		y = strings.Replace(y, "active: app-v1", "active: app-v2", 1)
		y = strings.Replace(y, "  - power-on\n", "  - corrupt: {region: active-app, offset: 100, bit: 2}\n  - power-on\n", 1)
		r := mustRun(t, y+"expect:\n  - running: app-v1\n")
		require.True(t, r.Passed, "%v", r.Failures())
	})
	t.Run("max-boot-retries from config", func(t *testing.T) {
		y := strings.Replace(base, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-boot-retries: 5", 1)
		y = strings.Replace(y, "size: 210KiB}", "size: 210KiB, behaviour: lockup}", 1)
		y = strings.Replace(y, "{until: app-running, timeout: 60s}", "{until: {event: boot-retries-exceeded}, timeout: 5m}", 1)
		r := mustRun(t, y+"expect:\n  - weakness: no-brick\n")
		require.True(t, r.Passed, "%v", r.Failures())
		// 1 boot installs, then boot counts 0..5 on 6 lockup resets.
		require.Equal(t, 7, r.Boots)
	})
}

// TestFailureIsReported: a scenario whose expectation does not hold fails
// and says which and why; a wait that times out says where the device is.
func TestFailureIsReported(t *testing.T) {
	r := mustRun(t, base+"expect:\n  - running: app-v1\n  - boots: {at-least: 2}\n")
	require.False(t, r.Passed)
	require.Equal(t, []string{"expected running app-v1: running app-v2", "expected boots ≥ 2: 1 boots"}, r.Failures())

	y := strings.Replace(base, "{until: app-running, timeout: 60s}", "{until: halted, timeout: 30s}", 1)
	r = mustRun(t, y)
	require.False(t, r.Passed)
	require.Equal(t, 2, r.Step)
	require.Contains(t, r.Error, "wait until halted: timed out after 30s; the device is running (application app-v2) after 1 boots")

	r = mustRun(t, base+"  - power-cut: {after: {op: erase, region: sotp-1}, timeout: 1s}\n")
	require.False(t, r.Passed)
	require.Contains(t, r.Error, "the armed power cut never happened within 1s")
}

// TestInvariantFailsWhenNotDeclared: a brick the scenario does not declare
// as a known weakness fails the run; declaring one that does not show fails
// too.
func TestInvariantFailsWhenNotDeclared(t *testing.T) {
	y := strings.Replace(base, "slots: [app-v2]", "slots: []", 1)
	y = strings.Replace(y, "  - power-on\n", "  - corrupt: {region: active-app, offset: 100, bit: 2}\n  - power-on\n", 1)
	y = strings.Replace(y, "{until: app-running, timeout: 60s}", "{until: halted}", 1)
	r := mustRun(t, y)
	require.False(t, r.Passed)
	require.Contains(t, r.Failures()[0], "invariant no-brick: after a power cycle no application runs")

	r = mustRun(t, base+"expect:\n  - weakness: no-brick\n")
	require.False(t, r.Passed)
	require.Contains(t, r.Failures()[0], "expected known weakness no-brick: pass")
}

// TestBootLoopStops: a long wait on a device in a reset loop stops after
// the boot limit with an error instead of running for ever.
func TestBootLoopStops(t *testing.T) {
	y := strings.Replace(base, "size: 210KiB}", "size: 210KiB, behaviour: crash}", 1)
	y = strings.Replace(y, "{until: app-running, timeout: 60s}", "1000h", 1)
	l, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	r, err := Run(l, Options{MaxBoots: 50})
	require.NoError(t, err)
	require.False(t, r.Passed)
	require.Contains(t, r.Error, "stopped after more than 50 boots (a reset loop; the boots budget, --max-boots)")
	require.Equal(t, 51, r.Boots)

	// A wait for a condition, or an armed power cut, that the loop never
	// reaches stops at the boot limit too, and says so.
	for _, step := range []string{"{until: halted, timeout: 1000h}", "{until: {event: dead-end}, timeout: 1000h}"} {
		y := strings.Replace(base, "size: 210KiB}", "size: 210KiB, behaviour: crash}", 1)
		y = strings.Replace(y, "{until: app-running, timeout: 60s}", step, 1)
		l, err := Load("t.yaml", []byte(y), nil)
		require.NoError(t, err)
		r, err := Run(l, Options{MaxBoots: 20})
		require.NoError(t, err)
		require.Contains(t, r.Error, "stopped after more than 20 boots (a reset loop; the boots budget, --max-boots)", step)
	}
	y = strings.Replace(base, "size: 210KiB}", "size: 210KiB, behaviour: crash}", 1)
	y = strings.Replace(y, "  - wait: {until: app-running, timeout: 60s}\n", "  - power-cut: {event: dead-end, timeout: 1000h}\n", 1)
	l, err = Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	r, err = Run(l, Options{MaxBoots: 20})
	require.NoError(t, err)
	require.Contains(t, r.Error, "power-cut at dead-end+0s: stopped after more than 20 boots (a reset loop; the boots budget, --max-boots)")
}

// TestArmedCutLeavesOtherRules: an armed power cut's rule is removed once
// it has fired; the fault rules armed before it stay, and keep counting.
func TestArmedCutLeavesOtherRules(t *testing.T) {
	y := strings.Replace(base, "  - power-on\n  - wait: {until: app-running, timeout: 60s}\n", `  - fault: "region=active-app,kind=program,nth=3,mode=io-error"
  - power-on
  - power-cut: {after: {op: erase, region: active-app, nth: 2}}
  - power-on
  - wait: {until: halted, timeout: 1m}
`, 1)
	r := mustRun(t, y+"expect:\n  - event: {name: copy-failed, count: 1}\n  - event: {name: copy-begin, count: 2}\n")
	require.True(t, r.Passed, "%v", r.Failures())
	faults := 0
	for _, op := range r.Journal {
		if op.Fault.Mode != storage.FaultNone {
			faults++
		}
	}
	require.Equal(t, 2, faults, "the cut, then the I/O error at the 3rd body program of the second copy")
}

// TestPowerCutIn: a power cut armed "in" a duration fires that long after
// the step: exactly then if the device idles (an application waiting on its
// timers), or as soon as stage code passes the deadline, at the end of the
// read or op in progress (well under 5ms here, in the bootloader's
// integrity check).
func TestPowerCutIn(t *testing.T) {
	offAt := func(r *Result) []time.Duration {
		var off []time.Duration
		for _, e := range r.Trace {
			if e.Kind == sim.EvPowerOff {
				off = append(off, e.Time)
			}
		}
		return off
	}
	// In the bootloader: the first power-on's boot is at work at 30ms.
	y := strings.Replace(base, "  - wait: {until: app-running, timeout: 60s}\n", "  - power-cut: {in: 30ms}\n", 1)
	r := mustRun(t, y)
	require.Empty(t, r.Error)
	off := offAt(r)
	require.Len(t, off, 1)
	require.GreaterOrEqual(t, off[0], 30*time.Millisecond)
	require.Less(t, off[0], 35*time.Millisecond)
	require.Equal(t, 0, countEvents(r.Trace, "app-running"))

	// An idle application: 250ms after the step, which runs once the
	// application is up and its client idles (a few µs after the mark).
	r = mustRun(t, base+"  - power-cut: {in: 250ms}\n")
	require.Empty(t, r.Error)
	var up time.Duration
	for _, e := range r.Trace {
		if e.Kind == sim.EvMark && e.Name == "app-running" {
			up = e.Time
		}
	}
	off = offAt(r)
	require.Len(t, off, 1)
	require.GreaterOrEqual(t, off[0], up+250*time.Millisecond)
	require.Less(t, off[0], up+251*time.Millisecond)
	require.Equal(t, "off", r.State)
}

// TestRunsOwnTheirFaultState: a loaded scenario and the options are shared by
// every run of them, and each run arms its own copies of their fault rules:
// running the same Loaded again, or the same --cut over several scenarios,
// gives the same result each time. (Before, the second run of a fault step
// with nth=2 went on counting where the first had stopped.)
func TestRunsOwnTheirFaultState(t *testing.T) {
	y := strings.Replace(base, "  - power-on\n  - wait: {until: app-running, timeout: 60s}\n", `  - fault: "region=active-app,kind=program,nth=2,mode=cut-after"
  - power-on
  - wait: {until: "off", timeout: 60s}
  - power-on
  - wait: {until: "off", timeout: 60s}
  - power-on
  - wait: {until: app-running, timeout: 60s}
`, 1)
	l, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	cut, err := storage.ParseRule("region=active-app,kind=program,nth=6,mode=torn,seed=1")
	require.NoError(t, err)
	opts := Options{Cut: cut}
	first, err := Run(l, opts)
	require.NoError(t, err)
	require.True(t, first.CutFired)
	require.True(t, first.Passed, "%v", first.Failures())
	faults := 0
	for _, op := range first.Journal {
		if op.Fault.Mode != storage.FaultNone {
			faults++
		}
	}
	require.Equal(t, 2, faults, "the fault step and the --cut fired once each")
	for range 2 {
		again, err := Run(l, opts)
		require.NoError(t, err)
		require.Empty(t, cmp.Diff(traceText(first), traceText(again)))
	}
	// The same options over another scenario, then this one again.
	other, err := Find("install-from-sd")
	require.NoError(t, err)
	_, err = Run(other, opts)
	require.NoError(t, err)
	again, err := Run(l, opts)
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(traceText(first), traceText(again)))
}

// TestRunLeavesLoadedUntouched: a run changes nothing in the scenario it
// plays; it equals, field for field (unexported ones included), a fresh load
// of the same text.
func TestRunLeavesLoadedUntouched(t *testing.T) {
	y := strings.Replace(base, "  - power-on\n", `  - fault: "kind=program,nth=5,mode=bit-flip,seed=2"
  - fault: "region=active-app,time=30ms,mode=io-error"
  - power-on
  - power-cut: {after: {op: program, nth: 3}}
  - power-on
`, 1)
	ran, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	fresh, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	seed := uint64(5)
	cut, err := storage.ParseRule("kind=erase,nth=2,mode=cut-before")
	require.NoError(t, err)
	for _, opts := range []Options{{}, {Seed: &seed}, {Cut: cut}} {
		_, err := Run(ran, opts)
		require.NoError(t, err)
	}
	require.Empty(t, cmp.Diff(fresh, ran, cmp.Exporter(func(reflect.Type) bool { return true })))
}

// requireRefused: loading src as t.yaml fails with a positioned
// scenario error that contains want.
func requireRefused(t *testing.T, src, want string) {
	t.Helper()
	_, err := Load("t.yaml", []byte(src), nil)
	require.Error(t, err)
	var se *strictyaml.Error
	require.True(t, errors.As(err, &se), "%T: %v", err, err)
	require.Contains(t, err.Error(), want)
	require.Regexp(t, `^t\.yaml:\d+(:\d+)?: `, err.Error())
}

// TestFaultThatNeverFiresWarns: a fault: step whose rule matches no op of
// the run is reported (the run still passes on its expectations); one that
// fires is not.
func TestFaultThatNeverFiresWarns(t *testing.T) {
	src := `scenario: f
summary: s
device: {board: k64f}
firmware:
  app-v1: {version: 1561517193, size: 100KiB}
  app-v2: {version: 1561520000, size: 110KiB}
factory: {active: app-v1, slots: [app-v2]}
steps:
  - fault: RULE
  - power-on
  - wait: 30s
`
	for _, tc := range []struct {
		rule string
		warn bool
	}{{"op=99999,mode=bit-flip,seed=1", true}, {"kind=program,region=active-app,nth=3,mode=bit-flip,seed=1", false}} {
		l, err := Load("f.yaml", []byte(strings.Replace(src, "RULE", tc.rule, 1)), nil)
		require.NoError(t, err)
		res, err := Run(l, Options{})
		require.NoError(t, err)
		if tc.warn {
			require.Equal(t, []string{fmt.Sprintf("step 1: fault %s never fired (the run made %d storage ops)", tc.rule, len(res.Journal))}, res.Warnings)
		} else {
			require.Empty(t, res.Warnings, tc.rule)
		}
	}
}
