package scenarios

import (
	"encoding/hex"
	"fmt"
	"slices"
	"strings"

	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
)

// The expectations of every profile, one type each; the chain profile's
// are in chain.go.

// expectNoBrick: the no-brick invariant holds.
type expectNoBrick struct{}

func (expectNoBrick) Kind() string                           { return ExpNoBrick }
func (expectNoBrick) String() string                         { return "no-brick" }
func (expectNoBrick) validate(*Loaded, strictyaml.Pos) error { return nil }
func (expectNoBrick) judge(r *runner, res *Result) (bool, string) {
	inv := findInvariant(res.Invariants, InvNoBrick)
	return inv.Status == StatusPass, inv.Status + ": " + inv.Detail
}

// expectRunning: this firmware runs at the end ("none": nothing does).
type expectRunning struct{ firmware string }

func (expectRunning) Kind() string     { return ExpRunning }
func (e expectRunning) String() string { return "running " + e.firmware }
func (e expectRunning) validate(l *Loaded, pos strictyaml.Pos) error {
	if e.firmware == "none" {
		return nil
	}
	return l.firmwareRef(e.firmware, pos, "running")
}
func (e expectRunning) judge(r *runner, res *Result) (bool, string) {
	want := e.firmware
	if want == "none" {
		want = ""
	}
	if res.Running == want {
		return true, ""
	}
	if res.Running == "" {
		return false, "no application is running; the device is " + r.describe()
	}
	return false, "running " + res.Running
}

// expectState: the device ends in this state.
type expectState struct{ state string }

func (expectState) Kind() string     { return ExpState }
func (e expectState) String() string { return "state " + e.state }
func (e expectState) validate(_ *Loaded, pos strictyaml.Pos) error {
	if !slices.Contains(stateNames(), e.state) {
		return pos.Errorf("state %q: want one of %s", e.state, strings.Join(stateNames(), ", "))
	}
	return nil
}
func (e expectState) judge(r *runner, res *Result) (bool, string) {
	return res.State == e.state, "the device is " + r.describe()
}

// expectLED: LED1 shows this pattern at the end.
type expectLED struct{ pattern string }

func (expectLED) Kind() string     { return ExpLED }
func (e expectLED) String() string { return "LED1 " + e.pattern }
func (e expectLED) validate(_ *Loaded, pos strictyaml.Pos) error {
	if e.pattern != LEDSOS && e.pattern != LEDOff {
		return pos.Errorf("led %q: want %s (mbed_die's pattern) or %s", e.pattern, LEDSOS, LEDOff)
	}
	return nil
}
func (e expectLED) judge(_ *runner, res *Result) (bool, string) {
	got := ledAtEnd(res.Trace)
	return got == e.pattern, "LED1 is " + got + " at the end"
}

// expectEvent: a milestone was reported, a number of times within bounds.
type expectEvent struct {
	name  string
	count Bounds
}

func (expectEvent) Kind() string     { return ExpEvent }
func (e expectEvent) String() string { return fmt.Sprintf("event %s count %s", e.name, e.count) }
func (e expectEvent) validate(_ *Loaded, pos strictyaml.Pos) error {
	return checkMilestone(e.name, pos, ExpEvent)
}
func (e expectEvent) judge(_ *runner, res *Result) (bool, string) {
	n := countEvents(res.Trace, e.name)
	return e.count.holds(int64(n)), fmt.Sprintf("seen %d times", n)
}

// expectNoEvent: a milestone was never reported.
type expectNoEvent struct{ name string }

func (expectNoEvent) Kind() string     { return ExpNoEvent }
func (e expectNoEvent) String() string { return "no event " + e.name }
func (e expectNoEvent) validate(_ *Loaded, pos strictyaml.Pos) error {
	return checkMilestone(e.name, pos, ExpNoEvent)
}
func (e expectNoEvent) judge(_ *runner, res *Result) (bool, string) {
	n := countEvents(res.Trace, e.name)
	return n == 0, fmt.Sprintf("seen %d times", n)
}

// expectBoots: the number of boots is within bounds.
type expectBoots struct{ count Bounds }

func (expectBoots) Kind() string                           { return ExpBoots }
func (e expectBoots) String() string                       { return "boots " + e.count.String() }
func (expectBoots) validate(*Loaded, strictyaml.Pos) error { return nil }
func (e expectBoots) judge(_ *runner, res *Result) (bool, string) {
	return e.count.holds(int64(res.Boots)), fmt.Sprintf("%d boots", res.Boots)
}

// expectSerial: the serial console showed this text (never: never did).
type expectSerial struct {
	text  string
	never bool
}

func (e expectSerial) Kind() string {
	if e.never {
		return ExpNoSerial
	}
	return ExpSerial
}
func (e expectSerial) String() string {
	if e.never {
		return fmt.Sprintf("serial never shows %q", e.text)
	}
	return fmt.Sprintf("serial shows %q", e.text)
}
func (expectSerial) validate(*Loaded, strictyaml.Pos) error { return nil }
func (e expectSerial) judge(_ *runner, res *Result) (bool, string) {
	found := false
	for _, l := range res.Serial {
		if strings.Contains(l.Text, e.text) {
			found = true
			break
		}
	}
	if e.never {
		return !found, "on the serial console"
	}
	return found, "not on the serial console"
}

// expectRegion: a region holds a firmware's image, is erased, or hashes to
// a SHA-256.
type expectRegion struct{ RegionExpect }

func (expectRegion) Kind() string { return ExpRegion }
func (e expectRegion) String() string {
	switch {
	case e.Firmware != "":
		return fmt.Sprintf("region %s holds %s", e.Region, e.Firmware)
	case e.Erased:
		return fmt.Sprintf("region %s is erased", e.Region)
	}
	return fmt.Sprintf("region %s has sha256 %s", e.Region, e.SHA256)
}
func (e expectRegion) validate(l *Loaded, pos strictyaml.Pos) error {
	if _, err := l.region(e.Region, pos); err != nil {
		return err
	}
	if e.Firmware != "" {
		return l.firmwareRef(e.Firmware, pos, "region")
	}
	if e.SHA256 != "" {
		if b, err := hex.DecodeString(e.SHA256); err != nil || len(b) != 32 {
			return pos.Errorf("sha256: want 64 hex digits")
		}
	}
	return nil
}
func (e expectRegion) judge(r *runner, _ *Result) (bool, string) {
	return r.regionHolds(&e.RegionExpect, r.m)
}

// expectWeakness: an invariant the design may violate is violated here.
type expectWeakness struct{ invariant string }

func (expectWeakness) Kind() string     { return ExpWeakness }
func (e expectWeakness) String() string { return "known weakness " + e.invariant }
func (e expectWeakness) validate(_ *Loaded, pos strictyaml.Pos) error {
	if !slices.Contains(Invariants, e.invariant) {
		return pos.Errorf("weakness %q: want an invariant: %s", e.invariant, strings.Join(Invariants, ", "))
	}
	return nil
}
func (e expectWeakness) judge(r *runner, res *Result) (bool, string) {
	inv := findInvariant(res.Invariants, e.invariant)
	if r.sweepJudged() {
		// Under injected faults a declared weakness may show or not: a
		// sweep reports the points where it does, and fails none for it.
		return true, fmt.Sprintf("%s: %s", inv.Status, inv.Detail)
	}
	return inv.Status == StatusWeakness, fmt.Sprintf("%s: %s", inv.Status, inv.Detail)
}

// expectTime: the run's virtual time is within bounds.
type expectTime struct{ count Bounds }

func (expectTime) Kind() string                           { return ExpTime }
func (e expectTime) String() string                       { return "virtual time " + e.count.format(formatDuration) }
func (expectTime) validate(*Loaded, strictyaml.Pos) error { return nil }
func (e expectTime) judge(_ *runner, res *Result) (bool, string) {
	return e.count.holds(int64(res.VirtualTime)), "virtual time " + res.VirtualTime.String()
}

// expectUpdateTime: the time from the campaign to its firmware running is
// within bounds.
type expectUpdateTime struct{ count Bounds }

func (expectUpdateTime) Kind() string                           { return ExpUpdateTime }
func (e expectUpdateTime) String() string                       { return "time to update " + e.count.format(formatDuration) }
func (expectUpdateTime) validate(*Loaded, strictyaml.Pos) error { return nil }
func (e expectUpdateTime) judge(r *runner, res *Result) (bool, string) {
	d, ok := r.updateTime(res)
	if !ok {
		return false, "the campaign's firmware never ran"
	}
	return e.count.holds(int64(d)), "took " + d.String()
}

func formatDuration(v int64) string { return units.Duration(v).String() }

// expectResult: the update client's last result code.
type expectResult struct{ code int64 }

func (expectResult) Kind() string                           { return ExpResult }
func (e expectResult) String() string                       { return fmt.Sprintf("update result %d", e.code) }
func (expectResult) validate(*Loaded, strictyaml.Pos) error { return nil }
func (e expectResult) judge(r *runner, _ *Result) (bool, string) {
	v := r.svc.Device(deviceID)
	return int64(v.Result) == e.code, "the device reported " + resultText(v.Result)
}

// expectDownloaded: the payload bytes the service served are within bounds.
type expectDownloaded struct{ count Bounds }

func (expectDownloaded) Kind() string                           { return ExpDownloaded }
func (e expectDownloaded) String() string                       { return "payload bytes served " + e.count.String() }
func (expectDownloaded) validate(*Loaded, strictyaml.Pos) error { return nil }
func (e expectDownloaded) judge(r *runner, _ *Result) (bool, string) {
	v := r.svc.Device(deviceID)
	return e.count.holds(v.BytesServed), fmt.Sprintf("%d bytes served", v.BytesServed)
}

// expectService: what the update service knows of the device.
type expectService struct{ ServiceExpect }

func (expectService) Kind() string { return ExpService }
func (e expectService) String() string {
	var parts []string
	if e.Updated != nil {
		parts = append(parts, fmt.Sprintf("updated=%v", *e.Updated))
	}
	if e.Result != nil {
		parts = append(parts, fmt.Sprintf("result=%d", *e.Result))
	}
	if e.State != nil {
		parts = append(parts, fmt.Sprintf("state=%d", *e.State))
	}
	if e.Notifications != nil {
		parts = append(parts, fmt.Sprintf("notifications=%d", *e.Notifications))
	}
	return "service sees " + strings.Join(parts, " ")
}
func (expectService) validate(*Loaded, strictyaml.Pos) error { return nil }
func (e expectService) judge(r *runner, _ *Result) (bool, string) {
	v := r.svc.Device(deviceID)
	ok := (e.Updated == nil || *e.Updated == v.Updated) && (e.Result == nil || *e.Result == v.Result) &&
		(e.State == nil || *e.State == v.State) && (e.Notifications == nil || *e.Notifications == v.Notifications)
	return ok, fmt.Sprintf("updated=%v result=%d state=%d notifications=%d", v.Updated, v.Result, v.State, v.Notifications)
}
