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

// TestFreezeIsASnapshotWithoutTheCopy: a frozen system is the snapshot its
// Snapshot would have been (same fingerprint, restores to the same bytes),
// restoring it twice gives two systems that do not see each other's writes
// nor change it, and the system gives up its devices.
func TestFreezeIsASnapshotWithoutTheCopy(t *testing.T) {
	s := newScriptSystem()
	s.PowerOn()
	nor := s.Device("nor").(*NORFlash)
	require.NoError(t, nor.Erase(0, 2048))
	require.NoError(t, nor.Program(8, []byte{1, 2, 3, 4, 5, 6, 7, 8}))
	require.NoError(t, s.Device("sd").Program(512, bytes.Repeat([]byte{9}, 512)))
	want := s.Snapshot().Fingerprint()

	sn := s.Freeze()
	require.Equal(t, want, sn.Fingerprint())
	require.Nil(t, s.Device("nor"), "a frozen system has no devices")

	a, b := sn.Restore(nil), sn.Restore(nil)
	a.PowerOn()
	b.PowerOn()
	require.Equal(t, want, a.Snapshot().Fingerprint())
	require.NoError(t, a.Device("nor").Program(16, []byte{0, 0, 0, 0, 0, 0, 0, 0}))
	require.NoError(t, a.Device("sd").Program(512, bytes.Repeat([]byte{7}, 512)))
	require.NotEqual(t, want, a.Snapshot().Fingerprint())
	require.Equal(t, want, b.Snapshot().Fingerprint(), "a sibling restore does not see the writes")
	require.Equal(t, want, sn.Fingerprint(), "nor does the frozen snapshot")
}
