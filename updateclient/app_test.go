package updateclient

import (
	"bytes"
	"testing"
	"time"

	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/stretchr/testify/require"
)

// appAt runs one application image, with the given behaviour and
// parameters, at the reset vector of a k64f with no update client, for d.
func appAt(t *testing.T, behaviour string, params [][2]string, d time.Duration) *sim.Machine {
	t.Helper()
	return appOn(t, "k64f", behaviour, params, d)
}

// appOn is appAt on another board.
func appOn(t *testing.T, board, behaviour string, params [][2]string, d time.Duration) *sim.Machine {
	t.Helper()
	b, err := sim.LoadBoard(board)
	require.NoError(t, err)
	l, err := mbedlayout.For(b, "")
	require.NoError(t, err)
	m, err := sim.New(sim.Config{Board: b, Regions: l.Regions(b), Seed: 1})
	require.NoError(t, err)
	desc := &sim.Descriptor{Stage: "application", Impl: "app", Name: "x", Version: 9, Behaviour: behaviour, Params: params, Size: 2048}
	img, err := sim.BuildImage(desc, 1)
	require.NoError(t, err)
	m.AddImage(&sim.Image{Desc: desc, Bytes: img})
	m.Register("app", App{})
	m.Factory(func() { m.Internal().Load(0, img) })
	m.PowerOn()
	m.Run(d, nil)
	return m
}

// events renders the trace's resets, lockups, watchdog bites and marks.
func events(m *sim.Machine) []string {
	var out []string
	for _, e := range m.Trace() {
		switch e.Kind {
		case sim.EvReset, sim.EvLockup, sim.EvWatchdog, sim.EvMark:
			out = append(out, sim.FormatTime(e.Time)+" "+e.Kind.String()+" "+e.Name)
		}
	}
	return out
}

// TestAppBehaviours: what each behaviour of an application image does, and
// when. A healthy image zeroes the no-init RAM (libc start-up) and reports
// app-running; a crash in start-up code faults before that; a crash or hang
// "after" a while starts as a healthy image first; a hang is ended by its
// watchdog (1 s unless the image says).
func TestAppBehaviours(t *testing.T) {
	for _, tc := range []struct {
		name      string
		behaviour string
		params    [][2]string
		want      []string
	}{
		{"healthy", Healthy, nil, []string{"    0.001000 mark app-running"}},
		{"healthy with a watchdog it kicks", Healthy, [][2]string{{"watchdog", "100ms"}}, []string{"    0.001000 mark app-running"}},
		// K64F's Mbed OS defaults: the fault handler reports and resets by
		// software; a start-up fault comes before the reboot limit is
		// enforced, a fault in main() does not (the next start halts).
		{"crash in start-up", Crash, nil, []string{"    0.001000 mark fatal-error", "    0.001000 reset software", "    0.002000 mark fatal-error", "    0.002000 reset software"}},
		{"crash after", Crash, [][2]string{{"after", "1.2ms"}}, []string{"    0.001000 mark app-running", "    0.002200 mark fatal-error", "    0.002200 reset software", "    0.003200 mark reboot-limit"}},
		{"crash without auto-reboot", Crash, [][2]string{{"auto-reboot", "false"}}, []string{"    0.001000 mark fatal-error"}},
		// K64F's reset controller resets on lockup.
		{"lockup in start-up", Lockup, nil, []string{"    0.001000 lockup ", "    0.001000 reset lockup", "    0.002000 lockup ", "    0.002000 reset lockup"}},
		{"lockup after", Lockup, [][2]string{{"after", "1.2ms"}}, []string{"    0.001000 mark app-running", "    0.002200 lockup ", "    0.002200 reset lockup"}},
		{"hang in start-up", Hang, nil, []string{"    1.001000 watchdog ", "    1.001000 reset watchdog"}},
		{"hang in start-up, own watchdog", Hang, [][2]string{{"watchdog", "1ms"}}, []string{"    0.002000 watchdog ", "    0.002000 reset watchdog"}},
		{"hang after", Hang, [][2]string{{"after", "500ms"}, {"watchdog", "200ms"}}, []string{"    0.001000 mark app-running", "    0.601000 watchdog ", "    0.601000 reset watchdog"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := 4 * time.Millisecond
			if tc.behaviour == Hang {
				d = 1001500 * time.Microsecond
			}
			m := appAt(t, tc.behaviour, tc.params, d)
			got := events(m)
			require.Equal(t, tc.want, got[:min(len(got), len(tc.want))])
			if len(tc.want) == 1 {
				require.Len(t, got, 1, "nothing else happens")
			}
		})
	}
}

// TestHealthyAppClearsNoInitRAM: libc start-up zeroes the heap, and so the
// bootloader's boot counter cells; a crash in start-up code leaves them.
func TestHealthyAppClearsNoInitRAM(t *testing.T) {
	m := appAt(t, Healthy, nil, 2*time.Millisecond)
	require.Equal(t, make([]byte, len(m.NoInit())), m.NoInit())
	require.Equal(t, []string{"x version 9 running"}, serialLines(m))

	m = appAt(t, Lockup, nil, 1500*time.Microsecond)
	require.False(t, bytes.Equal(make([]byte, len(m.NoInit())), m.NoInit()), "the lockup came before the RAM was initialised")
	require.Empty(t, serialLines(m))

	m = appAt(t, Crash, [][2]string{{"auto-reboot", "false"}}, 1500*time.Microsecond)
	require.False(t, bytes.Equal(make([]byte, len(m.NoInit())), m.NoInit()), "the crash came before the RAM was initialised")
	require.Contains(t, serialLines(m), "++ MbedOS Fault Handler ++")
	require.Equal(t, sim.StateHalted, m.State())
}

func serialLines(m *sim.Machine) []string {
	var out []string
	for _, l := range m.Serial() {
		out = append(out, l.Text)
	}
	return out
}

// TestParam: a descriptor's duration parameter, its default, and the panic
// on a value no validated scenario can produce.
func TestParam(t *testing.T) {
	d := &sim.Descriptor{Params: [][2]string{{"after", "2s"}, {"bad", "soon"}}}
	require.Equal(t, 2*time.Second, Param(d, "after", time.Minute))
	require.Equal(t, time.Minute, Param(d, "watchdog", time.Minute))
	require.PanicsWithValue(t, `updateclient: /@0: parameter bad="soon": time: invalid duration "soon"`, func() { Param(d, "bad", 0) })
}

// TestAppReadsResetReason: an application that reads its reset reason
// (Mbed's ResetReason::get()) clears an STM32's sticky flags, so the next
// pin reset reads as a pin reset; one that does not leaves them, and the
// pin reset still reads as the software reset before it.
func TestAppReadsResetReason(t *testing.T) {
	for _, tc := range []struct {
		params [][2]string
		want   sim.ResetReason
	}{
		{nil, sim.ResetSoftware},
		{[][2]string{{ParamReadsResetReason, "true"}}, sim.ResetPin},
	} {
		m := appOn(t, "nucleo-f429zi", Healthy, tc.params, 10*time.Millisecond)
		m.Reset(sim.ResetSoftware)
		m.Run(20*time.Millisecond, nil)
		require.Equal(t, sim.StateRunning, m.State())
		m.Reset(sim.ResetPin)
		require.Equal(t, tc.want, m.ResetReason(), "%v", tc.params)
	}
}
