package main

import (
	"fmt"
	"io"

	"github.com/bootsim/bootsim/scenarios"
	"github.com/spf13/cobra"
)

func newTreeCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "tree SCENARIO",
		Short: "Draw a chain scenario's boot-sequence tree and the path its run took",
		Long: `Run a scenario of the chain profile and draw its boot-sequence tree: the boot
selector, the stored bootloader versions under it, the stored application
versions under each bootloader (newest first), with the path the run took:
the order in which (bootloader, application) pairs were tried, how many boots
each took, how each stay ended (crash, hang, reset, power off), why each node
was given up, and what finally ran or the dead end.

Formats: text (a terminal view to follow the depth-first order), dot
(Graphviz: bootsim tree X -o dot | dot -Tsvg > tree.svg), mermaid (paste into
Markdown) and json.`,
		Example: `  bootsim tree chain-depth-first
  bootsim tree chain-depth-first -o dot | dot -Tsvg > tree.svg
  bootsim tree my-chain.yaml -o mermaid`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "dot", "mermaid", "json"); err != nil {
				return err
			}
			ls, err := loadScenarios(cmd, args)
			if err != nil {
				return err
			}
			if len(ls) != 1 {
				return usageErr("tree draws one scenario; %s holds %d", args[0], len(ls))
			}
			l := ls[0]
			if l.Chain == nil {
				return usageErr("%s runs the %s profile; a boot-sequence tree is drawn for the chain profile", l.Name, l.Profile)
			}
			res, err := scenarios.Run(l, scenarios.Options{})
			if err != nil {
				return err
			}
			t, err := scenarios.BootTree(l, res)
			if err != nil {
				return err
			}
			return writeTree(cmd.OutOrStdout(), t, output)
		},
	}
	addOutputFlag(cmd, &output, "text|dot|mermaid|json")
	return cmd
}

func writeTree(w io.Writer, t *scenarios.Tree, format string) error {
	switch format {
	case "json":
		return writeJSON(w, t)
	case "dot":
		_, err := io.WriteString(w, scenarios.TreeDOT(t))
		return err
	case "mermaid":
		_, err := io.WriteString(w, scenarios.TreeMermaid(t))
		return err
	}
	_, err := fmt.Fprint(w, scenarios.TreeText(t))
	return err
}
