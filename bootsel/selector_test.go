package bootsel

import (
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

// bench is a K64F with the chain layout, the selector at 0, and stub
// bootloaders whose behaviour a test sets: a bootloader "hands over" by
// clearing its attempts in the record (what the chain bootloader does
// before it jumps), or fails by resetting without doing so.
type bench struct {
	t    *testing.T
	m    *sim.Machine
	lay  *chain.Layout
	imgs map[string]*sim.Image
	ran  []string // the bootloaders that ran, in order
	ok   map[string]bool
}

func newBench(t *testing.T, bootloaders ...uint64) *bench {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	lay, err := chain.NewLayout(b, chain.Options{})
	require.NoError(t, err)
	m, err := sim.New(sim.Config{Board: b, Regions: lay.Regions(), Seed: 1})
	require.NoError(t, err)
	bn := &bench{t: t, m: m, lay: lay, imgs: map[string]*sim.Image{}, ok: map[string]bool{}}
	m.Register("bootsel", Selector{Layout: lay})
	m.Register("stub", sim.ProgramFunc(func(m *sim.Machine, img *sim.Image) {
		bn.ran = append(bn.ran, img.Desc.Name)
		if !bn.ok[img.Desc.Name] {
			m.SystemReset()
		}
		st := chain.NewStore(m.Internal(), lay)
		rec, err := st.Load()
		require.NoError(t, err)
		rec.Boot.Attempts = 0
		require.NoError(t, st.Save(rec))
	}))
	sel := bn.image(&sim.Descriptor{Stage: sim.StageBootSelector, Impl: "bootsel", Name: "sel", Version: 1, Behaviour: "healthy", Size: 8 << 10})
	rec := &chain.Record{}
	m.Factory(func() {
		m.Internal().Load(0, sel.Bytes)
		for i, v := range bootloaders {
			img := bn.image(&sim.Descriptor{Stage: sim.StageBootloader, Impl: "stub", Name: name(v), Version: v, Behaviour: "healthy", Size: 4 << 10})
			m.Internal().Load(lay.Bootloaders[i].Start, chain.HeaderFor(sim.StageBootloader, v, img.Bytes).Encode())
			m.Internal().Load(lay.Bootloaders[i].Body(), img.Bytes)
			rec.Boot.Slots[i] = chain.SlotState{Version: v, Status: chain.Ready, Confirmed: true}
		}
		rec.App.Slots[0] = chain.SlotState{Version: 7, Status: chain.Failed}
		if i, ok := rec.Boot.Select(); ok {
			rec.Boot.Current = uint8(i)
		}
		require.NoError(t, chain.NewStore(m.Internal(), lay).Save(rec))
	})
	return bn
}

func name(v uint64) string { return "bl-v" + string(rune('0'+v)) }

func (bn *bench) image(d *sim.Descriptor) *sim.Image {
	b, err := sim.BuildImage(d, 1)
	require.NoError(bn.t, err)
	img := &sim.Image{Desc: d, Bytes: b}
	bn.m.AddImage(img)
	bn.imgs[d.Name] = img
	return img
}

// run powers the device on and runs it until it stops, or for a minute.
func (bn *bench) run() {
	bn.m.PowerOn()
	bn.m.Run(time.Minute, func() bool {
		st := bn.m.State()
		return st == sim.StateDeadEnd || (st == sim.StateRunning && bn.m.Stage() == sim.StageBootloader && len(bn.ran) > 0 && bn.ok[bn.ran[len(bn.ran)-1]])
	})
}

func (bn *bench) record() *chain.Record {
	r := chain.Peek(bn.m.Internal(), bn.lay)
	require.NotNil(bn.t, r)
	return r
}

func (bn *bench) serial() string {
	var b strings.Builder
	for _, l := range bn.m.Serial() {
		b.WriteString(l.Text + "\n")
	}
	return b.String()
}

// TestSelectsTheNewest: the newest ready bootloader runs, and its attempt
// is counted in the record before the jump.
func TestSelectsTheNewest(t *testing.T) {
	bn := newBench(t, 1, 2)
	bn.ok["bl-v1"], bn.ok["bl-v2"] = true, true
	bn.run()
	require.Equal(t, []string{"bl-v2"}, bn.ran)
	require.Equal(t, uint8(1), bn.record().Boot.Current)
}

// TestRollsBackAfterItsAttempts: a bootloader that never hands over runs
// MaxAttempts times (every reset counts), then the selector marks it
// failed and switches to the next newest, whose subtree starts afresh (an
// application failed under the old bootloader is ready again).
func TestRollsBackAfterItsAttempts(t *testing.T) {
	bn := newBench(t, 1, 2)
	bn.ok["bl-v1"] = true
	bn.run()
	require.Equal(t, []string{"bl-v2", "bl-v2", "bl-v2", "bl-v1"}, bn.ran)
	rec := bn.record()
	require.Equal(t, chain.Failed, rec.Boot.Slots[1].Status)
	require.Equal(t, uint8(0), rec.Boot.Current)
	require.Equal(t, chain.Ready, rec.App.Slots[0].Status, "a new subtree")
	require.Contains(t, bn.serial(), "[SEL] bootloader version 2 did not hand over in 3 attempts: rolling back")
	require.Contains(t, bn.serial(), "[SEL] switching to bootloader version 1")
}

// TestRefusesADamagedBootloader: a bit flipped in the newest bootloader's
// image fails its hash; the selector never jumps to it.
func TestRefusesADamagedBootloader(t *testing.T) {
	bn := newBench(t, 1, 2)
	bn.ok["bl-v1"], bn.ok["bl-v2"] = true, true
	bn.m.Internal().FlipBit(bn.lay.Bootloaders[1].Body()+2000, 1)
	bn.run()
	require.Equal(t, []string{"bl-v1"}, bn.ran)
	require.Equal(t, chain.Failed, bn.record().Boot.Slots[1].Status)
	require.Contains(t, bn.serial(), "SHA-256 mismatch")
}

// TestDeadEnd: when no bootloader is left the selector says so and the
// device stops in the state dead-end.
func TestDeadEnd(t *testing.T) {
	bn := newBench(t, 1)
	bn.run()
	require.Equal(t, sim.StateDeadEnd, bn.m.State())
	require.Equal(t, []string{"bl-v1", "bl-v1", "bl-v1"}, bn.ran)
	require.Contains(t, bn.serial(), "[SEL] dead end: every bootloader version has failed")
}

// TestRebuildsALostRecord: with both copies of the record damaged the
// selector rebuilds it from the slots' headers and boots the newest.
func TestRebuildsALostRecord(t *testing.T) {
	bn := newBench(t, 1, 2)
	bn.ok["bl-v1"], bn.ok["bl-v2"] = true, true
	for _, p := range bn.lay.Record {
		bn.m.Internal().FlipBit(p.Start+10, 0)
	}
	bn.run()
	require.Equal(t, []string{"bl-v2"}, bn.ran)
	require.Contains(t, bn.serial(), "[SEL] no valid boot record: rebuilding it from the slots")
}

// TestNeverWritesAnImage: whatever it decides, the selector writes only
// the record sectors.
func TestNeverWritesAnImage(t *testing.T) {
	bn := newBench(t, 1, 2)
	bn.ok["bl-v1"] = true
	bn.run()
	n := 0
	for _, op := range bn.m.Storage().Journal() {
		if op.Stage == string(sim.StageBootSelector) {
			n++
			require.True(t, strings.HasPrefix(op.Region, "record-"), "the selector wrote %s", op)
		}
	}
	require.NotZero(t, n, "the selector wrote no record")
}

// TestRecordWriteFailureIsSaid: a record write that fails (an I/O error)
// is said on the console, and the boot goes on: the attempt is counted
// again at the next boot.
func TestRecordWriteFailureIsSaid(t *testing.T) {
	bn := newBench(t, 1)
	bn.ok["bl-v1"] = true
	bn.m.Storage().SetInjector(&storage.Rule{Match: &storage.Nth{Filter: storage.OpFilter{Kind: storage.OpProgram}, N: 1}, Fault: storage.Fault{Mode: storage.FaultIOError}})
	bn.run()
	require.Equal(t, []string{"bl-v1"}, bn.ran)
	require.Contains(t, bn.serial(), "[SEL] boot record not written")
	bn2 := newBench(t, 1)
	bn2.ok["bl-v1"] = true
	bn2.run()
	require.NotContains(t, bn2.serial(), "not written", "a write that succeeds says nothing")
}

// TestHangingBootloaderIsReset: the selector starts a 2-second watchdog
// before it jumps: a bootloader that never hands over is reset after it.
func TestHangingBootloaderIsReset(t *testing.T) {
	bn := newBench(t, 1, 2)
	bn.ok["bl-v1"] = true
	bn.m.Register("hang", sim.ProgramFunc(func(*sim.Machine, *sim.Image) {}))
	// bl-v2 hangs instead of resetting: swap its program.
	bn.imgs["bl-v2"].Desc.Impl = "hang"
	bn.run()
	var resets []time.Duration
	for _, e := range bn.m.Trace() {
		if e.Kind == sim.EvReset && e.Name == sim.ResetWatchdog.String() {
			resets = append(resets, e.Time)
		}
	}
	require.Len(t, resets, 3, "three attempts, each ended by the watchdog")
	require.InDelta(t, float64(2*time.Second), float64(resets[1]-resets[0]), float64(100*time.Millisecond))
}
