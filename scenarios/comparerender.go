package scenarios

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"
)

// Renderers of a comparison. Each is a pure function of the comparison.

// invariantCell is how a table shows an invariant's outcome.
func invariantCell(r ComparisonRow, name string) string {
	for _, inv := range r.Invariants {
		if inv.Name == name {
			switch inv.Status {
			case StatusPass:
				return "held"
			case StatusWeakness:
				return "WEAK"
			case StatusFail:
				return "FAIL"
			}
			return inv.Status
		}
	}
	return "-"
}

func passedCell(r ComparisonRow) string {
	switch {
	case r.NotApplicable != "":
		return "n/a"
	case r.Passed && r.Expectations == 0:
		return "pass (invariants only)"
	case r.Passed:
		return "pass"
	}
	return "FAIL"
}

func recoveryCell(r ComparisonRow) string {
	if r.Recovery == nil {
		return "-"
	}
	return fmt.Sprint(*r.Recovery)
}

func downtimeCell(r ComparisonRow) string {
	if r.Downtime == nil {
		return "-"
	}
	return r.Downtime.Round(time.Millisecond).String()
}

func erasesCell(r ComparisonRow) string {
	if len(r.Erases) == 0 {
		return "0"
	}
	var parts []string
	for _, e := range r.Erases {
		parts = append(parts, fmt.Sprintf("%s %d", e.Region, e.Count))
	}
	s := strings.Join(parts, ", ")
	if r.Updates > 1 {
		s += fmt.Sprintf(" (%d updates)", r.Updates)
	}
	return s
}

// swept reports whether the comparison holds sweeps.
func swept(c *Comparison) bool {
	for _, r := range c.Rows {
		if r.Sweep != nil {
			return true
		}
	}
	return false
}

func sweepCell(r ComparisonRow) string {
	if r.Sweep == nil {
		return "-"
	}
	s := r.Sweep
	return fmt.Sprintf("%d cuts: %d failed, %d bricks, %d downgrades, %d forgeries", s.Points, s.Failed, s.Bricks, s.Downgrades, s.Forgeries)
}

// CompareText renders a comparison as an aligned table for a terminal.
func CompareText(c *Comparison) string {
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "SCENARIO\tPROFILE\tRESULT\t%s\tBOOTS\tTO APP\tDOWNTIME\tWRITTEN\tERASES\n", strings.ToUpper(strings.Join(Invariants, "\t")))
	for _, r := range c.Rows {
		if r.NotApplicable != "" {
			fmt.Fprintf(w, "%s\t%s\tn/a\t%s\t\t\t\t\t%s\n", r.Scenario, r.Profile, strings.Repeat("\t", len(Invariants)-1), r.NotApplicable)
			continue
		}
		cells := make([]string, len(Invariants))
		for i, n := range Invariants {
			cells[i] = invariantCell(r, n)
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%d\t%s\n", r.Scenario, r.Profile, passedCell(r), strings.Join(cells, "\t"),
			r.Boots, recoveryCell(r), downtimeCell(r), r.BytesWritten, erasesCell(r))
	}
	w.Flush()
	if swept(c) {
		b.WriteString("\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "SCENARIO\tPROFILE\tSWEEP\n")
		for _, r := range c.Rows {
			if r.NotApplicable == "" {
				fmt.Fprintf(w, "%s\t%s\t%s\n", r.Scenario, r.Profile, sweepCell(r))
			}
		}
		w.Flush()
	}
	b.WriteString("\n")
	w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "PROFILE\tRUNS\tPASSED\t%s\n", strings.ToUpper(strings.Join(Invariants, " VIOLATED\t"))+" VIOLATED")
	for _, t := range c.Totals() {
		cells := make([]string, len(Invariants))
		for i, n := range Invariants {
			cells[i] = fmt.Sprint(t.Violations[n])
		}
		fmt.Fprintf(w, "%s\t%d\t%d\t%s\n", t.Profile, t.Runs, t.Passed, strings.Join(cells, "\t"))
	}
	w.Flush()
	if swept(c) {
		b.WriteString("\n")
		w = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintf(w, "PROFILE\tSWEPT\n")
		for _, t := range c.Totals() {
			fmt.Fprintf(w, "%s\t%s\n", t.Profile, sweepCell(ComparisonRow{Sweep: t.Sweep}))
		}
		w.Flush()
	}
	return b.String()
}

// CompareMarkdown renders a comparison as a Markdown page: what the
// columns mean, the table, the totals.
func CompareMarkdown(c *Comparison) string {
	var b strings.Builder
	b.WriteString(`# Comparison: the same faults and attacks under each update design

Each scenario runs under every profile it names (its own, and those under
` + "`profiles:`" + ` with the expectations that hold there). An invariant is held,
WEAK (violated, and a known weakness of that design, declared) or FAIL
(a broken promise). Downtime is virtual time from the install request (or
the first copy, with no update client involved) to the new version running,
or confirmed where the design confirms it. Boots to app counts the boots
from the last power-on to the first application start. Bytes written and erase
operations are over the whole run; when it made more than one update the
count follows (JSON: updates), to read them per update. n/a: the scenario does not describe
that design's device (the chain profile keeps its versions in its own
layout). Regenerate with ` + "`bootsim compare --sweep -o markdown > COMPARISON.md`" + `;
` + "`go test ./scenarios -run TestComparisonPage`" + ` fails when this page is
stale.

`)
	b.WriteString("| scenario | profile | result | " + strings.Join(Invariants, " | ") + " | boots | boots to app | downtime | bytes written | erases by region |\n")
	b.WriteString("| --- | --- | --- |" + strings.Repeat(" --- |", len(Invariants)) + " ---: | ---: | ---: | ---: | --- |\n")
	for _, r := range c.Rows {
		if r.NotApplicable != "" {
			fmt.Fprintf(&b, "| %s | %s | n/a |%s | | | | %s |\n", r.Scenario, r.Profile, strings.Repeat(" |", len(Invariants)), r.NotApplicable)
			continue
		}
		cells := make([]string, len(Invariants))
		for i, n := range Invariants {
			cells[i] = invariantCell(r, n)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %d | %s | %s | %d | %s |\n", r.Scenario, r.Profile, passedCell(r), strings.Join(cells, " | "),
			r.Boots, recoveryCell(r), downtimeCell(r), r.BytesWritten, erasesCell(r))
	}
	if swept(c) {
		b.WriteString("\nEvery run swept: power cut at every storage op, before it, after it and tearing it.\n\n| scenario | profile | cut points | failed | bricks | downgrades | forgeries |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, r := range c.Rows {
			if s := r.Sweep; s != nil {
				fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d |\n", r.Scenario, r.Profile, s.Points, s.Failed, s.Bricks, s.Downgrades, s.Forgeries)
			}
		}
	}
	b.WriteString("\n| profile | runs | passed | " + strings.Join(Invariants, " violated | ") + " violated |\n")
	b.WriteString("| --- | ---: | ---: |" + strings.Repeat(" ---: |", len(Invariants)) + "\n")
	for _, t := range c.Totals() {
		cells := make([]string, len(Invariants))
		for i, n := range Invariants {
			cells[i] = fmt.Sprint(t.Violations[n])
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %s |\n", t.Profile, t.Runs, t.Passed, strings.Join(cells, " | "))
	}
	if swept(c) {
		b.WriteString("\n| profile | cut points | failed | bricks | downgrades | forgeries |\n| --- | ---: | ---: | ---: | ---: | ---: |\n")
		for _, t := range c.Totals() {
			s := t.Sweep
			if s == nil {
				s = &SweepStats{}
			}
			fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %d |\n", t.Profile, s.Points, s.Failed, s.Bricks, s.Downgrades, s.Forgeries)
		}
	}
	return b.String()
}
