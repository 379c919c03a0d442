package bootloader

import (
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
	"github.com/stretchr/testify/require"
)

// chainBench is a K64F with the chain layout and a chain bootloader jumped
// to straight from address 0 (a stub selector that counts nothing and
// halts once the bootloader has given itself up), and
// stub applications that confirm themselves or crash.
type chainBench struct {
	t    *testing.T
	m    *sim.Machine
	lay  *chain.Layout
	ran  []string
	ok   map[string]bool
	idle map[string]bool // run but never confirm
}

func newChainBench(t *testing.T, behaviour string, trialBootloader bool, apps ...chain.SlotState) *chainBench {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	lay, err := chain.NewLayout(b, chain.Options{})
	require.NoError(t, err)
	m, err := sim.New(sim.Config{Board: b, Regions: lay.Regions(), Seed: 1})
	require.NoError(t, err)
	cb := &chainBench{t: t, m: m, lay: lay, ok: map[string]bool{}, idle: map[string]bool{}}
	// The stub selector halts once the bootloader has given itself up,
	// where the real one would roll it back.
	m.Register("sel", sim.ProgramFunc(func(m *sim.Machine, _ *sim.Image) {
		if rec, err := chain.NewStore(m.Internal(), lay).Load(); err == nil && rec.Boot.Slots[0].Status == chain.Failed {
			m.Halt("the bootloader gave itself up")
		}
		m.Jump(lay.Bootloaders[0].Body())
	}))
	m.Register("chain", Chain{Layout: lay})
	m.Register("app", sim.ProgramFunc(func(m *sim.Machine, img *sim.Image) {
		cb.ran = append(cb.ran, img.Desc.Name)
		if cb.idle[img.Desc.Name] {
			return
		}
		if !cb.ok[img.Desc.Name] {
			m.Fault("stub crash")
		}
		require.NoError(t, chain.Confirm(m, lay, img.Desc.Version))
	}))
	build := func(d *sim.Descriptor) *sim.Image {
		bs, err := sim.BuildImage(d, 1)
		require.NoError(t, err)
		img := &sim.Image{Desc: d, Bytes: bs}
		m.AddImage(img)
		return img
	}
	sel := build(&sim.Descriptor{Stage: sim.StageBootSelector, Impl: "sel", Name: "sel", Version: 1, Behaviour: "healthy", Size: 4 << 10})
	bl := build(&sim.Descriptor{Stage: sim.StageBootloader, Impl: "chain", Name: "bl", Version: 5, Behaviour: behaviour, Size: 8 << 10})
	rec := &chain.Record{}
	rec.Boot.Slots[0] = chain.SlotState{Version: 5, Status: chain.Ready, Confirmed: !trialBootloader}
	m.Factory(func() {
		in := m.Internal()
		in.Load(0, sel.Bytes)
		in.Load(lay.Bootloaders[0].Start, chain.HeaderFor(sim.StageBootloader, 5, bl.Bytes).Encode())
		in.Load(lay.Bootloaders[0].Body(), bl.Bytes)
		for i, a := range apps {
			img := build(&sim.Descriptor{Stage: sim.StageApplication, Impl: "app", Name: appName(a.Version), Version: a.Version, Behaviour: "healthy", Size: 8 << 10})
			in.Load(lay.Applications[i].Start, chain.HeaderFor(sim.StageApplication, a.Version, img.Bytes).Encode())
			in.Load(lay.Applications[i].Body(), img.Bytes)
			rec.App.Slots[i] = a
		}
		if i, ok := rec.App.Select(); ok {
			rec.App.Current = uint8(i)
		}
		require.NoError(t, chain.NewStore(in, lay).Save(rec))
	})
	return cb
}

func appName(v uint64) string { return "app-v" + string(rune('0'+v)) }

func (cb *chainBench) run() {
	cb.m.PowerOn()
	cb.m.Run(time.Minute, func() bool {
		n := len(cb.ran)
		return (n > 0 && cb.ok[cb.ran[n-1]] && cb.m.Stage() == sim.StageApplication) || cb.m.Boots() > 20
	})
}

func (cb *chainBench) record() *chain.Record {
	r := chain.Peek(cb.m.Internal(), cb.lay)
	require.NotNil(cb.t, r)
	return r
}

func (cb *chainBench) serial() string {
	var b strings.Builder
	for _, l := range cb.m.Serial() {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

func ready(v uint64, confirmed bool) chain.SlotState {
	return chain.SlotState{Version: v, Status: chain.Ready, Confirmed: confirmed}
}

// TestChainTriesNewestThenRollsBack: the newest application runs first;
// one that does not confirm in its attempts is failed and the newest older
// one runs and confirms.
func TestChainTriesNewestThenRollsBack(t *testing.T) {
	cb := newChainBench(t, "healthy", false, ready(1, true), ready(2, true), ready(3, false))
	cb.ok["app-v2"], cb.ok["app-v1"] = true, true
	cb.run()
	require.Equal(t, []string{"app-v3", "app-v3", "app-v3", "app-v2"}, cb.ran)
	rec := cb.record()
	require.Equal(t, chain.Failed, rec.App.Slots[2].Status)
	require.Equal(t, uint8(1), rec.App.Current)
	require.Zero(t, rec.App.Attempts, "confirmed")
	require.True(t, rec.App.Slots[1].Confirmed)
	require.Contains(t, cb.serial(), "[BOOT] application version 3 did not confirm in 3 attempts: rolling back")
}

// TestChainGivesItselfUp: with no application left, the bootloader marks
// itself failed and resets for the selector to roll it back.
func TestChainGivesItselfUp(t *testing.T) {
	cb := newChainBench(t, "healthy", false, ready(1, true))
	cb.run()
	rec := cb.record()
	require.Equal(t, chain.Failed, rec.Boot.Slots[0].Status)
	require.Contains(t, cb.serial(), "[BOOT] no application version left under bootloader version 5: giving it up")
}

// TestChainBlamesItselfOnTrial: a confirmed application that fails under a
// bootloader on trial makes the bootloader give itself up at once, before
// any older application is tried.
func TestChainBlamesItselfOnTrial(t *testing.T) {
	cb := newChainBench(t, "healthy", true, ready(1, true), ready(2, true))
	cb.ok["app-v1"] = true
	cb.run()
	require.Equal(t, []string{"app-v2", "app-v2", "app-v2"}, cb.ran[:3])
	require.NotContains(t, cb.ran, "app-v1", "the bootloader gave up before the older application")
	require.Equal(t, chain.Failed, cb.record().Boot.Slots[0].Status)
	require.Contains(t, cb.serial(), "[BOOT] it ran before bootloader version 5, which is on trial")
}

// TestChainTrialAppIsNotBlamedOnTheBootloader: an application on trial
// that fails under a bootloader on trial is its own fault.
func TestChainTrialAppIsNotBlamedOnTheBootloader(t *testing.T) {
	cb := newChainBench(t, "healthy", true, ready(1, true), ready(2, false))
	cb.ok["app-v1"] = true
	cb.run()
	require.Equal(t, []string{"app-v2", "app-v2", "app-v2", "app-v1"}, cb.ran)
	rec := cb.record()
	require.True(t, rec.Boot.Slots[0].Confirmed, "the application confirmed under it")
}

// TestChainCountsEveryBoot: a power cycle is an attempt too.
func TestChainCountsEveryBoot(t *testing.T) {
	cb := newChainBench(t, "healthy", false, ready(1, true), ready(2, false))
	// app-v2 runs but a power cut comes before it confirms, three times.
	cb.idle["app-v2"] = true
	for range 3 {
		cb.m.PowerOn()
		cb.m.Run(cb.m.Now()+time.Second, nil)
		cb.m.PowerOff("cut")
	}
	cb.ok["app-v1"] = true
	cb.run()
	require.Equal(t, []string{"app-v2", "app-v2", "app-v2", "app-v1"}, cb.ran)
}

// TestChainBehaviours: a crashing bootloader faults before it selects, a
// hanging one never hands over, one with the wrong entry jumps past the
// application, one that corrupts the application damages it in flash.
func TestChainBehaviours(t *testing.T) {
	for _, tc := range []struct {
		behaviour string
		check     func(t *testing.T, cb *chainBench)
	}{
		{ChainCrash, func(t *testing.T, cb *chainBench) { require.Empty(t, cb.ran) }},
		{ChainHang, func(t *testing.T, cb *chainBench) { require.Empty(t, cb.ran) }},
		{ChainWrongEntry, func(t *testing.T, cb *chainBench) {
			require.Empty(t, cb.ran)
			var jumps []uint64
			for _, e := range cb.m.Trace() {
				if e.Kind == sim.EvJump && e.Stage == sim.StageBootloader {
					jumps = append(jumps, e.Addr)
				}
			}
			require.NotEmpty(t, jumps)
			require.Equal(t, cb.lay.Applications[0].Body()+0x200, jumps[0], "past the entry")
		}},
		{ChainCorruptsApp, func(t *testing.T, cb *chainBench) {
			require.Empty(t, cb.ran, "the damaged image never starts")
			require.Contains(t, cb.serial(), "SHA-256 mismatch", "the next boot finds it damaged")
		}},
	} {
		t.Run(tc.behaviour, func(t *testing.T) {
			cb := newChainBench(t, tc.behaviour, false, ready(1, true))
			cb.ok["app-v1"] = true
			cb.m.PowerOn()
			cb.m.Run(10*time.Second, func() bool { return cb.m.Boots() >= 3 })
			tc.check(t, cb)
		})
	}
}
