package storage

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestStampCacheByContent: a value is kept by content only once it recurs
// for a range; it is served while the device holds exactly those bytes
// (rewritten as new pages, so stamps differ), never after one byte
// changes, and never for ranges too small to be worth a copy.
func TestStampCacheByContent(t *testing.T) {
	const n = contentMin
	write := func(salt byte) Device {
		s := NewSystem(nil)
		f := f429Flash(s)
		require.NoError(t, f.Program(0, pattern(n, salt)))
		return f
	}
	c := NewStampCache()
	a := write(1)
	c.PutContent(a, 0, n, "sum", "A")
	_, ok := c.GetByContent(write(1), 0, n, "sum")
	require.False(t, ok, "a value seen once is not kept")
	c.PutContent(write(1), 0, n, "sum", "A")
	v, ok := c.GetByContent(write(1), 0, n, "sum")
	require.True(t, ok)
	require.Equal(t, "A", v)

	d := write(1)
	d.FlipBit(n-1, 3)
	_, ok = c.GetByContent(d, 0, n, "sum")
	require.False(t, ok, "the last bit differs")
	_, ok = c.GetByContent(write(1), 0, n, "other tag")
	require.False(t, ok)
	_, ok = c.GetByContent(write(1), 8, n-8, "sum")
	require.False(t, ok, "another range")

	// Two contents per range, the one served least recently forgotten.
	for _, x := range []struct {
		salt byte
		v    string
	}{{2, "B"}, {2, "B"}} {
		c.PutContent(write(x.salt), 0, n, "sum", x.v)
	}
	_, ok = c.GetByContent(write(1), 0, n, "sum") // A served: B is now the older
	require.True(t, ok)
	c.PutContent(write(3), 0, n, "sum", "C")
	c.PutContent(write(3), 0, n, "sum", "C")
	for salt, want := range map[byte]bool{1: true, 2: false, 3: true} {
		_, ok := c.GetByContent(write(salt), 0, n, "sum")
		require.Equal(t, want, ok, "content %d", salt)
	}

	// Small ranges are not kept.
	c.PutContent(write(4), 0, 4096, "sum", "D")
	c.PutContent(write(4), 0, 4096, "sum", "D")
	_, ok = c.GetByContent(write(4), 0, 4096, "sum")
	require.False(t, ok)

	var none *StampCache
	none.PutContent(a, 0, n, "sum", "A")
	_, ok = none.GetByContent(a, 0, n, "sum")
	require.False(t, ok)
}

// TestContentRangeSawBefore: a value recurs whether it came first, last or
// between others, and the record starts over after seenPerRange values.
func TestContentRangeSawBefore(t *testing.T) {
	var r contentRange
	require.False(t, r.sawBefore("A"))
	require.True(t, r.sawBefore("A"), "the first value, on its own")
	require.False(t, r.sawBefore("B"))
	require.True(t, r.sawBefore("A"), "the first value, once there are two")
	require.True(t, r.sawBefore("B"))
	for i := range seenPerRange {
		r.sawBefore(i)
	}
	require.False(t, r.sawBefore("A"), "forgotten when the record started over")
}
