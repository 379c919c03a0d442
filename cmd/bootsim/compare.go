package main

import (
	"fmt"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/scenarios"
	"github.com/spf13/cobra"
)

func newCompareCmd() *cobra.Command {
	var (
		output    string
		profiles  string
		tag       string
		sweep     bool
		tornSeeds int
		workers   int
	)
	cmd := &cobra.Command{
		Use:   "compare [SCENARIO|FILE|DIR]...",
		Short: "Run the same scenarios under several update designs and compare them in one table",
		Long: `Run each scenario under every profile it makes sense under (its own, and
those it names under profiles:, each with the expectations that hold there)
and print one table: whether the profile's expectations held, each invariant
(held, WEAK: a known weakness of the design, FAIL: a broken promise), the
boots the run took, the update's downtime (virtual time from the install
request to the new version running, or confirmed where the design confirms
it), the bytes programmed, and the erase operations per region. A scenario
that does not make sense under a profile shows n/a, with why. Totals per
profile follow: runs, passes, and the runs that violated each invariant.

--sweep adds, per run, an exhaustive power-cut sweep (as bootsim sweep):
the cut points, those that failed, and the points whose recovery bricked
the device, ran an older version, or ran firmware the vendor did not build.

With no scenario, every built-in scenario that names more than one profile,
and every attack (--tag narrows the selection). COMPARISON.md is this command's markdown
output over those:
  bootsim compare --sweep -o markdown > COMPARISON.md

Exit status: 0 when every applicable run passed, 1 when one failed, 2 bad
input.`,
		Example: `  bootsim compare attack-plant-internal
  bootsim compare --tag attack --profiles classic,hardened
  bootsim compare my-scenario.yaml -o json
  bootsim compare --tag power-loss --sweep`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "json", "markdown"); err != nil {
				return err
			}
			var want []string
			if profiles != "" {
				for _, p := range strings.Split(profiles, ",") {
					p = strings.TrimSpace(p)
					if !slices.Contains(scenarios.ProfileNames(), p) {
						return usageErr("--profiles: no profile %q (available: %s)", p, strings.Join(scenarios.ProfileNames(), ", "))
					}
					want = append(want, p)
				}
			}
			ls, err := loadScenarios(cmd, args)
			if err != nil {
				return err
			}
			if len(args) == 0 {
				ls = slices.DeleteFunc(ls, func(l *scenarios.Loaded) bool { return !scenarios.Compared(l) })
			}
			if tag != "" {
				ls = slices.DeleteFunc(ls, func(l *scenarios.Loaded) bool { return !slices.Contains(l.Tags, tag) })
			}
			if len(ls) == 0 {
				return usageErr("no scenario to compare (the built-in attacks and the scenarios that name other profiles under profiles:, narrowed by --tag %q)", tag)
			}
			c, err := scenarios.Compare(ls, want, scenarios.CompareOptions{Sweep: sweep, TornSeeds: tornSeeds, Workers: workers})
			if err != nil {
				return usageErr("%v", err)
			}
			w := cmd.OutOrStdout()
			switch output {
			case "json":
				err = writeJSON(w, c)
			case "markdown":
				_, err = fmt.Fprint(w, scenarios.CompareMarkdown(c))
			default:
				_, err = fmt.Fprint(w, scenarios.CompareText(c))
			}
			if err != nil {
				return err
			}
			for _, r := range c.Rows {
				if r.NotApplicable == "" && !r.Passed {
					return failed("")
				}
			}
			return nil
		},
	}
	addOutputFlag(cmd, &output, "text|json|markdown")
	cmd.Flags().StringVar(&profiles, "profiles", "", "comma-separated profiles to run under (default: all)")
	cmd.Flags().StringVar(&tag, "tag", "", "only scenarios with this tag")
	cmd.Flags().BoolVar(&sweep, "sweep", false, "also cut power at every storage op of each run (before, after, torn) and count bricks, downgrades and forgeries")
	cmd.Flags().IntVar(&tornSeeds, "torn-seeds", scenarios.DefaultTornSeeds, "with --sweep: seeds per torn cut")
	cmd.Flags().IntVar(&workers, "workers", 0, "with --sweep: points recovered at once (default: the CPUs)")
	return cmd
}
