package main

import (
	"fmt"
	"io"
	"strings"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/units"
	"github.com/spf13/cobra"
)

func newBoardsCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "boards",
		Short: "List the built-in board profiles",
		Long: `List the built-in board profiles: the MCU, its internal flash geometry and
timings, the external storage, and where candidate images can live.`,
		Example: `  bootsim boards
  bootsim boards -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			boards := sim.Boards()
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), boardsJSON(boards))
			}
			printBoards(cmd.OutOrStdout(), boards)
			return nil
		},
	}
	addOutputFlag(cmd, &output, "text|json")
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
	switch b.External.Kind {
	case "sd":
		return fmt.Sprintf("SD card, %s (512-byte blocks)", b.External.Size.Human())
	case "spi-nor":
		return fmt.Sprintf("SPI NOR flash, %s (%s sectors, %s pages)", b.External.Size.Human(), b.External.SectorSize.Human(), b.External.ProgramPage.Human())
	}
	return "none"
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
		fmt.Fprintf(w, "  mcu         %s, %s RAM, SHA-256 at %.1f MB/s\n", b.MCU, b.RAM.Human(), float64(b.CPU.HashRate)/1e6)
		fmt.Fprintf(w, "  flash       %s: %s sectors, %d-byte program unit\n", b.Flash.Size().Human(), sectorSummary(b), uint64(b.Flash.ProgramUnit))
		fmt.Fprintf(w, "  timings     %s\n", flashTimings(b))
		fmt.Fprintf(w, "  external    %s\n", externalSummary(b))
		fmt.Fprintf(w, "  candidates  %s\n", candidatesSummary(b))
	}
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
	MCU            string   `json:"mcu"`
	RAM            uint64   `json:"ram"`
	HashRate       uint64   `json:"hash_rate"`
	Flash          any      `json:"flash"`
	External       any      `json:"external"`
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
		ext := map[string]any{"kind": b.External.Kind, "device": b.External.Device(), "size": uint64(b.External.Size)}
		if b.External.Kind == "spi-nor" {
			ext["sector_size"] = uint64(b.External.SectorSize)
			ext["program_page"] = uint64(b.External.ProgramPage)
		}
		out = append(out, boardJSON{
			Name: b.Name, Title: b.Title, MCU: b.MCU, RAM: uint64(b.RAM), HashRate: b.CPU.HashRate,
			Flash: map[string]any{
				"size": uint64(b.Flash.Size()), "sectors": secs,
				"program_unit": uint64(b.Flash.ProgramUnit), "program_time_ns": b.Flash.ProgramTime.D().Nanoseconds(),
			},
			External: ext, Storages: b.Storages(), DefaultStorage: b.Storage.Default,
		})
	}
	return map[string]any{"schema": "bootsim/boards/v1", "boards": out}
}
