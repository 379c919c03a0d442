package storage

import (
	"bytes"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The fault physics, pinned: each mode's effect on each kind of medium is
// checked against what FaultMode's documentation promises, over enough
// seeds that every outcome the model allows shows up and none it forbids
// does. A model that quietly completes a torn op, or skips it, fails here.

// tornProgram tears a program of units×unit zero bytes over erased flash
// with a seed, and returns the bytes of the op's range afterwards, the
// error the issuer saw and the time the op took.
func tornProgram(t *testing.T, seed uint64, units int) ([]byte, error, time.Duration) {
	t.Helper()
	s := NewSystem(nil)
	f := k64fFlash(s)
	s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultTorn, Seed: seed}})
	err := f.Program(0, make([]byte, units*8))
	got := make([]byte, units*8)
	f.Peek(0, got)
	return got, err, s.Clock().Now()
}

// TestTornNORProgramLeavesAPrefix: a torn program leaves units before the
// torn one programmed, the torn one with some but not all of its bits
// cleared, and the rest erased; which unit tears depends on the seed, and
// the op costs only the time up to the tear.
func TestTornNORProgramLeavesAPrefix(t *testing.T) {
	const units = 16
	full := 16 * 8 * time.Microsecond
	torn := map[int]bool{}
	for seed := range uint64(64) {
		got, err, took := tornProgram(t, seed, units)
		require.ErrorIs(t, err, ErrPowerLost)
		k := -1 // the torn unit
		for u := range units {
			unit := got[u*8 : (u+1)*8]
			switch {
			case bytes.Equal(unit, make([]byte, 8)):
				require.Equal(t, -1, k, "seed %d: unit %d programmed after the torn unit %d", seed, u, k)
			case bytes.Equal(unit, bytes.Repeat([]byte{0xFF}, 8)):
				require.NotEqual(t, -1, k, "seed %d: unit %d erased before any unit tore", seed, u)
			default:
				require.Equal(t, -1, k, "seed %d: units %d and %d are both partial", seed, k, u)
				k = u
			}
		}
		// 64 bits, each cleared with probability 1/2: the torn unit is
		// partial for every seed here.
		require.NotEqual(t, -1, k, "seed %d: the program was not torn: %x", seed, got)
		torn[k] = true
		require.Equal(t, time.Duration(k+1)*8*time.Microsecond, took, "seed %d: time up to the torn unit", seed)
		require.Less(t, took, full+1)
	}
	require.True(t, torn[0], "the first unit can tear: %v", torn)
	require.True(t, torn[units-1], "the last unit can tear: %v", torn)
	require.GreaterOrEqual(t, len(torn), units/2, "the torn unit is spread over the op: %v", torn)
}

// TestTornSDWriteOutcomes: the blocks before the torn one are new, the
// torn one old, new or garbage, the later ones old. A full-new result
// happens only when the last block tears to "new", and a full-old one only
// when the first tears to "old": both must show up over the seeds, as must
// garbage.
func TestTornSDWriteOutcomes(t *testing.T) {
	const blocks = 8
	old := pattern(blocks*SDBlockSize, 1)
	neu := pattern(blocks*SDBlockSize, 2)
	newPrefix := map[int]bool{}
	garbage := 0
	for seed := range uint64(200) {
		s := NewSystem(nil)
		c := sdCard(s)
		c.Load(0, old)
		s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultTorn, Seed: seed}})
		require.ErrorIs(t, c.Program(0, neu), ErrPowerLost)
		got := contents(c)[:blocks*SDBlockSize]
		block := func(b []byte, i int) []byte { return b[i*SDBlockSize : (i+1)*SDBlockSize] }
		n := 0
		for n < blocks && bytes.Equal(block(got, n), block(neu, n)) {
			n++
		}
		rest := n
		if n < blocks && !bytes.Equal(block(got, n), block(old, n)) {
			garbage++
			rest = n + 1
		}
		for i := rest; i < blocks; i++ {
			require.Equal(t, block(old, i), block(got, i), "seed %d: block %d after the tear is not old", seed, i)
		}
		newPrefix[n] = true
	}
	for n := range blocks + 1 {
		require.True(t, newPrefix[n], "a tear can leave %d new blocks: %v", n, newPrefix)
	}
	require.Greater(t, garbage, 0, "a torn block can hold garbage")
}

// TestTornNOREraseIsPartialAndCounted: a torn erase leaves the sectors
// before the torn one erased, the torn one partly erased (some zero bits
// raised, not all), the later ones untouched; every sector it reached,
// the torn one included, counts an erase cycle.
func TestTornNOREraseIsPartialAndCounted(t *testing.T) {
	// The erase covers sectors 2..7; sectors 0, 1 and 8 must not change.
	const first, sectors = 2, 6
	torn := map[int]bool{}
	for seed := range uint64(48) {
		s := NewSystem(nil)
		f := k64fFlash(s)
		f.Load(0, make([]byte, (first+sectors+1)*4096))
		s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultTorn, Seed: seed}})
		require.ErrorIs(t, f.Erase(first*4096, sectors*4096), ErrPowerLost)
		all := contents(f)
		require.Equal(t, make([]byte, first*4096), all[:first*4096], "seed %d: before the erase", seed)
		require.Equal(t, make([]byte, 4096), all[(first+sectors)*4096:(first+sectors+1)*4096], "seed %d: after the erase", seed)
		got := all[first*4096:]
		k := -1
		for i := range sectors {
			sec := got[i*4096 : (i+1)*4096]
			switch {
			case bytes.Equal(sec, bytes.Repeat([]byte{0xFF}, 4096)):
				require.Equal(t, -1, k, "seed %d: sector %d erased after the torn sector %d", seed, i, k)
			case bytes.Equal(sec, make([]byte, 4096)):
				require.NotEqual(t, -1, k, "seed %d: sector %d untouched before any sector tore", seed, i)
			default:
				require.Equal(t, -1, k, "seed %d: sectors %d and %d are both partial", seed, k, i)
				k = i
			}
		}
		require.NotEqual(t, -1, k, "seed %d: the erase was not torn", seed)
		torn[k] = true
		counts := f.EraseCounts()
		for i := range first + sectors + 1 {
			want := uint32(0)
			if i >= first && i-first <= k {
				want = 1
			}
			require.Equal(t, want, counts[i], "seed %d: erase count of sector %d (torn %d)", seed, i, first+k)
		}
		// The sectors before the torn one took their whole erase time, the
		// torn one between 5 % and 95 % of it.
		require.Less(t, s.Clock().Now(), time.Duration(k)*14*time.Millisecond+14*time.Millisecond*95/100, "seed %d: a torn erase stops early", seed)
		require.GreaterOrEqual(t, s.Clock().Now(), time.Duration(k)*14*time.Millisecond+14*time.Millisecond*5/100)
	}
	require.True(t, torn[0] && torn[sectors-1], "the first and the last sector can tear: %v", torn)
}

// TestCutAfterCompletesCutBeforeSkips: on every medium and op kind,
// cut-before leaves the medium as it was and cut-after as the op leaves it,
// and both end with the power off.
func TestCutAfterCompletesCutBeforeSkips(t *testing.T) {
	type op struct {
		name string
		dev  func(s *System) Device
		do   func(d Device) error
		// done is the op's full effect on a device loaded with before.
		done func(before []byte) []byte
	}
	norErase := op{"nor erase", func(s *System) Device { return k64fFlash(s) },
		func(d Device) error { return d.Erase(4096, 8192) },
		func(b []byte) []byte {
			out := bytes.Clone(b)
			copy(out[4096:4096+8192], bytes.Repeat([]byte{0xFF}, 8192))
			return out
		}}
	norProgram := op{"nor program", func(s *System) Device { return k64fFlash(s) },
		func(d Device) error { return d.Program(64, make([]byte, 64)) },
		func(b []byte) []byte {
			out := bytes.Clone(b)
			copy(out[64:128], make([]byte, 64))
			return out
		}}
	sdWrite := op{"sd program", func(s *System) Device { return sdCard(s) },
		func(d Device) error { return d.Program(1024, pattern(2048, 9)) },
		func(b []byte) []byte {
			out := bytes.Clone(b)
			copy(out[1024:3072], pattern(2048, 9))
			return out
		}}
	for _, o := range []op{norErase, norProgram, sdWrite} {
		for _, mode := range []FaultMode{FaultCutBefore, FaultCutAfter} {
			t.Run(o.name+" "+mode.String(), func(t *testing.T) {
				s := NewSystem(nil)
				d := o.dev(s)
				before := pattern(int(d.Size()), 5)
				d.Load(0, before)
				s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: mode}})
				require.ErrorIs(t, o.do(d), ErrPowerLost)
				require.False(t, s.Powered())
				want := before
				if mode == FaultCutAfter {
					want = o.done(before)
					require.Positive(t, s.Clock().Now(), "a completed op takes its time")
				} else {
					require.Zero(t, s.Clock().Now(), "an op that never happened takes no time")
				}
				require.True(t, bytes.Equal(want, contents(d)), "the medium after %s", mode)
			})
		}
	}
}

// TestFirstRuleWins: when two rules fire at the same op, the first one's
// fault is applied, and both rules have counted the op.
func TestFirstRuleWins(t *testing.T) {
	for _, order := range [][2]string{
		{"kind=program,nth=2,mode=bit-flip,seed=3", "op=1,mode=io-error"},
		{"op=1,mode=io-error", "kind=program,nth=2,mode=bit-flip,seed=3"},
	} {
		s := NewSystem(nil)
		f := k64fFlash(s)
		var rules Rules
		for _, spec := range order {
			r, err := ParseRule(spec)
			require.NoError(t, err)
			rules = append(rules, r)
		}
		s.SetInjector(rules)
		require.NoError(t, f.Program(0, make([]byte, 8)))
		err := f.Program(8, make([]byte, 8))
		want := rules[0].Fault.Mode
		require.Equal(t, want, s.Journal()[1].Fault.Mode, "%v", order)
		if want == FaultIOError {
			require.ErrorIs(t, err, ErrIO)
		} else {
			require.NoError(t, err)
		}
		require.NoError(t, f.Program(16, make([]byte, 8)))
		require.Equal(t, FaultNone, s.Journal()[2].Fault.Mode, "the nth rule counted op 1 and does not fire again")
	}
}
