package storage

import "fmt"

// Rebuilder rebuilds the states a run went through from a snapshot of its
// start, its journal and its change log, one op at a time, without the
// firmware that issued the ops: the state before op i is the start, then ops
// 0 to i-1 with their recorded faults and every external change made before
// op i. A sweep forks each of these states (Fork) to try a fault at op i.
//
// The Rebuilder owns a System that no one else writes; the snapshots it
// returns may be restored from any number of goroutines.
type Rebuilder struct {
	sys     *System
	journal []Op
	changes []Change
	next    int // the op the state is before
	change  int // the first change not applied yet
	// snap is the snapshot of the current state once one is taken: a
	// sweep forks each state in several modes, and each snapshot costs a
	// system and a frozen copy of every memory.
	snap *Snapshot
}

// Rebuild returns a Rebuilder at the state before the journal's first op.
// The journal and change log are those of a system restored from sn (their
// indexes count from sn's journal's end).
func (sn *Snapshot) Rebuild(journal []Op, changes []Change) *Rebuilder {
	r := &Rebuilder{sys: sn.Restore(nil), journal: journal, changes: changes}
	r.sys.ClearJournal()
	return r
}

// Index returns the op the current state is before; len(journal) once every
// op is applied.
func (r *Rebuilder) Index() int { return r.next }

// Op returns the op the current state is before.
func (r *Rebuilder) Op() Op { return r.journal[r.next] }

// Done reports whether every op has been applied.
func (r *Rebuilder) Done() bool { return r.next >= len(r.journal) }

// catchUp applies the external changes made before the next op.
func (r *Rebuilder) catchUp() error {
	for r.change < len(r.changes) && r.changes[r.change].Before <= r.next {
		r.snap = nil
		if err := r.sys.ApplyChange(r.changes[r.change]); err != nil {
			return err
		}
		r.change++
	}
	return nil
}

// Snapshot returns the state before op Index, external changes made before
// it included.
func (r *Rebuilder) Snapshot() (*Snapshot, error) {
	if err := r.catchUp(); err != nil {
		return nil, err
	}
	if r.snap == nil {
		r.snap = r.sys.Snapshot()
	}
	return r.snap, nil
}

// Step applies op Index with its recorded fault and moves to the next. An
// error the op met in the run (a failed program, say) is part of the run and
// not returned; only an op that cannot be applied at all is.
func (r *Rebuilder) Step() error {
	if r.Done() {
		panic("storage: Rebuilder.Step past the journal's end")
	}
	if err := r.catchUp(); err != nil {
		return err
	}
	op := r.journal[r.next]
	if r.sys.Device(op.Device) == nil {
		return fmt.Errorf("rebuild: op %s: no device %q", op, op.Device)
	}
	r.snap = nil
	_ = r.sys.Apply(op)
	r.next++
	return nil
}

// Fork returns a new system in the state op Index leaves when fault f hits
// it instead of its recorded fault (FaultNone: the op completes), on the
// given clock (a new ManualClock if nil). The Rebuilder does not move. On a
// record of page programs a cut after it completes every page; any other
// fault hits the page Op.TornPage picks (FaultedOp says which op that is).
func (r *Rebuilder) Fork(f Fault, clock Clock) (*System, error) {
	op := r.journal[r.next]
	switch {
	case op.Count() == 1 || f.Mode == FaultCutBefore:
		return r.ForkPage(0, f, clock)
	case f.Mode == FaultCutAfter:
		return r.ForkPage(op.Count()-1, f, clock)
	}
	return r.ForkPage(op.TornPage(f), f, clock)
}

// ForkPage is Fork with the fault on page k of the current record (0 for a
// record of one op): the pages before it complete, and f hits page k as a
// rule naming that page's index would in a run.
func (r *Rebuilder) ForkPage(k int, f Fault, clock Clock) (*System, error) {
	op := r.journal[r.next]
	if k < 0 || k >= op.Count() {
		panic(fmt.Sprintf("storage: page %d of %s", k, op))
	}
	sn, err := r.Snapshot()
	if err != nil {
		return nil, err
	}
	s := sn.Restore(clock)
	// The fork's journal starts empty: a machine built on it starts its
	// own, and copying the prefix for every fork would cost more than the
	// fork. The op keeps its index, which seeds its fault's damage.
	s.journal, s.changes = nil, nil
	d := s.deviceNamed(op.Device)
	if d == nil {
		return nil, fmt.Errorf("fork: op %s: no device %q", op, op.Device)
	}
	if op.Count() > 1 {
		if k > 0 {
			head := op
			head.Pages, head.Len, head.Fault = k, uint64(k)*op.PageSize(), Fault{}
			if op.Data != nil {
				head.Data = op.Data[:head.Len]
			}
			_, _ = s.applyOp(d, &head)
		}
		op = op.Page(k, 0)
	}
	if f.Mode == FaultCutBefore {
		return s, nil
	}
	op.Fault = f
	_, _ = s.applyOp(d, &op)
	return s, nil
}

// FaultedOp returns the index of the op a fault at the current record hits
// in Fork: its last op for a cut after it, the page Op.TornPage picks for
// any other fault on a record of page programs, its first op otherwise.
func (r *Rebuilder) FaultedOp(f Fault) int {
	op := r.journal[r.next]
	switch {
	case f.Mode == FaultCutAfter:
		return op.Last()
	case f.Mode == FaultCutBefore || op.Count() == 1:
		return op.Index
	}
	return op.Index + op.TornPage(f)
}
