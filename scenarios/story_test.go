package scenarios

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/mbedos"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/updateclient"
	"github.com/cockroachdb/datadriven"
)

// TestChainStories replays the rollback stories in testdata/stories: each
// file drives one chain device, verb by verb, and records what every boot
// did and what the boot record says (etcd raft's interaction tests are the
// model). After a change, run "go test ./scenarios -run TestChainStories
// -rewrite" and read the diff.
//
// Verbs:
//
//	device board=B bootloaders=NAME[:BEHAVIOUR],... apps=NAME[:BEHAVIOUR],... [trial=NAME,...] [attempts=N]
//	    a device from the factory; versions are numbered in the order given
//	power-on [cut=MILESTONE] | power-cycle [cut=MILESTONE] | reset
//	    then run until the device settles: an application confirmed or
//	    registered, a dead end, a halt, or power off (a cut at MILESTONE)
//	crash | confirm
//	    the running application faults (Mbed OS's fault handler takes it),
//	    or confirms itself, then settle
//	record
//	    the boot record as the flash holds it
func TestChainStories(t *testing.T) {
	datadriven.Walk(t, "testdata/stories", func(t *testing.T, path string) {
		var s *story
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			if d.Cmd == "device" {
				s = newStory(t, d)
				return s.record()
			}
			if s == nil {
				t.Fatalf("%s: %s before device", d.Pos, d.Cmd)
			}
			m := s.m
			switch d.Cmd {
			case "power-on", "power-cycle":
				if d.Cmd == "power-cycle" {
					m.PowerOff("power-cycle")
				}
				if d.HasArg("cut") {
					var mark string
					d.ScanArgs(t, "cut", &mark)
					m.CutPowerOnMark(mark, 0)
				}
				m.PowerOn()
			case "reset":
				m.Reset(sim.ResetPin)
			case "crash":
				d := m.Image().Desc
				m.After(0, func() { mbedos.Fault(m, mbedos.ConfigFor(m.Board(), d), "HardFault requested by the story") })
			case "confirm":
				if err := s.r.appAction(&AppAction{Confirm: true}); err != nil {
					return "error: " + err.Error() + "\n"
				}
			case "record":
				return s.record()
			default:
				t.Fatalf("%s: unknown verb %s", d.Pos, d.Cmd)
			}
			return s.settle()
		})
	})
}

// story is one device a story drives.
type story struct {
	l       *Loaded
	m       *sim.Machine
	r       *runner
	printed int // boots already told whole
	from    int // trace index the current verb started at
}

func newStory(t *testing.T, d *datadriven.TestData) *story {
	arg := func(k string) []string {
		var out []string
		for _, a := range d.CmdArgs {
			if a.Key == k {
				for _, v := range a.Vals {
					out = append(out, strings.Split(v, ",")...)
				}
			}
		}
		return out
	}
	board := "k64f"
	if v := arg("board"); v != nil {
		board = v[0]
	}
	var y strings.Builder
	fmt.Fprintf(&y, "scenario: story\nsummary: A story.\ndevice: {board: %s, profile: chain", board)
	if v := arg("attempts"); v != nil {
		fmt.Fprintf(&y, ", config: {chain.max-attempts: %s}", v[0])
	}
	y.WriteString("}\nfirmware:\n")
	names := func(key, stage string) []string {
		var out []string
		for i, v := range arg(key) {
			name, behaviour, _ := strings.Cut(v, ":")
			if behaviour == "" {
				behaviour = "healthy"
			}
			extra := ""
			if behaviour == "never-confirm" {
				behaviour, extra = "healthy", ", confirm: never"
			}
			fmt.Fprintf(&y, "  %s: {stage: %s, version: %d, size: 16KiB, behaviour: %s%s}\n", name, stage, i+1, behaviour, extra)
			out = append(out, name)
		}
		return out
	}
	bls := names("bootloaders", "bootloader")
	apps := names("apps", "application")
	fmt.Fprintf(&y, "factory:\n  bootloaders: [%s]\n  applications: [%s]\n  trial: [%s]\nsteps: [power-on]\n",
		strings.Join(bls, ", "), strings.Join(apps, ", "), strings.Join(arg("trial"), ", "))
	l, err := Load("story.yaml", []byte(y.String()), nil)
	if err != nil {
		t.Fatalf("%s: %v\n%s", d.Pos, err, y.String())
	}
	imgs, err := l.buildImages()
	if err != nil {
		t.Fatal(err)
	}
	svc := cloud.New(cloud.Link{Bandwidth: defaultBandwidth, Latency: defaultLatency})
	m, err := l.newMachine(imgs, l.Seed, nil, nil, svc)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.programFactory(m, imgs); err != nil {
		t.Fatal(err)
	}
	return &story{l: l, m: m, r: &runner{l: l, m: m, imgs: imgs, svc: svc}}
}

// settle runs the device until it settles, and tells each boot since the
// last one told whole.
func (s *story) settle() string {
	m := s.m
	from := len(m.Trace())
	seen := func(name string) bool {
		return slices.ContainsFunc(m.Trace()[from:], func(e sim.Event) bool { return e.Kind == sim.EvMark && e.Name == name })
	}
	m.Run(m.Now()+3*time.Minute, func() bool {
		switch m.State() {
		case sim.StateOff, sim.StateDeadEnd:
			return true
		case sim.StateHalted:
			// A watchdog still counting will reset the halted core.
			return !m.WatchdogRunning()
		}
		_, up := s.r.appUp()
		return up && (seen(chain.MarkConfirmed) || seen(updateclient.MarkRegistered))
	})
	var b strings.Builder
	boots := chainBoots(s.l, m.Trace(), m.Storage().Journal())
	for i := s.printed; i < len(boots); i++ {
		bt := boots[i]
		app := bt.app
		if app == "" {
			app = "(no application)"
		}
		// The stages give versions up before they hand over.
		for _, r := range bt.rollbacks {
			who := "the selector"
			if r.by == sim.StageBootloader {
				who = bt.bl
			}
			fmt.Fprintf(&b, "boot %d: %s gives up %s %s\n", i+1, who, r.stage, r.text)
		}
		if bt.bl == "" {
			fmt.Fprintf(&b, "boot %d: the selector finds no bootloader: %s\n", i+1, bt.end)
		} else {
			conf := ""
			if bt.confirmed {
				conf = " (confirmed)"
			}
			fmt.Fprintf(&b, "boot %d: %s → %s: %s%s\n", i+1, bt.bl, app, bt.end, conf)
		}
	}
	s.printed = len(boots)
	if n := len(boots); n > 0 && boots[n-1].end == "runs" {
		s.printed-- // still running: told again when it ends
	}
	fmt.Fprintf(&b, "device: %s\n", s.r.describe())
	return b.String()
}

// record prints the boot record the flash holds (the newer valid copy),
// read without costing the device time.
func (s *story) record() string {
	best := chain.Peek(s.m.Internal(), s.l.Chain)
	if best == nil {
		return "record: none valid\n"
	}
	var b strings.Builder
	fmt.Fprintf(&b, "record seq %d\n", best.Seq)
	for _, st := range []struct {
		name  string
		state *chain.StageState
		names []string
	}{{"bootloader", &best.Boot, s.l.Factory.Bootloaders}, {"application", &best.App, s.l.Factory.Applications}} {
		fmt.Fprintf(&b, "  %s: current slot %d, attempts %d\n", st.name, st.state.Current, st.state.Attempts)
		for i, sl := range st.state.Slots {
			if sl.Status == chain.Empty && sl.Version == 0 {
				continue
			}
			conf := "trial"
			if sl.Confirmed {
				conf = "confirmed"
			}
			name := "?"
			if i < len(st.names) {
				name = st.names[i]
			}
			fmt.Fprintf(&b, "    slot %d: %s version %d %s %s\n", i, name, sl.Version, sl.Status, conf)
		}
	}
	return b.String()
}
