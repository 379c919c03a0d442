package scenarios

import (
	"fmt"
	"time"

	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"go.yaml.in/yaml/v3"
)

// Sweep is a scenario's recovery policy: what happens after a power cut
// that a sweep (or `bootsim run --cut`) injects, and what must hold then.
// Once the cut fires the steps stop; the device powers on again, on the
// storage the cut left and with the update service as it was at the cut,
// and runs until the recovery reaches Until or runs out of boots or time.
// The invariants are checked on the recovery, and Expect with them.
type Sweep struct {
	// Boots bounds the recovery: an application must be up at the latest
	// in the stage code of this boot (default 10, the no-brick budget).
	Boots int `yaml:"boots,omitempty" jsonschema:"minimum=1,description=An application must run at the latest in this boot of the recovery (default 10)."`
	// Time bounds the recovery's virtual time (default 10m).
	Time units.Duration `yaml:"time,omitempty" jsonschema:"description=Virtual-time budget of a recovery (default 10m)."`
	// Until is where a recovery is done (default app-running).
	Until *Condition `yaml:"until,omitempty" jsonschema:"description=The condition a recovery runs to (default app-running); not reaching it within the budget fails the point."`
	// Campaign says whether the update service keeps the campaign that
	// was active at the cut ("active", the default) or withdraws it.
	Campaign string `yaml:"campaign,omitempty" jsonschema:"enum=active,enum=withdrawn,description=Whether the campaign active at the cut stays active during the recovery (default active)."`
	// Expect must hold after every recovery, as the scenario's expect
	// list does after its steps; a weakness it declares may show at a
	// point or not (without a sweep section, the scenario's declared
	// weaknesses are the recovery's).
	Expect []Expect `yaml:"expect,omitempty" jsonschema:"description=What must hold after every recovery."`
	pos    strictyaml.Pos
}

// Campaign policies of a recovery.
const (
	CampaignActive    = "active"
	CampaignWithdrawn = "withdrawn"
)

// UnmarshalStrictYAML records the section's position.
func (s *Sweep) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	type plain Sweep
	var p plain
	if err := d.Decode(n, &p); err != nil {
		return err
	}
	*s = Sweep(p)
	s.pos = d.At(n)
	return nil
}

// defaultSweep is the recovery policy of a scenario with no sweep section.
var defaultSweep = Sweep{Boots: recoveryBoots, Time: units.Duration(recoveryTime), Until: &Condition{Kind: CondAppRunning}, Campaign: CampaignActive}

// sweepPolicy returns the scenario's recovery policy with defaults filled
// in. With no sweep section, the weaknesses the scenario declares are the
// recovery's too: they are properties of the design under test.
func (l *Loaded) sweepPolicy() *Sweep {
	p := defaultSweep
	p.Boots = l.prof.recoveryBoots(l)
	if l.Scenario.Sweep == nil {
		for _, e := range l.Expect {
			if e.Kind() == ExpWeakness {
				p.Expect = append(p.Expect, e)
			}
		}
	}
	if s := l.Scenario.Sweep; s != nil {
		p.Expect, p.pos = s.Expect, s.pos
		if s.Boots != 0 {
			p.Boots = s.Boots
		}
		if s.Time != 0 {
			p.Time = s.Time
		}
		if s.Until != nil {
			p.Until = s.Until
		}
		if s.Campaign != "" {
			p.Campaign = s.Campaign
		}
	}
	return &p
}

// checkSweep checks the sweep section.
func (l *Loaded) checkSweep() error {
	s := l.Scenario.Sweep
	if s == nil {
		return nil
	}
	if s.Boots < 0 {
		return s.pos.Errorf("sweep.boots %d: want at least 1", s.Boots)
	}
	if s.Time < 0 {
		return s.pos.Errorf("sweep.time %s: want a positive duration", s.Time)
	}
	switch s.Campaign {
	case "", CampaignActive, CampaignWithdrawn:
	default:
		return s.pos.Errorf("sweep.campaign %q: want active or withdrawn", s.Campaign)
	}
	if s.Until != nil {
		if err := l.checkCondition(s.Until); err != nil {
			return err
		}
	}
	for _, e := range s.Expect {
		if err := e.validate(l, e.Pos); err != nil {
			return err
		}
		if e.Kind() == ExpUpdateTime {
			return e.Pos.Errorf("sweep.expect: update-time measures the scenario's campaign, not a recovery")
		}
	}
	return nil
}

func (s *Sweep) String() string {
	return fmt.Sprintf("recovery until %s within %d boots and %s (campaign %s)", s.Until, s.Boots, time.Duration(s.Time), s.Campaign)
}
