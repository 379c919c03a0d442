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

// HTMLReport renders runs as one self-contained HTML page (no network, no
// external assets), for CI artifacts and for teaching: per scenario, its
// story (summary and steps), its outcome, expectations and invariants, a
// timeline of its stages and milestones over virtual time, the flash map
// with erase counts per region, and the serial console, each line linked
// to its moment on the timeline. It is a pure function of the results.
func HTMLReport(loaded []*Loaded, results []*Result) string {
	var b strings.Builder
	b.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bootsim report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h1{font-size:1.4em} h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
.pass{color:#1a7f37}.fail{color:#cf222e}.weakness{color:#9a6700}.n\/a{color:#666}
table{border-collapse:collapse;margin:.5em 0} td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
.timeline{position:relative;height:auto;border:1px solid #ccc;background:#fafafa;margin:.5em 0}
.lane{position:relative;height:22px;border-bottom:1px dashed #e4e4e4}
.span{position:absolute;top:2px;height:18px;overflow:hidden;white-space:nowrap;font-size:11px;border-radius:3px;padding:0 2px;box-sizing:border-box}
.bootloader{background:#cfe2ff}.application{background:#d1e7dd}.bootsel{background:#e2d9f3}.phase{background:#ffe69c}
.tick{position:absolute;top:0;width:1px;height:22px;background:#555}
.serial{font:12px/1.3 ui-monospace,monospace;background:#111;color:#ddd;padding:.5em;max-height:24em;overflow:auto;white-space:pre}
.serial a{color:#8ab4f8;text-decoration:none} .serial .dev{color:#f0b400}
.heat{display:inline-block;height:10px;background:#cf222e;vertical-align:middle}
.tree{font:12px/1.3 ui-monospace,monospace;background:#f6f8fa;padding:.5em;overflow:auto}
.sectors{margin:.5em 0}.sectors .cells{display:flex;height:16px;border:1px solid #ccc}.sector{min-width:1px;border-right:1px solid #f0f0f0}
.sectors .regions{position:relative;height:16px;font-size:10px}.region{position:absolute;overflow:hidden;white-space:nowrap;border-left:1px solid #999;padding-left:2px}
</style></head><body>
<h1>bootsim report</h1>
`)
	byName := map[string]*Loaded{}
	for _, l := range loaded {
		byName[l.Name] = l
	}
	fmt.Fprintf(&b, "<p id=\"summary\">%d scenario%s: %d passed, %d failed</p>\n<ul>\n", len(results), plural(len(results)), countPassed(results), len(results)-countPassed(results))
	for i, r := range results {
		fmt.Fprintf(&b, "<li><a href=\"#s%d\" class=\"%s\">%s</a> %s</li>\n", i, r.Status(), html.EscapeString(r.Name), statusLabel(r))
	}
	b.WriteString("</ul>\n")
	for i, r := range results {
		writeScenarioHTML(&b, i, byName[r.Name], r)
	}
	b.WriteString("<script>\n// Clicking a console line highlights its moment on the timeline.\ndocument.querySelectorAll('.serial a').forEach(function(a){a.addEventListener('click',function(){var t=document.getElementById(a.dataset.tick);if(t){t.style.background='#cf222e';t.style.width='3px';}});});\n</script>\n</body></html>\n")
	return b.String()
}

func countPassed(rs []*Result) int {
	n := 0
	for _, r := range rs {
		if r.Passed {
			n++
		}
	}
	return n
}

func writeScenarioHTML(b *strings.Builder, i int, l *Loaded, r *Result) {
	esc := html.EscapeString
	fmt.Fprintf(b, "<section class=\"scenario\" id=\"s%d\" data-name=\"%s\">\n<h2>%s <span class=\"%s\">%s</span></h2>\n", i, esc(r.Name), esc(r.Name), r.Status(), statusLabel(r))
	if l != nil {
		fmt.Fprintf(b, "<p class=\"story\">%s</p>\n<p>%s profile, board %s, seed %d</p>\n<ol class=\"steps\">\n", esc(l.Summary), esc(l.Profile), esc(l.Board.Name), r.Seed)
		for _, st := range l.Steps {
			fmt.Fprintf(b, "<li>%s</li>\n", esc(st.String()))
		}
		b.WriteString("</ol>\n")
	}
	fmt.Fprintf(b, "<p class=\"outcome\">%d boot%s, %s of virtual time, running: %s</p>\n", r.Boots, plural(r.Boots), r.VirtualTime, esc(orNone(r.Running)))
	b.WriteString("<table class=\"checks\"><tr><th>expectation / invariant</th><th>result</th><th>detail</th></tr>\n")
	for _, c := range r.Expectations {
		st, detail := StatusPass, ""
		if !c.Passed {
			st, detail = StatusFail, c.Detail // the detail says why it failed
		}
		fmt.Fprintf(b, "<tr><td>%s</td><td class=\"%s\">%s</td><td>%s</td></tr>\n", esc(c.Text), st, st, esc(detail))
	}
	for _, inv := range r.Invariants {
		fmt.Fprintf(b, "<tr><td>invariant %s</td><td class=\"%s\">%s</td><td>%s</td></tr>\n", esc(inv.Name), esc(inv.Status), esc(inv.Status), esc(inv.Detail))
	}
	b.WriteString("</table>\n")
	writeTimelineHTML(b, i, r)
	if l != nil && l.Chain != nil {
		// The boot-sequence tree the chain walked (bootsim tree).
		if t, err := BootTree(l, r); err == nil {
			fmt.Fprintf(b, "<pre class=\"tree\">%s</pre>\n", esc(TreeText(t)))
		}
	}
	writeFlashMapHTML(b, r)
	if l != nil {
		writeSectorHeatHTML(b, l, r)
	}
	writeSerialHTML(b, i, r)
	b.WriteString("</section>\n")
}

// statusLabel is PASS, WEAK or FAIL, as the text output shows it.
func statusLabel(r *Result) string {
	switch r.Status() {
	case StatusFail:
		return "FAIL"
	case StatusWeakness:
		return "WEAK"
	}
	return "PASS"
}

func orNone(s string) string {
	if s == "" {
		return "nothing"
	}
	return s
}

// writeTimelineHTML draws the stages as spans on one lane, the install
// phases on a second, and the milestones as ticks on a third, over the
// run's virtual time.
func writeTimelineHTML(b *strings.Builder, i int, r *Result) {
	total := r.VirtualTime
	if total <= 0 {
		total = time.Millisecond
	}
	pct := func(t time.Duration) float64 { return 100 * float64(t) / float64(total) }
	type sp struct {
		class, name string
		from, to    time.Duration
	}
	var stages, phases []sp
	var walk spanWalker
	collect := func(spans []traceSpan) {
		for _, s := range spans {
			switch s.kind {
			case spanStage:
				stages = append(stages, sp{strings.ReplaceAll(s.name, " ", "-"), s.detail, s.from, s.to})
			case spanPhase:
				phases = append(phases, sp{"phase", s.name, s.from, s.to})
			}
		}
	}
	fmt.Fprintf(b, "<div class=\"timeline\" id=\"t%d\" title=\"virtual time, 0 to %s\">\n", i, total)
	var ticks strings.Builder
	ticks.WriteString("<div class=\"lane marks\">")
	for k, e := range r.Trace {
		collect(walk.step(&e))
		switch e.Kind {
		case sim.EvMark:
			fmt.Fprintf(&ticks, "<div class=\"tick\" id=\"t%d-%d\" style=\"left:%.3f%%\" title=\"%s %s at %s\"></div>", i, k, pct(e.Time), html.EscapeString(e.Name), html.EscapeString(e.Detail), e.Time)
		case sim.EvSerial:
			fmt.Fprintf(&ticks, "<div class=\"tick\" id=\"t%d-%d\" style=\"left:%.3f%%;background:#ccc\"></div>", i, k, pct(e.Time))
		}
	}
	collect(walk.finish(r.VirtualTime))
	ticks.WriteString("</div>\n")
	for _, lane := range [][]sp{stages, phases} {
		b.WriteString("<div class=\"lane\">")
		for _, s := range lane {
			w := max(pct(s.to)-pct(s.from), 0.2)
			fmt.Fprintf(b, "<div class=\"span %s\" style=\"left:%.3f%%;width:%.3f%%\" title=\"%s, %s to %s\">%s</div>", s.class, pct(s.from), w, html.EscapeString(s.name), s.from, s.to, html.EscapeString(s.name))
		}
		b.WriteString("</div>\n")
	}
	b.WriteString(ticks.String())
	b.WriteString("</div>\n")
}

// writeFlashMapHTML lists the regions the run wrote or erased, with the
// erase operations each took as a heat strip.
func writeFlashMapHTML(b *strings.Builder, r *Result) {
	erases, writes := map[string]int{}, map[string]uint64{}
	for _, op := range r.Journal {
		region := op.Region
		if region == "" {
			region = op.Device
		}
		switch op.Kind {
		case storage.OpErase:
			erases[region]++
		case storage.OpProgram:
			writes[region] += op.Len
		}
	}
	var regions []string
	seen := map[string]bool{}
	for k := range erases {
		regions, seen[k] = append(regions, k), true
	}
	for k := range writes {
		if !seen[k] {
			regions = append(regions, k)
		}
	}
	sort.Strings(regions)
	most := 1
	for _, n := range erases {
		most = max(most, n)
	}
	b.WriteString("<table class=\"flashmap\"><tr><th>region</th><th>erase operations</th><th>bytes programmed</th></tr>\n")
	for _, reg := range regions {
		fmt.Fprintf(b, "<tr><td>%s</td><td><span class=\"heat\" style=\"width:%dpx\"></span> %d</td><td>%d</td></tr>\n", html.EscapeString(reg), 1+120*erases[reg]/most, erases[reg], writes[reg])
	}
	b.WriteString("</table>\n")
}

// writeSectorHeatHTML draws the internal flash as a strip of its sectors,
// each as dark as the erase operations it took in the run, with the
// layout's regions named under it.
func writeSectorHeatHTML(b *strings.Builder, l *Loaded, r *Result) {
	type sector struct{ start, size uint64 }
	var sectors []sector
	var at uint64
	for _, run := range l.Board.Flash.Sectors {
		for range run.Count {
			sectors = append(sectors, sector{at, uint64(run.Size)})
			at += uint64(run.Size)
		}
	}
	counts := make([]int, len(sectors))
	most := 0
	for _, op := range r.Journal {
		if op.Kind != storage.OpErase || op.Device != sim.DeviceInternal {
			continue
		}
		for k, s := range sectors {
			if op.Addr < s.start+s.size && s.start < op.Addr+op.Len {
				counts[k]++
				most = max(most, counts[k])
			}
		}
	}
	b.WriteString("<div class=\"sectors\" title=\"internal flash, one cell per sector, darker = more erases\"><div class=\"cells\">")
	for k, s := range sectors {
		shade := 0.0
		if most > 0 {
			shade = float64(counts[k]) / float64(most)
		}
		fmt.Fprintf(b, "<div class=\"sector\" style=\"flex:%d;background:rgba(207,34,46,%.2f)\" title=\"0x%x: %d erase%s\"></div>", max(s.size/1024, 1), shade, s.start, counts[k], plural(counts[k]))
	}
	b.WriteString("</div><div class=\"regions\">")
	var regions []storage.Region
	if l.Chain != nil {
		regions = l.Chain.Regions()
	} else if l.Layout != nil {
		regions = l.prof.regions(l)
	}
	total := float64(at)
	for _, reg := range regions {
		if reg.Device != sim.DeviceInternal || total == 0 {
			continue
		}
		fmt.Fprintf(b, "<span class=\"region\" style=\"left:%.3f%%;width:%.3f%%\" title=\"%s 0x%x+%d\">%s</span>", 100*float64(reg.Start)/total, 100*float64(reg.Size)/total, html.EscapeString(reg.Name), reg.Start, reg.Size, html.EscapeString(reg.Name))
	}
	b.WriteString("</div></div>\n")
}

// writeSerialHTML prints the console with virtual timestamps, each line
// a link to its tick on the timeline.
func writeSerialHTML(b *strings.Builder, i int, r *Result) {
	b.WriteString("<div class=\"serial\">")
	for k, e := range r.Trace {
		var line string
		switch e.Kind {
		case sim.EvSerial:
			line = html.EscapeString(e.Detail)
		case sim.EvPowerOn, sim.EvPowerOff, sim.EvReset:
			line = "<span class=\"dev\">~~ " + html.EscapeString(strings.TrimSpace(e.Kind.String()+" "+e.Name+" "+e.Detail)) + "</span>"
		default:
			continue
		}
		fmt.Fprintf(b, "<a href=\"#t%d\" data-tick=\"t%d-%d\">[%12.6f]</a> %s\n", i, i, k, e.Time.Seconds(), line)
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
