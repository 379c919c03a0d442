// Package mbedos models the part of Mbed OS's platform layer that decides
// what a device does after its application faults: the fault handler's
// report, the error context kept in crash-data RAM with its reboot count,
// the software reset of platform.fatal-error-auto-reboot-enabled, and the
// halt in mbed_die. Applications (package updateclient) and the scenario
// runner's "app: crash" step call it; bootloaders do not (mbed-bootloader
// builds with MBED_FAULT_HANDLER_DISABLED, mbed_lib.json@v4.1.3:61).
//
// Sources: ARMmbed/mbed-os platform/source/mbed_error.c (mbed_error,
// mbed_error_initialize, print_error_report, compute_crc32) and
// platform/source/TARGET_CORTEX_M/mbed_fault_handler.c (mbed_fault_handler).
package mbedos

import (
	"encoding/binary"
	"fmt"
	"strconv"

	"github.com/bootsim/bootsim/sim"
)

// Config is the platform configuration an application was built with.
type Config struct {
	// CrashCapture is platform.crash-capture-enabled.
	CrashCapture bool
	// AutoReboot is platform.fatal-error-auto-reboot-enabled; it acts only
	// with CrashCapture (mbed_error nests one #if inside the other).
	AutoReboot bool
	// RebootMax is platform.error-reboot-max.
	RebootMax int
	// ClearsRebootInfo says the application's mbed_error_reboot_callback
	// calls mbed_reset_reboot_error_info, as Mbed's crash-reporting
	// example does: a start after a fatal error goes on to main() instead
	// of enforcing RebootMax.
	ClearsRebootInfo bool
	// Target is the Mbed target name, for the report's link.
	Target string
}

// Descriptor parameters that override the board's platform settings for
// one image (what the application's mbed_app.json sets).
const (
	ParamAutoReboot   = "auto-reboot"       // true or false
	ParamCrashCapture = "crash-capture"     // true or false
	ParamRebootMax    = "reboot-max"        // 0 to 255
	ParamRebootInfo   = "reboot-error-info" // "clear": the reboot callback clears it
)

// ConfigFor returns the configuration an image runs with: the board's
// target defaults, overridden by the image's descriptor parameters.
func ConfigFor(b *sim.Board, d *sim.Descriptor) Config {
	c := Config{
		CrashCapture: b.MbedOS.CrashCapture,
		AutoReboot:   b.MbedOS.AutoReboot,
		RebootMax:    b.MbedOS.ErrorRebootMax(),
		Target:       b.MbedTarget,
	}
	if d == nil {
		return c
	}
	if v, ok := d.Param(ParamAutoReboot); ok {
		c.AutoReboot = v == "true"
	}
	if v, ok := d.Param(ParamCrashCapture); ok {
		c.CrashCapture = v == "true"
	}
	if v, ok := d.Param(ParamRebootMax); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			// Descriptors are built from validated scenarios.
			panic(fmt.Sprintf("mbedos: %s: %s=%q: %v", d.Key(), ParamRebootMax, v, err))
		}
		c.RebootMax = n
	}
	if v, _ := d.Param(ParamRebootInfo); v == "clear" {
		c.ClearsRebootInfo = true
	}
	return c
}

// Milestones the platform reports.
const (
	// MarkFatalError: the fault handler caught a fault and reported it.
	MarkFatalError = "fatal-error"
	// MarkRebootLimit: a start found the reboot count at
	// platform.error-reboot-max and halted before main().
	MarkRebootLimit = "reboot-limit"
)

// HardFault is the status mbed_fault_handler reports for a HardFault
// (MBED_ERROR_HARDFAULT_EXCEPTION: type system, module unknown (255), code
// 317). Mbed OS keeps it as a negative int32.
const HardFault uint32 = 0x80FF013D

// errorContext is the part of mbed_error_ctx that decides what a later
// start does. Mbed OS keeps more (address, value, thread, file name); the
// simulator keeps what it reads back, in its own byte layout, with the CRC
// over it computed as Mbed's compute_crc32 does.
type errorContext struct {
	status      int32
	rebootCount uint32
	processed   uint32
	crc         uint32
}

const contextSize = 16

func readContext(ram []byte) errorContext {
	return errorContext{
		status:      int32(binary.LittleEndian.Uint32(ram[0:])),
		rebootCount: binary.LittleEndian.Uint32(ram[4:]),
		processed:   binary.LittleEndian.Uint32(ram[8:]),
		crc:         binary.LittleEndian.Uint32(ram[12:]),
	}
}

func (c *errorContext) write(ram []byte) {
	binary.LittleEndian.PutUint32(ram[0:], uint32(c.status))
	binary.LittleEndian.PutUint32(ram[4:], c.rebootCount)
	binary.LittleEndian.PutUint32(ram[8:], c.processed)
	c.crc = crc32(ram[:12])
	binary.LittleEndian.PutUint32(ram[12:], c.crc)
}

func (c errorContext) valid(ram []byte) bool { return c.crc == crc32(ram[:12]) }

// crc32 is mbed_error.c's compute_crc32: polynomial 0x04C11DB7, MSB first,
// initial value 0, no final XOR (not the reflected CRC of hash/crc32).
func crc32(data []byte) uint32 {
	var crc uint32
	for _, b := range data {
		crc ^= uint32(b) << 24
		for range 8 {
			if crc&0x80000000 != 0 {
				crc = crc<<1 ^ 0x04C11DB7
			} else {
				crc <<= 1
			}
		}
	}
	return crc
}

// ErrorInitialize is mbed_error_initialize, which Mbed OS runs after RAM
// is initialised and before main(): an error context left by a fatal error
// that no start has seen yet is marked seen and, with auto-reboot, a
// reboot count at platform.error-reboot-max halts the system here. It
// returns if the start goes on to main().
func ErrorInitialize(m *sim.Machine, c Config) {
	if !c.CrashCapture {
		return
	}
	ram := m.CrashData()
	ctx := readContext(ram)
	if ctx.status >= 0 || !ctx.valid(ram) || ctx.processed != 0 {
		return
	}
	if c.ClearsRebootInfo {
		clear(ram[:contextSize]) // mbed_reset_reboot_error_info
		return
	}
	if ctx.rebootCount == 0 {
		return
	}
	ctx.processed = 1
	ctx.write(ram)
	if c.AutoReboot && int(ctx.rebootCount) >= c.RebootMax {
		detail := fmt.Sprintf("reboot count %d reached platform.error-reboot-max %d", ctx.rebootCount, c.RebootMax)
		m.Mark(MarkRebootLimit, detail)
		// mbed_halt_system in thread context: exit(1), which ends in mbed_die.
		m.MbedDie("mbed_error_initialize: " + detail)
	}
}

// Fault is the path of a fault the Mbed OS fault handler catches: it
// prints the fault handler's report and the error report, keeps the error
// context in crash-data RAM, and then resets by software (auto-reboot) or
// halts in mbed_die. why says what faulted, for the trace. It does not
// return.
func Fault(m *sim.Machine, c Config, why string) {
	m.Mark(MarkFatalError, why)
	m.Print("\n++ MbedOS Fault Handler ++\n\nFaultType: HardFault\n\n-- MbedOS Fault Handler --\n\n")
	m.Printf("\n\n++ MbedOS Error Info ++\nError Status: 0x%X Code: %d Module: %d\nError Message: Fault exception\n",
		HardFault, HardFault&0xFFFF, HardFault>>16&0xFF)
	link := fmt.Sprintf("https://mbed.com/s/error?error=0x%08X", HardFault)
	if c.Target != "" {
		link += "&tgt=" + c.Target
	}
	m.Printf("For more info, visit: %s\n-- MbedOS Error Info --\n", link)
	if c.CrashCapture {
		ram := m.CrashData()
		prev := readContext(ram)
		status := HardFault
		ctx := errorContext{status: int32(status), rebootCount: 1}
		if prev.valid(ram) {
			ctx.rebootCount = prev.rebootCount + 1
		}
		ctx.write(ram)
		if c.AutoReboot && c.RebootMax > 0 {
			m.Print("\n= System will be rebooted due to a fatal error =\n")
			if int(ctx.rebootCount) >= c.RebootMax {
				m.Printf("= Reboot count(=%d) reached maximum, system will halt after rebooting =\n", ctx.rebootCount)
			}
			m.SystemReset()
		}
	}
	// mbed_halt_system in handler mode: mbed_die at once.
	m.MbedDie("mbed_error: " + why)
}
