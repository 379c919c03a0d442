package scenarios

import (
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/bootsim/bootsim/sim"
)

// chromeEvent is one event of the Chrome trace-event format, which Perfetto
// and chrome://tracing open.
type chromeEvent struct {
	Name  string         `json:"name"`
	Cat   string         `json:"cat,omitempty"`
	Ph    string         `json:"ph"`
	Ts    float64        `json:"ts"` // microseconds
	Dur   *float64       `json:"dur,omitempty"`
	Pid   int            `json:"pid"`
	Tid   int            `json:"tid"`
	Scope string         `json:"s,omitempty"`
	Args  map[string]any `json:"args,omitempty"`
}

// Thread ids of a scenario's process in the trace.
const (
	tidStages  = 1
	tidEvents  = 2
	tidSerial  = 3
	tidStorage = 10 // + device index
)

func us(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }

// WriteChromeTrace writes the results' traces as Chrome trace-event JSON:
// one process per scenario, with threads for the running stages, the
// milestones and checks, the serial console, and each storage device's ops
// as spans of their virtual duration.
func WriteChromeTrace(w io.Writer, results []*Result) error {
	events := []chromeEvent{}
	// A recovery after a cut is a process of its own: its clock starts
	// at its power-on.
	var runs []*Result
	for _, res := range results {
		runs = append(runs, res)
		if rec := res.Recovery; rec != nil {
			r := *rec
			r.Name = res.Name + " (recovery)"
			runs = append(runs, &r)
		}
	}
	for i, res := range runs {
		pid := i + 1
		meta := func(tid int, name string) {
			events = append(events, chromeEvent{Name: "thread_name", Ph: "M", Pid: pid, Tid: tid, Args: map[string]any{"name": name}})
		}
		events = append(events, chromeEvent{Name: "process_name", Ph: "M", Pid: pid, Args: map[string]any{"name": res.Name}})
		meta(tidStages, "stages")
		meta(tidEvents, "events")
		meta(tidSerial, "serial")
		devices := map[string]int{}
		// Stages, installs, phases and the client's states nest as spans
		// on the stages thread (spanWalker).
		var walk spanWalker
		addSpans := func(spans []traceSpan) {
			for _, sp := range spans {
				name, cat := sp.name, sp.kind
				if sp.kind == spanStage {
					name = sp.name + ": " + sp.detail
				}
				d := us(sp.to) - us(sp.from)
				events = append(events, chromeEvent{Name: name, Cat: cat, Ph: "X", Ts: us(sp.from), Dur: &d, Pid: pid, Tid: tidStages})
			}
		}
		for _, e := range res.Trace {
			addSpans(walk.step(&e))
			switch e.Kind {
			case sim.EvStage:
				// A span, drawn by the walker.
			case sim.EvReset, sim.EvPowerOff, sim.EvHalt, sim.EvLockup:
				events = append(events, chromeEvent{Name: e.Kind.String() + " " + e.Name, Cat: e.Kind.String(), Ph: "i", Ts: us(e.Time), Pid: pid, Tid: tidEvents, Scope: "p",
					Args: map[string]any{"detail": e.Detail}})
			case sim.EvSerial:
				events = append(events, chromeEvent{Name: e.Detail, Cat: "serial", Ph: "i", Ts: us(e.Time), Pid: pid, Tid: tidSerial, Scope: "t"})
			case sim.EvOp:
				// Ops are drawn from the journal below, with their durations.
			default:
				name := e.Kind.String()
				if e.Name != "" {
					name += " " + e.Name
				}
				args := map[string]any{}
				if e.Detail != "" {
					args["detail"] = e.Detail
				}
				if e.Kind == sim.EvCheck {
					args["ok"] = e.OK
				}
				events = append(events, chromeEvent{Name: name, Cat: e.Kind.String(), Ph: "i", Ts: us(e.Time), Pid: pid, Tid: tidEvents, Scope: "t", Args: args})
			}
		}
		addSpans(walk.finish(res.VirtualTime))
		for _, op := range res.Journal {
			tid, ok := devices[op.Device]
			if !ok {
				tid = tidStorage + len(devices)
				devices[op.Device] = tid
				meta(tid, "storage "+op.Device)
			}
			d := us(op.Dur)
			args := map[string]any{"index": op.Index, "addr": fmt.Sprintf("0x%x", op.Addr), "len": op.Len, "phase": op.Phase}
			if op.Region != "" {
				args["region"] = op.Region
			}
			if op.Fault.Mode != 0 {
				args["fault"] = op.Fault.String()
			}
			events = append(events, chromeEvent{Name: op.Kind.String(), Cat: "storage", Ph: "X", Ts: us(op.Time), Dur: &d, Pid: pid, Tid: tid, Args: args})
		}
	}
	enc := json.NewEncoder(w)
	return enc.Encode(map[string]any{"traceEvents": events, "displayTimeUnit": "ms",
		"otherData": map[string]any{"generator": "bootsim", "clock": "virtual time of the simulated device"}})
}
