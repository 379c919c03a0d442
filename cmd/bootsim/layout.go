package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/mbedapp"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/scenarios"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/units"
	"github.com/spf13/cobra"
)

func newLayoutCmd() *cobra.Command {
	var board, profile, storageKind, output, mbedApp, target string
	cmd := &cobra.Command{
		Use:   "layout [SCENARIO]",
		Short: "Draw a board's flash map, or a scenario's",
		Long: `Draw the flash map of a board as the seed's diagram does: high addresses at
the top, each region with its start address, its size and the configuration
key that places it (the keys of mbed_app.json). The map of each device is
drawn: internal flash, and the SD card or SPI flash when candidates live there.

Given a scenario (a file or a built-in name), draw the layout it runs on:
its board (a board file of your own included), its profile, its storage and
its device.config keys. --board also takes a board file's path or an Mbed
target name.

Given --mbed-app and --target, draw the layout an mbed_app.json gives that
target, as the Mbed tools resolve it: the update stack's library defaults,
the file's config, its target_overrides for "*" and then for the target,
its macros, and the values' C expressions (MBED_ROM_START, MBED_CONF_*
references, arithmetic). Addresses are drawn relative to MBED_ROM_START.
Each key says where its value came from; keys bootsim does not model are
listed as ignored. The board is the target's unless --board names one.

Profiles: classic (the Mbed bootloader's layout with SOTP key storage),
hardened (the same layout with two candidate locations: slot 0 for updates,
the last one for the bootloader's saved copy) and chain (the boot selector,
the two copies of the boot record, the bootloader slots and the application
slots, all on internal flash).`,
		Example: `  bootsim layout --board k64f
  bootsim layout --board k64f --storage internal
  bootsim layout --board disco-l475vg -o json
  bootsim layout --board k64f --profile hardened
  bootsim layout --board nucleo-f429zi --profile chain
  bootsim layout --board myboard.yaml
  bootsim layout my-scenario.yaml
  bootsim layout --mbed-app mbed_app.json --target K64F`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			if len(args) == 1 {
				for _, f := range []string{"board", "profile", "storage"} {
					if cmd.Flags().Changed(f) {
						return usageErr("--%s: a scenario's layout is its own (its device: section); give the flag or the scenario, not both", f)
					}
				}
				ls, err := loadScenarios(cmd, args)
				if err != nil {
					return err
				}
				return drawScenarioLayout(cmd.OutOrStdout(), ls[0], output)
			}
			if mbedApp != "" || target != "" {
				return mbedAppLayout(cmd, mbedApp, target, board, output)
			}
			if !slices.Contains(scenarios.ProfileNames(), profile) {
				return usageErr("profile %q has no layout in this version (available: %s)", profile, strings.Join(scenarios.ProfileNames(), ", "))
			}
			b, err := boardArg(cmd, board)
			if err != nil {
				return err
			}
			if profile == "chain" {
				if storageKind != "" && storageKind != sim.DeviceInternal {
					return usageErr("the chain profile keeps every version on internal flash (--storage %s)", storageKind)
				}
				cl, err := chain.NewLayout(b, chain.Options{})
				if err != nil {
					return err
				}
				if output == "json" {
					return writeJSON(cmd.OutOrStdout(), layoutJSON(b.Name, scenarios.ProfileChain, sim.DeviceInternal, cl.Regions(), chainKeys(cl)))
				}
				drawChainLayout(cmd.OutOrStdout(), b, cl)
				return nil
			}
			if storageKind != "" && !slices.Contains(b.Storages(), storageKind) {
				return usageErr("board %s cannot keep candidates on %q (it can on: %s)", b.Name, storageKind, strings.Join(b.Storages(), ", "))
			}
			l, err := mbedlayout.Raw(b, storageKind)
			if err != nil {
				return err
			}
			if profile == scenarios.ProfileHardened && l.StorageLocations < 2 {
				l.StorageLocations = 2 // updates in slot 0, the saved copy in the last
			}
			if err := l.Resolve(b); err != nil {
				return usageErr("board %s: %v", b.Name, err)
			}
			if output == "json" {
				regions := l.Regions(b)
				if profile == scenarios.ProfileHardened {
					regions = scenarios.HardenedRegions(b, l)
				}
				return writeJSON(cmd.OutOrStdout(), layoutJSON(b.Name, profile, l.Storage, regions, l.Keys()))
			}
			drawLayout(cmd.OutOrStdout(), b, l, profile)
			return nil
		},
	}
	cmd.Flags().StringVar(&board, "board", "k64f", "board: a built-in one (see 'bootsim boards'), its Mbed target name, or a board file")
	cmd.Flags().StringVar(&profile, "profile", "classic", "update design: classic, hardened or chain")
	cmd.Flags().StringVar(&storageKind, "storage", "", "where candidates live: sd, spi or internal (default: the board's)")
	cmd.Flags().StringVar(&mbedApp, "mbed-app", "", "an mbed_app.json to lay the board out from (with --target)")
	cmd.Flags().StringVar(&target, "target", "", "the Mbed target to resolve --mbed-app for (K64F); its board unless --board names one")
	addOutputFlag(cmd, &output, "text|json")
	_ = cmd.RegisterFlagCompletionFunc("board", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return sim.BoardNames(), cobra.ShellCompDirectiveDefault
	})
	_ = cmd.RegisterFlagCompletionFunc("storage", cobra.FixedCompletions([]string{"sd", "spi", "internal"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("profile", cobra.FixedCompletions(scenarios.ProfileNames(), cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// inMbedApp is an mbed_app.json.
var inMbedApp = inputKind{"mbed_app.json", 4 << 20}

// mbedAppLayout draws the layout an mbed_app.json gives a target.
func mbedAppLayout(cmd *cobra.Command, path, target, board, output string) error {
	switch {
	case path == "":
		return usageErr("--target needs --mbed-app: the mbed_app.json to resolve for it")
	case target == "":
		return usageErr("--mbed-app needs --target: the Mbed target to resolve it for (e.g. K64F)")
	}
	for _, f := range []string{"profile", "storage"} {
		if cmd.Flags().Changed(f) {
			return usageErr("--%s: an mbed_app.json says where candidates live, for the classic bootloader; give the flag or --mbed-app, not both", f)
		}
	}
	if !cmd.Flags().Changed("board") {
		board = target
	}
	b, err := boardArg(cmd, board)
	if err != nil {
		return err
	}
	data, err := readInput(cmd, path, inMbedApp)
	if err != nil {
		return err
	}
	app, err := mbedapp.Parse(displayName(path), data)
	if err != nil {
		return usageErr("%v", err)
	}
	al, err := mbedlayout.FromMbedApp(b, app, target)
	if err != nil {
		return usageErr("%s for %s: %v", displayName(path), target, err)
	}
	l := al.Layout
	if output == "json" {
		doc := layoutJSON(b.Name, scenarios.ProfileClassic, l.Storage, l.Regions(b), l.Keys()).(map[string]any)
		doc["mbed_app"] = map[string]any{"file": displayName(path), "target": target, "sources": al.Sources, "ignored": al.Ignored,
			"root_of_trust": rootOfTrust(l)}
		return writeJSON(cmd.OutOrStdout(), doc)
	}
	w := cmd.OutOrStdout()
	drawLayout(w, b, l, scenarios.ProfileClassic)
	fmt.Fprintf(w, "\nFrom %s for %s (addresses relative to MBED_ROM_START 0x%x):\n", displayName(path), target, uint64(b.MbedROMStart))
	for _, kv := range l.Keys() {
		if src := al.Sources[kv[0]]; src != "" {
			fmt.Fprintf(w, "  %-45s ← %s\n", kv[0], src)
		}
	}
	fmt.Fprintf(w, "\nRoot of trust: %s\n", rootOfTrust(l))
	if len(al.Ignored) > 0 {
		fmt.Fprintf(w, "Ignored (nothing bootsim models): %s\n", strings.Join(al.Ignored, ", "))
	}
	return nil
}

// rootOfTrust says where the layout's bootloader finds its root of trust.
func rootOfTrust(l *mbedlayout.Layout) string {
	switch {
	case l.HasSOTP():
		return "SOTP (sotp-section-1, sotp-section-2), as mbed-bootloader v3.3 (a v4 bootloader never read SOTP; bootsim lets v4.x do so here as a stand-in, see RATIONALE.md)"
	case l.KVStoreROT:
		start, end := l.KVStoreRange()
		return fmt.Sprintf("KVStore (mbed-bootloader.use-kvstore-rot = 1), as mbed-bootloader v4: the device key in the reserved area of the internal TDBStore at 0x%x-0x%x, read without mounting it", start, end)
	}
	return "none (candidates on internal flash carry no HMAC; mbed-bootloader.use-kvstore-rot = 0)"
}

// boardArg reads the board a --board flag names: a built-in one, by name
// or Mbed target name, or a board file.
func boardArg(cmd *cobra.Command, name string) (*sim.Board, error) {
	if !sim.IsBoardFile(name) {
		b, err := sim.LoadBoard(name)
		if err != nil {
			return nil, usageErr("%v", err)
		}
		return b, nil
	}
	data, err := readInput(cmd, name, inBoard)
	if err != nil {
		return nil, err
	}
	b, err := sim.ParseBoard(displayName(name), data)
	if err != nil {
		return nil, usageErr("%v", err)
	}
	return b, nil
}

// drawScenarioLayout draws the layout a loaded scenario runs on.
func drawScenarioLayout(w io.Writer, l *scenarios.Loaded, output string) error {
	if l.Chain != nil {
		if output == "json" {
			return writeJSON(w, layoutJSON(l.Board.Name, l.Profile, sim.DeviceInternal, l.Regions(), chainKeys(l.Chain)))
		}
		drawChainLayout(w, l.Board, l.Chain)
		return nil
	}
	if output == "json" {
		return writeJSON(w, layoutJSON(l.Board.Name, l.Profile, l.Layout.Storage, l.Regions(), l.Layout.Keys()))
	}
	drawLayout(w, l.Board, l.Layout, l.Profile)
	return nil
}

// box is one region of a device's map.
type box struct {
	start, size uint64
	title       string
	key         string // the configuration key that places its start
}

// layoutBoxes returns the boxes of each device, in address order, with the
// gaps between regions as unused boxes.
func layoutBoxes(b *sim.Board, l *mbedlayout.Layout, savedLast bool) map[string][]box {
	titles := map[string]string{
		mbedlayout.RegionBootloader:   "Bootloader",
		mbedlayout.RegionSOTP1:        "SOTP_1",
		mbedlayout.RegionSOTP2:        "SOTP_2",
		mbedlayout.RegionKVStore:      "KVSTORE",
		mbedlayout.RegionActiveHeader: "Active App Metadata Header",
		mbedlayout.RegionActiveApp:    "Active App",
	}
	keys := map[string]string{
		mbedlayout.RegionBootloader:   "0",
		mbedlayout.RegionSOTP1:        "sotp-section-1-address",
		mbedlayout.RegionSOTP2:        "sotp-section-2-address",
		mbedlayout.RegionKVStore:      "storage_tdb_internal.internal_base_address",
		mbedlayout.RegionActiveHeader: "update-client.application-details",
		mbedlayout.RegionActiveApp:    "mbed-bootloader.application-start-address",
	}
	hdr := uint64(mbedlayout.ExternalHeaderSize)
	if l.Storage == sim.DeviceInternal {
		hdr = mbedlayout.InternalHeaderSize
	}
	hdr = (hdr + uint64(l.StoragePage) - 1) / uint64(l.StoragePage) * uint64(l.StoragePage)
	out := map[string][]box{}
	for _, r := range l.Regions(b) {
		if t, ok := titles[r.Name]; ok {
			out[r.Device] = append(out[r.Device], box{r.Start, r.Size, t, keys[r.Name]})
			continue
		}
		// A candidate slot: its header, then the firmware body.
		i := len(out[r.Device+"#slots"])
		out[r.Device+"#slots"] = append(out[r.Device+"#slots"], box{})
		key := "update-client.storage-address"
		if i > 0 {
			key = fmt.Sprintf("slot %d", i)
		}
		name := fmt.Sprintf("Firmware Candidate %d", i)
		if savedLast && i == len(l.Slots(b))-1 {
			name = "Saved Copy"
		}
		out[r.Device] = append(out[r.Device],
			box{r.Start, hdr, name + " Header", key},
			box{r.Start + hdr, r.Size - hdr, name, ""})
	}
	for dev, bs := range out {
		if strings.HasSuffix(dev, "#slots") {
			delete(out, dev)
			continue
		}
		slices.SortFunc(bs, func(x, y box) int { return cmpU64(x.start, y.start) })
		size := b.DeviceSize(dev)
		var filled []box
		var at uint64
		for _, x := range bs {
			if x.start > at {
				filled = append(filled, box{at, x.start - at, "(unused)", ""})
			}
			filled = append(filled, x)
			at = x.start + x.size
		}
		if at < size {
			filled = append(filled, box{at, size - at, "(unused)", ""})
		}
		out[dev] = filled
	}
	return out
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func deviceTitle(b *sim.Board, dev string) string {
	switch dev {
	case sim.DeviceInternal:
		return fmt.Sprintf("Internal flash: %s, %s sectors, %d-byte program unit", b.Flash.Size().Human(), sectorSummary(b), uint64(b.Flash.ProgramUnit))
	default:
		return strings.ToUpper(externalSummary(b)[:1]) + externalSummary(b)[1:]
	}
}

const boxWidth = 30

func center(s string, w int) string {
	n := len([]rune(s))
	if n >= w {
		return s
	}
	left := (w - n) / 2
	return strings.Repeat(" ", left) + s + strings.Repeat(" ", w-n-left)
}

// drawBoxes draws one device's map, high addresses at the top.
func drawBoxes(w io.Writer, b *sim.Board, dev string, bs []box) {
	edge := "    +" + strings.Repeat("-", boxWidth) + "+"
	fmt.Fprintf(w, "\n%s\n\n", deviceTitle(b, dev))
	last := bs[len(bs)-1]
	fmt.Fprintf(w, "%s <-+ 0x%08X  end\n", edge, last.start+last.size)
	for i := len(bs) - 1; i >= 0; i-- {
		x := bs[i]
		body := []string{center(x.title, boxWidth)}
		if x.size >= 16<<10 {
			body = []string{strings.Repeat(" ", boxWidth), center(x.title, boxWidth), strings.Repeat(" ", boxWidth)}
		}
		for j, line := range body {
			size := ""
			if j == len(body)/2 {
				size = "  " + units.Size(x.size).Human()
			}
			fmt.Fprintf(w, "    |%s|%s\n", line, size)
		}
		key := ""
		if x.key != "" {
			key = "  " + x.key
		}
		fmt.Fprintf(w, "%s <-+ 0x%08X%s\n", edge, x.start, key)
	}
}

func drawLayout(w io.Writer, b *sim.Board, l *mbedlayout.Layout, profile string) {
	fmt.Fprintf(w, "%s — %s, %s\n", b.Name, b.Title, b.MCU)
	fmt.Fprintf(w, "%s profile, candidates on %s (%d slot%s)\n", profile, l.Storage, l.StorageLocations, plural(l.StorageLocations))
	boxes := layoutBoxes(b, l, profile == scenarios.ProfileHardened)
	devs := []string{sim.DeviceInternal}
	if l.Storage != sim.DeviceInternal {
		devs = append(devs, l.Storage)
	}
	for _, dev := range devs {
		drawBoxes(w, b, dev, boxes[dev])
	}
	fmt.Fprintf(w, "\nConfiguration (mbed_app.json target_overrides):\n")
	for _, kv := range l.Keys() {
		fmt.Fprintf(w, "  %-45s %s\n", `"`+kv[0]+`":`, kv[1])
	}
	for _, msg := range l.Warnings(b) {
		fmt.Fprintf(w, "\nWarning: %s\n", msg)
	}
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// layoutJSON is the bootsim/layout/v1 document of a layout: its regions
// and the configuration keys that give it.
func layoutJSON(board, profile, storageName string, rs []storage.Region, config [][2]string) any {
	type region struct {
		Name   string `json:"name"`
		Device string `json:"device"`
		Start  uint64 `json:"start"`
		Size   uint64 `json:"size"`
	}
	var regions []region
	for _, r := range rs {
		regions = append(regions, region{r.Name, r.Device, r.Start, r.Size})
	}
	keys := map[string]string{}
	for _, kv := range config {
		keys[kv[0]] = kv[1]
	}
	return map[string]any{
		"schema":  "bootsim/layout/v1",
		"board":   board,
		"profile": profile,
		"storage": storageName,
		"regions": regions,
		"config":  keys,
	}
}
