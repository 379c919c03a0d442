package storage

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestReleaseKeepsSnapshotsAndStampsApart: a released system's pages are
// reused by later systems, but a snapshot taken of it still reads what it
// held, and a stamp made of it never equals a stamp of a reused page's new
// contents, although the page (pointer) may be the same.
func TestReleaseKeepsSnapshotsAndStampsApart(t *testing.T) {
	for round := range 50 {
		s := NewSystem(nil)
		f := k64fFlash(s)
		require.NoError(t, f.Erase(0, 4096))
		require.NoError(t, f.Program(0, pattern(4096, 1)))
		sn := s.Snapshot()
		require.NoError(t, f.Erase(4096, 4096))
		require.NoError(t, f.Program(4096, pattern(4096, 2))) // a page s alone holds
		old := f.Stamp(4096, 4096)
		s.Release()

		s2 := NewSystem(nil)
		f2 := k64fFlash(s2)
		require.NoError(t, f2.Erase(4096, 4096))
		require.NoError(t, f2.Program(4096, pattern(4096, 2))) // the same bytes, maybe the same page
		require.False(t, old.Equal(f2.Stamp(4096, 4096)), "round %d: a stamp of a released page matched its reuse", round)

		r := sn.Restore(nil).Device("internal")
		got := make([]byte, 8192)
		r.Peek(0, got)
		require.Equal(t, pattern(4096, 1), got[:4096], "round %d", round)
		require.Equal(t, bytes.Repeat([]byte{0xFF}, 4096), got[4096:], "round %d: the snapshot predates the second page", round)
		s2.Release()
	}
}
