package scenarios

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

// Paper-rule tests of the classic bootloader: each states one behaviour of
// the real mbed-bootloader and ends with the section of
// reference/mbed-stack.md that records it.

func startRun(t *testing.T, y string) *runner {
	t.Helper()
	l, err := Load("t.yaml", []byte(y), nil)
	require.NoError(t, err)
	r, err := start(l, Options{})
	require.NoError(t, err)
	return r
}

const oneImage = `scenario: t
summary: s
device: {board: k64f}
firmware:
  app-v1: {version: 1561517193, size: 100KiB, behaviour: crash}
  app-v2: {version: 1561520000, size: 110KiB}
factory: {active: app-v1}
steps: [power-on]
`

// heapCells reads the bootloader's uninitialised heap cells.
func heapCells(m *sim.Machine) (uint64, uint8) {
	ram := m.NoInit()
	return binary.LittleEndian.Uint64(ram[0:8]), ram[8]
}

// TestBootCounterCountsWatchdogClassResetsOnly: the counter in the heap is
// updated only when the reset reason is watchdog or later in reset_reason_t
// (watchdog, lockup); power-on, pin, brown-out and software resets leave it
// alone. Reference: §2.5.
func TestBootCounterCountsWatchdogClassResetsOnly(t *testing.T) {
	r := startRun(t, oneImage)
	m := r.m
	m.PowerOn()
	// app-v1 crashes in start-up code: every boot ends in a lockup reset.
	m.Run(m.Now()+5*1e6, func() bool { return m.Boots() == 1 && m.State() == sim.StateBooting })
	require.Equal(t, sim.ResetLockup, m.ResetReason())
	noise := binary.LittleEndian.Uint64(m.NoInit()[0:8])
	require.NotEqual(t, uint64(1561517193), noise, "after power-on the heap holds noise")

	waitBoot := func(n int) {
		m.Run(m.Now()+1e9, func() bool { return m.Boots() == n && m.State() != sim.StateRunning })
	}
	waitBoot(2) // boot 2 after a lockup: version copied, counter reset
	v, c := heapCells(m)
	require.Equal(t, uint64(1561517193), v)
	require.Equal(t, uint8(0), c)
	waitBoot(3) // boot 3 after a lockup: counted
	_, c = heapCells(m)
	require.Equal(t, uint8(1), c)

	for _, reason := range []sim.ResetReason{sim.ResetPin, sim.ResetBrownOut} {
		m.Reset(reason)
		before := m.Boots()
		m.Run(m.Now()+1e9, func() bool { return m.Boots() == before+1 && m.Stage() == "" })
		_, c2 := heapCells(m)
		require.Equal(t, uint8(1), c2, "a %s reset is not counted", reason)
	}
}

// TestAppClobbersHeapCells: a healthy application zeroes the heap as libc
// start-up does, so the bootloader's next watchdog-class boot finds a
// version that differs and resets the counter. Reference: §2.5 (issue #14).
func TestAppClobbersHeapCells(t *testing.T) {
	r := startRun(t, strings.Replace(oneImage, "behaviour: crash", "behaviour: healthy", 1))
	m := r.m
	m.PowerOn()
	require.True(t, m.Run(1e9, func() bool { _, ok := r.appUp(); return ok }))
	v, c := heapCells(m)
	require.Zero(t, v)
	require.Zero(t, c)
}

// TestCopyGranularity: the copy erases one sector per op, from the header
// sector when the header shares it with the application; programs the
// header as one page-padded op; and the body in reads of 16 KiB rounded down
// to the page. Reference: §2.3.
func TestCopyGranularity(t *testing.T) {
	y := strings.Replace(oneImage, "factory: {active: app-v1}", "factory: {active: app-v1, slots: [app-v2]}", 1)
	y = strings.Replace(y, "behaviour: crash", "behaviour: healthy", 1)
	r := startRun(t, y)
	m := r.m
	m.PowerOn()
	require.True(t, m.Run(60e9, func() bool { img, ok := r.appUp(); return ok && img.Desc.Name == "app-v2" }))
	var erases, headers, bodies []storage.Op
	for _, op := range m.Storage().Journal() {
		switch op.Phase {
		case "erase":
			erases = append(erases, op)
		case "header":
			headers = append(headers, op)
		case "body":
			bodies = append(bodies, op)
		}
	}
	// 0xA000 + 0x400 + 110 KiB ends at 0x25C00: sectors 0xA000..0x25000, 28 ops.
	require.Len(t, erases, 28)
	for i, op := range erases {
		require.Equal(t, uint64(0xA000+i*0x1000), op.Addr)
		require.Equal(t, uint64(0x1000), op.Len)
	}
	require.Len(t, headers, 1)
	require.Equal(t, uint64(0xA000), headers[0].Addr)
	require.Equal(t, uint64(112), headers[0].Len, "112 bytes is already a multiple of the 8-byte page")
	require.Len(t, bodies, 7) // 110 KiB in 16 KiB reads
	for i, op := range bodies {
		require.Equal(t, uint64(0xA400+i*16384), op.Addr)
	}
	require.Equal(t, uint64(110<<10-6*16384), bodies[6].Len)
}

// TestLastProgramTailIsStaleBuffer: when the image size is not a multiple
// of the page, the last program is rounded up and its tail is whatever the
// 16 KiB buffer held from the previous read. Reference: §2.3 step 3.
func TestLastProgramTailIsStaleBuffer(t *testing.T) {
	y := strings.Replace(oneImage, "app-v2: {version: 1561520000, size: 110KiB}", "app-v2: {version: 1561520000, size: 20003}", 1)
	y = strings.Replace(y, "factory: {active: app-v1}", "factory: {active: app-v1, slots: [app-v2]}", 1)
	y = strings.Replace(y, "behaviour: crash", "behaviour: healthy", 1)
	r := startRun(t, y)
	m := r.m
	m.PowerOn()
	require.True(t, m.Run(60e9, func() bool { img, ok := r.appUp(); return ok && img.Desc.Name == "app-v2" }))
	img := r.imgs.app["app-v2"].Bytes
	tail := make([]byte, 5)
	m.Internal().Peek(0xA400+20003, tail)
	// The last read (bytes 16384..20002) filled buffer[0:3619]; the 5 bytes
	// after it in the buffer are still from the first read, at 3619..3623.
	require.Equal(t, img[3619:3624], tail)
	require.NotEqual(t, bytes.Repeat([]byte{0xFF}, 5), tail)
}

// TestActiveHeaderChecksVersionThenMagic: the active header's version is
// checked before its magic and its CRC (GetActiveDetails). Reference: §1.1.
func TestActiveHeaderChecksVersionThenMagic(t *testing.T) {
	for _, tc := range []struct {
		offset int
		want   string
	}{{7, "unsupported header version"}, {0, "bad header magic"}, {20, "header CRC mismatch"}} {
		y := strings.Replace(oneImage, "behaviour: crash", "behaviour: healthy", 1)
		y = strings.Replace(y, "steps: [power-on]", fmt.Sprintf("steps:\n  - corrupt: {region: active-header, offset: %d, bit: 0}\n  - power-on\n  - wait: {until: halted}\n", tc.offset), 1)
		res := mustRun(t, y+"expect:\n  - weakness: no-brick\n")
		require.True(t, res.Passed, "%v", res.Failures())
		found := false
		for _, e := range res.Trace {
			if e.Kind == sim.EvCheck && e.Name == "active-header" && strings.Contains(e.Detail, tc.want) {
				found = true
			}
		}
		require.True(t, found, "offset %d: want %q", tc.offset, tc.want)
	}
}
