package storage

import (
	"bytes"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParseRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // the rule's String()
	}{
		{"op=1234,mode=torn,seed=7", "op=1234,mode=torn,seed=7"},
		{"op=0", "op=0,mode=cut-before,seed=0"},
		{"device=internal,region=active-app,kind=program,nth=20,mode=cut-after",
			"device=internal,region=active-app,kind=program,nth=20,mode=cut-after,seed=0"},
		{"region=sotp-1,time=15ms,mode=before", "region=sotp-1,time=15ms,mode=cut-before,seed=0"},
		{"kind=write,random=0.25,mode=bit-flip,seed=3", "kind=program,random=0.25,mode=bit-flip,seed=3"},
		{"kind=erase", "kind=erase,nth=1,mode=cut-before,seed=0"},
		{" op=3 , mode=after ", "op=3,mode=cut-after,seed=0"},
	} {
		r, err := ParseRule(tc.in)
		require.NoError(t, err, tc.in)
		require.Equal(t, tc.want, r.String(), tc.in)
	}
}

func TestParseRuleErrors(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "empty fault rule"},
		{"op", `"op" is not key=value`},
		{"op=-1", "must be ≥ 0"},
		{"op=1,nth=2", "op and nth exclude one another"},
		{"op=1,region=x", "takes no device, region or kind"},
		{"nth=0", "must be ≥ 1"},
		{"time=soon", "time=soon"},
		{"random=2", "probability"},
		{"mode=melt", `unknown fault mode "melt"`},
		{"kind=read", `a read takes mode io-error or bit-flip`},
		{"kind=read,mode=torn", `a read takes mode io-error or bit-flip`},
		{"kind=peek", `unknown op kind "peek" (want program, erase or read)`},
		{"colour=red", `unknown key "colour"`},
		{"op=1,op=2", "op given twice"},
		{"seed=x", "seed=x"},
	} {
		_, err := ParseRule(tc.in)
		require.ErrorContains(t, err, tc.want, tc.in)
	}
}

func TestMatchers(t *testing.T) {
	ops := []Op{
		{Index: 0, Device: "internal", Kind: OpErase, Region: "active-app", Time: 0},
		{Index: 1, Device: "internal", Kind: OpProgram, Region: "active-header", Time: 10 * time.Millisecond},
		{Index: 2, Device: "internal", Kind: OpProgram, Region: "active-app", Time: 20 * time.Millisecond},
		{Index: 3, Device: "sd", Kind: OpProgram, Region: "slot-0", Time: 30 * time.Millisecond},
		{Index: 4, Device: "internal", Kind: OpProgram, Region: "active-app", Time: 40 * time.Millisecond},
	}
	fired := func(spec string) []int {
		r, err := ParseRule(spec)
		require.NoError(t, err)
		var out []int
		for i := range ops {
			if _, ok := r.Inject(&ops[i]); ok {
				out = append(out, ops[i].Index)
			}
		}
		return out
	}
	require.Equal(t, []int{3}, fired("op=3"))
	require.Equal(t, []int{4}, fired("region=active-app,kind=program,nth=2"))
	require.Equal(t, []int{3}, fired("device=sd"))
	require.Equal(t, []int{2}, fired("time=15ms"))
	require.Equal(t, []int{4}, fired("time=35ms,kind=program"))
	require.Nil(t, fired("region=active-app,nth=4"))
	require.Equal(t, []int{0, 1, 2, 3, 4}, fired("random=1"))
	require.Nil(t, fired("random=0"))
	// A random rule's choice depends on the op index and seed only.
	a, b := fired("random=0.5,seed=11"), fired("random=0.5,seed=11")
	require.Equal(t, a, b)
}

// TestArmStartsAfresh: an armed copy of a rule counts from zero, whatever its
// original or earlier copies have seen, and arming does not change the
// original. A shared rule that kept its counter would fire at another op in
// the next run (issue 9).
func TestArmStartsAfresh(t *testing.T) {
	ops := []Op{
		{Index: 0, Kind: OpErase, Time: 0},
		{Index: 1, Kind: OpProgram, Time: 10 * time.Millisecond},
		{Index: 2, Kind: OpProgram, Time: 20 * time.Millisecond},
		{Index: 3, Kind: OpProgram, Time: 30 * time.Millisecond},
	}
	fired := func(in Injector) []int {
		var out []int
		for i := range ops {
			if _, ok := in.Inject(&ops[i]); ok {
				out = append(out, ops[i].Index)
			}
		}
		return out
	}
	for _, tc := range []struct {
		spec     string
		want     []int
		stateful bool
	}{
		{"kind=program,nth=2", []int{2}, true},
		{"nth=1", []int{0}, true},
		{"time=15ms", []int{2}, true},
		{"kind=program", []int{1}, true},
		{"op=3", []int{3}, false},
		{"random=1,seed=4", []int{0, 1, 2, 3}, false},
	} {
		r, err := ParseRule(tc.spec)
		require.NoError(t, err)
		text := r.String()
		for run := range 3 {
			require.Equal(t, tc.want, fired(r.Arm()), "%s, run %d", tc.spec, run)
		}
		require.Equal(t, text, r.Arm().String(), "an armed rule reads as its original")
		// The original, never used, still fires as a fresh rule: arming
		// copied the state, it did not share it.
		require.Equal(t, tc.want, fired(r), tc.spec)
		// Used once, a stateful original does not fire again; an armed
		// copy of it does.
		if tc.stateful {
			require.Nil(t, fired(r), tc.spec)
		} else {
			require.Equal(t, tc.want, fired(r), tc.spec)
		}
		require.Equal(t, tc.want, fired(r.Arm()), tc.spec)
		require.Equal(t, tc.want, fired(Rules{r}.Arm()), tc.spec)
	}
}

func TestRulesFirstWinsButAllCount(t *testing.T) {
	r1, _ := ParseRule("kind=program,nth=1,mode=bit-flip")
	r2, _ := ParseRule("kind=program,nth=2,mode=torn")
	rs := Rules{r1, r2}
	op0, op1 := Op{Index: 0, Kind: OpProgram}, Op{Index: 1, Kind: OpProgram}
	f, ok := rs.Inject(&op0)
	require.True(t, ok)
	require.Equal(t, FaultBitFlip, f.Mode)
	f, ok = rs.Inject(&op1)
	require.True(t, ok)
	require.Equal(t, FaultTorn, f.Mode, "the second rule counted the first op too")
}

func TestFaultIsReproducible(t *testing.T) {
	run := func() []byte {
		s := NewSystem(nil)
		f := k64fFlash(s)
		require.NoError(t, f.Program(0, pattern(4096, 0)))
		s.SetInjector(&Rule{Match: OnIndex(1), Fault: Fault{Mode: FaultTorn, Seed: 42}})
		_ = f.Erase(0, 8192)
		return contents(f)
	}
	first := run()
	require.Equal(t, first, run())
	require.False(t, bytes.Equal(first[:4096], pattern(4096, 0)) || bytes.Equal(first[:4096], bytes.Repeat([]byte{0xFF}, 4096)),
		"the torn erase left sector 0 neither intact nor erased (seed 42)")
}

func TestTornEraseOnlyRaisesBits(t *testing.T) {
	for seed := range uint64(20) {
		s := NewSystem(nil)
		f := f429Flash(s)
		before := pattern(int(f.Size()), byte(seed))
		f.Load(0, before)
		s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultTorn, Seed: seed}})
		_ = f.Erase(0, 0x20000) // sectors 0..4
		after := contents(f)
		for i := range after {
			if before[i]&^after[i] != 0 {
				t.Fatalf("seed %d byte 0x%x: a torn erase lowered a bit", seed, i)
			}
			if i >= 0x20000 && before[i] != after[i] {
				t.Fatalf("seed %d: byte 0x%x outside the erase changed", seed, i)
			}
		}
	}
}

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"op=1234,mode=torn,seed=7", "device=internal,region=active-app,kind=program,nth=20",
		"time=15ms", "random=0.01,mode=bit-flip", "", "op=", "=,=", "nth=1,nth=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRule(s)
		if err != nil {
			return
		}
		// A rule that parses prints as a rule that parses to the same thing.
		again, err := ParseRule(r.String())
		if err != nil {
			t.Fatalf("%q parsed, but its String %q does not: %v", s, r.String(), err)
		}
		if again.String() != r.String() {
			t.Fatalf("%q → %q → %q", s, r.String(), again.String())
		}
	})
}

func TestStamp(t *testing.T) {
	s := NewSystem(nil)
	f := k64fFlash(s)
	f.Load(0, pattern(3*4096, 1))
	st := f.Stamp(100, 8000)
	require.True(t, st.Equal(f.Stamp(100, 8000)))
	// A write outside the range keeps the stamp; inside it changes it.
	require.NoError(t, f.Program(3*4096, pattern(8, 0)))
	require.True(t, st.Equal(f.Stamp(100, 8000)))
	require.NoError(t, f.Program(4096, pattern(8, 0)))
	require.False(t, st.Equal(f.Stamp(100, 8000)))
	// Cloning keeps contents and so keeps stamps equal; a write to the clone does not.
	st = f.Stamp(0, 8192)
	c := s.Clone(nil).Device("internal")
	require.True(t, st.Equal(c.Stamp(0, 8192)))
	c.FlipBit(5000, 3)
	require.False(t, st.Equal(c.Stamp(0, 8192)))
	require.True(t, st.Equal(f.Stamp(0, 8192)))
	// The same range stamped again after an erase that drops a whole page
	// (the last stamp is remembered until a page changes).
	require.NoError(t, f.Erase(4096, 4096))
	require.False(t, st.Equal(f.Stamp(0, 8192)))
	st = f.Stamp(0, 8192)
	other := f.Stamp(8192, 4096)
	require.NoError(t, f.Program(0, pattern(8, 9)))
	require.False(t, other.Equal(f.Stamp(0, 4096)))
	require.False(t, st.Equal(f.Stamp(0, 8192)))
}

// FuzzParseSchedule: a schedule that parses prints, rule by rule joined by
// semicolons, as a schedule that parses to the same rules; one that does
// not says which rule is wrong.
func FuzzParseSchedule(f *testing.F) {
	for _, s := range []string{"op=12,mode=bit-flip,seed=3;op=40,mode=torn", "op=1", ";", "op=1;;op=2", "op=1;colour=red"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		rules, err := ParseSchedule(s)
		if err != nil {
			if !strings.HasPrefix(err.Error(), "rule ") {
				t.Fatalf("%q: error %q does not name the rule", s, err)
			}
			return
		}
		parts := make([]string, len(rules))
		for i, r := range rules {
			parts[i] = r.String()
		}
		again, err := ParseSchedule(strings.Join(parts, ";"))
		if err != nil || len(again) != len(rules) {
			t.Fatalf("%q → %q does not parse back: %v", s, strings.Join(parts, ";"), err)
		}
	})
}

// TestTornEraseRaisesAShareOfZeroBits: in the torn sector each bit at 0
// rises with one chance per tear, between 5 % and 95 %, scattered over the
// sector (not a prefix); tears differ by seed.
func TestTornEraseRaisesAShareOfZeroBits(t *testing.T) {
	shares := map[int]bool{}
	for seed := range uint64(40) {
		s := NewSystem(nil)
		f := k64fFlash(s)
		f.Load(0, make([]byte, 4096))
		s.SetInjector(&Rule{Match: OnIndex(0), Fault: Fault{Mode: FaultTorn, Seed: seed}})
		require.ErrorIs(t, f.Erase(0, 4096), ErrPowerLost)
		sec := contents(f)[:4096]
		ones := 0
		for _, b := range sec {
			ones += bits.OnesCount8(b)
		}
		share := float64(ones) / (4096 * 8)
		require.InDelta(t, 0.5, share, 0.47, "seed %d: %.3f of the bits rose", seed, share)
		// Scattered: each quarter of the sector got about the same share.
		for q := range 4 {
			n := 0
			for _, b := range sec[q*1024 : (q+1)*1024] {
				n += bits.OnesCount8(b)
			}
			require.InDelta(t, share, float64(n)/(1024*8), 0.05, "seed %d: quarter %d", seed, q)
		}
		shares[int(share*20)] = true
	}
	require.Greater(t, len(shares), 5, "tears of different seeds reach different depths")
}

// TestReadFaults: a read rule (kind=read) sees reads only, counts them on
// their own, and faults the one it selects: io-error delivers nothing and
// fails with ErrIO; bit-flip delivers the data with one seeded bit flipped,
// the same bit for the same seed and read, and leaves the medium as it was.
// Mutating ops never reach a read rule.
func TestReadFaults(t *testing.T) {
	data := bytes.Repeat([]byte{0x5A}, 512)
	for _, mode := range []string{"io-error", "bit-flip"} {
		run := func() ([]byte, []byte, error, []Op) {
			s := NewSystem(nil)
			d := k64fFlash(s)
			require.NoError(t, d.Program(0, data))
			r, err := ParseRule("kind=read,nth=2,mode=" + mode + ",seed=9")
			require.NoError(t, err)
			var seen []Op
			s.SetObserver(func(op Op) { seen = append(seen, op) })
			s.SetReadInjector(Rules{r.Arm()})
			s.SetInjector(Rules{r.Arm()}) // a read rule on the mutating path: never fires
			first := make([]byte, 512)
			require.NoError(t, d.Read(0, first))
			second := make([]byte, 512)
			err = d.Read(0, second)
			require.NoError(t, d.Program(512, data), "a program is not a read")
			after := make([]byte, 512)
			require.NoError(t, d.Read(0, after))
			require.Equal(t, data, after, "the medium is unchanged")
			return first, second, err, seen
		}
		first, second, err, seen := run()
		require.Equal(t, data, first, "the first read is not the second")
		var faults []Op
		for _, op := range seen {
			if op.Fault.Mode != FaultNone {
				faults = append(faults, op)
			}
		}
		require.Len(t, faults, 1, mode)
		require.Equal(t, OpRead, faults[0].Kind)
		require.Equal(t, 1, faults[0].Index, "reads count from 0")
		switch mode {
		case "io-error":
			require.ErrorIs(t, err, ErrIO)
		case "bit-flip":
			require.NoError(t, err)
			diff := 0
			for i := range data {
				diff += bits.OnesCount8(data[i] ^ second[i])
			}
			require.Equal(t, 1, diff, "one bit flipped")
			_, again, _, _ := run()
			require.Equal(t, second, again, "the same bit for the same seed")
		}
	}
}
