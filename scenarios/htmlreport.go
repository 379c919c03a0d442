package scenarios

import (
	"fmt"
	"html"
	"sort"
	"strings"
	"time"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// HTMLReport renders a run report as one self-contained HTML page (no
// network, no external assets), for CI artifacts and for teaching: per
// scenario, its story (summary and steps), its outcome, expectations and
// invariants, a timeline of its stages and milestones over virtual time,
// the flash map with what each region holds at the end and the erases it
// took, and the serial console, each line linked to its moment on the
// timeline. It is a pure function of the report, so a saved report draws
// the same page as the run did.
func HTMLReport(rep RunReport) string {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bootsim report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc} h3{font-size:1em;margin:1em 0 .3em}
.pass{color:#1a7f37}.fail,.error{color:#cf222e}.weakness{color:#9a6700}.n\/a{color:#666}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
code{font:12px ui-monospace,monospace}
.timeline{position:relative;border:1px solid #ccc;background:#fafafa;margin:.5em 0}
.lane{position:relative;height:22px;border-bottom:1px dashed #e4e4e4}
.lane .label{position:absolute;right:2px;top:3px;font-size:10px;color:#999}
.span{position:absolute;top:2px;height:18px;overflow:hidden;white-space:nowrap;font-size:11px;border-radius:3px;padding:0 2px;box-sizing:border-box}
.bootloader{background:#cfe2ff}.application{background:#d1e7dd}.bootsel{background:#e2d9f3}.install{background:#f8d7da}.phase{background:#ffe69c}.update-client{background:#cff4fc}
.tick{position:absolute;top:0;width:1px;height:22px;background:#555}.tick.device{background:#cf222e;width:2px}.tick.console{background:#ccc}
.bin{position:absolute;bottom:0;background:#6e7781}
.serial{font:12px/1.3 ui-monospace,monospace;background:#111;color:#ddd;padding:.5em;max-height:24em;overflow:auto;white-space:pre}
.serial a{color:#8ab4f8;text-decoration:none} .serial .dev{color:#f0b400}
.heat{display:inline-block;height:10px;background:#cf222e;vertical-align:middle}
.tree{font:12px/1.3 ui-monospace,monospace;background:#f6f8fa;padding:.5em;overflow:auto}
.sectors{margin:.5em 0}.sectors .cells{display:flex;height:16px;border:1px solid #ccc}.sector{min-width:1px;border-right:1px solid #f0f0f0}
.sectors .regions{position:relative;height:16px;font-size:10px}.region{position:absolute;overflow:hidden;white-space:nowrap;border-left:1px solid #999;padding-left:2px}
.holds-erased{color:#666}.holds-partial{color:#9a6700}
</style></head><body>
<h1>bootsim report</h1>
`)
	esc := html.EscapeString
	fmt.Fprintf(&b, "<p id=\"summary\">%d scenario%s: %d passed, %d failed", rep.Passed+rep.Failed, plural(rep.Passed+rep.Failed), rep.Passed, rep.Failed)
	if rep.Errors > 0 {
		fmt.Fprintf(&b, ", %d file%s invalid", rep.Errors, plural(rep.Errors))
	}
	b.WriteString("</p>\n<ul>\n")
	for i, r := range rep.Scenarios {
		fmt.Fprintf(&b, "<li><a href=\"#s%d\" class=\"%s\">%s</a> %s</li>\n", i, esc(r.Status), esc(r.Name), statusLabel(r.Status))
	}
	b.WriteString("</ul>\n")
	for i := range rep.Scenarios {
		writeScenarioHTML(&b, i, &rep.Scenarios[i])
	}
	b.WriteString("<script>\n// Clicking a console line marks its moment on the timeline.\ndocument.querySelectorAll('.serial a').forEach(function(a){a.addEventListener('click',function(){var t=document.getElementById(a.dataset.tick);if(t){t.style.background='#cf222e';t.style.width='3px';}});});\n</script>\n</body></html>\n")
	return b.String()
}

func writeScenarioHTML(b *strings.Builder, i int, r *RunRecord) {
	esc := html.EscapeString
	fmt.Fprintf(b, "<section class=\"scenario\" id=\"s%d\" data-name=\"%s\">\n<h2>%s <span class=\"%s\">%s</span></h2>\n", i, esc(r.Name), esc(r.Name), esc(r.Status), statusLabel(r.Status))
	if r.Status == StatusError {
		fmt.Fprintf(b, "<p>%s did not load:</p>\n<p class=\"error\">%s</p>\n</section>\n", esc(r.File), esc(r.Error))
		return
	}
	if r.Summary != "" {
		fmt.Fprintf(b, "<p class=\"story\">%s</p>\n", esc(r.Summary))
	}
	fmt.Fprintf(b, "<p>%s profile", esc(r.Profile))
	if r.Board != "" {
		fmt.Fprintf(b, ", board %s", esc(r.Board))
	}
	fmt.Fprintf(b, ", seed %d</p>\n", r.Seed)
	if len(r.Steps) > 0 {
		b.WriteString("<ol class=\"steps\">\n")
		for _, st := range r.Steps {
			fmt.Fprintf(b, "<li>%s</li>\n", esc(st))
		}
		b.WriteString("</ol>\n")
	}
	fmt.Fprintf(b, "<p class=\"outcome\">%d boot%s, %.3f s of virtual time, running: %s</p>\n", r.Boots, plural(r.Boots), time.Duration(r.VirtualTimeNS).Seconds(), esc(orNone(r.Running)))
	if r.Error != "" {
		fmt.Fprintf(b, "<p class=\"fail\">%s</p>\n", esc(r.Error))
	}
	b.WriteString("<table class=\"checks\"><tr><th>expectation / invariant</th><th>result</th><th>detail</th></tr>\n")
	for _, c := range r.Expectations {
		st := StatusPass
		if !c.Passed {
			st = StatusFail
		}
		fmt.Fprintf(b, "<tr><td>%s</td><td class=\"%s\">%s</td><td>%s</td></tr>\n", esc(c.Text), st, st, esc(c.Detail))
	}
	for _, inv := range r.Invariants {
		fmt.Fprintf(b, "<tr><td>invariant %s</td><td class=\"%s\">%s</td><td>%s</td></tr>\n", esc(inv.Name), esc(inv.Status), esc(inv.Status), esc(inv.Detail))
	}
	b.WriteString("</table>\n")
	for _, w := range r.Warnings {
		fmt.Fprintf(b, "<p class=\"weakness\">warning: %s</p>\n", esc(w))
	}
	if !r.Passed && r.Replay != "" {
		fmt.Fprintf(b, "<p>replay: <code>%s</code></p>\n", esc(r.Replay))
	}
	if r.Timeline == nil {
		b.WriteString("<p class=\"note\">This report was saved without the run's trace: no timeline or console.</p>\n")
	} else {
		if r.Recovery != nil {
			fmt.Fprintf(b, "<h3>until the cut (%s)</h3>\n", esc(r.Cut))
		}
		writeTimelineHTML(b, fmt.Sprint(i), r.Timeline, r.Console)
	}
	if rec := r.Recovery; rec != nil && rec.Timeline != nil {
		fmt.Fprintf(b, "<h3>the recovery, from power-on: %d boot%s, %.3f s, running: %s</h3>\n", rec.Boots, plural(rec.Boots), time.Duration(rec.VirtualTimeNS).Seconds(), esc(orNone(rec.Running)))
		writeTimelineHTML(b, fmt.Sprintf("%dr", i), rec.Timeline, rec.Console)
	}
	if r.Tree != "" {
		// The boot-sequence tree the chain walked (bootsim tree).
		fmt.Fprintf(b, "<pre class=\"tree\">%s</pre>\n", esc(r.Tree))
	}
	writeFlashMapHTML(b, r.Regions)
	if r.FlashSectors != nil {
		writeSectorHeatHTML(b, r.FlashSectors, r.Regions)
	}
	if r.Timeline != nil {
		writeSerialHTML(b, fmt.Sprint(i), r.Console)
		if rec := r.Recovery; rec != nil && rec.Timeline != nil {
			writeSerialHTML(b, fmt.Sprintf("%dr", i), rec.Console)
		}
	}
	b.WriteString("</section>\n")
}

// statusLabel is PASS, WEAK, FAIL or ERROR, as the text output shows it.
func statusLabel(status string) string {
	switch status {
	case StatusFail:
		return "FAIL"
	case StatusWeakness:
		return "WEAK"
	case StatusError:
		return "ERROR"
	}
	return "PASS"
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// timelineLanes are the timeline's lanes of spans, outermost first.
var timelineLanes = []struct{ kind, label string }{
	{SpanStage, "stages"}, {SpanInstall, "install"}, {SpanPhase, "phases"}, {SpanUpdateClient, "update client"},
}

// writeTimelineHTML draws a timeline over virtual time: a lane per kind
// of span, the milestones, the console lines and what happened to the
// device as ticks, and the storage ops as a histogram. Element ids start
// with "t"+id; a console line's tick is t<id>-c<line>.
func writeTimelineHTML(b *strings.Builder, id string, t *Timeline, console []ConsoleLine) {
	esc := html.EscapeString
	total := max(t.EndNS, int64(time.Millisecond))
	pct := func(ns int64) float64 { return 100 * float64(ns) / float64(total) }
	fmt.Fprintf(b, "<div class=\"timeline\" id=\"t%s\" title=\"virtual time, 0 to %s\">\n", id, time.Duration(t.EndNS))
	for _, lane := range timelineLanes {
		fmt.Fprintf(b, "<div class=\"lane\" data-lane=\"%s\"><span class=\"label\">%s</span>", lane.kind, lane.label)
		for _, s := range t.Spans {
			if s.Kind != lane.kind {
				continue
			}
			class, label := s.Kind, s.Name
			if s.Kind == SpanStage {
				class, label = spanClass(s.Name), s.Detail
			}
			w := max(pct(s.ToNS)-pct(s.FromNS), 0.2)
			fmt.Fprintf(b, "<div class=\"span %s\" style=\"left:%.3f%%;width:%.3f%%\" title=\"%s %s, %s to %s\">%s</div>", esc(class), pct(s.FromNS), w,
				esc(s.Name), esc(s.Detail), time.Duration(s.FromNS), time.Duration(s.ToNS), esc(label))
		}
		b.WriteString("</div>\n")
	}
	b.WriteString("<div class=\"lane marks\"><span class=\"label\">milestones, device</span>")
	for k, e := range t.Events {
		class := "tick"
		if e.Kind != sim.EvMark.String() {
			class += " device"
		}
		fmt.Fprintf(b, "<div class=\"%s\" id=\"t%s-m%d\" style=\"left:%.3f%%\" title=\"%s at %s\"></div>", class, id, k, pct(e.AtNS),
			esc(strings.TrimSpace(e.Kind+" "+e.Name+" "+e.Detail)), time.Duration(e.AtNS))
	}
	b.WriteString("</div>\n<div class=\"lane console\"><span class=\"label\">console</span>")
	for k, c := range console {
		fmt.Fprintf(b, "<div class=\"tick console\" id=\"t%s-c%d\" style=\"left:%.3f%%\" title=\"%s\"></div>", id, k, pct(c.AtNS), esc(c.Text))
	}
	b.WriteString("</div>\n<div class=\"lane ops\"><span class=\"label\">storage ops</span>")
	most := 1
	for _, n := range t.OpsPerBin {
		most = max(most, n)
	}
	for k, n := range t.OpsPerBin {
		if n <= 0 {
			continue
		}
		w := 100 / float64(len(t.OpsPerBin))
		fmt.Fprintf(b, "<div class=\"bin\" style=\"left:%.3f%%;width:%.3f%%;height:%dpx\" title=\"%d storage op%s\"></div>", float64(k)*w, w, 1+21*n/most, n, plural(n))
	}
	b.WriteString("</div>\n</div>\n")
}

// writeFlashMapHTML lists the regions of the layout: where each is, what
// it holds at the end of the run, and the erases (as a heat strip) and
// bytes programmed the run gave it.
func writeFlashMapHTML(b *strings.Builder, regions []RegionState) {
	if len(regions) == 0 {
		return
	}
	esc := html.EscapeString
	most := 1
	for _, r := range regions {
		most = max(most, r.Erases)
	}
	b.WriteString("<table class=\"flashmap\"><tr><th>region</th><th>where</th><th>holds at the end</th><th>erase operations</th><th>bytes programmed</th></tr>\n")
	for _, r := range regions {
		fmt.Fprintf(b, "<tr data-region=\"%s\"><td>%s</td><td>%s 0x%x, %d bytes</td><td class=\"holds-%s\" title=\"sha256 %s\">%s</td><td><span class=\"heat\" style=\"width:%dpx\"></span> %d</td><td>%d</td></tr>\n",
			esc(r.Name), esc(r.Name), esc(r.Device), r.Start, r.Size, esc(r.Holds), esc(r.SHA256), esc(r.Text()), 1+120*r.Erases/most, r.Erases, r.Programmed)
	}
	b.WriteString("</table>\n")
}

// writeSectorHeatHTML draws the internal flash as a strip of its sectors,
// each as dark as the erase operations it took in the run, with the
// regions named under it.
func writeSectorHeatHTML(b *strings.Builder, m *SectorMap, regions []RegionState) {
	esc := html.EscapeString
	most := 0
	for _, n := range m.Erases {
		most = max(most, n)
	}
	fmt.Fprintf(b, "<div class=\"sectors\" title=\"%s flash, one cell per sector, darker = more erases\"><div class=\"cells\">", esc(m.Device))
	var at uint64
	k := 0
	for _, run := range m.Runs {
		for range run.Count {
			n := 0
			if k < len(m.Erases) {
				n = m.Erases[k]
			}
			shade := 0.0
			if most > 0 {
				shade = float64(n) / float64(most)
			}
			fmt.Fprintf(b, "<div class=\"sector\" style=\"flex:%d;background:rgba(207,34,46,%.2f)\" title=\"0x%x: %d erase%s\"></div>", max(run.Size/1024, 1), shade, at, n, plural(n))
			at += run.Size
			k++
		}
	}
	b.WriteString("</div><div class=\"regions\">")
	total := float64(at)
	for _, reg := range regions {
		if reg.Device != m.Device || total == 0 {
			continue
		}
		fmt.Fprintf(b, "<span class=\"region\" style=\"left:%.3f%%;width:%.3f%%\" title=\"%s 0x%x+%d: %s\">%s</span>", 100*float64(reg.Start)/total, 100*float64(reg.Size)/total,
			esc(reg.Name), reg.Start, reg.Size, esc(reg.Text()), esc(reg.Name))
	}
	b.WriteString("</div></div>\n")
}

// writeSerialHTML prints the console with virtual timestamps, each line
// a link to its tick on the timeline.
func writeSerialHTML(b *strings.Builder, id string, console []ConsoleLine) {
	b.WriteString("<div class=\"serial\">")
	for k, c := range console {
		line := html.EscapeString(c.Text)
		if c.Device {
			line = "<span class=\"dev\">" + line + "</span>"
		}
		fmt.Fprintf(b, "<a href=\"#t%s\" data-tick=\"t%s-c%d\">[%s]</a> %s\n", id, id, k, sim.FormatTime(time.Duration(c.AtNS)), line)
	}
	b.WriteString("</div>\n")
}

// SweepHTML renders a sweep as one self-contained HTML page: every cut
// point on the op axis, one row per mode (and torn seed), coloured by
// outcome (recovered, showing a known weakness, failed with its class),
// each cell's title giving the point, why it failed, and its replay.
func SweepHTML(rep *SweepReport) string {
	var b strings.Builder
	esc := html.EscapeString
	fmt.Fprintf(&b, `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bootsim sweep %s</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
.row{display:flex;align-items:center;margin:2px 0}.label{width:9em;font:12px ui-monospace,monospace}
.cells{display:flex;flex:1;height:18px;border:1px solid #ddd}
.cell{flex:1;min-width:1px}.ok{background:#2da44e}.weak{background:#d4a72c}.failed{background:#cf222e}
.legend span{display:inline-block;width:1em;height:1em;vertical-align:middle;margin:0 .3em 0 1em}
</style></head><body>
<h1>sweep of %s</h1>
<p id="summary">%d ops, %d points: %d recovered, %d failed (%d bricks), %d showing a known weakness</p>
<p class="legend"><span class="ok"></span>recovered<span class="weak"></span>known weakness<span class="failed"></span>failed</p>
`, esc(rep.Scenario), esc(rep.Scenario), rep.Ops, len(rep.Results), rep.Passed, rep.Failed, rep.Bricks, rep.Weak)
	type rowKey struct {
		mode storage.FaultMode
		seed uint64
	}
	rows := map[rowKey][]PointResult{}
	var keys []rowKey
	for _, p := range rep.Results {
		k := rowKey{p.Mode, p.Seed}
		if _, ok := rows[k]; !ok {
			keys = append(keys, k)
		}
		rows[k] = append(rows[k], p)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].mode != keys[j].mode {
			return keys[i].mode < keys[j].mode
		}
		return keys[i].seed < keys[j].seed
	})
	for _, k := range keys {
		label := k.mode.String()
		if k.mode == storage.FaultTorn {
			label += fmt.Sprintf(" seed %d", k.seed)
		}
		fmt.Fprintf(&b, "<div class=\"row\"><div class=\"label\">%s</div><div class=\"cells\">", esc(label))
		for _, p := range rows[k] {
			class, why := "ok", "recovered"
			switch {
			case !p.Passed:
				class, why = "failed", p.Class+": "+p.Reason
			case len(p.Weaknesses) > 0:
				class, why = "weak", "known weakness: "+strings.Join(p.Weaknesses, ", ")
			}
			fmt.Fprintf(&b, "<div class=\"cell %s\" title=\"op %d, %s: %s&#10;bootsim run %s\"></div>", class, p.Op, esc(p.Mode.String()), esc(why), esc(strings.Join(p.Replay, " ")))
		}
		b.WriteString("</div></div>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}
