package storage

import "sync"

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
type StampCache struct {
	mu      sync.Mutex
	entries map[stampKey][]stampEntry
}

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
func NewStampCache() *StampCache { return &StampCache{entries: map[stampKey][]stampEntry{}} }

// Get returns the value stored for [addr, addr+n) of dev under tag with an
// equal stamp. A nil cache holds nothing.
func (c *StampCache) Get(dev string, addr, n uint64, tag string, s Stamp) (any, bool) {
	if c == nil {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, e := range c.entries[stampKey{dev, addr, n, tag}] {
		if e.stamp.Equal(s) {
			return e.value, true
		}
	}
	return nil, false
}

// Put stores a value for [addr, addr+n) of dev under tag and a stamp,
// forgetting the oldest entry of the range if it holds too many.
func (c *StampCache) Put(dev string, addr, n uint64, tag string, s Stamp, v any) {
	if c == nil || s.pages == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	k := stampKey{dev, addr, n, tag}
	es := c.entries[k]
	if len(es) >= stampsPerRange {
		es = append(es[:0:0], es[1:]...)
	}
	c.entries[k] = append(es, stampEntry{stamp: s, value: v})
}
