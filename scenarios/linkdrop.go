package scenarios

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bootsim/bootsim/storage"
)

// LinkDrop takes the device's link to the update service down for a while,
// starting as a storage op starts: a network fault a schedule can place
// among storage faults (--faults "op=120,link-drop=5s"). The device keeps
// running; its requests fail until the link is back.
type LinkDrop struct {
	Op  int
	For time.Duration
}

func (d LinkDrop) String() string { return fmt.Sprintf("op=%d,link-drop=%s", d.Op, d.For) }

// ParseFaults parses a fault schedule as --faults takes it: entries
// separated by semicolons, each a storage fault rule (storage.ParseRule) or
// a link drop ("op=N,link-drop=DURATION").
func ParseFaults(s string) ([]*storage.Rule, []LinkDrop, error) {
	var (
		rules []*storage.Rule
		drops []LinkDrop
	)
	for i, part := range strings.Split(s, ";") {
		if !strings.Contains(part, "link-drop=") {
			r, err := storage.ParseRule(part)
			if err != nil {
				return nil, nil, fmt.Errorf("rule %d: %v", i+1, err)
			}
			rules = append(rules, r)
			continue
		}
		d, err := parseLinkDrop(part)
		if err != nil {
			return nil, nil, fmt.Errorf("rule %d: link drop %q: %v", i+1, part, err)
		}
		drops = append(drops, d)
	}
	return rules, drops, nil
}

func parseLinkDrop(s string) (LinkDrop, error) {
	d := LinkDrop{Op: -1}
	for _, kv := range strings.Split(s, ",") {
		key, val, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok {
			return d, fmt.Errorf("%q is not key=value", kv)
		}
		var err error
		switch key {
		case "op":
			d.Op, err = strconv.Atoi(val)
			if err == nil && d.Op < 0 {
				err = fmt.Errorf("must be ≥ 0")
			}
		case "link-drop":
			d.For, err = time.ParseDuration(val)
			if err == nil && d.For <= 0 {
				err = fmt.Errorf("must be a positive duration")
			}
		default:
			return d, fmt.Errorf("unknown key %q (a link drop takes op and link-drop)", key)
		}
		if err != nil {
			return d, fmt.Errorf("%s=%s: %v", key, val, err)
		}
	}
	if d.Op < 0 {
		return d, fmt.Errorf("op is required")
	}
	return d, nil
}
