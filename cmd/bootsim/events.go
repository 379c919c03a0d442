package main

import (
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"

	"github.com/bootsim/bootsim/scenarios"
	"github.com/spf13/cobra"
)

func newEventsCmd() *cobra.Command {
	var output, profile string
	cmd := &cobra.Command{
		Use:   "events",
		Short: "List the milestones waits, expectations and power cuts can name",
		Long: `List every milestone a stage reports (or the runner derives from the trace),
with the designs that report it and what it means. A scenario may name only
these in wait: {until: {event: …}}, expect: event / no-event, and
power-cut: {event: …}; any other name is refused when the scenario loads.`,
		Example: `  bootsim events
  bootsim events --profile hardened
  bootsim events -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			if profile != "" && !slices.Contains(scenarios.ProfileNames(), profile) {
				return usageErr("--profile: no profile %q (available: %s)", profile, strings.Join(scenarios.ProfileNames(), ", "))
			}
			ms := scenarios.Milestones()
			if profile != "" {
				ms = slices.DeleteFunc(ms, func(m scenarios.Milestone) bool { return !slices.Contains(m.Profiles, profile) })
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), ms)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 0, 2, ' ', 0)
			fmt.Fprintln(w, "EVENT\tPROFILES\tMEANING")
			for _, m := range ms {
				fmt.Fprintf(w, "%s\t%s\t%s\n", m.Name, strings.Join(m.Profiles, ","), m.Meaning)
			}
			return w.Flush()
		},
	}
	addOutputFlag(cmd, &output, "text|json")
	cmd.Flags().StringVar(&profile, "profile", "", "only the milestones of this design")
	return cmd
}
