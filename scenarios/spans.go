package scenarios

import (
	"strings"
	"time"

	"github.com/bootsim/bootsim/bootloader"
	"github.com/bootsim/bootsim/sim"
)

// Kinds of traceSpan.
const (
	spanStage   = "stage"
	spanInstall = "install"
	spanPhase   = "phase"
	spanState   = "update-client"
)

// phaseStarts are the milestones that start an install's phases (each runs
// until the next starts or the install ends), by phase name.
var phaseStarts = map[string]string{
	bootloader.MarkEraseBegin:  "erase",
	bootloader.MarkHeaderBegin: "header",
	bootloader.MarkBodyBegin:   "body",
	bootloader.MarkVerifyBegin: "verify",
	bootloader.MarkSaveBegin:   "save",
}

// traceSpan is a span of a run on the stages' timeline: a stage running an
// image, an install inside it, a phase of the install, or a state of the
// update client inside an application.
type traceSpan struct {
	kind string
	// name is the stage's name for a stage, else the span's label;
	// detail is the image a stage runs.
	name, detail string
	from, to     time.Duration
}

// spanWalker follows a trace one event at a time and returns the spans
// each event closes, innermost first: a stage holds an install (copy-begin
// to copy-done or copy-failed), which holds its phases, and an application
// holds the update client's states (each until the next transition).
// Everything open closes when its stage ends. The Chrome trace and the HTML
// report draw the same spans from it.
type spanWalker struct {
	stage, install, phase, state *traceSpan
}

// end closes a span at a time into out.
func end(p **traceSpan, at time.Duration, out []traceSpan) []traceSpan {
	if *p != nil {
		(*p).to = at
		out = append(out, **p)
		*p = nil
	}
	return out
}

// closeStage closes everything open at a time.
func (w *spanWalker) closeStage(at time.Duration, out []traceSpan) []traceSpan {
	out = end(&w.phase, at, out)
	out = end(&w.install, at, out)
	out = end(&w.state, at, out)
	return end(&w.stage, at, out)
}

// step reads one event and returns the spans it closed.
func (w *spanWalker) step(e *sim.Event) []traceSpan {
	var out []traceSpan
	if e.Kind == sim.EvMark && w.stage != nil {
		switch name, isPhase := phaseStarts[e.Name]; {
		case e.Name == bootloader.MarkCopyBegin:
			out = end(&w.phase, e.Time, out)
			out = end(&w.install, e.Time, out)
			w.install = &traceSpan{kind: spanInstall, name: "install " + e.Detail, from: e.Time}
		case isPhase:
			out = end(&w.phase, e.Time, out)
			w.phase = &traceSpan{kind: spanPhase, name: name, from: e.Time}
		case e.Name == bootloader.MarkCopyDone || e.Name == bootloader.MarkCopyFailed:
			out = end(&w.phase, e.Time, out)
			out = end(&w.install, e.Time, out)
		case e.Name == bootloader.MarkSaveDone:
			out = end(&w.phase, e.Time, out)
		}
	}
	if e.Kind == sim.EvState && e.Name == spanState && w.stage != nil {
		out = end(&w.state, e.Time, out)
		if _, to, ok := strings.Cut(e.Detail, " → "); ok {
			w.state = &traceSpan{kind: spanState, name: to, from: e.Time}
		}
	}
	switch e.Kind {
	case sim.EvStage:
		out = w.closeStage(e.Time, out)
		w.stage = &traceSpan{kind: spanStage, name: e.Name, detail: e.Detail, from: e.Time}
	case sim.EvReset, sim.EvPowerOff, sim.EvHalt, sim.EvLockup:
		out = w.closeStage(e.Time, out)
	}
	return out
}

// finish closes what is still open when the run ends.
func (w *spanWalker) finish(at time.Duration) []traceSpan { return w.closeStage(at, nil) }
