package scenarios

import (
	"errors"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/strictyaml"
	"github.com/stretchr/testify/require"
)

// hostile is a generated corpus of scenarios a careless user or an
// attacker writes: huge counts, deep nesting, extreme numbers, every field
// at or past its bounds (issue 11). Each is an edit of base.
func hostile() map[string]string {
	rep := func(old, new string) string { return strings.Replace(base, old, new, 1) }
	step := func(s string) string { return base + "  - " + s + "\n" }
	out := map[string]string{
		// §1: counts that would exhaust memory or time.
		"a billion locations": rep("board: k64f", "board: k64f\n  config: {update-client.storage-locations: 1000000000}"),
		"100000 locations":    rep("board: k64f", "board: k64f\n  config: {update-client.storage-locations: 100000}"),
		"huge nth":            step("power-cut: {torn: {op: program, nth: 1000000000000000000}}"),
		"endless wait":        step("wait: 1000000h"),
		"endless waits":       step("wait: 2562047h") + "  - wait: 2562047h\n",
		"busy forever": strings.Replace(base, "  slots: [app-v2]\n", "", 1) +
			"  - wait: {until: {event: registered}, timeout: 60s}\n" +
			"  - campaign: {firmware: app-v2, sources: [lwm2m, {name: h, kind: http, busy: 2147483647}]}\n" +
			"  - wait: {until: {running: app-v2}, timeout: 100000h}\n",
		"huge config address": rep("board: k64f", "board: k64f\n  config: {update-client.storage-address: 0x7fffffffffffffff}"),
		"huge storage size":   rep("board: k64f", "board: k64f\n  config: {update-client.storage-size: 0x7fffffffffffffff}"),
		"huge app size":       rep("size: 210KiB}", "size: 0x7fffffffffffffff}"),
		// §2: valid-looking scenarios that ended in an internal error.
		"negative index":      step("power-cut: {before: {index: -1}}"),
		"tiny bootloader":     rep("board: k64f", "board: k64f\n  config: {mbed-bootloader.bootloader-size: 8}"),
		"long name":           strings.ReplaceAll(base, "app-v2", "app-"+strings.Repeat("v", 1000)),
		"candidate too large": rep("size: 210KiB}", "size: 1020KiB}"),
		// §3: numbers changed without a word.
		"fractional version": rep("version: 1561517193", "version: 1.5"),
		"float version":      rep("version: 1561517193", "version: 1e3"),
		"seed past uint64":   rep("summary:", "seed: 18446744073709551616\nsummary:"),
		"negative seed":      rep("summary:", "seed: -1\nsummary:"),
		"wrapping size":      rep("size: 210KiB}", "size: (0-0x7fffffffffffffff-0x7fffffffffffffff+2046)}"),
		"huge version":       rep("version: 1561517193", "version: 99999999999999999999"),
		// §4: checked unevenly.
		"impossible bounds":      base + "expect:\n  - event: {name: copy-done, at-least: 5, at-most: 2}\n",
		"duplicate bound":        base + "expect:\n  - event: {name: copy-done, at-least: 1, at-least: 2}\n",
		"busy negative":          step("campaign: {firmware: app-v2, sources: [lwm2m, {name: h, kind: http, busy: -5}]}"),
		"unknown region in rule": step(`fault: "region=nope,mode=io-error"`),
		// Deep nesting and odd bytes.
		"deep nesting":   base + "expect:\n  - " + strings.Repeat("[", 10000) + strings.Repeat("]", 10000) + "\n",
		"NUL byte":       base + "\x00",
		"invalid UTF-8":  base + "  - wait: \xff\xfe\n",
		"unknown anchor": base + "  - *nowhere\n",
	}
	fw := strings.Builder{}
	for i := range 100000 {
		fmt.Fprintf(&fw, "  f%d: {version: 1, size: 2KiB}\n", i)
	}
	out["100000 firmware"] = strings.Replace(base, "firmware:\n", "firmware:\n"+fw.String(), 1)
	return out
}

// hostileRuns are the hostile scenarios that are valid: they must run to a
// failing verdict (a budget, a cut that never fires), not be refused.
var hostileRuns = map[string]bool{"endless wait": true, "endless waits": true, "busy forever": true, "huge nth": true}

// TestHostileScenarios: every hostile scenario is refused at
// file:line:col, or runs to a verdict (pass or fail) within bounded time
// and memory: never a panic, an internal error, a hang or an OOM.
func TestHostileScenarios(t *testing.T) {
	for name, src := range hostile() {
		t.Run(name, func(t *testing.T) {
			start := time.Now()
			l, err := Load("h.yaml", []byte(src), nil)
			if hostileRuns[name] {
				require.NoError(t, err)
			} else {
				require.Error(t, err, "validate must refuse what run cannot do, or what it would run with another number")
			}
			if err != nil {
				var se *strictyaml.Error
				require.True(t, errors.As(err, &se), "%T: %v", err, err)
				require.Regexp(t, `^h\.yaml:\d+:\d+: `, err.Error(), "a positioned error")
				require.Less(t, time.Since(start), 5*time.Second, "validation is linear")
				return
			}
			var res *Result
			heap := heapAfter(func() { res, err = Run(l, Options{MaxEvents: 200_000}) })
			require.NoError(t, err, "no internal error")
			require.NotNil(t, res)
			require.False(t, res.Passed, "a hostile run fails")
			require.Less(t, heap, uint64(1024), "MiB live after the run")
			require.Less(t, time.Since(start), 60*time.Second)
			runtime.GC()
		})
	}
}
