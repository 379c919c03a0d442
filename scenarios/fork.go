package scenarios

import (
	"fmt"

	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
)

// baseline is a scenario's run recorded so that any of its ops can be
// forked: the journal and change log (with the rig's factory snapshot they
// rebuild the storage before every op), and, before every op, what else
// survives a power cut there: the update service and the client's
// configuration, and the facts of the trace so far.
type baseline struct {
	rig     *rig
	result  *Result
	journal []storage.Op
	changes []storage.Change
	at      []opState
}

// opState is what a recovery from a cut at an op needs beside the storage.
type opState struct {
	svc    *cloud.Service
	client updateclient.Config
	prefix prefixFacts
}

// recordBaseline plays the scenario once, with no cut, recording what a
// fork at each op needs.
func (g *rig) recordBaseline() (*baseline, error) {
	r, err := g.start(Options{keepJournalData: true})
	if err != nil {
		return nil, err
	}
	b := &baseline{rig: g}
	var (
		prefix prefixFacts
		seen   int // trace events read into prefix
	)
	r.m.Storage().SetBeforeOp(func(op storage.Op) {
		tr := r.m.Trace()
		for ; seen < len(tr); seen++ {
			prefix.add(g.l, &tr[seen])
		}
		b.at = append(b.at, opState{svc: r.svc.Clone(), client: *r.client, prefix: prefix})
	})
	b.result = r.play()
	b.journal = b.result.Journal
	b.changes = r.m.Storage().Changes()
	if len(b.at) != len(b.journal) {
		panic(fmt.Sprintf("scenarios: the baseline saw %d ops before they happened and journaled %d", len(b.at), len(b.journal)))
	}
	return b, nil
}

// forker walks a baseline's ops in order and forks the state at each.
type forker struct {
	b  *baseline
	rb *storage.Rebuilder
}

func (b *baseline) forker() *forker {
	return &forker{b: b, rb: b.rig.factory.Rebuild(b.journal, b.changes)}
}

// seek moves to the state before op i; i must not be behind the current op.
func (f *forker) seek(i int) error {
	if i < f.rb.Index() {
		panic(fmt.Sprintf("scenarios: forker at op %d cannot go back to %d", f.rb.Index(), i))
	}
	for f.rb.Index() < i {
		if err := f.rb.Step(); err != nil {
			return err
		}
	}
	return nil
}

// cut returns the state a power cut of the given fault at the current op
// leaves: the storage, and the service, client and trace facts as they
// were before the op.
func (f *forker) cut(fault storage.Fault) (*cutState, error) {
	if !fault.Mode.CutsPower() {
		panic(fmt.Sprintf("scenarios: a fork is a power cut, not %s", fault.Mode))
	}
	return f.cutPage(-1, fault)
}

// cutPage is cut with the fault on page k of the current record (a record
// of page programs); k < 0 lets the fault pick as cut does.
func (f *forker) cutPage(k int, fault storage.Fault) (*cutState, error) {
	if !fault.Mode.CutsPower() {
		panic(fmt.Sprintf("scenarios: a fork is a power cut, not %s", fault.Mode))
	}
	var sys *storage.System
	var err error
	if k < 0 {
		sys, err = f.rb.Fork(fault, nil)
	} else {
		sys, err = f.rb.ForkPage(k, fault, nil)
	}
	if err != nil {
		return nil, err
	}
	st := f.b.at[f.rb.Index()]
	return &cutState{storage: sys.Freeze(), svc: st.svc, client: st.client, prefix: st.prefix}, nil
}
