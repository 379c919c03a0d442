package scenarios

import (
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

// TestHTMLReportIsSelfContained: the report of a run loads nothing from
// anywhere (no src or link to another file or host), shows each scenario
// with its outcome, and escapes what the device printed.
func TestHTMLReportIsSelfContained(t *testing.T) {
	var ls []*Loaded
	var rs []*Result
	for _, name := range []string{"seed-update-flow", "plant-internal-flash", "chain-depth-first"} {
		l, err := Find(name)
		require.NoError(t, err)
		res, err := Run(l, Options{RegionContents: true})
		require.NoError(t, err)
		ls, rs = append(ls, l), append(rs, res)
	}
	rep := NewRunReport(ls, rs, func(r *Result) string { return "bootsim run " + r.Name })
	page := HTMLReport(rep)
	require.True(t, strings.HasPrefix(page, "<!DOCTYPE html>"))
	require.NotRegexp(t, regexp.MustCompile(`(?i)<(script|img|link|iframe)[^>]+(src|href)=`), page, "nothing external")
	require.Contains(t, page, `<section class="scenario" id="s0" data-name="seed-update-flow">`)
	require.Contains(t, page, `<h2>plant-internal-flash <span class="weakness">WEAK</span></h2>`)
	require.Contains(t, page, "[DBG ] New active firmware is valid")
	require.Contains(t, page, `<div class="span phase"`, "the install's phases on the timeline")
	require.Contains(t, page, `<div class="span install"`, "the install inside its bootloader stage")
	require.Contains(t, page, `<div class="span update-client"`, "the update client's states inside the application")
	require.NotContains(t, page, "<script>alert", "sanity")
	require.Contains(t, page, `<pre class="tree">boot-sequence tree of chain-depth-first`, "a chain scenario shows its boot-sequence tree")
	// The internal flash as a strip of its 256 sectors (K64F), the copy's
	// erases marked on the sectors it erased, the regions named under it.
	first := page[strings.Index(page, `id="s0"`):strings.Index(page, `id="s1"`)]
	require.Equal(t, 256, strings.Count(first, `<div class="sector"`))
	require.Contains(t, first, `title="0xa000: 1 erase"`, "the sector of the active header and the application's start was erased once")
	require.Contains(t, first, `title="0x0: 0 erases"`, "the bootloader's sector never")
	require.Contains(t, first, `>active-app</span>`)
	// What each region holds at the end: the update flow leaves app-v2 in
	// the active region and on the card, the bootloader untouched, one
	// SOTP sector in use and the other erased.
	holds := map[string]string{}
	for _, m := range regexp.MustCompile(`<tr data-region="([^"]+)">(?:<td>[^<]*</td>){2}<td class="holds-[a-z]+" title="sha256 [0-9a-f]{64}">([^<]*)</td>`).FindAllStringSubmatch(first, -1) {
		holds[m[1]] = m[2]
	}
	require.Equal(t, map[string]string{"bootloader": "mbed-bootloader", "sotp-1": "data (40 of 4096 bytes not erased)", "sotp-2": "erased",
		"active-header": "data (112 of 1024 bytes not erased)", "active-app": "app-v2", "slot-0": "app-v2"}, holds)
	require.Equal(t, page, HTMLReport(rep), "a pure function of the report")
}

// TestRegionStates: what the flash map says a region holds is what is in
// it. A cut in the middle of the copy's body leaves the first bytes of the
// new image in the active region, at least as many as the programs that
// completed wrote; the card still holds the whole candidate. The SHA-256 is the one a region: {sha256} expectation takes.
func TestRegionStates(t *testing.T) {
	src := `scenario: cut
summary: Power fails in the middle of the copy, and stays off.
device: {board: k64f, storage: sd}
firmware:
  app-v1: {version: 1561517193, size: 200KiB}
  app-v2: {version: 1561520000, size: 210KiB}
factory: {active: app-v1, slots: [app-v2]}
steps:
  - power-on
  - power-cut: {torn: {op: program, region: active-app, nth: 8193}, seed: 3}
`
	// The copy programs 8-byte pages, 2048 per 16 KiB buffer: page 8193
	// is the first of the fifth buffer.
	l, err := Load("cut.yaml", []byte(src), nil)
	require.NoError(t, err)
	res, err := Run(l, Options{RegionContents: true})
	require.NoError(t, err)
	byName := map[string]RegionState{}
	for _, s := range res.Regions {
		byName[s.Name] = s
	}
	app := byName["active-app"]
	require.Equal(t, HoldsPartial, app.Holds, app.Text())
	require.Equal(t, "app-v2", app.Firmware)
	var programmed uint64
	for _, op := range res.Journal {
		if op.Region == "active-app" && op.Kind == storage.OpProgram && op.Fault.Mode == storage.FaultNone {
			programmed += op.Len
		}
	}
	require.GreaterOrEqual(t, app.Matching, programmed, "every completed program wrote app-v2's next bytes")
	require.Less(t, app.Matching, uint64(210<<10))
	require.Equal(t, HoldsData, byName["active-header"].Holds, "the classic bootloader writes the new header before the body")
	require.Equal(t, HoldsFirmware, byName["slot-0"].Holds)
	require.Equal(t, "app-v2", byName["slot-0"].Firmware)
	require.Equal(t, "the first "+strconv.FormatUint(app.Matching, 10)+" bytes of app-v2", app.Text())

	// The hash is the region's, as the sha256 expectation reads it.
	l2, err := Load("cut.yaml", []byte(strings.Replace(src, "steps:", "expect:\n  - region: {region: active-app, sha256: "+app.SHA256+"}\nsteps:", 1)), nil)
	require.NoError(t, err)
	res2, err := Run(l2, Options{})
	require.NoError(t, err)
	require.True(t, res2.Passed, res2.Failures())
}

// TestSweepHTML: the sweep page has a cell per point, one row per mode and
// torn seed, coloured as the point ended, with its replay in the title.
func TestSweepHTML(t *testing.T) {
	l, err := Find("plant-internal-flash")
	require.NoError(t, err)
	rep, err := SweepScenario(l, SweepOptions{TornSeeds: 2, Workers: 2})
	require.NoError(t, err)
	page := SweepHTML(rep)
	require.Equal(t, len(rep.Results), strings.Count(page, `<div class="cell `))
	require.Equal(t, 4, strings.Count(page, `<div class="row">`), "before, after, torn seed 1, torn seed 2")
	weak := 0
	for _, p := range rep.Results {
		if p.Passed && len(p.Weaknesses) > 0 {
			weak++
		}
	}
	require.Positive(t, weak)
	require.Equal(t, weak, strings.Count(page, `<div class="cell weak"`))
	require.Contains(t, page, "bootsim run plant-internal-flash --seed 1 --cut op=")
	require.NotRegexp(t, regexp.MustCompile(`(?i)<(script|img|link|iframe)[^>]+(src|href)=`), page)
}
