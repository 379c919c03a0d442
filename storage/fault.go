package storage

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// FaultMode is what goes wrong at an op.
type FaultMode uint8

// The fault modes. The power modes (CutBefore, CutAfter, Torn) end with the
// system unpowered; the others leave power on and let the firmware see the
// consequence.
const (
	FaultNone FaultMode = iota
	// FaultCutBefore: power fails as the op starts; it never happens.
	FaultCutBefore
	// FaultCutAfter: the op completes, then power fails before the next step.
	FaultCutAfter
	// FaultTorn: power fails in the middle of the op. A NOR program leaves a
	// prefix of its units programmed, a seeded subset of the 1→0 bits of the
	// unit in progress and the rest untouched; a NOR erase leaves the sectors
	// before the torn one erased, the torn sector with a seeded fraction of its
	// zero bits pulled up to one and the later sectors untouched; an SD write
	// leaves the blocks before the torn one new, the torn block old, new or
	// garbage (seeded) and the later blocks old.
	FaultTorn
	// FaultBitFlip: the op completes, then one seeded bit in its range flips
	// (retention loss or program disturb).
	FaultBitFlip
	// FaultIOError: the op fails with ErrIO and changes nothing.
	FaultIOError
	// FaultStuckBit: the op completes, then one seeded bit in its range sticks
	// at a seeded value and no later program or erase changes it.
	FaultStuckBit
	// FaultWearOut: the sector of the op reaches its endurance: this op and
	// every later program or erase of that sector fail with ErrWornOut.
	FaultWearOut
	// FaultSDRemoved: the card is pulled out as the op starts: the op and every
	// later op fail with ErrNoMedia until the card is inserted again.
	FaultSDRemoved
)

var faultModeNames = [...]string{
	FaultNone:      "none",
	FaultCutBefore: "cut-before",
	FaultCutAfter:  "cut-after",
	FaultTorn:      "torn",
	FaultBitFlip:   "bit-flip",
	FaultIOError:   "io-error",
	FaultStuckBit:  "stuck-bit",
	FaultWearOut:   "wear-out",
	FaultSDRemoved: "sd-removed",
}

func (m FaultMode) String() string {
	if int(m) < len(faultModeNames) {
		return faultModeNames[m]
	}
	return fmt.Sprintf("FaultMode(%d)", uint8(m))
}

// CutsPower reports whether the mode leaves the system unpowered.
func (m FaultMode) CutsPower() bool {
	return m == FaultCutBefore || m == FaultCutAfter || m == FaultTorn
}

// FaultModes lists every mode but FaultNone, in declaration order.
func FaultModes() []FaultMode {
	ms := make([]FaultMode, 0, len(faultModeNames)-1)
	for m := FaultCutBefore; int(m) < len(faultModeNames); m++ {
		ms = append(ms, m)
	}
	return ms
}

// ParseFaultMode parses a mode name; "before" and "after" are accepted for
// the two cut modes, as the sweep command's --modes flag spells them.
func ParseFaultMode(s string) (FaultMode, error) {
	switch s {
	case "before":
		return FaultCutBefore, nil
	case "after":
		return FaultCutAfter, nil
	}
	for m, name := range faultModeNames {
		if name == s && FaultMode(m) != FaultNone {
			return FaultMode(m), nil
		}
	}
	names := make([]string, 0, len(faultModeNames))
	for _, m := range FaultModes() {
		names = append(names, m.String())
	}
	return FaultNone, fmt.Errorf("unknown fault mode %q (want one of %s)", s, strings.Join(names, ", "))
}

// Fault is a fault to apply at one op. Its effect is a pure function of the
// mode, the seed and the op's index, so a fault found by a sweep replays
// exactly.
type Fault struct {
	Mode FaultMode
	Seed uint64
}

func (f Fault) String() string {
	return fmt.Sprintf("mode=%s,seed=%d", f.Mode, f.Seed)
}

// rng returns the random source for applying f at op index i.
func (f Fault) rng(index int) *rand.Rand {
	return rand.New(rand.NewPCG(f.Seed, uint64(index)^0x9e3779b97f4a7c15))
}

// Injector decides, before every mutating op, whether a fault happens at it.
// Injectors may keep state (an nth-match counter); a System consults its
// injector exactly once per op, in journal order.
type Injector interface {
	Inject(op *Op) (Fault, bool)
}

// IdleInjector is an injector that can tell it has no rule for mutating
// ops, so that a run of page programs need not be offered page by page.
type IdleInjector interface {
	Injector
	Idle() bool
}

// idle says whether an injector can be skipped for mutating ops.
func idle(inj Injector) bool {
	if inj == nil {
		return true
	}
	i, ok := inj.(IdleInjector)
	return ok && i.Idle()
}

// Matcher selects ops. A matcher may keep state (Nth counts the ops it has
// seen, AtTime remembers that it fired); Arm returns a copy whose state
// starts afresh, so that one parsed matcher can be shared by many runs.
type Matcher interface {
	Match(op *Op) bool
	Arm() Matcher
	String() string
}

// Rule injects its Fault at the ops its matcher selects.
//
// A Rule that is kept and used again — a scenario's fault step, a --cut
// given for several scenarios — must be armed for each use: Arm copies it
// with fresh matcher state. Injecting through the same Rule in two runs
// would let the second start counting where the first stopped.
type Rule struct {
	Match Matcher
	Fault Fault
}

// Arm returns a copy of r whose matcher state starts afresh.
func (r *Rule) Arm() *Rule { return &Rule{Match: r.Match.Arm(), Fault: r.Fault} }

// Inject implements Injector.
func (r *Rule) Inject(op *Op) (Fault, bool) {
	if r.Match.Match(op) {
		return r.Fault, true
	}
	return Fault{}, false
}

func (r *Rule) String() string { return joinKV(r.Match.String(), r.Fault.String()) }

// Rules is an Injector that asks each rule in turn; the first that fires wins.
// Every rule sees every op, so stateful matchers count consistently whatever
// the other rules do.
type Rules []*Rule

// Arm returns the rules armed afresh, each as Rule.Arm does.
func (rs Rules) Arm() Rules {
	out := make(Rules, len(rs))
	for i, r := range rs {
		out[i] = r.Arm()
	}
	return out
}

// Inject implements Injector.
func (rs Rules) Inject(op *Op) (Fault, bool) {
	var (
		out   Fault
		fired bool
	)
	for _, r := range rs {
		if f, ok := r.Inject(op); ok && !fired {
			out, fired = f, true
		}
	}
	return out, fired
}

// OnIndex matches the op with the given journal index.
type OnIndex int

// Match implements Matcher.
func (i OnIndex) Match(op *Op) bool { return op.Index == int(i) }
func (i OnIndex) String() string    { return "op=" + strconv.Itoa(int(i)) }

// Arm implements Matcher; OnIndex has no state.
func (i OnIndex) Arm() Matcher { return i }

// FilterOf returns the OpFilter a matcher selects ops with, under its count
// (Nth), time (AtTime) or chance (Randomly); false for a matcher that names
// one op by index.
func FilterOf(m Matcher) (OpFilter, bool) {
	switch x := m.(type) {
	case OpFilter:
		return x, true
	case *Nth:
		return FilterOf(x.Filter)
	case *AtTime:
		return FilterOf(x.Filter)
	case Randomly:
		return FilterOf(x.Filter)
	}
	return OpFilter{}, false
}

// OpFilter matches ops by device, region and kind; empty fields match all.
type OpFilter struct {
	Device string
	Region string
	Kind   OpKind
}

// Match implements Matcher.
func (f OpFilter) Match(op *Op) bool {
	return (f.Device == "" || f.Device == op.Device) &&
		(f.Region == "" || f.Region == op.Region) &&
		(f.Kind == 0 || f.Kind == op.Kind)
}

// Arm implements Matcher; OpFilter has no state.
func (f OpFilter) Arm() Matcher { return f }

func (f OpFilter) String() string {
	var parts []string
	if f.Device != "" {
		parts = append(parts, "device="+f.Device)
	}
	if f.Region != "" {
		parts = append(parts, "region="+f.Region)
	}
	if f.Kind != 0 {
		parts = append(parts, "kind="+f.Kind.String())
	}
	return strings.Join(parts, ",")
}

// joinKV joins the non-empty parts of a rule's text with commas.
func joinKV(parts ...string) string {
	out := parts[:0:0]
	for _, p := range parts {
		if p != "" {
			out = append(out, p)
		}
	}
	return strings.Join(out, ",")
}

// Nth matches only the N-th op (from 1) that its filter matches.
type Nth struct {
	Filter Matcher
	N      int
	seen   int
}

// Match implements Matcher.
func (n *Nth) Match(op *Op) bool {
	if !n.Filter.Match(op) {
		return false
	}
	n.seen++
	return n.seen == n.N
}

// Arm implements Matcher: the copy has seen no op yet.
func (n *Nth) Arm() Matcher { return &Nth{Filter: n.Filter.Arm(), N: n.N} }

func (n *Nth) String() string { return joinKV(n.Filter.String(), fmt.Sprintf("nth=%d", n.N)) }

// AtTime matches the first op its filter matches that starts at or after a
// virtual time.
type AtTime struct {
	Filter Matcher
	At     time.Duration
	fired  bool
}

// Match implements Matcher.
func (a *AtTime) Match(op *Op) bool {
	if a.fired || op.Time < a.At || !a.Filter.Match(op) {
		return false
	}
	a.fired = true
	return true
}

// Arm implements Matcher: the copy has not fired.
func (a *AtTime) Arm() Matcher { return &AtTime{Filter: a.Filter.Arm(), At: a.At} }

func (a *AtTime) String() string { return joinKV(a.Filter.String(), "time="+a.At.String()) }

// Randomly matches each op its filter matches with probability P. The draw for
// an op depends only on the seed and the op's index, never on which ops came
// before, so a fault it picks replays at the same op.
type Randomly struct {
	Filter Matcher
	P      float64
	Seed   uint64
}

// Match implements Matcher.
func (r Randomly) Match(op *Op) bool {
	if !r.Filter.Match(op) {
		return false
	}
	x := rand.New(rand.NewPCG(r.Seed, uint64(op.Index)+1)).Float64()
	return x < r.P
}

// Arm implements Matcher; Randomly draws from the op's index, with no state.
func (r Randomly) Arm() Matcher { return Randomly{Filter: r.Filter.Arm(), P: r.P, Seed: r.Seed} }

func (r Randomly) String() string { return joinKV(r.Filter.String(), fmt.Sprintf("random=%g", r.P)) }

// ParseRule parses a fault rule written as comma-separated key=value pairs,
// the form used on the command line (--cut) and in scenarios:
//
//	op=1234,mode=torn,seed=7
//	device=internal,region=active-app,kind=program,nth=20,mode=cut-after
//	region=sotp-1,time=15ms,mode=cut-before
//	kind=program,random=0.01,mode=bit-flip,seed=3
//
// Keys: op (journal index, from 0), device, region, kind (program|erase), nth
// (from 1, counting ops that match device/region/kind), time (a Go duration:
// the first matching op at or after it), random (a probability per matching
// op), mode (default cut-before) and seed (default 0). op, nth, time and random
// exclude one another; with none of them the rule fires at the first matching op.
func ParseRule(s string) (*Rule, error) {
	var (
		filter             OpFilter
		index, nth         = -1, 0
		at                 time.Duration
		hasTime, hasRandom bool
		p                  float64
		fault              = Fault{Mode: FaultCutBefore}
		selectors          []string
		seen               = map[string]bool{}
	)
	if strings.TrimSpace(s) == "" {
		return nil, fmt.Errorf("empty fault rule")
	}
	for _, kv := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || val == "" {
			return nil, fmt.Errorf("fault rule %q: %q is not key=value", s, kv)
		}
		if seen[key] {
			return nil, fmt.Errorf("fault rule %q: %s given twice", s, key)
		}
		seen[key] = true
		var err error
		switch key {
		case "op":
			index, err = strconv.Atoi(val)
			if err == nil && index < 0 {
				err = fmt.Errorf("must be ≥ 0")
			}
			selectors = append(selectors, key)
		case "device":
			filter.Device = val
		case "region":
			filter.Region = val
		case "kind":
			filter.Kind, err = ParseOpKind(val)
		case "nth":
			nth, err = strconv.Atoi(val)
			if err == nil && nth < 1 {
				err = fmt.Errorf("must be ≥ 1")
			}
			selectors = append(selectors, key)
		case "time":
			at, err = time.ParseDuration(val)
			if err == nil && at < 0 {
				err = fmt.Errorf("must not be negative")
			}
			hasTime = true
			selectors = append(selectors, key)
		case "random":
			p, err = strconv.ParseFloat(val, 64)
			if err == nil && !(p >= 0 && p <= 1) {
				err = fmt.Errorf("must be a probability in [0, 1]")
			}
			hasRandom = true
			selectors = append(selectors, key)
		case "mode":
			fault.Mode, err = ParseFaultMode(val)
		case "seed":
			fault.Seed, err = strconv.ParseUint(val, 10, 64)
		default:
			return nil, fmt.Errorf("fault rule %q: unknown key %q (want op, device, region, kind, nth, time, random, mode or seed)", s, key)
		}
		if err != nil {
			return nil, fmt.Errorf("fault rule %q: %s=%s: %v", s, key, val, err)
		}
	}
	if len(selectors) > 1 {
		return nil, fmt.Errorf("fault rule %q: %s exclude one another", s, strings.Join(selectors, " and "))
	}
	if index >= 0 && filter != (OpFilter{}) {
		return nil, fmt.Errorf("fault rule %q: op names one op; it takes no device, region or kind", s)
	}
	if filter.Kind == OpRead && fault.Mode != FaultIOError && fault.Mode != FaultBitFlip {
		return nil, fmt.Errorf("fault rule %q: a read takes mode io-error or bit-flip (a read changes nothing to cut or tear)", s)
	}
	var m Matcher
	switch {
	case index >= 0:
		m = OnIndex(index)
	case nth > 0:
		m = &Nth{Filter: filter, N: nth}
	case hasTime:
		m = &AtTime{Filter: filter, At: at}
	case hasRandom:
		m = Randomly{Filter: filter, P: p, Seed: fault.Seed}
	default:
		m = &Nth{Filter: filter, N: 1}
	}
	return &Rule{Match: m, Fault: fault}, nil
}

// ParseSchedule parses a fault schedule: rules as ParseRule takes them,
// separated by semicolons ("op=12,mode=bit-flip,seed=3;op=40,mode=torn").
func ParseSchedule(s string) ([]*Rule, error) {
	var out []*Rule
	for i, part := range strings.Split(s, ";") {
		r, err := ParseRule(part)
		if err != nil {
			return nil, fmt.Errorf("rule %d: %v", i+1, err)
		}
		out = append(out, r)
	}
	return out, nil
}
