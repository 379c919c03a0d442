package scenarios

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
	"github.com/stretchr/testify/require"
)

// The checker's tests: every expectation kind, invariant and wait condition
// is shown holding on a run where it must hold and failing, with its
// message, on a run where it must fail. A checker that always passes, or
// always fails, or says the wrong thing, fails one of them.

// installed is base with the run it gives: app-v2 copied from the SD card
// on the first boot and running.
const installed = base

// flow is an update through the service: app-v1 is notified of app-v2,
// downloads 215040 bytes, reboots and app-v2 runs.
const flow = `scenario: flow
summary: An update through the service.
device:
  board: k64f
firmware:
  app-v1: {version: 1561517193, size: 200KiB}
  app-v2: {version: 1561520000, size: 210KiB}
factory:
  active: app-v1
steps:
  - power-on
  - wait: {until: {event: registered}, timeout: 30s}
  - campaign: {firmware: app-v2}
  - wait: {until: {running: app-v2}, timeout: 5m}
  - wait: {until: {event: registered}, timeout: 30s}
`

// halted is a device with a damaged active image and no candidate: the
// bootloader halts at its dead end.
const halted = `scenario: halted
summary: A dead end.
device:
  board: k64f
firmware:
  app-v1: {version: 1561517193, size: 200KiB}
factory:
  active: app-v1
steps:
  - corrupt: {region: active-app, offset: 0x1000, bit: 0}
  - power-on
  - wait: {until: halted, timeout: 10s}
`

// checkResult runs a scenario made of a base and expectations and returns
// each expectation's outcome as "PASS text" or "FAIL text: detail".
func checkResult(t *testing.T, y string) ([]string, *Result) {
	t.Helper()
	res := mustRun(t, y)
	require.Empty(t, res.Error, "the steps must all run")
	var out []string
	for _, c := range res.Expectations {
		if c.Passed {
			out = append(out, "PASS "+c.Text)
		} else {
			out = append(out, "FAIL "+c.Text+": "+c.Detail)
		}
	}
	return out, res
}

// TestExpectationsHoldAndFail: one row per expectation kind and form; each
// row's expectations must come out exactly as listed.
func TestExpectationsHoldAndFail(t *testing.T) {
	for _, tc := range []struct {
		name   string
		base   string
		expect string
		want   []string
	}{
		{"running", installed, `
  - running: app-v2
  - running: app-v1
  - running: none`, []string{
			"PASS running app-v2",
			"FAIL running app-v1: running app-v2",
			"FAIL running none: running app-v2",
		}},
		{"running when nothing runs", halted, `
  - running: app-v1
  - running: none`, []string{
			"FAIL running app-v1: no application is running; the device is halted after 1 boots",
			"PASS running none",
		}},
		{"state", installed, `
  - state: running
  - state: halted`, []string{
			"PASS state running",
			"FAIL state halted: the device is running (application app-v2) after 1 boots",
		}},
		{"state halted", halted, `
  - state: halted
  - state: running`, []string{
			"PASS state halted",
			"FAIL state running: the device is halted after 1 boots",
		}},
		{"event", installed, `
  - event: copy-begin
  - event: dead-end
  - event: {name: copy-begin, count: 1}
  - event: {name: copy-begin, count: 2}
  - event: {name: copy-begin, at-least: 1, at-most: 1}
  - event: {name: copy-begin, at-least: 2}
  - event: {name: copy-begin, at-most: 0}
  - event: {name: dead-end, at-most: 0}`, []string{
			"PASS event copy-begin count ≥ 1",
			"FAIL event dead-end count ≥ 1: seen 0 times",
			"PASS event copy-begin count = 1",
			"FAIL event copy-begin count = 2: seen 1 times",
			"PASS event copy-begin count = 1",
			"FAIL event copy-begin count ≥ 2: seen 1 times",
			"FAIL event copy-begin count ≤ 0: seen 1 times",
			"PASS event dead-end count ≤ 0",
		}},
		{"event counts every mark of its name", flow, `
  - event: {name: registered, count: 2}
  - event: {name: registered, count: 1}`, []string{
			"PASS event registered count = 2",
			"FAIL event registered count = 1: seen 2 times",
		}},
		{"derived event", installed, `
  - event: {name: install-retried, count: 0}
  - event: install-retried`, []string{
			"PASS event install-retried count = 0",
			"FAIL event install-retried count ≥ 1: seen 0 times",
		}},
		{"no-event", installed, `
  - no-event: dead-end
  - no-event: copy-begin`, []string{
			"PASS no event dead-end",
			"FAIL no event copy-begin: seen 1 times",
		}},
		{"boots", installed, `
  - boots: 1
  - boots: 2
  - boots: {at-least: 1}
  - boots: {at-least: 2}
  - boots: {at-most: 1}
  - boots: {at-most: 0}
  - boots: {at-least: 0, at-most: 3}
  - boots: {at-least: 2, at-most: 3}`, []string{
			"PASS boots = 1",
			"FAIL boots = 2: 1 boots",
			"PASS boots ≥ 1",
			"FAIL boots ≥ 2: 1 boots",
			"PASS boots ≤ 1",
			"FAIL boots ≤ 0: 1 boots",
			"PASS boots in 0..3",
			"FAIL boots in 2..3: 1 boots",
		}},
		{"serial", installed, `
  - serial: "New active firmware is valid"
  - serial: "Failed to jump to application!"
  - no-serial: "Failed to jump to application!"
  - no-serial: "booting..."`, []string{
			`PASS serial shows "New active firmware is valid"`,
			`FAIL serial shows "Failed to jump to application!": not on the serial console`,
			`PASS serial never shows "Failed to jump to application!"`,
			`FAIL serial never shows "booting...": on the serial console`,
		}},
		{"region firmware", installed, `
  - region: {region: active-app, firmware: app-v2}
  - region: {region: active-app, firmware: app-v1}
  - region: {region: slot-0, firmware: app-v2}
  - region: {region: slot-0, firmware: app-v1}`, []string{
			"PASS region active-app holds app-v2",
			"FAIL region active-app holds app-v1: it holds app-v2",
			"PASS region slot-0 holds app-v2",
			"FAIL region slot-0 holds app-v1: it holds app-v2",
		}},
		{"region holding no firmware", halted, `
  - region: {region: active-app, firmware: app-v1}`, []string{
			"FAIL region active-app holds app-v1: it holds neither that nor any other firmware of the scenario",
		}},
		{"region erased", installed, `
  - region: {region: active-app, erased: true}
  - region: {region: sotp-2, erased: true}
  - region: {region: sotp-1, erased: true}`, []string{
			"FAIL region active-app is erased: byte 0xa400 is 0x42",
			"PASS region sotp-2 is erased",
			"FAIL region sotp-1 is erased: byte 0x8000 is 0xfe",
		}},
		{"region sha256", installed, `
  - region: {region: sotp-2, sha256: ` + erasedSotpSHA + `}
  - region: {region: sotp-2, sha256: ` + strings.ToUpper(erasedSotpSHA) + `}
  - region: {region: sotp-2, sha256: 0000000000000000000000000000000000000000000000000000000000000000}`, []string{
			"PASS region sotp-2 has sha256 " + erasedSotpSHA,
			"PASS region sotp-2 has sha256 " + strings.ToUpper(erasedSotpSHA),
			"FAIL region sotp-2 has sha256 0000000000000000000000000000000000000000000000000000000000000000: sha256 " + erasedSotpSHA,
		}},
		{"time", installed, `
  - time: {at-least: 3s, at-most: 4s}
  - time: {at-most: 1s}
  - time: {at-least: 1m}`, []string{
			"PASS virtual time in 3s..4s",
			"FAIL virtual time ≤ 1s: virtual time 3.708286669s",
			"FAIL virtual time ≥ 1m0s: virtual time 3.708286669s",
		}},
		{"result", flow, `
  - result: 100
  - result: 221`, []string{
			"PASS update result 100",
			"FAIL update result 221: the device reported 100 (UPDATE_SUCCEEDED)",
		}},
		{"result without a campaign", installed, `
  - result: 100`, []string{
			"FAIL update result 100: the device reported 0",
		}},
		{"downloaded", flow, `
  - downloaded: 215040
  - downloaded: 0
  - downloaded: {at-least: 200000, at-most: 220000}
  - downloaded: {at-most: 215039}`, []string{
			"PASS payload bytes served = 215040",
			"FAIL payload bytes served = 0: 215040 bytes served",
			"PASS payload bytes served in 200000..220000",
			"FAIL payload bytes served ≤ 215039: 215040 bytes served",
		}},
		{"service", flow, `
  - service: {updated: true, result: 100, state: 1, notifications: 1}
  - service: {updated: false}
  - service: {result: 221}
  - service: {state: 3}
  - service: {notifications: 2}`, []string{
			"PASS service sees updated=true result=100 state=1 notifications=1",
			"FAIL service sees updated=false: updated=true result=100 state=1 notifications=1",
			"FAIL service sees result=221: updated=true result=100 state=1 notifications=1",
			"FAIL service sees state=3: updated=true result=100 state=1 notifications=1",
			"FAIL service sees notifications=2: updated=true result=100 state=1 notifications=1",
		}},
		{"update-time", flow, `
  - update-time: {at-least: 1s, at-most: 1m}
  - update-time: {at-most: 1s}
  - update-time: {at-least: 1m}`, []string{
			"PASS time to update in 1s..1m0s",
			"FAIL time to update ≤ 1s: took 8.175446519s",
			"FAIL time to update ≥ 1m0s: took 8.175446519s",
		}},
		{"update-time without a campaign", installed, `
  - update-time: {at-most: 1h}`, []string{
			"FAIL time to update ≤ 1h0m0s: the campaign's firmware never ran",
		}},
		{"no-brick", installed, `
  - no-brick`, []string{
			"PASS no-brick",
		}},
		{"no-brick on a brick", halted, `
  - no-brick
  - weakness: no-brick`, []string{
			"FAIL no-brick: weakness: after a power cycle no application runs: the device is halted after 1 boots, 64ms",
			"PASS known weakness no-brick",
		}},
		{"declared weakness that does not show", installed, `
  - weakness: no-brick
  - weakness: no-downgrade
  - weakness: authentic
  - weakness: sotp-intact`, []string{
			"FAIL known weakness no-brick: pass: after a power cycle app-v2 runs (boot 1, 67ms)",
			"FAIL known weakness no-downgrade: pass: versions never went down",
			"FAIL known weakness authentic: pass: only the vendor's firmware ran",
			"FAIL known weakness sotp-intact: pass: the ROT reads back",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, res := checkResult(t, tc.base+"expect:"+tc.expect+"\n")
			require.Equal(t, tc.want, got)
			passed := !slices.ContainsFunc(got, func(s string) bool { return strings.HasPrefix(s, "FAIL ") })
			require.Equal(t, passed, res.Passed, "a failed expectation fails the run")
		})
	}
}

// erasedSotpSHA is the SHA-256 of 4 KiB of 0xFF: sotp-2 of a device that
// never compacted its SOTP store.
const erasedSotpSHA = "f47a8ec3e9aff2318d896942282ad4fe37d6391c82914f54a5da8a37de1300c6"

// invariantsOf returns each invariant as "name status: detail".
func invariantsOf(res *Result) []string {
	var out []string
	for _, inv := range res.Invariants {
		out = append(out, inv.Name+" "+inv.Status+": "+inv.Detail)
	}
	return out
}

// TestInvariantsHoldAndFail: each invariant on a run that keeps it, one that
// violates it where the profile promises it (fail), one where it does not
// (weakness), and one where it does not apply.
func TestInvariantsHoldAndFail(t *testing.T) {
	t.Run("all hold", func(t *testing.T) {
		res := mustRun(t, installed)
		require.Equal(t, []string{
			"no-brick pass: after a power cycle app-v2 runs (boot 1, 67ms)",
			"authentic pass: only the vendor's firmware ran",
			"no-downgrade pass: versions never went down",
			"sotp-intact pass: the ROT reads back",
		}, invariantsOf(res))
		require.True(t, res.Passed)
	})
	t.Run("never held an application", func(t *testing.T) {
		y := strings.Replace(halted, "  active: app-v1\n", "", 1)
		y = strings.Replace(y, "  - corrupt: {region: active-app, offset: 0x1000, bit: 0}\n", "", 1)
		y = strings.Replace(y, "factory:\n", "factory: {rot: none}\n", 1)
		res := mustRun(t, y)
		require.Equal(t, []string{
			"no-brick n/a: the device never held an application",
			"authentic pass: only the vendor's firmware ran",
			"no-downgrade pass: versions never went down",
			"sotp-intact n/a: no ROT was provisioned",
		}, invariantsOf(res))
		require.True(t, res.Passed, "n/a is not a failure: %v", res.Failures())
		got, _ := checkResult(t, y+"expect:\n  - no-brick\n  - weakness: no-brick\n")
		require.Equal(t, []string{
			"FAIL no-brick: n/a: the device never held an application",
			"FAIL known weakness no-brick: n/a: the device never held an application",
		}, got)
	})
	t.Run("authentic fails on the SD card", func(t *testing.T) {
		// The factory put an attacker's image in the slot with a valid HMAC
		// header (a stolen device key): classic promises authenticity for
		// external candidates only as far as the HMAC goes, and it ran.
		y := strings.Replace(installed, "  app-v2: {version: 1561520000, size: 210KiB}", "  app-v2: {version: 1561520000, size: 210KiB, attacker: true}", 1)
		res := mustRun(t, y)
		require.False(t, res.Passed)
		require.Equal(t, []string{"invariant authentic: ran app-v2 version 1561520000 at 0xa400, which the vendor did not build"}, res.Failures())
		got, res := checkResult(t, y+"expect:\n  - weakness: authentic\n")
		require.Equal(t, []string{"PASS known weakness authentic"}, got)
		require.True(t, res.Passed)
	})
	t.Run("authentic is a weakness on internal flash", func(t *testing.T) {
		y := strings.Replace(installed, "board: k64f", "board: k64f\n  storage: internal", 1)
		y = strings.Replace(y, "  app-v2: {version: 1561520000, size: 210KiB}", "  app-v2: {version: 1561520000, size: 210KiB, attacker: true}", 1)
		res := mustRun(t, y)
		require.True(t, res.Passed, "%v", res.Failures())
		require.Equal(t, "authentic weakness: ran app-v2 version 1561520000 at 0xa400, which the vendor did not build", invariantsOf(res)[1])
	})
	t.Run("an image that is no firmware of the scenario is not authentic", func(t *testing.T) {
		r := startRun(t, installed)
		res := &Result{Trace: []sim.Event{{Kind: sim.EvStage, Stage: sim.StageApplication, Name: string(sim.StageApplication),
			Image: "stranger", Version: 1, Detail: "stranger version 1 at 0xa400"}}}
		violated, na, detail := r.authentic(res)
		require.True(t, violated)
		require.False(t, na)
		require.Equal(t, "ran stranger version 1 at 0xa400, which the vendor did not build", detail)
		res.Trace[0].Image = "app-v1"
		violated, _, _ = r.authentic(res)
		require.False(t, violated, "the image's name decides, not the text")
		res.Trace[0].Image = "stranger"
		res.Trace[0].Stage, res.Trace[0].Name = sim.StageBootloader, string(sim.StageBootloader)
		violated, _, _ = r.authentic(res)
		require.False(t, violated, "only applications are judged")
	})
	t.Run("no-downgrade is a weakness of classic", func(t *testing.T) {
		lib, err := Find("empty-active-downgrade")
		require.NoError(t, err)
		res, err := Run(lib, Options{})
		require.NoError(t, err)
		require.Equal(t, "no-downgrade weakness: app-v1 (version 1561517193) ran after app-v2 (version 1561520000)", invariantsOf(res)[2])
	})
	t.Run("no-downgrade compares every run with the best before it", func(t *testing.T) {
		r := startRun(t, installed)
		type run struct {
			image   string
			version uint64
		}
		for _, tc := range []struct {
			runs   []run
			broken bool
			detail string
		}{
			{[]run{{"a", 5}, {"b", 5}, {"c", 6}}, false, "versions never went down"},
			{[]run{{"a", 5}, {"b", 7}, {"c", 6}}, true, "c (version 6) ran after b (version 7)"},
			{[]run{{"a", 7}, {"b", 5}, {"c", 6}}, true, "b (version 5) ran after a (version 7)"},
		} {
			res := &Result{}
			for _, x := range tc.runs {
				res.Trace = append(res.Trace,
					sim.Event{Kind: sim.EvMark, Name: "app-running", Image: x.image, Version: x.version},
					sim.Event{Kind: sim.EvMark, Name: "registered", Image: "old", Version: 1})
			}
			violated, _, detail := r.noDowngrade(res)
			require.Equal(t, tc.broken, violated, "%v", tc.runs)
			require.Equal(t, tc.detail, detail)
		}
	})
	t.Run("sotp-intact fails when the ROT is lost", func(t *testing.T) {
		y := strings.Replace(installed, "  - power-on\n", "  - corrupt: {region: sotp-1, offset: 0, bit: 0}\n  - power-on\n", 1)
		res := mustRun(t, y)
		require.False(t, res.Passed)
		require.Equal(t, []string{"invariant sotp-intact: ROT: sotp: not found: rot"}, res.Failures())
	})
	t.Run("sotp-intact fails when the ROT changed", func(t *testing.T) {
		r := startRun(t, installed)
		res := r.play()
		require.True(t, res.Passed, "%v", res.Failures())
		other := make([]byte, 16)
		r.m.Storage().PowerOn()
		a1, a2 := r.l.Layout.SOTPAreas()
		require.NoError(t, sotp.New(r.m.Internal(), a1, a2).Set(sotp.TypeROT, other))
		violated, na, detail := r.sotpIntact(res)
		require.True(t, violated)
		require.False(t, na)
		require.Equal(t, "ROT reads 00000000000000000000000000000000, provisioned "+hex.EncodeToString(r.l.ROT), detail)
	})
}

// playSteps starts a scenario and plays its steps; it returns the runner
// and the error of the last step.
func playSteps(t *testing.T, y string) (*runner, error) {
	t.Helper()
	r := startRun(t, y)
	var err error
	for _, st := range r.l.Steps {
		if err = r.step(st); err != nil {
			break
		}
	}
	return r, err
}

// lastTime returns when the trace last had an event that satisfies ok.
func lastTime(r *runner, ok func(sim.Event) bool) (int, bool) {
	tr := r.m.Trace()
	for i := len(tr) - 1; i >= 0; i-- {
		if ok(tr[i]) {
			return i, true
		}
	}
	return 0, false
}

// TestConditionsHoldAndTimeOut: a wait stops at the first moment its
// condition holds (and not before), and times out, saying where the device
// is, when it never holds; events and serial text count only from the
// start of the wait.
func TestConditionsHoldAndTimeOut(t *testing.T) {
	healthy := strings.Replace(installed, "  - wait: {until: app-running, timeout: 60s}\n", "", 1)
	crash := strings.Replace(healthy, "size: 210KiB}", "size: 210KiB, behaviour: lockup}", 1)
	lockup := strings.Replace(crash, "board: k64f", "board: nucleo-f429zi", 1)
	// soon checks that an event that made a condition true happened in the
	// stage code that ran last: the wait stopped right after it, before any
	// other stage started.
	soon := func(t *testing.T, r *runner, ok func(sim.Event) bool) {
		t.Helper()
		i, found := lastTime(r, ok)
		require.True(t, found)
		for _, e := range r.m.Trace()[i:] {
			require.NotEqual(t, sim.EvStage, e.Kind, "a stage started after %v", r.m.Trace()[i])
		}
	}
	mark := func(name string) func(sim.Event) bool {
		return func(e sim.Event) bool { return e.Kind == sim.EvMark && e.Name == name }
	}
	for _, tc := range []struct {
		name string
		y    string
		wait string
		// holds checks, after the wait, that the condition is true now and
		// was not true before (where that can be told).
		holds func(t *testing.T, r *runner)
	}{
		{"app-running", healthy, "app-running", func(t *testing.T, r *runner) {
			soon(t, r, mark("app-running"))
			require.Equal(t, "app-v2", r.running())
		}},
		{"running", healthy, "{running: app-v2}", func(t *testing.T, r *runner) {
			soon(t, r, mark("app-running"))
			require.Equal(t, "app-v2", r.running())
		}},
		{"halted", strings.Replace(halted, "  - wait: {until: halted, timeout: 10s}\n", "", 1), "halted", func(t *testing.T, r *runner) {
			require.Equal(t, sim.StateHalted, r.m.State())
		}},
		{"state", strings.Replace(halted, "  - wait: {until: halted, timeout: 10s}\n", "", 1), "{state: halted}", func(t *testing.T, r *runner) {
			require.Equal(t, sim.StateHalted, r.m.State())
		}},
		{"off", healthy + "  - fault: \"kind=erase,nth=3,mode=cut-after\"\n", "off", func(t *testing.T, r *runner) {
			require.Equal(t, sim.StateOff, r.m.State())
			require.Len(t, r.m.Storage().Journal(), 3)
		}},
		{"locked-up", lockup, "locked-up", func(t *testing.T, r *runner) {
			require.Equal(t, sim.StateLockedUp, r.m.State())
		}},
		{"boots", strings.Replace(crash, "  - wait: {until: app-running, timeout: 60s}\n", "", 1), "{boots: 3}", func(t *testing.T, r *runner) {
			require.Equal(t, 3, r.m.Boots())
			i, ok := lastTime(r, func(e sim.Event) bool { return e.Kind == sim.EvStage })
			require.True(t, ok)
			require.Equal(t, r.m.Now(), r.m.Trace()[i].Time, "the wait stops as the 3rd boot starts")
		}},
		// A wait is checked between two runs of stage code: the bootloader
		// verifies, jumps and starts the application in one.
		{"event", healthy, "{event: verify-begin}", func(t *testing.T, r *runner) {
			require.Equal(t, 1, countEvents(r.m.Trace(), "verify-begin"))
			require.Equal(t, 1, r.m.Boots())
		}},
		{"serial", healthy, `{serial: "Verify application"}`, func(t *testing.T, r *runner) {
			_, found := lastTime(r, func(e sim.Event) bool {
				return e.Kind == sim.EvSerial && strings.Contains(e.Detail, "Verify application")
			})
			require.True(t, found)
			require.Equal(t, 1, r.m.Boots())
		}},
	} {
		t.Run(tc.name+" holds", func(t *testing.T) {
			r, err := playSteps(t, tc.y+"  - wait: {until: "+tc.wait+", timeout: 5m}\n")
			require.NoError(t, err)
			tc.holds(t, r)
		})
	}

	for _, tc := range []struct{ name, y, wait, want string }{
		{"app-running", crash, "app-running", "the device is booting after 6 boots"},
		{"running", installed, "{running: app-v1}", "the device is running (application app-v2) after 1 boots"},
		{"halted", installed, "halted", "the device is running (application app-v2) after 1 boots"},
		{"state", installed, "{state: locked-up}", "the device is running (application app-v2) after 1 boots"},
		{"off", installed, "off", "the device is running (application app-v2) after 1 boots"},
		{"locked-up", crash, "locked-up", "the device is booting after 6 boots"},
		{"boots", installed, "{boots: 2}", "the device is running (application app-v2) after 1 boots"},
		{"event seen before the wait", installed, "{event: copy-begin}", "the device is running (application app-v2) after 1 boots"},
		{"event never seen", installed, "{event: dead-end}", "the device is running (application app-v2) after 1 boots"},
		{"serial seen before the wait", installed, `{serial: "Copy application"}`, "the device is running (application app-v2) after 1 boots"},
		{"serial never seen", installed, `{serial: "Failed to jump"}`, "the device is running (application app-v2) after 1 boots"},
	} {
		t.Run(tc.name+" times out", func(t *testing.T) {
			res := mustRun(t, tc.y+"  - wait: {until: "+tc.wait+", timeout: 10s}\n")
			require.False(t, res.Passed)
			require.Equal(t, len(res.Trace) > 0, true)
			require.Equal(t, strings.Count(tc.y, "\n  - ")+1, res.Step, "the last step times out")
			require.Contains(t, res.Error, "timed out after 10s; "+tc.want)
		})
	}
}

// TestNoBrickBudget: no-brick allows a recovery that brings an application
// up by the stage code of the 10th boot after the power cycle, and not one
// later. The active image crashes in start-up code; once the boot counter
// reaches max-boot-retries the bootloader gives up on it and takes the
// older image in the slot: at boot max-boot-retries + 2.
func TestNoBrickBudget(t *testing.T) {
	for _, tc := range []struct {
		retries int
		status  string
	}{{7, "pass"}, {8, "pass"}, {9, "fail"}} {
		y := fmt.Sprintf(`scenario: budget
summary: Recovery at boot %d.
device:
  board: k64f
  config:
    mbed-bootloader.max-boot-retries: %d
firmware:
  app-v1: {version: 1561517193, size: 20KiB}
  app-v2: {version: 1561520000, size: 20KiB, behaviour: lockup}
factory:
  active: app-v2
  slots: [app-v1]
steps:
  - power-on
  - power-cut
`, tc.retries+2, tc.retries)
		res := mustRun(t, y)
		inv := res.Invariants[0]
		require.Equal(t, InvNoBrick, inv.Name)
		require.Equal(t, tc.status, inv.Status, "recovery at boot %d: %s", tc.retries+2, inv.Detail)
		if tc.status == "pass" {
			require.Contains(t, inv.Detail, fmt.Sprintf("after a power cycle app-v1 runs (boot %d,", tc.retries+2))
		}
	}
}

// TestNoBrickAppliesToSlots: a device whose only application is in a
// candidate slot held an application; one whose slots are empty did not.
func TestNoBrickAppliesToSlots(t *testing.T) {
	y := strings.Replace(installed, "  active: app-v1\n", "", 1)
	res := mustRun(t, y)
	require.Equal(t, "no-brick pass: after a power cycle app-v2 runs (boot 1, 67ms)", invariantsOf(res)[0])
	y = strings.Replace(y, "slots: [app-v2]", `slots: [""]`, 1)
	y = strings.Replace(y, "  - wait: {until: app-running, timeout: 60s}\n", "", 1)
	res = mustRun(t, y)
	require.Equal(t, "no-brick n/a: the device never held an application", invariantsOf(res)[0])
}

// TestRegionDetails: the details of a region expectation point at the
// first byte that is not erased, and an image that fills its region to the
// last byte is found there.
func TestRegionDetails(t *testing.T) {
	y := strings.Replace(halted, "  active: app-v1\n", "", 1)
	y = strings.Replace(y, "offset: 0x1000, bit: 0", "offset: 0x10, bit: 3", 1)
	got, _ := checkResult(t, y+"expect:\n  - region: {region: active-app, erased: true}\n")
	require.Equal(t, []string{"FAIL region active-app is erased: byte 0xa410 is 0xf7"}, got)

	// 211 KiB from 0xA400 ends on a sector boundary, so the copy's erase
	// stays within the maximum application size.
	y = strings.Replace(installed, "board: k64f", "board: k64f\n  config:\n    mbed-bootloader.max-application-size: 211KiB\n    update-client.storage-size: 1MiB", 1)
	y = strings.Replace(y, "size: 210KiB}", "size: 211KiB}", 1)
	got, _ = checkResult(t, y+"expect:\n  - region: {region: active-app, firmware: app-v2}\n")
	require.Equal(t, []string{"PASS region active-app holds app-v2"}, got)
}

// TestNetworkSteps: a network step changes what the next transfers cost:
// bandwidth and latency from then on, a stall for requests sent before it
// ends, a link that is down until it is up again.
func TestNetworkSteps(t *testing.T) {
	updateTime := func(step string) time.Duration {
		t.Helper()
		y := strings.Replace(flow, "  - campaign: {firmware: app-v2}\n", step+"  - campaign: {firmware: app-v2}\n", 1)
		r := startRun(t, y)
		res := r.play()
		require.True(t, res.Passed, "%s: %v", step, res.Failures())
		d, ok := r.updateTime(res)
		require.True(t, ok)
		return d
	}
	base := updateTime("")
	// 215040 bytes at 100000 B/s take 2.15 s; at 10000 B/s, 21.5 s.
	require.InDelta(t, 19.35, (updateTime("  - network: {bandwidth: 10000}\n") - base).Seconds(), 0.1)
	// 8 transfers (the manifest's push and 7 bursts) pay 450 ms more each.
	require.Equal(t, 8*450*time.Millisecond, updateTime("  - network: {latency: 500ms}\n")-base)
	require.InDelta(t, 30, (updateTime("  - network: {stall: 30s}\n") - base).Seconds(), 0.2)
	unchanged := updateTime("  - network: down\n  - network: up\n") - base
	require.Equal(t, time.Duration(0), unchanged)
}

// TestGivenROTIsProvisioned: a ROT the scenario gives is the one in SOTP,
// and the one candidate headers are made with.
func TestGivenROTIsProvisioned(t *testing.T) {
	y := strings.Replace(installed, "slots: [app-v2]", "slots: [app-v2]\n  rot: 000102030405060708090a0b0c0d0e0f", 1)
	r := startRun(t, y)
	res := r.play()
	require.True(t, res.Passed, "%v", res.Failures())
	require.Equal(t, "000102030405060708090a0b0c0d0e0f", hex.EncodeToString(r.l.ROT))
	require.Equal(t, "sotp-intact pass: the ROT reads back", invariantsOf(res)[3])
}

// TestPlantErasesWhatItWrites: a compromised application erases the slot's
// sectors from the header to its image's last byte, and no further.
func TestPlantErasesWhatItWrites(t *testing.T) {
	l, err := Find("plant-internal-flash")
	require.NoError(t, err)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	require.True(t, res.Passed, "%v", res.Failures())
	erases := 0
	for _, op := range res.Journal {
		if op.Stage == "application" && op.Kind == storage.OpErase {
			require.Equal(t, "slot-0", op.Region)
			erases++
		}
	}
	// The 0x70-byte header and 120 KiB of image end in the 31st sector.
	require.Equal(t, 31, erases)

	// An image that ends on a sector boundary: 30 sectors, not 31.
	y := strings.Replace(string(l.Source), "evil: {version: 1700000000, size: 120KiB", "evil: {version: 1700000000, size: 122768", 1)
	require.Contains(t, y, "size: 122768")
	res = mustRun(t, y)
	require.True(t, res.Passed, "%v", res.Failures())
	erases = 0
	for _, op := range res.Journal {
		if op.Stage == "application" && op.Kind == storage.OpErase {
			erases++
		}
	}
	require.Equal(t, 30, erases)
}
