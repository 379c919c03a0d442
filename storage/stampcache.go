package storage

import (
	"bytes"
	"slices"
	"sync"
)

// StampCache remembers results computed from a range of a device, by the
// identity of the pages the range covered (a Stamp): a later lookup with an
// equal stamp gets the result without reading the bytes again. The forks of
// one run share the pages they did not write, so a check that many
// recoveries make over the same unchanged image (its SHA-256, the
// simulator's comparison of the bytes it jumps to) is computed once.
//
// A page's identity is its pointer and in-place write count, which name its
// contents for as long as the page lives, and the cache holds the pages of
// the stamps it keeps; so an entry is never wrong, and the cache keeps at
// most a few entries per range to bound what it holds on to. It is safe for
// concurrent use.
//
// It also keeps, for large ranges, values by the bytes themselves
// (GetByContent, PutContent): what identity cannot serve, a range written
// again with bytes it held before (every recovery from a cut in an install
// copies the same image anew), comparing being cheaper than hashing.
type StampCache struct {
	mu sync.Mutex
	// ranges and content are searched in order: a run checks a handful of
	// ranges (an image, a slot or two, a bootloader), and a cold boot's
	// cache (the first of a run) costs no map for them.
	ranges  []*stampRange
	content []*contentRange
	kept    uint64 // bytes held by content
	// The first ranges live in the cache itself: a clean boot checks three
	// (the image's digest, the jumps to the bootloader and to the image).
	rangeBuf    [4]stampRange
	rangePtrBuf [4]*stampRange
}

// stampRange is the entries of one range, the oldest first.
type stampRange struct {
	key stampKey
	n   int
	es  [stampsPerRange]stampEntry
}

// contentRange is what the cache knows of one range by content: the
// contents it keeps (the newest last), and the values it has been given for
// the range, to keep a content only once its value recurs: most contents a
// sweep hashes are partial copies that never come back, and copying each
// would cost more than the comparisons save. The first value is kept on
// its own, and seen made only for a second one.
type contentRange struct {
	key   stampKey
	kept  []contentEntry
	first any
	seen  map[any]struct{}
}

// sawBefore records v as given for the range and reports whether it was
// given before (since seen was last cleared).
func (r *contentRange) sawBefore(v any) bool {
	if r.seen == nil {
		if r.first == nil {
			r.first = v
			return false
		}
		if r.first == v {
			return true
		}
		r.seen = map[any]struct{}{r.first: {}}
	}
	_, recurs := r.seen[v]
	if len(r.seen) >= seenPerRange {
		clear(r.seen)
	}
	r.seen[v] = struct{}{}
	return recurs
}

func (c *StampCache) rangeOf(k stampKey) *stampRange {
	for _, r := range c.ranges {
		if r.key == k {
			return r
		}
	}
	return nil
}

func (c *StampCache) contentOf(k stampKey) *contentRange {
	for _, r := range c.content {
		if r.key == k {
			return r
		}
	}
	return nil
}

type contentEntry struct {
	bytes []byte
	value any
}

// Contents are kept for ranges of at least contentMin bytes (below that,
// hashing costs little more than comparing), contentsPerRange per range,
// and up to contentBudget bytes in all; a range remembers up to seenPerRange
// values before it forgets them and starts again.
const (
	contentMin       = 64 << 10
	contentsPerRange = 2
	contentBudget    = 64 << 20
	seenPerRange     = 4096
)

type stampKey struct {
	dev     string
	addr, n uint64
	tag     string
}

type stampEntry struct {
	stamp Stamp
	value any
}

// TagSHA256 is the tag of a range's SHA-256 digest ([32]byte) in a
// StampCache: a stage that hashes a range keeps it there, and the
// simulator's jump check reads it.
const TagSHA256 = "sha256"

// stampsPerRange bounds the entries kept for one range: a sweep sees few
// contents of the same range (the old image, the new one).
const stampsPerRange = 4

// NewStampCache returns an empty cache.
func NewStampCache() *StampCache {
	return &StampCache{}
}

// Get returns the value stored for [addr, addr+n) of dev under tag with an
// equal stamp. A nil cache holds nothing.
func (c *StampCache) Get(dev string, addr, n uint64, tag string, s Stamp) (any, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.rangeOf(stampKey{dev, addr, n, tag})
	if r == nil {
		return nil, false
	}
	for _, e := range r.es[:r.n] {
		if e.stamp.Equal(s) {
			return e.value, true
		}
	}
	return nil, false
}

// Put stores a value for [addr, addr+n) of dev under tag and a stamp,
// forgetting the oldest entry of the range if it holds too many.
func (c *StampCache) Put(dev string, addr, n uint64, tag string, s Stamp, v any) {
	if c == nil || s.n == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := stampKey{dev, addr, n, tag}
	r := c.rangeOf(k)
	if r == nil {
		if i := len(c.ranges); i < len(c.rangeBuf) {
			r = &c.rangeBuf[i]
			if i == 0 {
				c.ranges = c.rangePtrBuf[:0]
			}
		} else {
			r = new(stampRange)
		}
		r.key = k
		c.ranges = append(c.ranges, r)
	}
	if r.n == stampsPerRange {
		copy(r.es[:], r.es[1:])
		r.n--
	}
	r.es[r.n] = stampEntry{stamp: s, value: v}
	r.n++
}

// GetByContent returns the value kept for [addr, addr+n) of dev under tag
// with bytes that dev holds there now, compared in full as Peek sees them
// (no time, no fault). A nil cache holds nothing.
func (c *StampCache) GetByContent(dev Device, addr, n uint64, tag string) (any, bool) {
	if c == nil || n < contentMin {
		return nil, false
	}
	c.mu.Lock()
	r := c.contentOf(stampKey{dev.Name(), addr, n, tag})
	var kept []contentEntry
	if r != nil {
		kept = r.kept
	}
	c.mu.Unlock()
	for i := len(kept) - 1; i >= 0; i-- {
		if !dev.Holds(addr, kept[i].bytes) {
			continue
		}
		// The content served last is forgotten last.
		c.mu.Lock()
		if j := slices.IndexFunc(r.kept, func(e contentEntry) bool { return &e.bytes[0] == &kept[i].bytes[0] }); j >= 0 {
			e := r.kept[j]
			r.kept = append(slices.Delete(slices.Clone(r.kept), j, j+1), e)
		}
		c.mu.Unlock()
		return kept[i].value, true
	}
	return nil, false
}

// PutContent tells the cache that v was computed from the bytes dev holds
// now at [addr, addr+n), under tag. The second time it is told v for that
// range, it keeps a copy of the bytes with v (forgetting the copy of the
// range served least recently if it holds too many), as long as its copies stay within its
// budget. v must be comparable.
func (c *StampCache) PutContent(dev Device, addr, n uint64, tag string, v any) {
	if c == nil || n < contentMin {
		return
	}
	k := stampKey{dev.Name(), addr, n, tag}
	c.mu.Lock()
	r := c.contentOf(k)
	if r == nil {
		r = &contentRange{key: k}
		c.content = append(c.content, r)
	}
	recurs := r.sawBefore(v)
	c.mu.Unlock()
	if !recurs {
		return
	}
	b := make([]byte, n)
	dev.Peek(addr, b)
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range r.kept {
		if e.value == v && bytes.Equal(e.bytes, b) {
			return // another worker kept it meanwhile
		}
	}
	kept := r.kept
	if len(kept) >= contentsPerRange {
		c.kept -= uint64(len(kept[0].bytes))
		kept = append(kept[:0:0], kept[1:]...)
	}
	if c.kept+n > contentBudget {
		return
	}
	c.kept += n
	r.kept = append(kept, contentEntry{bytes: b, value: v})
}
