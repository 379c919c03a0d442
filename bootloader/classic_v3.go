package bootloader

import (
	"encoding/binary"
	"fmt"
	"strings"
)

// The v3.3.0 bootloader prints through tr_info and tr_error, which
// source/bootloader_common.h@v3.3.0:62-96 turns into printf with a "[BOOT] "
// or "[ERR ] " prefix and "\r\n" (tr_debug prints nothing), and draws a
// progress bar while it hashes and copies (SHOW_PROGRESS_BAR=1 in its
// configs).

// v3Layout is the second number of the v3.3.0 banner's "Layout:" line, the
// address of the bootloader's info struct in its image: build-dependent;
// this is the one a real v3 boot log shows (PelionIoT/mbed-bootloader
// issue #3).
const v3Layout = 0x7188

// info prints a tr_info line.
func (r *run) info(format string, args ...any) {
	r.m.Print("[BOOT] " + fmt.Sprintf(format, args...) + "\r\n")
}

// errorf prints a tr_error line.
func (r *run) errorf(format string, args ...any) {
	r.m.Print("[ERR ] " + fmt.Sprintf(format, args...) + "\r\n")
}

// v3Banner prints main()'s header: the name, the ARM and OEM source
// hashes (zero in the tagged source, mbed_bootloader_info.h@v3.3.0) and
// the layout.
func (r *run) v3Banner() {
	if r.cfg.Generation == GenV33 {
		r.info("mbed Bootloader")
	} else {
		r.info("Mbed Bootloader") // v4.0.0 main.cpp:108
	}
	zeros := strings.Repeat("00", 20)
	r.m.Print("[BOOT] ARM: " + zeros + "\r\n")
	r.m.Print("[BOOT] OEM: " + zeros + "\r\n")
	r.info("Layout: %d %X", 0, v3Layout)
}

// printSHA256 is bootloader_common.c@v3.3.0 printSHA256.
func (r *run) printSHA256(sum [32]byte) {
	r.info("SHA256: %X", sum[:])
}

// progress is printProgress: a 70-character bar redrawn with a carriage
// return each time the percentage (in 70ths) changes, ended with a
// newline when complete. Its last percentage is a static: it carries over
// from one bar to the next within a boot.
func (r *run) progress(done, total uint64) {
	if total == 0 {
		return
	}
	percent := uint8(done * 70 / total)
	if percent == r.lastPercent {
		return
	}
	r.lastPercent = percent
	var b strings.Builder
	b.WriteString("\r[BOOT] [")
	for i := range uint8(70) {
		if i <= percent {
			b.WriteByte('+')
		} else {
			b.WriteByte(' ')
		}
	}
	if done >= total {
		b.WriteString("]\r\n")
	} else {
		b.WriteString("]")
	}
	r.m.Print(b.String())
}

// v3Forward prints what main() prints before it forwards to the
// application: its start address and the jump and stack addresses read
// from the first two words of its vector table.
func (r *run) v3Forward() {
	start := uint64(r.l.ApplicationStart)
	var vt [8]byte
	r.active.Peek(start, vt[:])
	r.info("Application's start address: 0x%X", start)
	r.info("Application's jump address: 0x%X", binary.LittleEndian.Uint32(vt[4:]))
	r.info("Application's stack address: 0x%X", binary.LittleEndian.Uint32(vt[0:]))
	r.info("Forwarding to application...\r\n")
}
