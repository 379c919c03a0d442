package scenarios

import (
	"reflect"
	"testing"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/hardened"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
	"github.com/google/go-cmp/cmp"
	"github.com/stretchr/testify/require"
)

// TestMemoIsTheFreshRecovery: for every op of two update flows and every
// cut, a recovery the memo hands back is, byte for byte, the recovery a
// fresh machine makes from the same cut; and the memo does hit (most cuts
// in a download leave the pages the recovery reads as they were).
func TestMemoIsTheFreshRecovery(t *testing.T) {
	for _, name := range []string{"seed-update-flow", "update-resume-after-reset-sd", "plant-sd-with-rot"} {
		t.Run(name, func(t *testing.T) {
			l, err := Find(name)
			require.NoError(t, err)
			g, err := newRig(l, l.Seed)
			require.NoError(t, err)
			b, err := g.recordBaseline()
			require.NoError(t, err)
			g.memo = &recoveryMemo{}
			f := b.forker()
			hits := 0
			for i := range b.journal {
				require.NoError(t, f.seek(i))
				for _, fault := range []storage.Fault{{Mode: storage.FaultCutBefore}, {Mode: storage.FaultTorn, Seed: 3}} {
					cs, err := f.cut(fault)
					require.NoError(t, err)
					res, hit := g.recoverMemo(cs)
					if !hit {
						continue
					}
					hits++
					fresh, _, _ := g.recoverFresh(cs)
					require.Equal(t, resultDigest(fresh), resultDigest(res), "op %d %s", i, fault)
				}
			}
			require.Greater(t, hits, len(b.journal)/2, "the memo hits")
		})
	}
}

// TestSweepWithoutMemo: the memo changes no verdict.
func TestSweepWithoutMemo(t *testing.T) {
	l, err := Load("t.yaml", []byte(sweepable), nil)
	require.NoError(t, err)
	with, err := SweepScenario(l, SweepOptions{TornSeeds: 2, Workers: 2})
	require.NoError(t, err)
	without, err := SweepScenario(l, SweepOptions{TornSeeds: 2, Workers: 2, NoMemo: true})
	require.NoError(t, err)
	require.Empty(t, cmp.Diff(with, without))
}

// TestSameClientComparesEveryField: sameClient lists the fields of the
// client's configuration one by one; a new field must be added to it.
func TestSameClientComparesEveryField(t *testing.T) {
	require.Equal(t, 15, reflect.TypeOf(updateclient.Config{}).NumField(), "update sameClient and this count")
	a := updateclient.Config{DeviceID: "d", Certificate: []byte{1}}
	require.True(t, sameClient(a, a))
	for _, change := range []func(*updateclient.Config){
		func(c *updateclient.Config) { c.DeviceID = "e" },
		func(c *updateclient.Config) { c.Generation = updateclient.Gen33 },
		func(c *updateclient.Config) { c.VendorID[0] = 1 },
		func(c *updateclient.Config) { c.ClassID[0] = 1 },
		func(c *updateclient.Config) { c.Certificate = []byte{2} },
		func(c *updateclient.Config) { c.BackwardCompatibleKey = true },
		func(c *updateclient.Config) { c.Download.Deny = true },
		func(c *updateclient.Config) { c.Install.Delay = 1 },
		func(c *updateclient.Config) { c.Resume = true },
		func(c *updateclient.Config) { c.Chain = &chain.Layout{} },
		func(c *updateclient.Config) { c.Hardened = &hardened.Areas{} },
		func(c *updateclient.Config) { c.Encrypt = true },
	} {
		b := a
		b.Certificate = append([]byte(nil), a.Certificate...)
		change(&b)
		require.False(t, sameClient(a, b), "%+v", b)
	}
}
