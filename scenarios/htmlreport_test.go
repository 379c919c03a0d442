package scenarios

import (
	"regexp"
	"strings"
	"testing"

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
		res, err := Run(l, Options{})
		require.NoError(t, err)
		ls, rs = append(ls, l), append(rs, res)
	}
	page := HTMLReport(ls, rs)
	require.True(t, strings.HasPrefix(page, "<!DOCTYPE html>"))
	require.NotRegexp(t, regexp.MustCompile(`(?i)<(script|img|link|iframe)[^>]+(src|href)=`), page, "nothing external")
	require.Contains(t, page, `<section class="scenario" id="s0" data-name="seed-update-flow">`)
	require.Contains(t, page, `<h2>plant-internal-flash <span class="weakness">WEAK</span></h2>`)
	require.Contains(t, page, "[DBG ] New active firmware is valid")
	require.Contains(t, page, `<div class="span phase"`, "the install's phases on the timeline")
	require.NotContains(t, page, "<script>alert", "sanity")
	require.Contains(t, page, `<pre class="tree">boot-sequence tree of chain-depth-first`, "a chain scenario shows its boot-sequence tree")
	// The internal flash as a strip of its 256 sectors (K64F), the copy's
	// erases marked on the sectors it erased, the regions named under it.
	first := page[strings.Index(page, `id="s0"`):strings.Index(page, `id="s1"`)]
	require.Equal(t, 256, strings.Count(first, `<div class="sector"`))
	require.Contains(t, first, `title="0xa000: 1 erase"`, "the sector of the active header and the application's start was erased once")
	require.Contains(t, first, `title="0x0: 0 erases"`, "the bootloader's sector never")
	require.Contains(t, first, `>active-app</span>`)
	require.Equal(t, page, HTMLReport(ls, rs), "a pure function of the results")
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
