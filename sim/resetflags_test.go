package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// boardWith loads a built-in board and changes it for one test.
func boardWith(t *testing.T, name string, change func(*Board)) *Board {
	t.Helper()
	b, err := LoadBoard(name)
	require.NoError(t, err)
	change(b)
	return b
}

// reasonsSeen boots a recorder bootloader on a board and drives it through
// resets: after power-on, a software reset, a watchdog reset, a software
// reset, a pin reset, then (with clear) a ResetReason::get() that clears
// the flags and one more software reset. It returns the reasons each boot
// read.
func reasonsSeen(t *testing.T, b *Board, clear bool) []ResetReason {
	t.Helper()
	m, err := New(Config{Board: b, Seed: 1})
	require.NoError(t, err)
	install(t, m, 0, bootDesc())
	var seen []ResetReason
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		seen = append(seen, m.ResetReason())
		switch len(seen) {
		case 1, 3:
			m.After(time.Millisecond, m.SystemReset)
		case 2:
			m.StartWatchdog(10 * time.Millisecond)
		case 5:
			if clear {
				m.ClearResetFlags()
				m.After(time.Millisecond, m.SystemReset)
			}
		}
	}))
	m.PowerOn()
	m.Run(time.Second, nil)
	m.Reset(ResetPin)
	m.Run(2*time.Second, nil)
	return seen
}

func TestStickyResetFlagsReportTheHighestEverSet(t *testing.T) {
	stm32 := boardWith(t, "nucleo-f429zi", func(*Board) {})
	require.Equal(t, ResetFlagsSticky, stm32.ResetFlags)
	// Watchdog outranks software, which outranks power-on and pin: once a
	// watchdog reset happened, every later reset reads as one.
	require.Equal(t, []ResetReason{ResetPowerOn, ResetSoftware, ResetWatchdog, ResetWatchdog, ResetWatchdog},
		reasonsSeen(t, stm32, false))
	// Cleared flags let the next reset speak for itself.
	require.Equal(t, []ResetReason{ResetPowerOn, ResetSoftware, ResetWatchdog, ResetWatchdog, ResetWatchdog, ResetSoftware},
		reasonsSeen(t, stm32, true))

	kinetis := boardWith(t, "k64f", func(*Board) {})
	require.Equal(t, []ResetReason{ResetPowerOn, ResetSoftware, ResetWatchdog, ResetSoftware, ResetPin},
		reasonsSeen(t, kinetis, false))
}

func TestStickyResetFlagsClearedByPowerOn(t *testing.T) {
	m, err := New(Config{Board: boardWith(t, "nucleo-f429zi", func(*Board) {}), Seed: 1})
	require.NoError(t, err)
	install(t, m, 0, bootDesc())
	var seen []ResetReason
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) { seen = append(seen, m.ResetReason()) }))
	m.PowerOn()
	m.Run(100*time.Millisecond, nil)
	m.Reset(ResetSoftware)
	m.Run(200*time.Millisecond, nil)
	m.Reset(ResetPin)
	m.Run(300*time.Millisecond, nil)
	m.PowerOff("test")
	m.PowerOn()
	m.Run(400*time.Millisecond, nil)
	m.Reset(ResetPin)
	m.Run(500*time.Millisecond, nil)
	// A pin reset after a software one reads as software; after a power
	// cycle, as power-on (PORRST outranks PINRST in Mbed's decoding).
	require.Equal(t, []ResetReason{ResetPowerOn, ResetSoftware, ResetSoftware, ResetPowerOn, ResetPowerOn}, seen)
	require.Equal(t, ResetPin, m.LastReset())
}

// TestWatchdogSurvivesSoftwareReset: on a board whose watchdog survives a
// software reset, a bootloader that never kicks it is bitten at the
// deadline the application left; on one where it does not, the watchdog
// stops with the reset.
func TestWatchdogSurvivesSoftwareReset(t *testing.T) {
	run := func(b *Board) []Event {
		m, err := New(Config{Board: b, Seed: 1})
		require.NoError(t, err)
		install(t, m, 0, bootDesc())
		boots := 0
		m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
			boots++
			if boots == 1 {
				m.StartWatchdog(100 * time.Millisecond)
				m.After(40*time.Millisecond, m.SystemReset)
				return
			}
			for range 100 { // a long copy that never kicks the watchdog
				m.Spend(10 * time.Millisecond)
			}
		}))
		m.PowerOn()
		m.Run(3*time.Second, nil)
		var resets []Event
		for _, e := range m.Trace() {
			if e.Kind == EvReset || e.Kind == EvWatchdog {
				resets = append(resets, e)
			}
		}
		return resets
	}
	kinds := func(es []Event) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Kind.String()+" "+e.Name)
		}
		return out
	}
	survives := run(boardWith(t, "k64f", func(b *Board) { b.WatchdogSurvives = []string{"software"} }))
	require.Equal(t, []string{"reset software", "watchdog ", "reset watchdog"}, kinds(survives))
	// Bitten 100 ms after the first boot started it (at the first 10 ms
	// step past that), not 100 ms after the reset: the count went on
	// through it.
	started := survives[0].Time - 40*time.Millisecond
	require.GreaterOrEqual(t, survives[1].Time, started+100*time.Millisecond)
	require.Less(t, survives[1].Time, started+110*time.Millisecond)

	stops := run(boardWith(t, "k64f", func(*Board) {}))
	require.Equal(t, []string{"reset software"}, kinds(stops))
}

func TestCrashDataSurvivesWarmResetsOnly(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	var seen [][]byte
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		seen = append(seen, append([]byte(nil), m.CrashData()...))
		copy(m.CrashData(), "written before the reset")
	}))
	m.PowerOn()
	m.Run(100*time.Millisecond, nil)
	m.Reset(ResetPin)
	m.Run(200*time.Millisecond, nil)
	m.PowerOff("test")
	m.PowerOn()
	m.Run(300*time.Millisecond, nil)
	require.Len(t, seen, 3)
	require.Equal(t, "written before the reset", string(seen[1][:24]))
	require.NotEqual(t, "written before the reset", string(seen[2][:24]), "power-on leaves noise")
	require.NotEqual(t, seen[0], seen[2], "each power-on draws new noise")
}

// TestBoardResetSettingsValidated: the board file's reset, watchdog and
// Mbed OS platform settings are checked, and read as written.
func TestBoardResetSettingsValidated(t *testing.T) {
	k, err := boardFiles.ReadFile("boards/k64f.yaml")
	require.NoError(t, err)
	edit := func(old, new string) (*Board, error) {
		t.Helper()
		require.Contains(t, string(k), old)
		return ParseBoard("mine.yaml", []byte(strings.Replace(string(k), old, new, 1)))
	}
	_, err = edit("reset-flags: latest", "reset-flags: sometimes")
	require.ErrorContains(t, err, `mine.yaml: reset-flags "sometimes": want latest`)
	_, err = edit("watchdog-survives-reset: []", "watchdog-survives-reset: [power-on]")
	require.ErrorContains(t, err, `watchdog-survives-reset: "power-on": want software, pin or lockup`)
	_, err = edit("error-reboot-max: 1", "error-reboot-max: 300")
	require.ErrorContains(t, err, "mbed-os.error-reboot-max 300: want 0 to 255")
	_, err = edit("error-reboot-max: 1", "error-reboot-max: many")
	require.ErrorContains(t, err, "mine.yaml:")

	b, err := edit("error-reboot-max: 1", "error-reboot-max: 3")
	require.NoError(t, err)
	require.Equal(t, 3, b.MbedOS.ErrorRebootMax())
	b, err = edit("  error-reboot-max: 1          # the library default\n", "")
	require.NoError(t, err)
	require.Equal(t, 1, b.MbedOS.ErrorRebootMax(), "Mbed OS's library default")
	require.True(t, b.MbedOS.CrashCapture)
	require.True(t, b.MbedOS.AutoReboot)
	b, err = edit("watchdog-survives-reset: []", "watchdog-survives-reset: [software, pin]")
	require.NoError(t, err)
	require.True(t, b.WatchdogSurvivesReset(ResetPin))
	require.False(t, b.WatchdogSurvivesReset(ResetWatchdog))
}
