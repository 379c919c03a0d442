package mbedos

import (
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/sim"
	"github.com/stretchr/testify/require"
)

// TestCRC32MatchesCatalogue: compute_crc32 is the CKSUM CRC (polynomial
// 0x04C11DB7, MSB first, initial 0) without its final XOR; the catalogue's
// check value of "123456789" for CRC-32/CKSUM is 0x765E7680.
func TestCRC32MatchesCatalogue(t *testing.T) {
	require.Equal(t, uint32(0x765E7680)^0xFFFFFFFF, crc32([]byte("123456789")))
	require.Equal(t, uint32(0), crc32(nil))
}

// device is a K64F machine whose image at address 0 is an application
// that runs start each boot.
func device(t *testing.T, seed uint64, start func(m *sim.Machine)) *sim.Machine {
	t.Helper()
	b, err := sim.LoadBoard("k64f")
	require.NoError(t, err)
	m, err := sim.New(sim.Config{Board: b, Seed: seed})
	require.NoError(t, err)
	d := &sim.Descriptor{Stage: sim.StageApplication, Impl: "test-app", Name: "app", Version: 1, Behaviour: "crash", Size: 4 << 10}
	data, err := sim.BuildImage(d, 1)
	require.NoError(t, err)
	m.AddImage(&sim.Image{Desc: d, Bytes: data})
	m.Internal().Load(0, data)
	m.Register("test-app", sim.ProgramFunc(func(m *sim.Machine, _ *sim.Image) { start(m) }))
	return m
}

// count returns how many trace events of a kind (and name, if given) the
// machine has.
func count(m *sim.Machine, kind sim.EventKind, name string) int {
	n := 0
	for _, e := range m.Trace() {
		if e.Kind == kind && (name == "" || e.Name == name) {
			n++
		}
	}
	return n
}

func serial(m *sim.Machine) []string {
	var out []string
	for _, l := range m.Serial() {
		out = append(out, l.Text)
	}
	return out
}

// faultInMain is an application that starts (mbed_error_initialize, then
// main) and faults 10 ms later.
func faultInMain(c Config) func(m *sim.Machine) {
	return func(m *sim.Machine) {
		ErrorInitialize(m, c)
		m.Print("main\n")
		m.After(10*time.Millisecond, func() { Fault(m, c, "test fault") })
	}
}

var k64f = Config{CrashCapture: true, AutoReboot: true, RebootMax: 1, Target: "K64F"}

// TestFaultReportsRebootsAndHaltsAtLimit: with K64F's defaults a fault
// resets by software once; the next start halts before main().
func TestFaultReportsRebootsAndHaltsAtLimit(t *testing.T) {
	m := device(t, 1, faultInMain(k64f))
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, 2, m.Boots())
	require.Equal(t, sim.StateHalted, m.State())
	require.Equal(t, 1, count(m, sim.EvMark, MarkFatalError))
	require.Equal(t, 1, count(m, sim.EvMark, MarkRebootLimit))
	require.Equal(t, 1, count(m, sim.EvReset, "software"))
	require.Equal(t, 1, count(m, sim.EvLED, sim.LEDSOS))
	require.Equal(t, []string{
		"main", "", "++ MbedOS Fault Handler ++", "", "FaultType: HardFault", "", "-- MbedOS Fault Handler --", "",
		"", "", "++ MbedOS Error Info ++",
		"Error Status: 0x80FF013D Code: 317 Module: 255",
		"Error Message: Fault exception",
		"For more info, visit: https://mbed.com/s/error?error=0x80FF013D&tgt=K64F",
		"-- MbedOS Error Info --", "",
		"= System will be rebooted due to a fatal error =",
		"= Reboot count(=1) reached maximum, system will halt after rebooting =",
	}, serial(m), "the second start prints nothing: it halts before main()")
}

// TestRebootMaxCountsFaults: with error-reboot-max 3 the device faults
// three times, resetting after each, and the fourth start halts.
func TestRebootMaxCountsFaults(t *testing.T) {
	c := k64f
	c.RebootMax = 3
	m := device(t, 1, faultInMain(c))
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, 4, m.Boots())
	require.Equal(t, 3, count(m, sim.EvMark, MarkFatalError))
	require.Equal(t, 1, count(m, sim.EvMark, MarkRebootLimit))
	require.Equal(t, sim.StateHalted, m.State())
	text := strings.Join(serial(m), "\n")
	require.Equal(t, 1, strings.Count(text, "reached maximum"), "printed by the third fault only")
	require.Contains(t, text, "= Reboot count(=3) reached maximum")

	// A power cycle leaves noise in the crash-data RAM: the count starts
	// again, and the device faults three more times.
	m.PowerOff("test")
	m.PowerOn()
	m.Run(2*time.Second, nil)
	require.Equal(t, 8, m.Boots())
	require.Equal(t, 6, count(m, sim.EvMark, MarkFatalError))
}

// TestRebootCallbackClearsTheContext: an application whose reboot
// callback clears the error information never halts at the limit.
func TestRebootCallbackClearsTheContext(t *testing.T) {
	c := k64f
	c.ClearsRebootInfo = true
	m := device(t, 1, faultInMain(c))
	m.PowerOn()
	m.Run(200*time.Millisecond, nil)
	require.Greater(t, m.Boots(), 10)
	require.Zero(t, count(m, sim.EvMark, MarkRebootLimit))
	require.Equal(t, sim.StateRunning, m.State())
}

// TestWithoutAutoRebootTheFaultHalts: Mbed OS's library defaults (and a
// build without crash capture) halt in mbed_die at the first fault.
func TestWithoutAutoRebootTheFaultHalts(t *testing.T) {
	for _, c := range []Config{
		{RebootMax: 1},
		{CrashCapture: true, RebootMax: 1},
		{AutoReboot: true, RebootMax: 1}, // auto-reboot acts only with crash capture
		{CrashCapture: true, AutoReboot: true, RebootMax: 0},
	} {
		m := device(t, 1, faultInMain(c))
		m.PowerOn()
		m.Run(time.Second, nil)
		require.Equal(t, 1, m.Boots(), "%+v", c)
		require.Equal(t, sim.StateHalted, m.State(), "%+v", c)
		require.Equal(t, 1, count(m, sim.EvLED, sim.LEDSOS), "%+v", c)
		require.NotContains(t, serial(m), "= System will be rebooted due to a fatal error =", "%+v", c)
	}
}

// TestStartUpFaultsRebootForEver: a fault before mbed_error_initialize
// runs (in start-up code) is never held by the reboot limit.
func TestStartUpFaultsRebootForEver(t *testing.T) {
	m := device(t, 1, func(m *sim.Machine) { Fault(m, k64f, "start-up") })
	m.PowerOn()
	m.Run(100*time.Millisecond, nil)
	require.Greater(t, m.Boots(), 20)
	require.Zero(t, count(m, sim.EvMark, MarkRebootLimit))
	require.Zero(t, count(m, sim.EvLED, ""))
}

func TestConfigFor(t *testing.T) {
	b, err := sim.LoadBoard("nucleo-f429zi")
	require.NoError(t, err)
	require.Equal(t, Config{CrashCapture: true, AutoReboot: true, RebootMax: 1, Target: "NUCLEO_F429ZI"}, ConfigFor(b, nil))
	d := &sim.Descriptor{Params: [][2]string{{ParamAutoReboot, "false"}, {ParamRebootMax, "4"}, {ParamRebootInfo, "clear"}, {ParamCrashCapture, "true"}}}
	require.Equal(t, Config{CrashCapture: true, AutoReboot: false, RebootMax: 4, ClearsRebootInfo: true, Target: "NUCLEO_F429ZI"}, ConfigFor(b, d))
}
