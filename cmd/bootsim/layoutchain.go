package main

import (
	"fmt"
	"io"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
)

// chainBoxes are the chain layout's parts as boxes, in address order: each
// slot as its header and its image.
func chainBoxes(l *chain.Layout) []box {
	out := []box{{l.Selector.Start, l.Selector.Size, "Boot selector", "0"}}
	for i, p := range l.Record {
		out = append(out, box{p.Start, p.Size, fmt.Sprintf("Boot record %c", 'A'+i), ""})
	}
	slots := func(kind string, parts []chain.Part) {
		for i, p := range parts {
			out = append(out,
				box{p.Start, chain.HeaderSpace, fmt.Sprintf("%s %d header", kind, i), ""},
				box{p.Body(), p.Size - chain.HeaderSpace, fmt.Sprintf("%s %d", kind, i), ""})
		}
	}
	slots("Bootloader slot", l.Bootloaders)
	slots("Application slot", l.Applications)
	return out
}

func drawChainLayout(w io.Writer, b *sim.Board, l *chain.Layout) {
	fmt.Fprintf(w, "%s — %s, %s\n", b.Name, b.Title, b.MCU)
	fmt.Fprintf(w, "chain profile: %d bootloader slot%s, %d application slot%s, %d attempts per version\n",
		len(l.Bootloaders), plural(len(l.Bootloaders)), len(l.Applications), plural(len(l.Applications)), l.MaxAttempts)
	drawBoxes(w, b, sim.DeviceInternal, chainBoxes(l))
	fmt.Fprintf(w, "\nConfiguration (device.config in a scenario; each part is rounded up to whole sectors):\n")
	for _, kv := range chainKeys(l) {
		fmt.Fprintf(w, "  %-45s %s\n", kv[0]+":", kv[1])
	}
}

// chainKeys are the chain.* keys that give a layout, with its values.
func chainKeys(l *chain.Layout) [][2]string {
	return [][2]string{
		{"chain.selector-size", fmt.Sprintf("0x%x", l.Options.SelectorSize)},
		{"chain.bootloader-slots", fmt.Sprint(len(l.Bootloaders))},
		{"chain.bootloader-slot-size", fmt.Sprintf("0x%x", l.Options.BootloaderSlotSize)},
		{"chain.application-slots", fmt.Sprint(len(l.Applications))},
		{"chain.max-attempts", fmt.Sprint(l.MaxAttempts)},
	}
}
