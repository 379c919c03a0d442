// Package updateclient is the application stage: the firmware the bootloader
// jumps to, which hosts the update client. This file holds the application
// itself and the behaviours a scenario can give a firmware image.
package updateclient

import (
	"fmt"
	"strconv"
	"time"

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
	// Crash: a HardFault. With "after" 0 (the default) it faults in its
	// start-up code, before RAM is initialised; otherwise it starts as a
	// healthy image and faults "after" later.
	Crash = "crash"
	// Hang: stops without crashing, so only a watchdog recovers it. With
	// "after" 0 it hangs in start-up code with the watchdog ("watchdog",
	// default 1s) already running; otherwise it starts as a healthy image
	// with the watchdog and stops kicking it "after" later.
	Hang = "hang"
)

// Behaviours lists the behaviours, for validation and help.
func Behaviours() []string { return []string{Healthy, Crash, Hang} }

// MarkRunning is reported once the application is up.
const MarkRunning = "app-running"

// App is the application program (implementation "app"). With a Client
// configuration it runs the update client against Service.
type App struct {
	Client  *Config
	Service *cloud.Service
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
	switch d.Behaviour {
	case Crash:
		if after == 0 {
			m.Fault("HardFault in start-up code of " + d.Name)
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
	m.Printf("%s version %s running\r\n", d.Name, strconv.FormatUint(d.Version, 10))
	m.Mark(MarkRunning, fmt.Sprintf("%s version %d", d.Name, d.Version))
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
	if d.Behaviour == Crash {
		m.After(after, func() { m.Fault("HardFault in " + d.Name) })
	}
	if a.Client != nil && a.Service != nil {
		(&hub{m: m, cfg: a.Client, svc: a.Service}).start()
	}
}
