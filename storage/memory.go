package storage

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
)

// pageSize is the unit of copy-on-write sharing. It is independent of any
// device's sector or block size: 4 KiB keeps a 1 MiB flash at 256 pages and
// is small enough that a sector write copies little it does not touch.
const (
	pageSize      = 4096
	pagesPerChunk = 256
	chunkSize     = pageSize * pagesPerChunk
)

// owner marks which memory may write a page or chunk in place. A memory gets a
// fresh owner whenever its contents are shared (Snapshot), so every page it
// held becomes read-only to it and is copied on its next write. It is a
// number, not a pointer, so that a page holds no pointer and the garbage
// collector never scans one; the numbers are only compared, never shown.
type owner uint64

// owners hands out owners; 0 is never one.
var owners atomic.Uint64

func newOwner() owner { return owner(owners.Add(1)) }

type page struct {
	owner owner
	// version counts in-place writes; together with the page pointer it names
	// one content state, which lets callers cache checks over unchanged pages.
	version uint64
	data    [pageSize]byte
}

type chunk struct {
	owner owner
	pages [pagesPerChunk]*page
}

// memory is a byte array of a fixed size stored in copy-on-write pages, grouped
// in chunks so that sharing a large, mostly blank SD card costs one pointer per
// MiB. A nil chunk or page reads as blank.
type memory struct {
	size   uint64
	blank  byte
	owner  owner
	chunks []*chunk
	// chunksShared says chunks is another memory's slice too (a snapshot
	// restored, or a memory shared): m copies it before it first replaces
	// a chunk, so that a restore costs no copy of it.
	chunksShared bool
	// touched, when not nil, collects the index of every page read,
	// stamped or written (System.TrackTouches).
	touched map[uint64]struct{}
	// gen counts changes to the memory's pages; lastStamp is the last stamp
	// taken and the gen it was taken at. A boot stamps the image it hashes
	// and then the image it jumps to, the same pages, unchanged: the second
	// stamp is the first one again.
	gen       uint64
	lastStamp struct {
		addr, n, gen uint64
		s            Stamp
	}
}

// erasedNOR is a page of erased NOR flash, copied into a page that comes
// into being (faster than filling it byte by byte).
var erasedNOR = func() (p [pageSize]byte) {
	for i := range p {
		p[i] = 0xFF
	}
	return p
}()

// touch records the pages of [addr, addr+n) as touched, if tracking.
func (m *memory) touch(addr, n uint64) {
	if m.touched == nil || n == 0 {
		return
	}
	for i := addr / pageSize; i <= (addr+n-1)/pageSize; i++ {
		m.touched[i] = struct{}{}
	}
}

func newMemory(size uint64, blank byte) *memory {
	return &memory{
		size:   size,
		blank:  blank,
		owner:  newOwner(),
		chunks: make([]*chunk, (size+chunkSize-1)/chunkSize),
	}
}

// share returns a memory with the same contents that shares every page with m.
// Afterwards neither may write a shared page in place. The receiver's owner is
// replaced, so share must not run concurrently with other uses of m; sharing a
// frozen memory (see freeze) is safe from any number of goroutines.
func (m *memory) share() *memory {
	m.owner = newOwner()
	m.chunksShared = true
	return m.frozenCopy()
}

// frozenCopy returns a new memory over the same chunks with its own owner. It
// only reads m, so it is safe to call concurrently on a memory nobody writes.
func (m *memory) frozenCopy() *memory {
	return &memory{size: m.size, blank: m.blank, owner: newOwner(), chunks: m.chunks, chunksShared: true}
}

// setChunk makes ch chunk ci of m.
func (m *memory) setChunk(ci uint64, ch *chunk) {
	if m.chunksShared {
		m.chunks = slices.Clone(m.chunks)
		m.chunksShared = false
	}
	m.chunks[ci] = ch
}

func (m *memory) pageAt(idx uint64) *page {
	ch := m.chunks[idx/pagesPerChunk]
	if ch == nil {
		return nil
	}
	return ch.pages[idx%pagesPerChunk]
}

// pageState is a page (nil for a blank one) and its write count.
type pageState struct {
	page    *page
	version uint64
}

// pageStateAt returns page idx and its version (nil and 0 for a blank page).
func (m *memory) pageStateAt(idx uint64) pageState {
	p := m.pageAt(idx)
	if p == nil {
		return pageState{}
	}
	return pageState{p, p.version}
}

// writablePage returns page idx owned by m, copying the chunk and the page if
// they are shared and allocating a blank page if there is none.
func (m *memory) writablePage(idx uint64) *page {
	if m.touched != nil {
		m.touched[idx] = struct{}{}
	}
	ci := idx / pagesPerChunk
	ch := m.chunks[ci]
	switch {
	case ch == nil:
		ch = &chunk{owner: m.owner}
		m.setChunk(ci, ch)
	case ch.owner != m.owner:
		cp := &chunk{owner: m.owner, pages: ch.pages}
		ch = cp
		m.setChunk(ci, ch)
	}
	pi := idx % pagesPerChunk
	p := ch.pages[pi]
	m.gen++
	switch {
	case p == nil:
		p = newPage(m.owner)
		p.data = *blankPage(m.blank)
		ch.pages[pi] = p
	case p.owner != m.owner:
		cp := newPage(m.owner)
		cp.data = p.data
		p = cp
		ch.pages[pi] = p
	}
	p.version++
	return p
}

// pagePool holds pages that a released memory owned alone, for reuse.
var pagePool = sync.Pool{New: func() any { return new(page) }}

// newPage returns a page for owner o, with whatever contents. A page taken
// from the pool keeps its version and only counts up from it, so that a
// Stamp made of it in an earlier life (a cache may keep one) never equals
// a stamp of its new contents.
func newPage(o owner) *page {
	p := pagePool.Get().(*page)
	p.owner = o
	return p
}

// release gives back the pages m owns: nobody else can hold them (sharing
// gives m a new owner), except stamps, which the versions keep apart. m
// must not be used afterwards.
func (m *memory) release() {
	for ci, ch := range m.chunks {
		if ch == nil || ch.owner != m.owner {
			continue
		}
		for pi, p := range ch.pages {
			if p != nil && p.owner == m.owner {
				ch.pages[pi] = nil
				p.owner = 0
				pagePool.Put(p)
			}
		}
		m.chunks[ci] = nil
	}
	m.chunks = nil
}

// read copies len(dst) bytes from addr. The range must be in bounds.
func (m *memory) read(addr uint64, dst []byte) {
	m.touch(addr, uint64(len(dst)))
	if off := addr % pageSize; off+uint64(len(dst)) <= pageSize {
		// Within one page, as most reads are (the SOTP scan makes a
		// hundred of 128 bytes at every boot): one look-up, one copy.
		if p := m.pageAt(addr / pageSize); p != nil {
			copy(dst, p.data[off:])
		} else {
			copy(dst, blankPage(m.blank)[off:])
		}
		return
	}
	for len(dst) > 0 {
		idx, off := addr/pageSize, addr%pageSize
		n := min(uint64(len(dst)), pageSize-off)
		if p := m.pageAt(idx); p != nil {
			copy(dst[:n], p.data[off:off+n])
		} else {
			// A copy from a blank page: a byte loop here was a tenth of a
			// cold boot's non-hash time (the SOTP scan reads blank areas).
			copy(dst[:n], blankPage(m.blank)[off:off+n])
		}
		dst = dst[n:]
		addr += n
	}
}

// view calls f on every page-sized piece of [addr, addr+n), in order, with
// the bytes in place: read without the copy, for callers that only look.
// The range must be in bounds.
func (m *memory) view(addr, n uint64, f func([]byte)) {
	m.touch(addr, n)
	var blank *[pageSize]byte
	for n > 0 {
		idx, off := addr/pageSize, addr%pageSize
		k := min(n, pageSize-off)
		if p := m.pageAt(idx); p != nil {
			f(p.data[off : off+k])
		} else {
			if blank == nil {
				blank = blankPage(m.blank)
			}
			f(blank[off : off+k])
		}
		n -= k
		addr += k
	}
}

// blankPage returns a page of b, shared when b is one of the usual blanks:
// callers must not modify it.
func blankPage(b byte) *[pageSize]byte {
	switch b {
	case 0xFF:
		return &erasedNOR
	case 0:
		return &zeroPage
	}
	p := new([pageSize]byte)
	for i := range p {
		p[i] = b
	}
	return p
}

// zeroPage is a page of zeros, for views of blank pages of media that read
// zeros there.
var zeroPage [pageSize]byte

// update calls f on every page-sized piece of [addr, addr+n) with the bytes to
// modify in place and the offset of the piece from addr.
func (m *memory) update(addr, n uint64, f func(b []byte, at uint64)) {
	var at uint64
	for at < n {
		idx, off := (addr+at)/pageSize, (addr+at)%pageSize
		k := min(n-at, pageSize-off)
		p := m.writablePage(idx)
		f(p.data[off:off+k], at)
		at += k
	}
}

// write copies src to addr.
func (m *memory) write(addr uint64, src []byte) {
	m.update(addr, uint64(len(src)), func(b []byte, at uint64) { copy(b, src[at:]) })
}

// fill sets [addr, addr+n) to v. Whole blank pages are dropped instead of
// written, so erasing a large area does not allocate.
func (m *memory) fill(addr, n uint64, v byte) {
	for n > 0 {
		idx, off := addr/pageSize, addr%pageSize
		k := min(n, pageSize-off)
		if off == 0 && k == pageSize && v == m.blank {
			m.dropPage(idx)
		} else {
			p := m.writablePage(idx)
			for i := off; i < off+k; i++ {
				p.data[i] = v
			}
		}
		addr += k
		n -= k
	}
}

func (m *memory) dropPage(idx uint64) {
	if m.touched != nil {
		m.touched[idx] = struct{}{}
	}
	ci := idx / pagesPerChunk
	ch := m.chunks[ci]
	if ch == nil || ch.pages[idx%pagesPerChunk] == nil {
		return
	}
	if ch.owner != m.owner {
		ch = &chunk{owner: m.owner, pages: ch.pages}
		m.setChunk(ci, ch)
	}
	m.gen++
	ch.pages[idx%pagesPerChunk] = nil
}

// Stamp identifies the contents of a range of a device at one moment: equal
// stamps mean the bytes have not changed in between. It is cheap to take and
// compare and lets callers skip re-checking unchanged data without ever
// trusting changed data.
//
// A stamp lists, chunk by chunk, the range's pages and their versions. Where
// a chunk is frozen (shared by a snapshot: nobody may change it or its pages
// again) the stamp points into the chunk's array of pages instead of copying
// it, and leaves the versions where they are, in the pages, which no longer
// change; two stamps that point at the same array are equal without a
// comparison. So a machine restored from a snapshot stamps a 1 MiB image
// without allocating or touching its 256 pages (cold, after the image's
// hash, those were a cache miss each), and the stamps of a sweep's forks,
// which share the snapshot's chunks, compare at once.
type Stamp struct {
	n    int // segments; 0 is the zero Stamp, equal to nothing
	seg  [2]stampSeg
	more []stampSeg // the segments after the second
}

// stampSeg is the part of a stamp in one chunk: its pages, and their
// versions when they were taken from a chunk its memory owned (nil vers: a
// frozen chunk's, read from the pages).
type stampSeg struct {
	pages []*page
	vers  []uint64
}

func (g *stampSeg) version(i int) uint64 {
	if g.vers != nil {
		return g.vers[i]
	}
	if p := g.pages[i]; p != nil {
		return p.version
	}
	return 0
}

func (s *Stamp) add(g stampSeg) {
	if s.n < len(s.seg) {
		s.seg[s.n] = g
	} else {
		s.more = append(s.more, g)
	}
	s.n++
}

func (s *Stamp) at(i int) *stampSeg {
	if i < len(s.seg) {
		return &s.seg[i]
	}
	return &s.more[i-len(s.seg)]
}

// Equal reports whether two stamps name the same contents.
func (s Stamp) Equal(o Stamp) bool {
	if s.n == 0 || s.n != o.n {
		return false
	}
	for i := range s.n {
		a, b := s.at(i), o.at(i)
		if len(a.pages) != len(b.pages) {
			return false
		}
		if a.vers == nil && b.vers == nil {
			// Both frozen: a page in a frozen chunk never changes, so the
			// same page is the same contents, and the same array is the
			// same pages.
			if len(a.pages) > 0 && &a.pages[0] == &b.pages[0] {
				continue
			}
			if !slices.Equal(a.pages, b.pages) {
				return false
			}
			continue
		}
		for j := range a.pages {
			if a.pages[j] != b.pages[j] || a.version(j) != b.version(j) {
				return false
			}
		}
	}
	return true
}

// blankChunk stands in stamps for a chunk that does not exist: no pages.
var blankChunk chunk

func (m *memory) stamp(addr, n uint64) Stamp {
	if n == 0 {
		return Stamp{}
	}
	m.touch(addr, n)
	if l := &m.lastStamp; l.s.n != 0 && l.addr == addr && l.n == n && l.gen == m.gen {
		return l.s
	}
	first, last := addr/pageSize, (addr+n-1)/pageSize
	var s Stamp
	for ci := first / pagesPerChunk; ci <= last/pagesPerChunk; ci++ {
		base := ci * pagesPerChunk
		lo, hi := max(first, base)-base, min(last, base+pagesPerChunk-1)-base+1
		switch ch := m.chunks[ci]; {
		case ch == nil:
			s.add(stampSeg{pages: blankChunk.pages[lo:hi]})
		case ch.owner != m.owner:
			// Frozen: writablePage and dropPage copy a chunk they do not
			// own and release skips it, and its pages are no memory's to
			// write in place (sharing gave their owner a new owner
			// number), so neither the array nor the versions change.
			s.add(stampSeg{pages: ch.pages[lo:hi]})
		default:
			g := stampSeg{pages: slices.Clone(ch.pages[lo:hi]), vers: make([]uint64, hi-lo)}
			for j, p := range g.pages {
				if p != nil {
					g.vers[j] = p.version
				}
			}
			s.add(g)
		}
	}
	m.lastStamp.addr, m.lastStamp.n, m.lastStamp.gen, m.lastStamp.s = addr, n, m.gen, s
	return s
}

// digest writes the memory's contents to h, a run of blank pages as its
// length: a large, mostly blank card digests in time proportional to what
// was written to it. Blank pages that exist digest as pages that do not.
func (m *memory) digest(h io.Writer) {
	var blank [pageSize]byte
	for i := range blank {
		blank[i] = m.blank
	}
	run := uint64(0)
	flush := func() {
		if run > 0 {
			fmt.Fprintf(h, "blank %d\n", run)
			run = 0
		}
	}
	pages := (m.size + pageSize - 1) / pageSize
	for idx := uint64(0); idx < pages; idx++ {
		ch := m.chunks[idx/pagesPerChunk]
		if ch == nil {
			skip := min(pagesPerChunk-idx%pagesPerChunk, pages-idx)
			run += skip
			idx += skip - 1
			continue
		}
		p := ch.pages[idx%pagesPerChunk]
		n := min(pageSize, m.size-idx*pageSize)
		if p == nil || bytes.Equal(p.data[:n], blank[:n]) {
			run++
			continue
		}
		flush()
		h.Write(p.data[:n])
	}
	flush()
}
