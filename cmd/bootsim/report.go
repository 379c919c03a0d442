package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html"
	"strings"

	"github.com/spf13/cobra"
)

// inRunReport is a saved `bootsim run -o json` report.
var inRunReport = inputKind{"run report", 64 << 20}

// runDoc is the JSON report of bootsim run, as read back.
type runDoc struct {
	Schema    string         `json:"schema"`
	Passed    int            `json:"passed"`
	Failed    int            `json:"failed"`
	Errors    int            `json:"errors"`
	Scenarios []scenarioJSON `json:"scenarios"`
}

func newReportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "report RUN.json",
		Short: "Render a saved run report (bootsim run -o json) as HTML",
		Long: `Render a report saved with 'bootsim run -o json' (or --json FILE) as one
self-contained HTML page: each scenario's outcome, expectations, invariants,
failures and replay command. The saved JSON carries no trace: for the
timeline, the flash regions and the serial console, write the page while
running (bootsim run --html FILE).`,
		Example: `  bootsim run my-scenarios/ --json run.json
  bootsim report run.json -o html > report.html`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "html"); err != nil {
				return err
			}
			data, err := readInput(cmd, args[0], inRunReport)
			if err != nil {
				return err
			}
			var doc runDoc
			dec := json.NewDecoder(bytes.NewReader(data))
			if err := dec.Decode(&doc); err != nil {
				return usageErr("%s: not a run report: %v", displayName(args[0]), err)
			}
			if doc.Schema != "bootsim/run/v1" {
				return usageErr("%s: schema %q; this bootsim reads bootsim/run/v1 (bootsim run -o json)", displayName(args[0]), doc.Schema)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), reportHTML(doc))
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "html", "output format: html")
	return cmd
}

// reportHTML renders a saved run report. It is a pure function of it.
func reportHTML(doc runDoc) string {
	var b strings.Builder
	esc := html.EscapeString
	b.WriteString(`<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bootsim report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222}
h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
.pass{color:#1a7f37}.fail,.error{color:#cf222e}.weakness{color:#9a6700}
table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;vertical-align:top}
code{font:12px ui-monospace,monospace}
</style></head><body>
<h1>bootsim report</h1>
<p>From a saved run report: no timeline, flash map or console (bootsim run --html draws them).</p>
`)
	fmt.Fprintf(&b, "<p id=\"summary\">%d passed, %d failed, %d invalid</p>\n", doc.Passed, doc.Failed, doc.Errors)
	for i, s := range doc.Scenarios {
		status := s.Status
		if status == "" {
			status = map[bool]string{true: "pass", false: "fail"}[s.Passed]
		}
		fmt.Fprintf(&b, "<section class=\"scenario\" id=\"s%d\" data-name=\"%s\">\n<h2>%s <span class=\"%s\">%s</span></h2>\n", i, esc(s.Name), esc(s.Name), esc(status), esc(map[string]string{"pass": "PASS", "weakness": "WEAK", "fail": "FAIL", "error": "ERROR"}[status]))
		fmt.Fprintf(&b, "<p>%s profile, seed %d, %d boots, %.3f s of virtual time, running: %s</p>\n", esc(s.Profile), s.Seed, s.Boots, float64(s.VirtualTimeNS)/1e9, esc(s.Running))
		if s.Error != "" {
			fmt.Fprintf(&b, "<p class=\"error\">%s</p>\n", esc(s.Error))
		}
		b.WriteString("<table><tr><th>expectation / invariant</th><th>result</th><th>detail</th></tr>\n")
		for _, c := range s.Expectations {
			st, detail := "pass", ""
			if !c.Passed {
				st, detail = "fail", c.Detail
			}
			fmt.Fprintf(&b, "<tr><td>%s</td><td class=\"%s\">%s</td><td>%s</td></tr>\n", esc(c.Text), st, st, esc(detail))
		}
		for _, inv := range s.Invariants {
			fmt.Fprintf(&b, "<tr><td>invariant %s</td><td class=\"%s\">%s</td><td>%s</td></tr>\n", esc(inv.Name), esc(inv.Status), esc(inv.Status), esc(inv.Detail))
		}
		b.WriteString("</table>\n")
		for _, f := range s.Failures {
			fmt.Fprintf(&b, "<p class=\"fail\">%s</p>\n", esc(f))
		}
		if s.Replay != "" {
			fmt.Fprintf(&b, "<p>replay: <code>%s</code></p>\n", esc(s.Replay))
		}
		b.WriteString("</section>\n")
	}
	b.WriteString("</body></html>\n")
	return b.String()
}
