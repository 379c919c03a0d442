package sim

import (
	"fmt"
	"strings"
	"time"
)

// EventKind is the kind of a trace event.
type EventKind uint8

// The trace event kinds.
const (
	EvPowerOn  EventKind = iota + 1 // power applied
	EvPowerOff                      // power removed (Detail says why)
	EvReset                         // a reset (Name is the reason)
	EvStage                         // a stage starts running an image (Name: stage, Detail: image)
	EvJump                          // a stage hands over to an address
	EvCheck                         // a stage checked something (Name, OK)
	EvOp                            // a mutating storage op (Detail: the op)
	EvFault                         // a fault was injected (Name: mode, Detail: where)
	EvSerial                        // a line on the serial console (Detail)
	EvHalt                          // the CPU stopped for good (Detail: why)
	EvLockup                        // the core locked up (Detail: why)
	EvWatchdog                      // the watchdog fired
	EvState                         // a state machine moved (Name: machine, Detail: from → to)
	EvMark                          // a named milestone a stage reports (Name), for waits and expectations
	EvLED                           // an LED shows a pattern (Name: the pattern, sos; Detail: why)
)

// LEDSOS is the pattern mbed_die() blinks on LED1: three short, three
// long, three short, for ever.
const LEDSOS = "sos"

var eventKindNames = [...]string{
	EvPowerOn: "power-on", EvPowerOff: "power-off", EvReset: "reset", EvStage: "stage",
	EvJump: "jump", EvCheck: "check", EvOp: "op", EvFault: "fault", EvSerial: "serial",
	EvHalt: "halt", EvLockup: "lockup", EvWatchdog: "watchdog", EvState: "state", EvMark: "mark", EvLED: "led",
}

func (k EventKind) String() string {
	if int(k) < len(eventKindNames) && eventKindNames[k] != "" {
		return eventKindNames[k]
	}
	return fmt.Sprintf("EventKind(%d)", uint8(k))
}

// Stage is the boot stage an image is (Descriptor.Stage, Event.Stage).
type Stage string

// The boot stages.
const (
	StageBootSelector Stage = "bootsel"
	StageBootloader   Stage = "bootloader"
	StageApplication  Stage = "application"
)

// Event is one entry of a run's trace. Readers use its typed fields (Kind,
// Stage, Name, Image, Version, Op); Detail is text for people.
type Event struct {
	Time time.Duration
	Kind EventKind
	// Stage is the stage that was running ("" between stages).
	Stage Stage
	// Image and Version name the image that was running when the event
	// was recorded (for EvStage, the one that starts); "" and 0 when none
	// was (a power-off or reset stops the image before it is recorded).
	Image   string
	Version uint64
	// Op is the journal index of the op an EvOp or EvFault event records
	// (0 for other kinds).
	Op int
	// Addr is the address an EvJump jumps to and an EvStage image starts
	// at (0 for other kinds).
	Addr   uint64
	Name   string
	OK     bool
	Detail string
}

// String renders the event on one line, the form golden transcripts use.
func (e Event) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", FormatTime(e.Time), e.Kind)
	if e.Stage != "" {
		fmt.Fprintf(&b, " [%s]", e.Stage)
	}
	if e.Name != "" {
		b.WriteString(" " + e.Name)
	}
	if e.Kind == EvCheck {
		if e.OK {
			b.WriteString(" ok")
		} else {
			b.WriteString(" FAILED")
		}
	}
	if e.Detail != "" {
		b.WriteString(": " + e.Detail)
	}
	return b.String()
}

// FormatTime prints a virtual time as seconds with microsecond precision,
// fixed width for aligned logs: "   12.345678".
func FormatTime(t time.Duration) string {
	us := t.Microseconds()
	return fmt.Sprintf("%5d.%06d", us/1e6, us%1e6)
}

// SerialLine is one line the device printed.
type SerialLine struct {
	Time time.Duration
	Text string
}
