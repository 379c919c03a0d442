package storage

import (
	"fmt"
	"slices"
)

// TrackTouches makes the system's devices record every page that is read,
// stamped or written from now on (Peek and Stamp included): what a run
// depended on. A sweep uses it to know which pages a recovery's outcome is a
// function of.
func (s *System) TrackTouches() {
	for _, d := range s.devices {
		d.memory().touched = map[uint64]struct{}{}
	}
}

// Touched is the pages a system's devices touched since TrackTouches, by
// device, in page order.
type Touched struct {
	devices []string
	pages   [][]uint64
}

// Touched returns what the devices touched so far.
func (s *System) Touched() Touched {
	var t Touched
	for _, d := range s.devices {
		m := d.memory()
		if m.touched == nil {
			panic(fmt.Sprintf("storage: Touched without TrackTouches on %s", d.Name()))
		}
		pages := make([]uint64, 0, len(m.touched))
		for p := range m.touched {
			pages = append(pages, p)
		}
		slices.Sort(pages)
		t.devices = append(t.devices, d.Name())
		t.pages = append(t.pages, pages)
	}
	return t
}

// Pages counts the pages touched.
func (t Touched) Pages() int {
	n := 0
	for _, p := range t.pages {
		n += len(p)
	}
	return n
}

// Identity is what a snapshot holds in a set of pages, by page identity
// (as a Stamp names contents), and its devices' state beyond their bytes.
// Two snapshots with equal identities over the pages a deterministic run
// touched lead that run to the same outcome.
type Identity struct {
	meta  []string
	pages [][]*page
	vers  [][]uint64
}

// Identity returns the identity of the snapshot over the touched pages.
func (sn *Snapshot) Identity(t Touched) Identity {
	var id Identity
	for i, name := range t.devices {
		var d device
		for _, x := range sn.devices {
			if x.Name() == name {
				d = x
			}
		}
		if d == nil {
			panic(fmt.Sprintf("storage: Identity: no device %q in the snapshot", name))
		}
		m := d.memory()
		ps := make([]*page, len(t.pages[i]))
		vs := make([]uint64, len(t.pages[i]))
		for k, idx := range t.pages[i] {
			st := m.pageStateAt(idx)
			ps[k], vs[k] = st.page, st.version
		}
		id.meta = append(id.meta, name+" "+d.meta())
		id.pages = append(id.pages, ps)
		id.vers = append(id.vers, vs)
	}
	return id
}

// Equal reports whether two identities (over the same pages) are the same.
func (id Identity) Equal(o Identity) bool {
	if !slices.Equal(id.meta, o.meta) || len(id.pages) != len(o.pages) {
		return false
	}
	for i := range id.pages {
		if !slices.Equal(id.pages[i], o.pages[i]) || !slices.Equal(id.vers[i], o.vers[i]) {
			return false
		}
	}
	return true
}

// Matches reports whether the snapshot has the identity id over the
// touched pages: Identity(t).Equal(id), without building the identity.
func (sn *Snapshot) Matches(t Touched, id Identity) bool {
	if len(t.devices) != len(id.pages) {
		return false
	}
	for i, name := range t.devices {
		var d device
		for _, x := range sn.devices {
			if x.Name() == name {
				d = x
			}
		}
		if d == nil || id.meta[i] != name+" "+d.meta() {
			return false
		}
		m := d.memory()
		for k, idx := range t.pages[i] {
			if st := m.pageStateAt(idx); st.page != id.pages[i][k] || st.version != id.vers[i][k] {
				return false
			}
		}
	}
	return true
}
