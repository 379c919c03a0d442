// Package updateclient is the application stage: the firmware the bootloader
// jumps to, which hosts the update client. This file holds the application
// itself and the behaviours a scenario can give a firmware image.
package updateclient

import (
	"fmt"

	"strconv"
	"time"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/hardened"
	"github.com/bootsim/bootsim/mbedos"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
)

// Behaviours an application image can have (its descriptor's behaviour).
const (
	// Healthy: start-up code initialises RAM (clobbering the no-init heap
	// cells the bootloader counts boots in, as libc start-up does), prints
	// its banner, reports MarkRunning and idles, kicking the watchdog if
	// the "watchdog" parameter starts one.
	Healthy = "healthy"
	// Crash: a HardFault that Mbed OS's fault handler catches: it prints
	// the crash report and then, as the platform configuration says
	// (package mbedos), resets by software or halts in mbed_die. With
	// "after" 0 (the default) it faults in its start-up code, before RAM
	// is initialised and before mbed_error_initialize could enforce
	// platform.error-reboot-max; otherwise it starts as a healthy image and
	// faults "after" later.
	Crash = "crash"
	// Lockup: a fault the handler cannot take (a fault inside the fault
	// handler, a corrupt stack): the core locks up. Only a board whose
	// reset controller resets on lockup (lockup-resets) restarts; any other
	// stays stopped until a watchdog, a reset or a power cycle. "after" as
	// for Crash.
	Lockup = "lockup"
	// Hang: stops without crashing, so only a watchdog recovers it. With
	// "after" 0 it hangs in start-up code with the watchdog ("watchdog",
	// default 1s) already running; otherwise it starts as a healthy image
	// with the watchdog and stops kicking it "after" later.
	Hang = "hang"
)

// Behaviours lists the behaviours, for validation and help.
func Behaviours() []string { return []string{Healthy, Crash, Lockup, Hang} }

// ParamReadsResetReason is the descriptor parameter ("true") of an
// application that reads its reset reason through Mbed's
// ResetReason::get(), which clears the chip's reset flags.
const ParamReadsResetReason = "reads-reset-reason"

// MarkRunning is reported once the application is up.
const MarkRunning = "app-running"

// App is the application program (implementation "app"). With a Client
// configuration it runs the update client against Service.
type App struct {
	Client  *Config
	Service *cloud.Service
	// Chain, if set, is the chain profile's layout: the application
	// registers with the service and then confirms itself in the boot
	// record (unless its "confirm" parameter is "never"), instead of
	// running the classic update client.
	Chain *chain.Layout
	// Hardened, if set, holds the hardened profile's SOTP areas: the
	// application confirms itself there once it has registered (unless its
	// "confirm" parameter is "never").
	Hardened *hardened.Areas
}

// Param reads a duration parameter of an image's descriptor.
func Param(d *sim.Descriptor, key string, def time.Duration) time.Duration {
	v, ok := d.Param(key)
	if !ok {
		return def
	}
	x, err := time.ParseDuration(v)
	if err != nil {
		// Descriptors are built from validated scenarios.
		panic(fmt.Sprintf("updateclient: %s: parameter %s=%q: %v", d.Key(), key, v, err))
	}
	return x
}

// Run implements sim.Program.
func (a App) Run(m *sim.Machine, img *sim.Image) {
	d := img.Desc
	after := Param(d, "after", 0)
	watchdog := Param(d, "watchdog", 0)
	platform := mbedos.ConfigFor(m.Board(), d)
	switch d.Behaviour {
	case Crash:
		if after == 0 {
			mbedos.Fault(m, platform, "HardFault in start-up code of "+d.Name)
		}
	case Lockup:
		if after == 0 {
			m.Fault("lockup in start-up code of " + d.Name)
		}
	case Hang:
		if watchdog == 0 {
			watchdog = time.Second
		}
		if after == 0 {
			m.StartWatchdog(watchdog)
			return // spins without kicking
		}
	case Healthy:
	default:
		panic(fmt.Sprintf("updateclient: %s: unknown behaviour %q", d.Key(), d.Behaviour))
	}

	// libc start-up: the heap, and the bootloader's uninitialised cells in
	// it, are zeroed.
	clear(m.NoInit())
	mbedos.ErrorInitialize(m, platform)
	if v, _ := d.Param(ParamReadsResetReason); v == "true" {
		m.ClearResetFlags()
	}
	v := strconv.FormatUint(d.Version, 10)
	m.Print(d.Name + " version " + v + " running\r\n")
	m.Mark(MarkRunning, d.Name+" version "+v)
	if watchdog > 0 {
		m.StartWatchdog(watchdog)
		kicking := true
		var kick func()
		kick = func() {
			if kicking {
				m.KickWatchdog()
				m.After(watchdog/2, kick)
			}
		}
		kick()
		if d.Behaviour == Hang {
			m.After(after, func() { kicking = false })
		}
	}
	switch d.Behaviour {
	case Crash:
		m.After(after, func() { mbedos.Fault(m, platform, "HardFault in "+d.Name) })
	case Lockup:
		m.After(after, func() { m.Fault("lockup in " + d.Name) })
	}
	if (a.Chain != nil || a.Hardened != nil) && (a.Client == nil || a.Service == nil) {
		m.After(connectTime, func() { a.confirm(m, d) })
		return
	}
	if a.Client != nil && a.Service != nil {
		(&hub{m: m, cfg: a.Client, svc: a.Service, running: d}).start()
	}
}

// confirm registers with the service, as the client would, and confirms
// the running version in the chain's boot record: it has booted far enough
// to talk to the service, so the boot selector and bootloader may keep it.
func (a App) confirm(m *sim.Machine, d *sim.Descriptor) {
	if a.Service != nil {
		if err := a.Service.Register(deviceIDOf(a.Client), d.Version); err != nil {
			m.After(connectTime, func() { a.confirm(m, d) })
			return
		}
	}
	m.Print("Client registered\r\n")
	m.Mark(MarkRegistered, fmt.Sprintf("version %d", d.Version))
	if a.Hardened != nil {
		confirmHardened(m, *a.Hardened, d)
		return
	}
	confirmChain(m, a.Chain, d)
}

// confirmHardened confirms the running version in the hardened profile's
// boot state, unless its "confirm" parameter is "never".
func confirmHardened(m *sim.Machine, a hardened.Areas, d *sim.Descriptor) {
	if v, _ := d.Param("confirm"); v == "never" {
		return
	}
	hardened.ConfirmRunning(m, a, d.Version)
}

// confirmChain confirms the running version in the chain's boot record,
// unless its "confirm" parameter is "never".
func confirmChain(m *sim.Machine, lay *chain.Layout, d *sim.Descriptor) {
	if v, _ := d.Param("confirm"); v == "never" {
		return
	}
	if err := chain.Confirm(m, lay, d.Version); err != nil {
		m.Printf("confirm failed: %v\r\n", err)
		return
	}
	m.Printf("%s version %d confirmed\r\n", d.Name, d.Version)
	m.Mark(chain.MarkConfirmed, fmt.Sprintf("%s version %d", d.Name, d.Version))
}

// deviceIDOf is the endpoint name a configuration gives, or the default.
func deviceIDOf(c *Config) string {
	if c != nil && c.DeviceID != "" {
		return c.DeviceID
	}
	return "bootsim-device"
}
