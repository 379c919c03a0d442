package scenarios

import (
	"fmt"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
)

// rig is what every run of one scenario with one seed shares and none
// writes: the scenario with its seed and ROT resolved, the images, the
// vendor's keys, the update client's configuration (each run copies it: a
// campaign's authorization policies change it) and the device's factory
// state as a storage snapshot. A sweep builds one rig and forks thousands
// of runs from it, on several goroutines.
type rig struct {
	l       *Loaded
	seed    uint64
	imgs    *images
	vendor  *vendor
	client  *updateclient.Config
	factory *storage.Snapshot
	// memo, when set, remembers recoveries (a sweep's rig).
	memo *recoveryMemo
}

// newRig builds a scenario's rig for a seed.
func newRig(l *Loaded, seed uint64) (*rig, error) {
	ll := *l
	ll.Scenario = &Scenario{}
	*ll.Scenario = *l.Scenario
	ll.Seed = seed
	if l.Factory.ROT == "" && l.ROT != nil {
		ll.ROT = seededROT(seed)
	}
	g := &rig{l: &ll, seed: seed}
	var err error
	if g.imgs, err = g.l.buildImages(); err != nil {
		return nil, err
	}
	if g.vendor, err = newVendor(seed); err != nil {
		return nil, err
	}
	g.client = g.l.clientConfig(g.vendor)
	m, err := g.l.newMachine(g.imgs, seed, nil, g.client, g.l.newService())
	if err != nil {
		return nil, err
	}
	if err := g.l.programFactory(m, g.imgs); err != nil {
		return nil, fmt.Errorf("factory: %v", err)
	}
	g.factory = m.Storage().Snapshot()
	return g, nil
}
