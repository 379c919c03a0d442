package main

import (
	"fmt"

	"github.com/bootsim/bootsim/scenarios"
	"github.com/spf13/cobra"
)

func newReferenceCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "reference",
		Short: "Print the scenario format's reference (docs/scenarios.md)",
		Long: `Print the reference of the scenario format in Markdown: every step, wait
condition, expectation, invariant, fault mode, attack, design-specific
configuration key, board and milestone, with what it does and an example.
It is generated from the types the loader reads; docs/scenarios.md is its
output, and a test fails when that file is stale.`,
		Example: `  bootsim reference > docs/scenarios.md
  bootsim reference | less`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			_, err := fmt.Fprint(cmd.OutOrStdout(), scenarios.Reference())
			return err
		},
	}
}
