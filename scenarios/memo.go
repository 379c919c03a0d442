package scenarios

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/updateclient"
)

// recoveryMemo remembers recoveries by what they depended on, so that a
// sweep does not recover again from a cut whose storage holds the same
// pages where an earlier recovery looked. A recovery runs on a fresh machine
// with a fixed seed; its outcome is a function of the storage pages it
// touched (read, stamped or wrote), the devices' state beyond their bytes,
// the client's configuration, the facts of the run before the cut and, if
// it asked the service anything, the service's state. Recoveries that asked
// the service are not remembered; the others are, with the identities of
// the pages they touched in the storage they started from. Safe for
// concurrent use.
type recoveryMemo struct {
	mu      sync.Mutex
	entries []*memoEntry
	hits    int
}

type memoEntry struct {
	touched storage.Touched
	id      storage.Identity
	client  updateclient.Config
	prefix  prefixFacts
	result  *Result
}

// memoSize bounds the recoveries remembered: a sweep walks the ops in
// order, and the recoveries that repeat are those of neighbouring cuts.
const memoSize = 32

// find returns a remembered recovery that the cut state leads to, or nil.
func (mm *recoveryMemo) find(cs *cutState) *Result {
	mm.mu.Lock()
	entries := append([]*memoEntry(nil), mm.entries...)
	mm.mu.Unlock()
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.prefix != cs.prefix || !sameClient(e.client, cs.client) {
			continue
		}
		if cs.storage.Matches(e.touched, e.id) {
			mm.mu.Lock()
			mm.hits++
			mm.mu.Unlock()
			return e.result
		}
	}
	return nil
}

// remember keeps a recovery that did not ask the service anything.
func (mm *recoveryMemo) remember(cs *cutState, touched storage.Touched, res *Result) {
	e := &memoEntry{touched: touched, id: cs.storage.Identity(touched), client: cs.client, prefix: cs.prefix, result: res}
	mm.mu.Lock()
	defer mm.mu.Unlock()
	if len(mm.entries) >= memoSize {
		mm.entries = append(mm.entries[:0:0], mm.entries[1:]...)
	}
	mm.entries = append(mm.entries, e)
}

// sameClient reports whether two client configurations are the same (the
// keys and layout they point to are the rig's, compared by identity).
func sameClient(a, b updateclient.Config) bool {
	return a.DeviceID == b.DeviceID && a.Generation == b.Generation && a.VendorID == b.VendorID && a.ClassID == b.ClassID &&
		bytes.Equal(a.Certificate, b.Certificate) && a.PublicKey == b.PublicKey && a.Layout == b.Layout &&
		a.BackwardCompatibleKey == b.BackwardCompatibleKey && a.Download == b.Download && a.Install == b.Install &&
		slices.Equal(a.Sources, b.Sources) && a.Resume == b.Resume && a.Chain == b.Chain && a.Hardened == b.Hardened && a.Encrypt == b.Encrypt
}

// resultDigest names everything a recovery's result says, for comparing a
// remembered recovery with a fresh one.
func resultDigest(res *Result) [32]byte {
	h := sha256.New()
	fmt.Fprintf(h, "%s %v %d %d %s %s\n", res.Name, res.Passed, res.Boots, res.VirtualTime, res.Running, res.State)
	for _, e := range res.Trace {
		fmt.Fprintln(h, e.String())
	}
	for _, op := range res.Journal {
		fmt.Fprintln(h, op.String(), op.Dur)
	}
	for _, c := range res.Expectations {
		fmt.Fprintln(h, c)
	}
	for _, inv := range res.Invariants {
		fmt.Fprintln(h, inv)
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
