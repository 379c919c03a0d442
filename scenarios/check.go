package scenarios

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
	"github.com/bootsim/bootsim/updateclient"
)

func (r *runner) expectations(res *Result) []Check {
	var out []Check
	for _, e := range r.expectList() {
		c := Check{Text: e.String()}
		c.Passed, c.Detail = e.judge(r, res)
		out = append(out, c)
	}
	return out
}

func findInvariant(invs []InvariantResult, name string) InvariantResult {
	for _, inv := range invs {
		if inv.Name == name {
			return inv
		}
	}
	panic("scenarios: no invariant " + name)
}

// LED states a scenario can expect at the end of a run (led:).
const (
	LEDOff = "off"
	LEDSOS = sim.LEDSOS
)

// ledAtEnd is the pattern an LED shows at the end of a trace: the last one
// a stage set, unless a reset or a power cut came after it.
func ledAtEnd(tr []sim.Event) string {
	led := LEDOff
	for i := range tr {
		switch tr[i].Kind {
		case sim.EvLED:
			led = tr[i].Name
		case sim.EvReset, sim.EvPowerOff:
			led = LEDOff
		}
	}
	return led
}

func (r *runner) regionHolds(x *RegionExpect, m *sim.Machine) (bool, string) {
	reg, _ := m.Storage().Region(x.Region)
	dev := m.Storage().Device(reg.Device)
	switch {
	case x.Erased:
		b := make([]byte, reg.Size)
		dev.Peek(reg.Start, b)
		for i, c := range b {
			if c != 0xFF {
				return false, fmt.Sprintf("byte 0x%x is 0x%02x", reg.Start+uint64(i), c)
			}
		}
		return true, ""
	case x.SHA256 != "":
		b := make([]byte, reg.Size)
		dev.Peek(reg.Start, b)
		sum := sha256.Sum256(b)
		got := hex.EncodeToString(sum[:])
		return got == strings.ToLower(x.SHA256), "sha256 " + got
	}
	at := r.imageAt(reg, dev)
	holds := func(img *sim.Image) bool {
		if at+uint64(len(img.Bytes)) > reg.End() {
			return false
		}
		b := make([]byte, len(img.Bytes))
		dev.Peek(at, b)
		return bytes.Equal(b, img.Bytes)
	}
	if holds(r.imgs.app[x.Firmware]) {
		return true, ""
	}
	for _, f := range r.l.Firmware {
		if holds(r.imgs.app[f.Name]) {
			return false, "it holds " + f.Name
		}
	}
	return false, "it holds neither that nor any other firmware of the scenario"
}

// promised reports whether the profile promises an invariant in this
// configuration (a violation of one it does not promise is a weakness).
func (r *runner) promised(name string) bool {
	p, _ := r.l.prof.invariant(r.l, name)
	return p
}

func (r *runner) declaredWeakness(name string) bool {
	for _, e := range r.expectList() {
		if w, ok := e.Expectation.(expectWeakness); ok && w.invariant == name {
			return true
		}
	}
	return false
}

func (r *runner) invariants(res *Result) []InvariantResult {
	checks := []struct {
		name string
		fn   func(*Result) (violated bool, na bool, detail string)
	}{
		{InvNoBrick, r.noBrick},
		{InvAuthentic, r.authentic},
		{InvNoDowngrade, r.noDowngrade},
		{InvSOTPIntact, r.sotpIntact},
	}
	var out []InvariantResult
	for _, c := range checks {
		if _, why := r.l.prof.invariant(r.l, c.name); why != "" {
			out = append(out, InvariantResult{Name: c.name, Status: StatusNA, Detail: why})
			continue
		}
		violated, na, detail := c.fn(res)
		st := StatusPass
		switch {
		case na:
			st = StatusNA
		case violated && (!r.promised(c.name) || r.declaredWeakness(c.name)):
			st = StatusWeakness
		case violated:
			st = StatusFail
		}
		out = append(out, InvariantResult{Name: c.name, Status: st, Detail: detail})
	}
	return out
}

// noBrick: if the device had a vendor application from the factory (no
// application can run on one that did not), a power cycle from the final
// state, with removable media back in place, brings one up within the
// budget: at the latest in the stage code of boot recoveryBoots.
func (r *runner) noBrick(*Result) (bool, bool, string) {
	l := r.l
	if ok, why := l.prof.canRun(l); !ok {
		return false, true, why
	}
	if rec := r.recovery; rec != nil {
		if rec.firstUp != "" && rec.firstUpBoot <= rec.policy.Boots {
			return false, false, "after the cut " + rec.firstUp
		}
		return true, false, fmt.Sprintf("after the cut no application ran within %d boots and %s: the device is %s", rec.policy.Boots, rec.policy.Time, r.describe())
	}
	m, err := l.newMachine(r.imgs, r.seed+1, r.m.Storage().Snapshot(), r.client, l.newService())
	if err != nil {
		panic(err)
	}
	if sd, ok := m.Storage().Device(sim.DeviceSD).(*storage.SDCard); ok {
		sd.Insert()
	}
	m.PowerOn()
	rr := &runner{l: l, m: m, imgs: r.imgs}
	up := m.Run(recoveryTime, func() bool {
		_, ok := rr.appUp()
		return ok || m.Boots() >= recoveryBoots || m.State() == sim.StateHalted || m.State() == sim.StateDeadEnd || m.State() == sim.StateOff
	})
	if img, ok := rr.appUp(); up && ok {
		return false, false, fmt.Sprintf("after a power cycle %s runs (boot %d, %s)", img.Desc.Name, m.Boots(), m.Now().Round(time.Millisecond))
	}
	return true, false, fmt.Sprintf("after a power cycle no application runs: the device is %s, %s", rr.describe(), m.Now().Round(time.Millisecond))
}

// authentic: every application that ran is one the scenario's vendor built.
func (r *runner) authentic(res *Result) (bool, bool, string) {
	if rec := r.recovery; rec != nil && rec.prefix.stranger != "" {
		return true, false, "ran " + rec.prefix.stranger + ", which the vendor did not build"
	}
	for _, e := range res.Trace {
		if e.Kind != sim.EvStage || e.Stage != sim.StageApplication {
			continue
		}
		if f := r.l.Firmware.Get(e.Image); f == nil || f.Attacker {
			return true, false, "ran " + e.Detail + ", which the vendor did not build"
		}
	}
	return false, false, "only the vendor's firmware ran"
}

// noDowngrade: no application ran with a lower version than one that ran
// before it.
func (r *runner) noDowngrade(res *Result) (bool, bool, string) {
	var best uint64
	var bestName string
	if rec := r.recovery; rec != nil {
		best, bestName = rec.prefix.best, rec.prefix.bestName
	}
	for _, e := range res.Trace {
		if e.Kind != sim.EvMark || e.Name != updateclient.MarkRunning {
			continue
		}
		if e.Version < best {
			return true, false, fmt.Sprintf("%s (version %d) ran after %s (version %d)", e.Image, e.Version, bestName, best)
		}
		best, bestName = e.Version, e.Image
	}
	return false, false, "versions never went down"
}

// sotpIntact: the provisioned ROT still reads back after sotp_init. The
// verdict depends only on the two SOTP areas, so it is kept in the machine's
// cache by their pages: a sweep's forks rarely write them.
func (r *runner) sotpIntact(*Result) (bool, bool, string) {
	if r.l.damagesSOTP() {
		return false, true, "the scenario's attacker damages SOTP itself"
	}
	if r.l.Layout.KVStoreROT {
		return r.kvstoreROTIntact()
	}
	a1, a2 := r.l.Layout.SOTPAreas()
	lo, hi := min(a1.Addr, a2.Addr), max(a1.Addr+a1.Size, a2.Addr+a2.Size)
	dev := r.m.Internal()
	stamp := dev.Stamp(lo, hi-lo)
	type verdict struct {
		violated bool
		detail   string
	}
	if v, ok := r.m.Cache().Get(dev.Name(), lo, hi-lo, "sotp-intact "+hex.EncodeToString(r.l.ROT), stamp); ok {
		return v.(verdict).violated, false, v.(verdict).detail
	}
	v := verdict{false, "the ROT reads back"}
	sys := r.m.Storage().Clone(nil)
	st := sotp.New(sys.Device(sim.DeviceInternal), a1, a2)
	sys.PowerOn()
	if err := st.Init(); err != nil {
		v = verdict{true, "sotp_init: " + err.Error()}
	} else if got, err := st.Get(sotp.TypeROT); err != nil {
		v = verdict{true, "ROT: " + err.Error()}
	} else if !bytes.Equal(got, r.l.ROT) {
		v = verdict{true, fmt.Sprintf("ROT reads %x, provisioned %x", got, r.l.ROT)}
	}
	r.m.Cache().Put(dev.Name(), lo, hi-lo, "sotp-intact "+hex.EncodeToString(r.l.ROT), stamp, v)
	return v.violated, false, v.detail
}

// kvstoreROTIntact is sotp-intact for a layout that keeps the ROT in the
// KVStore's reserved area (v4): the provisioned ROT still reads back as
// the bootloader reads it.
func (r *runner) kvstoreROTIntact() (bool, bool, string) {
	got, err := r.l.Layout.ReadROT(r.m.Internal())
	switch {
	case err != nil:
		return true, false, "KVStore ROT: " + err.Error()
	case !bytes.Equal(got, r.l.ROT):
		return true, false, fmt.Sprintf("KVStore ROT reads %x, provisioned %x", got, r.l.ROT)
	}
	return false, false, "the ROT reads back from the KVStore's reserved area"
}

// resultText is a result code with its name, when it has one.
func resultText(code int) string {
	if n := updateclient.ResultName(code); n != "" {
		return fmt.Sprintf("%d (%s)", code, n)
	}
	return fmt.Sprint(code)
}

// updateTime is the virtual time from the start of the last campaign to
// its firmware running.
func (r *runner) updateTime(res *Result) (time.Duration, bool) {
	if r.campaign == nil {
		return 0, false
	}
	for _, e := range res.Trace {
		if e.Time >= r.campaignAt && e.Kind == sim.EvMark && e.Name == updateclient.MarkRunning &&
			e.Image == r.campaign.Firmware {
			return e.Time - r.campaignAt, true
		}
	}
	return 0, false
}
