package updateclient

import (
	"crypto/sha256"
	"testing"
	"time"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

// chainMachine is a K64F with the chain layout whose image at address 0
// runs fn, and a record with the application slots given.
func chainMachine(t *testing.T, apps []chain.SlotState, current uint8, fn func(m *sim.Machine, lay *chain.Layout)) (*sim.Machine, *chain.Layout) {
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	lay, err := chain.NewLayout(b, chain.Options{})
	require.NoError(t, err)
	m, err := sim.New(sim.Config{Board: b, Regions: lay.Regions(), Seed: 1})
	require.NoError(t, err)
	m.Register("probe", sim.ProgramFunc(func(m *sim.Machine, _ *sim.Image) { fn(m, lay) }))
	d := &sim.Descriptor{Stage: sim.StageBootSelector, Impl: "probe", Name: "probe", Version: 1, Behaviour: "healthy", Size: 4 << 10}
	bs, err := sim.BuildImage(d, 1)
	require.NoError(t, err)
	m.AddImage(&sim.Image{Desc: d, Bytes: bs})
	rec := &chain.Record{}
	rec.Boot.Slots[0] = chain.SlotState{Version: 1, Status: chain.Ready, Confirmed: true}
	copy(rec.App.Slots[:], apps)
	rec.App.Current = current
	m.Factory(func() {
		m.Internal().Load(0, bs)
		require.NoError(t, chain.NewStore(m.Internal(), lay).Save(rec))
	})
	return m, lay
}

// TestChainPlanEvicts: the slot a new application goes to: an empty one,
// else a failed one, else the oldest that is neither running nor the last
// known good (the newest confirmed); none if only those are left.
func TestChainPlanEvicts(t *testing.T) {
	ready := func(v uint64, confirmed bool) chain.SlotState {
		return chain.SlotState{Version: v, Status: chain.Ready, Confirmed: confirmed}
	}
	failed := chain.SlotState{Version: 7, Status: chain.Failed}
	for _, tc := range []struct {
		name    string
		apps    []chain.SlotState
		current uint8
		slot    int
		err     string
	}{
		{"an empty slot first", []chain.SlotState{ready(1, true), {}, ready(3, true)}, 2, 1, ""},
		{"then a failed one", []chain.SlotState{ready(1, true), failed, ready(3, true)}, 2, 1, ""},
		{"then the oldest", []chain.SlotState{ready(2, true), ready(1, true), ready(3, true)}, 2, 1, ""},
		// The running version is on trial; the last known good is the
		// oldest: the version in between goes.
		{"never the last known good", []chain.SlotState{ready(1, true), ready(2, false), ready(3, false)}, 2, 1, ""},
		{"nothing to evict", []chain.SlotState{ready(1, true), ready(3, false)}, 1, 0, "every application slot holds the running or the last known good version"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			apps := tc.apps
			if len(apps) < 3 {
				apps = append(apps, chain.SlotState{})
			}
			var slot int
			var err error
			m, _ := chainMachine(t, apps, tc.current, func(m *sim.Machine, lay *chain.Layout) {
				if len(tc.apps) < 3 {
					// Two application slots only.
					lay = &chain.Layout{Record: lay.Record, Bootloaders: lay.Bootloaders, Applications: lay.Applications[:2], MaxAttempts: lay.MaxAttempts}
				}
				slot, _, err = chainPlan(m, lay, sim.StageApplication)
				m.Halt("done")
			})
			m.PowerOn()
			m.Run(time.Second, nil)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.slot, slot)
		})
	}
}

// TestChainCommitHeaderFirst: a cut at any op of the commit leaves no
// record entry that says ready for a slot without a valid header: the
// header is written before the record.
func TestChainCommitHeaderFirst(t *testing.T) {
	body := make([]byte, 4096)
	fw := fwInfo{version: 9, size: uint64(len(body)), hash: sha256.Sum256(body)}
	u := chainUpdate{stage: sim.StageApplication, slot: 1}
	for op := range 4 {
		m, lay := chainMachine(t, []chain.SlotState{{Version: 1, Status: chain.Ready, Confirmed: true}}, 0, func(m *sim.Machine, lay *chain.Layout) {
			_ = chainCommit(m, lay, u, fw)
			m.Halt("committed")
		})
		m.Storage().SetInjector(&storage.Rule{Match: storage.OnIndex(op), Fault: storage.Fault{Mode: storage.FaultCutBefore}})
		m.PowerOn()
		m.Run(time.Second, nil)
		rec := chain.Peek(m.Internal(), lay)
		require.NotNil(t, rec)
		if rec.App.Slots[1].Status != chain.Ready {
			continue
		}
		hdr := make([]byte, chain.HeaderSize)
		m.Internal().Peek(lay.Applications[1].Start, hdr)
		h, err := chain.DecodeHeader(hdr)
		require.NoError(t, err, "cut before op %d: the record says ready, the header is not there", op)
		require.Equal(t, uint64(9), h.Version)
	}
}
