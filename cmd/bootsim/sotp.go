package main

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/bootsim/bootsim/storage/sotp"
	"github.com/bootsim/bootsim/units"
	"github.com/spf13/cobra"
)

func newSOTPCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sotp",
		Short: "Read SOTP key storage dumps",
		Long: `Read a dump of the two SOTP areas (area 0 then area 1), as the Mbed client
does at start-up: sotp_init picks the active area, erases what it must and
garbage-collects past a damaged record. The dump file is never modified:
init runs on a copy in memory, and the output says what it did.

With --probe, read the way the bootloader does (sotp_probe): no writes, and
its own choice of area when both are valid.`,
	}
	cmd.AddCommand(newSOTPDumpCmd(), newSOTPGetCmd())
	return cmd
}

func sotpFlags(cmd *cobra.Command, areaSize *string, probe *bool) {
	cmd.Flags().StringVar(areaSize, "area-size", "", "size of each area, e.g. 4KiB (default: half the file)")
	cmd.Flags().BoolVar(probe, "probe", false, "read as the bootloader's sotp_probe does")
}

func loadSOTP(cmd *cobra.Command, path, areaSize string) (*sotp.Dump, error) {
	data, err := readInput(cmd, path, inDump)
	if err != nil {
		return nil, err
	}
	var size units.Size
	if areaSize != "" {
		if size, err = units.ParseSize(areaSize); err != nil {
			return nil, usageErr("--area-size: %v", err)
		}
	}
	d, err := sotp.LoadDump(data, uint64(size))
	if err != nil {
		return nil, usageErr("%s: %v", displayName(path), err)
	}
	return d, nil
}

type sotpRecordJSON struct {
	Type   int     `json:"type"`
	Name   string  `json:"name"`
	Offset *uint64 `json:"offset,omitempty"`
	Length int     `json:"length"`
	Data   string  `json:"data"`
}

type sotpReport struct {
	Schema           string           `json:"schema"`
	File             string           `json:"file"`
	AreaSize         uint64           `json:"area_size"`
	Mode             string           `json:"mode"`
	ActiveArea       int              `json:"active_area"`
	Version          uint16           `json:"version,omitempty"`
	AreaStates       []string         `json:"area_states,omitempty"`
	Erased           []int            `json:"erased_areas,omitempty"`
	GarbageCollected bool             `json:"garbage_collected"`
	BadRecord        *uint64          `json:"bad_record_offset,omitempty"`
	Records          []sotpRecordJSON `json:"records"`
}

func newSOTPDumpCmd() *cobra.Command {
	var areaSize, output string
	var probe bool
	cmd := &cobra.Command{
		Use:   "dump FILE",
		Short: "List the active area, its version and every live record",
		Example: `  bootsim sotp dump sotp.bin
  bootsim sotp dump sotp.bin --area-size 4KiB -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			d, err := loadSOTP(cmd, args[0], areaSize)
			if err != nil {
				return err
			}
			rep := sotpReport{Schema: "bootsim/sotp/v1", File: displayName(args[0]), AreaSize: d.Areas[0].Size, Records: []sotpRecordJSON{}}
			if probe {
				rep.Mode = "probe"
				rep.ActiveArea = -1
				for t := range sotp.Type(sotp.MaxTypes) {
					v, area, err := sotp.Probe(d.Device, d.Areas[0], d.Areas[1], t)
					rep.ActiveArea = area
					if errors.Is(err, sotp.ErrNotFound) {
						continue
					} else if err != nil {
						return err
					}
					rep.Records = append(rep.Records, sotpRecordJSON{Type: int(t), Name: t.Name(), Length: len(v), Data: hex.EncodeToString(v)})
				}
			} else {
				rep.Mode = "init"
				s := d.Store()
				if err := s.Init(); err != nil {
					return failed("%s: sotp_init fails: %v", rep.File, err)
				}
				live, err := s.Live()
				if err != nil {
					return failed("%s: %v", rep.File, err)
				}
				r := s.Report()
				rep.ActiveArea, rep.Version = s.ActiveArea()
				rep.AreaStates = []string{r.States[0].String(), r.States[1].String()}
				rep.Erased = r.Erased
				rep.GarbageCollected = r.GarbageCollected
				if r.GarbageCollected {
					rep.BadRecord = &r.BadRecord
				}
				for _, rec := range live {
					rep.Records = append(rep.Records, sotpRecordJSON{Type: int(rec.Type), Name: sotp.Type(rec.Type).Name(),
						Offset: &rec.Offset, Length: len(rec.Data), Data: hex.EncodeToString(rec.Data)})
				}
			}
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), rep)
			}
			printSOTP(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	sotpFlags(cmd, &areaSize, &probe)
	addOutputFlag(cmd, &output, "text|json")
	return cmd
}

func printSOTP(w io.Writer, r sotpReport) {
	fmt.Fprintf(w, "%s: two SOTP areas of %s\n", r.File, units.Size(r.AreaSize).Human())
	if r.Mode == "probe" {
		fmt.Fprintf(w, "  read as sotp_probe: area %d\n", r.ActiveArea)
	} else {
		fmt.Fprintf(w, "  areas             0: %s, 1: %s\n", r.AreaStates[0], r.AreaStates[1])
		if r.GarbageCollected {
			fmt.Fprintf(w, "  sotp_init         record at area offset 0x%x fails its check: garbage-collected into area %d (it and every later record are dropped)\n", *r.BadRecord, r.ActiveArea)
		}
		for _, a := range r.Erased {
			fmt.Fprintf(w, "  sotp_init         erased area %d\n", a)
		}
		fmt.Fprintf(w, "  active area       %d, version %d\n", r.ActiveArea, r.Version)
	}
	if len(r.Records) == 0 {
		fmt.Fprintf(w, "  no live records\n")
		return
	}
	fmt.Fprintf(w, "  %-4s %-26s %6s  %s\n", "TYPE", "NAME", "LENGTH", "DATA")
	for _, rec := range r.Records {
		fmt.Fprintf(w, "  %-4d %-26s %6d  %s\n", rec.Type, rec.Name, rec.Length, rec.Data)
	}
}

func newSOTPGetCmd() *cobra.Command {
	var areaSize string
	var probe bool
	cmd := &cobra.Command{
		Use:   "get FILE TYPE",
		Short: "Print the live value of one record type in hex",
		Long: `Print the live value of one record type in hex. TYPE is a number (0..15) or
a name: factory-done, random-seed, saved-time, last-time-back, rot,
trusted-time-srv-id, execution-mode, oem-transfer-mode-enabled, min-fw-version.

Exit status: 0 found, 1 the type has no live record, 2 bad input.`,
		Example: `  bootsim sotp get sotp.bin rot
  bootsim sotp get sotp.bin 4 --probe`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			t, err := sotp.ParseType(args[1])
			if err != nil {
				return usageErr("%v", err)
			}
			d, err := loadSOTP(cmd, args[0], areaSize)
			if err != nil {
				return err
			}
			var v []byte
			if probe {
				v, _, err = sotp.Probe(d.Device, d.Areas[0], d.Areas[1], t)
			} else {
				s := d.Store()
				if err = s.Init(); err == nil {
					v, err = s.Get(t)
				}
			}
			if err != nil {
				return failed("%s: %s (type %d): %v", displayName(args[0]), t.Name(), t, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), hex.EncodeToString(v))
			return nil
		},
	}
	sotpFlags(cmd, &areaSize, &probe)
	return cmd
}
