package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/units"
	"github.com/spf13/cobra"
)

// inBoard is a board file of the user's own.
var inBoard = inputKind{"board file", 1 << 20}

func newBoardsCmd() *cobra.Command {
	var output, show string
	cmd := &cobra.Command{
		Use:   "boards [BOARD...]",
		Short: "List the built-in board profiles, or check board files of your own",
		Long: `List the built-in board profiles: the MCU, its internal flash geometry and
timings, the external storage, and where candidate images can live.

A board of your own is a YAML file of the same form: --show prints a
built-in one (with the source of each figure) to start from. Name the file
in a scenario (device: {board: myboard.yaml}, relative to the scenario) or
give it here to check it: it is parsed, and the layout of each candidate
storage it configures is checked against its flash, as a scenario would.
A built-in board may also be named by its Mbed target name (K64F).`,
		Example: `  bootsim boards
  bootsim boards -o json
  bootsim boards --show k64f > myboard.yaml
  bootsim boards myboard.yaml`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			if show != "" {
				if len(args) > 0 {
					return usageErr("--show prints a built-in board; give no board file with it")
				}
				data, _, err := sim.BoardSource(show)
				if err != nil {
					return usageErr("--show: %v", err)
				}
				_, err = cmd.OutOrStdout().Write(data)
				return err
			}
			boards := sim.Boards()
			if len(args) > 0 {
				boards = nil
				for _, path := range args {
					b, err := boardArg(cmd, path)
					if err != nil {
						return err
					}
					for _, st := range b.Storages() {
						if _, err := mbedlayout.For(b, st); err != nil {
							return usageErr("%s: the layout with candidates on %s: %v", displayName(path), st, err)
						}
					}
					boards = append(boards, b)
				}
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), boardsJSON(boards))
			}
			printBoards(cmd.OutOrStdout(), boards)
			return nil
		},
	}
	addOutputFlag(cmd, &output, "text|json")
	cmd.Flags().StringVar(&show, "show", "", "print a built-in board's file (by name or Mbed target name), to start a board of your own from")
	_ = cmd.RegisterFlagCompletionFunc("show", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return sim.BoardNames(), cobra.ShellCompDirectiveNoFileComp
	})
	return cmd
}

// sectorSummary describes a sector map: "256 × 4 KiB" or
// "2 × (4 × 16 KiB, 1 × 64 KiB, 7 × 128 KiB)".
func sectorSummary(b *sim.Board) string {
	var parts []string
	for _, s := range b.Flash.Sectors {
		parts = append(parts, fmt.Sprintf("%d × %s", s.Count, s.Size.Human()))
	}
	// Collapse a repeated bank (dual-bank parts list bank 2 like bank 1).
	if n := len(parts); n%2 == 0 && n > 2 && strings.Join(parts[:n/2], ",") == strings.Join(parts[n/2:], ",") {
		return "2 × (" + strings.Join(parts[:n/2], ", ") + ")"
	}
	return strings.Join(parts, ", ")
}

func externalSummary(b *sim.Board) string {
	var parts []string
	for _, e := range b.External {
		switch e.Kind {
		case "sd":
			parts = append(parts, fmt.Sprintf("SD card, %s (512-byte blocks)", e.Size.Human()))
		case "spi-nor":
			parts = append(parts, fmt.Sprintf("SPI NOR flash, %s (%s sectors, %s pages)", e.Size.Human(), e.SectorSize.Human(), e.ProgramPage.Human()))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, "; ")
}

func candidatesSummary(b *sim.Board) string {
	var out []string
	for _, s := range b.Storages() {
		if s == b.Storage.Default {
			s += " (default)"
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}

func printBoards(w io.Writer, boards []*sim.Board) {
	for i, b := range boards {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s — %s\n", b.Name, b.Title)
		if b.MbedTarget != "" {
			fmt.Fprintf(w, "  target      %s (Mbed OS)\n", b.MbedTarget)
		}
		fmt.Fprintf(w, "  mcu         %s, %s RAM, SHA-256 at %.1f MB/s\n", b.MCU, b.RAM.Human(), float64(b.CPU.HashRate)/1e6)
		fmt.Fprintf(w, "  flash       %s: %s sectors, %d-byte program unit\n", b.Flash.Size().Human(), sectorSummary(b), uint64(b.Flash.ProgramUnit))
		fmt.Fprintf(w, "  timings     %s\n", flashTimings(b))
		fmt.Fprintf(w, "  external    %s\n", externalSummary(b))
		fmt.Fprintf(w, "  candidates  %s\n", candidatesSummary(b))
		fmt.Fprintf(w, "  resets      %s\n", resetSummary(b))
		fmt.Fprintf(w, "  faults      %s\n", faultSummary(b))
	}
}

// resetSummary says how the board's resets behave: the reset flags, a
// lockup, and what the watchdog survives.
func resetSummary(b *sim.Board) string {
	flags := "the reset controller reports the last reset"
	if b.ResetFlags == sim.ResetFlagsSticky {
		flags = "reset flags stick until cleared or power-off"
	}
	lockup := "a lockup stays stopped"
	if b.LockupResets {
		lockup = "a lockup resets the chip"
	}
	wd := "every reset stops the watchdog"
	if len(b.WatchdogSurvives) > 0 {
		wd = "the watchdog keeps counting through " + strings.Join(b.WatchdogSurvives, ", ") + " resets"
	}
	return flags + "; " + lockup + "; " + wd
}

// faultSummary says what an application built for the board does after a
// fatal error, by its Mbed OS platform defaults.
func faultSummary(b *sim.Board) string {
	p := b.MbedOS
	switch {
	case p.CrashCapture && p.AutoReboot && p.ErrorRebootMax() > 0:
		return fmt.Sprintf("Mbed OS reboots after a fatal error, then halts at a reboot count of %d (crash capture, auto-reboot)", p.ErrorRebootMax())
	case p.CrashCapture:
		return "Mbed OS halts in mbed_die after a fatal error (crash capture, no auto-reboot)"
	}
	return "Mbed OS halts in mbed_die after a fatal error (the library defaults)"
}

func flashTimings(b *sim.Board) string {
	var erase []string
	seen := map[units.Size]bool{}
	for _, s := range b.Flash.Sectors {
		if !seen[s.Size] {
			seen[s.Size] = true
			erase = append(erase, fmt.Sprintf("%s per %s sector", s.EraseTime, s.Size.Human()))
		}
	}
	return fmt.Sprintf("erase %s; program %s per %d bytes", strings.Join(erase, ", "), b.Flash.ProgramTime, uint64(b.Flash.ProgramUnit))
}

type boardJSON struct {
	Name           string   `json:"name"`
	Title          string   `json:"title"`
	MbedTarget     string   `json:"mbed_target,omitempty"`
	MCU            string   `json:"mcu"`
	RAM            uint64   `json:"ram"`
	HashRate       uint64   `json:"hash_rate"`
	Flash          any      `json:"flash"`
	External       any      `json:"external"`
	Externals      any      `json:"externals"`
	Storages       []string `json:"storages"`
	DefaultStorage string   `json:"default_storage"`
}

func boardsJSON(boards []*sim.Board) any {
	type sector struct {
		Size        uint64 `json:"size"`
		Count       int    `json:"count"`
		EraseTimeNS int64  `json:"erase_time_ns"`
	}
	var out []boardJSON
	for _, b := range boards {
		var secs []sector
		for _, s := range b.Flash.Sectors {
			secs = append(secs, sector{uint64(s.Size), s.Count, s.EraseTime.D().Nanoseconds()})
		}
		exts := []map[string]any{}
		for _, e := range b.External {
			ext := map[string]any{"kind": e.Kind, "device": e.Device(), "size": uint64(e.Size)}
			if e.Kind == "spi-nor" {
				ext["sector_size"] = uint64(e.SectorSize)
				ext["program_page"] = uint64(e.ProgramPage)
			}
			exts = append(exts, ext)
		}
		var ext any // the first external device, as bootsim/boards/v1 always gave it
		if len(exts) > 0 {
			ext = exts[0]
		}
		out = append(out, boardJSON{
			Name: b.Name, Title: b.Title, MbedTarget: b.MbedTarget, MCU: b.MCU, RAM: uint64(b.RAM), HashRate: b.CPU.HashRate,
			Flash: map[string]any{
				"size": uint64(b.Flash.Size()), "sectors": secs,
				"program_unit": uint64(b.Flash.ProgramUnit), "program_time_ns": b.Flash.ProgramTime.D().Nanoseconds(),
			},
			External: ext, Externals: exts, Storages: b.Storages(), DefaultStorage: b.Storage.Default,
		})
	}
	return map[string]any{"schema": "bootsim/boards/v1", "boards": out}
}
