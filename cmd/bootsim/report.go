package main

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/bootsim/bootsim/scenarios"
	"github.com/spf13/cobra"
)

// inRunReport is a saved `bootsim run -o json` report.
var inRunReport = inputKind{"run report", 64 << 20}

func newReportCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "report RUN.json",
		Short: "Render a saved run report (bootsim run -o json) as HTML",
		Long: `Render a report saved with 'bootsim run -o json' (or --json FILE) as one
self-contained HTML page, the same page 'bootsim run --html FILE' writes:
each scenario's story, outcome, expectations and invariants, its timeline,
what each region holds at the end, and its serial console. A report saved
by an older bootsim, without the timeline, renders without it.`,
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
			var doc scenarios.RunReport
			dec := json.NewDecoder(bytes.NewReader(data))
			if err := dec.Decode(&doc); err != nil {
				return usageErr("%s: not a run report: %v", displayName(args[0]), err)
			}
			if doc.Schema != scenarios.RunSchema {
				return usageErr("%s: schema %q; this bootsim reads %s (bootsim run -o json)", displayName(args[0]), doc.Schema, scenarios.RunSchema)
			}
			if err := doc.Check(); err != nil {
				return usageErr("%s: %v", displayName(args[0]), err)
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), scenarios.HTMLReport(doc))
			return err
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", "html", "output format: html")
	return cmd
}
