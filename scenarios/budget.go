package scenarios

import (
	"fmt"
	"math"
	"time"

	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"go.yaml.in/yaml/v3"
)

// Budget bounds what a run may spend, so that no scenario runs without
// end or exhausts the host's memory: a run that reaches one of its budgets
// stops and fails, naming it. Zero fields take the defaults; a scenario's
// budget section and the command line (Options) override them.
type Budget struct {
	// Boots bounds the device's boots (a reset loop).
	Boots int `yaml:"boots,omitempty" jsonschema:"minimum=1,description=Most boots a run may take (default 10000)."`
	// Time bounds the run's virtual time.
	Time units.Duration `yaml:"time,omitempty" jsonschema:"description=Most virtual time a run may take (default 24h)."`
	// Events bounds the trace (every storage op, serial line, milestone).
	Events int `yaml:"events,omitempty" jsonschema:"minimum=1,description=Most trace events a run may record (default 1000000)."`
	// Journal bounds the bytes of programmed data a run keeps: only a
	// sweep's baseline keeps them (to rebuild the storage at every op).
	Journal units.Size `yaml:"journal,omitempty" jsonschema:"description=Most bytes of programmed data a sweep's baseline keeps (default 256MiB)."`
	pos     strictyaml.Pos
}

// The default budget of a run: far above what any built-in scenario
// spends (the longest takes an hour of virtual time and 15 boots), and
// small enough that the host keeps up: a million events are about 150 MB.
const (
	DefaultMaxBoots   = 10000
	DefaultMaxTime    = 24 * time.Hour
	DefaultMaxEvents  = 1_000_000
	DefaultMaxJournal = 256 << 20
)

// maxBudgetTime is the most virtual time a budget may give: a run's clock
// must not overflow.
const maxBudgetTime = 100 * 365 * 24 * time.Hour

// UnmarshalStrictYAML records the section's position.
func (b *Budget) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	type plain Budget
	var p plain
	if err := d.Decode(n, &p); err != nil {
		return err
	}
	*b = Budget(p)
	b.pos = d.At(n)
	return nil
}

// check refuses budgets out of range.
func (b *Budget) check() error {
	switch {
	case b.Boots < 0 || b.Boots > 10_000_000:
		return b.pos.Errorf("budget.boots %d: want 1 to 10000000", b.Boots)
	case b.Events < 0 || b.Events > 100_000_000:
		return b.pos.Errorf("budget.events %d: want 1 to 100000000", b.Events)
	case b.Time < 0 || b.Time.D() > maxBudgetTime:
		return b.pos.Errorf("budget.time %s: want a positive duration up to 100 years", b.Time)
	case b.Journal < 0 || uint64(b.Journal) > 16<<30:
		return b.pos.Errorf("budget.journal %s: want up to 16GiB", b.Journal)
	}
	return nil
}

// budget resolves a run's budget: the options' (command line) over the
// scenario's over the defaults.
func (l *Loaded) budget(opts Options) Budget {
	b := Budget{Boots: DefaultMaxBoots, Time: units.Duration(DefaultMaxTime), Events: DefaultMaxEvents, Journal: DefaultMaxJournal}
	for _, o := range []Budget{l.scenarioBudget(), {Boots: opts.MaxBoots, Time: units.Duration(opts.MaxTime), Events: opts.MaxEvents}} {
		if o.Boots != 0 {
			b.Boots = o.Boots
		}
		if o.Time != 0 {
			b.Time = o.Time
		}
		if o.Events != 0 {
			b.Events = o.Events
		}
		if o.Journal != 0 {
			b.Journal = o.Journal
		}
	}
	return b
}

func (l *Loaded) scenarioBudget() Budget {
	if l.Scenario.Budget == nil {
		return Budget{}
	}
	return *l.Scenario.Budget
}

// overBudget reports whether the run has spent one of its budgets.
func (r *runner) overBudget() bool { return r.budgetErr() != nil }

// budgetErr names the budget the run has spent, if any.
func (r *runner) budgetErr() error {
	m, b := r.m, r.budget
	switch {
	case m.Boots() > b.Boots:
		return fmt.Errorf("stopped after more than %d boots (a reset loop; the boots budget, --max-boots); the device is %s", b.Boots, r.describe())
	case len(m.Trace()) > b.Events:
		return fmt.Errorf("stopped after %d trace events (the events budget, --max-events); the device is %s", b.Events, r.describe())
	case m.Storage().JournalBytes() > uint64(b.Journal):
		return fmt.Errorf("stopped after keeping %s of programmed data (the journal budget)", b.Journal)
	case m.Now() >= b.Time.D():
		return fmt.Errorf("stopped at %s of virtual time (the time budget, --max-time); the device is %s", b.Time, r.describe())
	}
	return nil
}

// until is the deadline of a wait of d from now, within the time budget:
// never past it, and never an overflow.
func (r *runner) until(d time.Duration) time.Duration {
	now, end := r.m.Now(), r.budget.Time.D()
	if d > end-now || d > math.MaxInt64-now {
		return end
	}
	return now + d
}
