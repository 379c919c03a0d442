package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
	"strings"

	"github.com/bootsim/bootsim/strictyaml"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// version is set at release build time with -ldflags "-X main.version=v1.2.3".
var version = ""

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}

// buildInfo is what the Go toolchain recorded in the binary: the module,
// and, for a build from a work tree, the VCS revision.
type buildInfo struct {
	module, revision, time, goVersion string
	modified                          bool
}

func readBuild() buildInfo {
	out := buildInfo{module: "github.com/bootsim/bootsim", goVersion: runtime.Version()}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return out
	}
	out.module = bi.Main.Path
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			out.revision = s.Value
		case "vcs.time":
			out.time = s.Value
		case "vcs.modified":
			out.modified = s.Value == "true"
		}
	}
	return out
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "bootsim",
		Short: "Simulate a microcontroller's boot and firmware-update chain under faults",
		Long: `bootsim simulates the boot and firmware-update chain of a microcontroller,
modelled on the Arm Mbed OS update stack: internal NOR flash, SOTP key
storage, an SD card or SPI flash and a virtual MCU, running the boot selector,
the Mbed bootloader and the update client against scripted faults such as
power loss in the middle of a copy, torn writes and corrupted candidates.

Exit codes: 0 all expectations met, 1 a scenario or sweep point failed,
2 usage or input error, 3 internal error.`,
		Example: `  # Run the built-in scenario library, or one scenario with its serial log
  bootsim run
  bootsim run power-cut-during-copy-torn --serial

  # The built-in scenarios, and one to copy as a starting point
  bootsim list
  bootsim show install-from-sd > my-scenario.yaml
  bootsim validate my-scenario.yaml && bootsim run my-scenario.yaml

  # The boards bootsim models, with their flash geometry
  bootsim boards

  # The classic Mbed flash map of a board, as mbed_app.json would set it
  bootsim layout --board k64f
  bootsim layout --board nucleo-f429zi --storage internal -o json`,
		Version:       buildVersion(),
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.CompletionOptions.HiddenDefaultCmd = false
	root.SetVersionTemplate("bootsim {{.Version}}\n")
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// An unknown flag gets the closest one the command has.
		hint := ""
		if name, ok := strings.CutPrefix(err.Error(), "unknown flag: --"); ok {
			var names []string
			c.Flags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
			c.InheritedFlags().VisitAll(func(f *pflag.Flag) { names = append(names, f.Name) })
			if best := strictyaml.Closest(name, names); best != "" {
				hint = fmt.Sprintf(" (did you mean --%s?)", best)
			}
		}
		return usageErr("%v%s (see '%s --help')", err, hint, c.CommandPath())
	})
	g := &globalFlags{}
	g.register(root)
	root.PersistentPreRunE = func(*cobra.Command, []string) error { return g.check() }
	// help on a topic that does not exist is a usage error (cobra's own
	// help command prints a line and exits 0).
	root.SetHelpCommand(&cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			cmd, rest, err := c.Root().Find(args)
			if err != nil || cmd == nil || len(rest) > 0 {
				return usageErr("unknown help topic %q (see 'bootsim --help')", strings.Join(args, " "))
			}
			return cmd.Help()
		},
	})
	root.AddCommand(newRunCmd(g), newListCmd(), newShowCmd(), newValidateCmd(g), newSchemaCmd(),
		newVersionCmd(), newBoardsCmd(), newLayoutCmd(), newImageCmd(), newManifestCmd(), newSOTPCmd(), newSweepCmd(g), newTreeCmd(), newCompareCmd(), newEventsCmd(), newReferenceCmd(), newReportCmd())
	return root
}

func newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print bootsim's version",
		Args:  noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			info := readBuild()
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), map[string]any{"schema": "bootsim/version/v1", "version": buildVersion(),
					"module": info.module, "revision": info.revision, "time": info.time, "modified": info.modified, "go": info.goVersion})
			}
			line := "bootsim " + buildVersion()
			if info.revision != "" {
				line += ", revision " + info.revision
				if info.modified {
					line += " (modified)"
				}
				if info.time != "" {
					line += ", " + info.time
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s, %s\n", line, info.module, info.goVersion)
			return nil
		},
	}
	addOutputFlag(cmd, &output, "text|json")
	return cmd
}

// noArgs rejects positional arguments as a usage error.
func noArgs(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return usageErr("%s takes no arguments, got %q", cmd.CommandPath(), args)
	}
	return nil
}

func addOutputFlag(cmd *cobra.Command, p *string, choices string) {
	cmd.Flags().StringVarP(p, "output", "o", "text", "output format: "+choices)
}

func checkOutput(got string, allowed ...string) error {
	for _, a := range allowed {
		if got == a {
			return nil
		}
	}
	return usageErr("unknown output format %q (want %s)", got, joinOr(allowed))
}

func joinOr(xs []string) string {
	switch len(xs) {
	case 0:
		return ""
	case 1:
		return xs[0]
	}
	s := ""
	for i, x := range xs[:len(xs)-1] {
		if i > 0 {
			s += ", "
		}
		s += x
	}
	return s + " or " + xs[len(xs)-1]
}

// writeJSON writes v as indented JSON with a trailing newline.
func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
