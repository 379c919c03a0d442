package hardened

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
)

// device is a K64F-like internal flash with the v3.3 SOTP areas (two
// 4 KiB sectors), so that a few dozen records force a garbage collection.
func device() (*storage.System, storage.Device, Areas) {
	s := storage.NewSystem(nil)
	f := s.NewNORFlash(storage.NORConfig{
		Name:        "internal",
		Sectors:     []storage.SectorRun{{Size: 4096, Count: 16, EraseTime: 15 * time.Millisecond}},
		ProgramUnit: 8, ProgramTime: 90 * time.Microsecond, ReadBandwidth: 100 << 20,
	})
	return s, f, Areas{A1: sotp.Area{Addr: 0x8000, Size: 0x1000}, A2: sotp.Area{Addr: 0x9000, Size: 0x1000}}
}

func TestStateRoundTrip(t *testing.T) {
	for _, s := range []State{{}, {Status: Trial, Version: 1 << 40, Previous: 7, Attempts: 3}, {Status: RolledBack, Version: 9, Previous: 8}} {
		got, err := DecodeState(s.Encode())
		require.NoError(t, err)
		require.Equal(t, s, got)
	}
	_, err := DecodeState([]byte{1, 2})
	require.ErrorIs(t, err, ErrBadState)
	bad := State{}.Encode()
	bad[0] = byte(RolledBack) + 1
	_, err = DecodeState(bad)
	require.ErrorIs(t, err, ErrBadState)
}

func TestCounterOnlyRises(t *testing.T) {
	_, dev, a := device()
	st, err := Open(dev, a.A1, a.A2)
	require.NoError(t, err)
	c, err := st.Counter()
	require.NoError(t, err)
	require.Zero(t, c, "a missing counter is 0")
	require.NoError(t, st.Raise(10))
	require.NoError(t, st.Raise(5))
	c, _ = st.Counter()
	require.Equal(t, uint64(10), c)
}

// TestConfirmOnlyTheTrial: confirming a version that is not on trial
// writes nothing; confirming the one on trial confirms it and raises the
// counter.
func TestConfirmOnlyTheTrial(t *testing.T) {
	sys, dev, a := device()
	st, err := Open(dev, a.A1, a.A2)
	require.NoError(t, err)
	require.NoError(t, st.SetState(State{Status: Trial, Version: 20, Previous: 10}))
	ops := len(sys.Journal())
	done, err := st.Confirm(19)
	require.NoError(t, err)
	require.False(t, done)
	require.Len(t, sys.Journal(), ops, "no write for a version not on trial")
	done, err = st.Confirm(20)
	require.NoError(t, err)
	require.True(t, done)
	s, _ := st.State()
	require.Equal(t, State{Status: Confirmed, Version: 20, Previous: 10}, s)
	c, _ := st.Counter()
	require.Equal(t, uint64(20), c)
}

// errCut is how the test's power-loss handler unwinds.
var errCut = errors.New("power cut")

// TestCounterUnderCuts is the property of issue 12 §1: under a power cut
// at any op of an update's SOTP traffic (the bootloader's trial writes, the
// application's confirmation), in any mode, the counter never goes down,
// never passes the version being confirmed, ends exactly at it once the
// confirmation returned, and once the bootloader has finished what a cut
// left (a Confirmed state with the counter behind), it equals the
// confirmed version. The reference model is two numbers: the counter
// before the step and the version of the step.
func TestCounterUnderCuts(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		sys, dev, a := device()
		open := func() *Store {
			st, err := Open(dev, a.A1, a.A2)
			if err != nil {
				t.Fatalf("open: %v", err)
			}
			return st
		}
		// finish is the bootloader's first act: complete a confirmation.
		finish := func(st *Store) {
			s, err := st.State()
			if err != nil {
				t.Fatalf("state: %v", err)
			}
			c, _ := st.Counter()
			if s.Status == Confirmed && c < s.Version {
				if err := st.Raise(s.Version); err != nil {
					t.Fatalf("raise: %v", err)
				}
			}
		}
		model := uint64(0)
		version := uint64(100)
		steps := rapid.IntRange(1, 30).Draw(t, "steps")
		for i := range steps {
			version += uint64(rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("bump%d", i)))
			attempts := rapid.IntRange(1, 3).Draw(t, fmt.Sprintf("attempts%d", i))
			// A cut somewhere in the next ops, or none.
			cut := rapid.IntRange(-1, 12).Draw(t, fmt.Sprintf("cut%d", i))
			mode := rapid.SampledFrom([]string{"before", "after", "torn"}).Draw(t, fmt.Sprintf("mode%d", i))
			if cut >= 0 {
				rule, err := storage.ParseRule(fmt.Sprintf("op=%d,mode=%s,seed=%d", len(sys.Journal())+cut, mode, i))
				if err != nil {
					t.Fatalf("rule: %v", err)
				}
				sys.SetInjector(rule)
			}
			confirmed := false
			func() {
				st, err := Open(dev, a.A1, a.A2) // init writes too: it may be cut
				if err != nil {
					return
				}
				// The bootloader starts the trial, and counts the boots.
				for n := 1; n <= attempts; n++ {
					if err := st.SetState(State{Status: Trial, Version: version, Attempts: uint8(n)}); err != nil {
						return
					}
				}
				// The application confirms.
				if _, err := st.Confirm(version); err != nil {
					return
				}
				confirmed = true
			}()
			sys.SetInjector(nil)
			sys.PowerOn()
			st := open()
			finish(st)
			got, err := st.Counter()
			if err != nil {
				t.Fatalf("counter: %v", err)
			}
			s, _ := st.State()
			switch {
			case got < model:
				t.Fatalf("step %d: the counter went down from %d to %d", i, model, got)
			case got > version:
				t.Fatalf("step %d: the counter %d passed the version %d", i, got, version)
			case got != model && got != version:
				t.Fatalf("step %d: the counter is %d, neither %d nor %d", i, got, model, version)
			case confirmed && got != version:
				t.Fatalf("step %d: confirmed %d, counter %d", i, version, got)
			case s.Status == Confirmed && s.Version == version && got != version:
				t.Fatalf("step %d: state confirmed %d, counter %d after the bootloader finished", i, version, got)
			}
			if !confirmed && got == version && !(s.Status == Confirmed && s.Version == version) {
				t.Fatalf("step %d: the counter rose to %d with no confirmation recorded (state %+v)", i, got, s)
			}
			model = got
		}
	})
}

// FuzzDecodeState: any bytes decode to a state that encodes back to them,
// or to ErrBadState; never a panic.
func FuzzDecodeState(f *testing.F) {
	f.Add(State{Status: Trial, Version: 5, Previous: 4, Attempts: 2}.Encode())
	f.Add([]byte{})
	f.Add([]byte{9})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := DecodeState(b)
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if got := s.Encode(); string(got) != string(b) {
			t.Fatalf("%x decodes to %+v, which encodes to %x", b, s, got)
		}
	})
}
