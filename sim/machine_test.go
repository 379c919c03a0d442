package sim

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

// The K64F's classic application header and start (v3.3.0: 40 KiB and
// 41 KiB), where these tests put images as the classic bootloader would.
const (
	k64fAppDetails uint64 = 0xA000
	k64fAppStart   uint64 = 0xA400
)

// testMachine builds a k64f machine.
func testMachine(t *testing.T, seed uint64) *Machine {
	t.Helper()
	b, err := LoadBoard("k64f")
	require.NoError(t, err)
	m, err := New(Config{Board: b, Seed: seed})
	require.NoError(t, err)
	return m
}

// install builds an image and loads it at addr, as a factory would.
func install(t *testing.T, m *Machine, addr uint64, d *Descriptor) *Image {
	t.Helper()
	data, err := BuildImage(d, 1)
	require.NoError(t, err)
	img := &Image{Desc: d, Bytes: data}
	m.AddImage(img)
	m.Internal().Load(addr, data)
	return img
}

func bootDesc() *Descriptor {
	return &Descriptor{Stage: StageBootloader, Impl: "test-boot", Name: "boot", Version: 1, Behaviour: "healthy", Size: 8 << 10}
}

func appDesc() *Descriptor {
	return &Descriptor{Stage: StageApplication, Impl: "test-app", Name: "app-v1", Version: 7, Behaviour: "healthy", Size: 20 << 10}
}

// jumper is a test bootloader that prints a banner and jumps to the app.
func jumper(m *Machine, _ *Image) {
	m.Print("\r\ntest boot\r\n")
	m.Jump(k64fAppStart)
}

func running(m *Machine, stage Stage) func() bool {
	return func() bool { return m.State() == StateRunning && m.Stage() == stage }
}

func TestBootRunsImagesFromFlash(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	install(t, m, k64fAppStart, appDesc())
	m.Register("test-boot", ProgramFunc(jumper))
	m.Register("test-app", ProgramFunc(func(m *Machine, img *Image) {
		m.Printf("app %s v%d\n", img.Desc.Name, img.Desc.Version)
	}))
	m.PowerOn()
	require.True(t, m.Run(time.Second, running(m, "application")))
	require.Equal(t, []string{"", "test boot", "app app-v1 v7"}, serialText(m))
	require.Equal(t, 1, m.Boots())
	require.Equal(t, ResetPowerOn, m.ResetReason())
	require.Equal(t, time.Millisecond, m.Trace()[1].Time, "the first stage starts after the board's reset time")
}

func serialText(m *Machine) []string {
	var out []string
	for _, l := range m.Serial() {
		out = append(out, l.Text)
	}
	return out
}

// TestDamagedImagesFault: the bytes decide what runs. An erased, torn,
// bit-flipped or foreign image at the jump target locks the core up instead
// of running.
func TestDamagedImagesFault(t *testing.T) {
	appStart := func(m *Machine) uint64 { return k64fAppStart }
	cases := []struct {
		name   string
		damage func(t *testing.T, m *Machine, img *Image)
		why    string
	}{
		{"intact", func(*testing.T, *Machine, *Image) {}, ""},
		{"erased", func(t *testing.T, m *Machine, img *Image) {
			m.Internal().Load(appStart(m), bytes.Repeat([]byte{0xFF}, len(img.Bytes)))
		}, "erased flash"},
		{"unknown-program", func(t *testing.T, m *Machine, img *Image) {
			d := *img.Desc
			d.Version = 99
			other, err := BuildImage(&d, 1)
			require.NoError(t, err)
			m.Internal().Load(appStart(m), other)
		}, "unknown program application/app-v1@99"},
		{"garbage", func(t *testing.T, m *Machine, img *Image) {
			m.Internal().Load(appStart(m), []byte("\x00\x20\x00\x20 not a program"))
		}, "not a program"},
		{"torn-copy", func(t *testing.T, m *Machine, img *Image) {
			// Copy the image the way a bootloader would, with one torn program.
			dev := m.Internal()
			m.Storage().PowerOn()
			for a := uint64(0); a < uint64(len(img.Bytes)); a += 4096 {
				require.NoError(t, dev.Erase(appStart(m)-0x400+a, 4096))
			}
			m.Storage().SetInjector(&storage.Rule{Match: storage.OnIndex(7), Fault: storage.Fault{Mode: storage.FaultTorn, Seed: 3}})
			m.Storage().SetPowerLossHandler(nil)
			for a := uint64(0); a < uint64(len(img.Bytes)); a += 1024 {
				_ = dev.Program(appStart(m)+a, img.Bytes[a:a+1024])
			}
			m.Storage().SetInjector(nil)
			m.Storage().SetPowerLossHandler(m.onPowerLoss)
			m.Storage().PowerOff()
		}, "is damaged"},
	}
	// A single flipped bit anywhere: in the descriptor, the filler, the last byte.
	for _, at := range []int{0, 20, 100, 4095, 4096, 10000, 20<<10 - 1} {
		cases = append(cases, struct {
			name   string
			damage func(t *testing.T, m *Machine, img *Image)
			why    string
		}{fmt.Sprintf("bit-flip-at-%d", at), func(t *testing.T, m *Machine, img *Image) {
			m.Internal().FlipBit(appStart(m)+uint64(at), uint(at%8))
		}, "HardFault"})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := testMachine(t, 1)
			install(t, m, 0, bootDesc())
			img := install(t, m, appStart(m), appDesc())
			ran := false
			m.Register("test-boot", ProgramFunc(jumper))
			m.Register("test-app", ProgramFunc(func(*Machine, *Image) { ran = true }))
			// Run once intact so that the verification cache holds the image:
			// damage must be caught even then.
			m.PowerOn()
			require.True(t, m.Run(time.Second, running(m, "application")))
			m.PowerOff("test")
			ran = false
			tc.damage(t, m, img)
			m.PowerOn()
			m.Run(m.Now()+50*time.Millisecond, nil)
			if tc.why == "" {
				require.True(t, ran)
				return
			}
			require.False(t, ran, "a damaged image must not run")
			var lockups []Event
			for _, e := range m.Trace() {
				if e.Kind == EvLockup {
					lockups = append(lockups, e)
				}
			}
			require.NotEmpty(t, lockups)
			require.Contains(t, lockups[0].Detail, tc.why)
			// k64f: a lockup resets the chip, which boots again and faults again.
			require.Greater(t, m.Boots(), 2)
			require.Equal(t, ResetLockup, m.ResetReason())
		})
	}
}

func TestLockupWithoutResetStaysLocked(t *testing.T) {
	b, err := LoadBoard("nucleo-f429zi")
	require.NoError(t, err)
	m, err := New(Config{Board: b, Seed: 1})
	require.NoError(t, err)
	install(t, m, 0, bootDesc())
	m.Register("test-boot", ProgramFunc(jumper)) // jumps to an erased application area
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, StateLockedUp, m.State())
	require.Equal(t, 1, m.Boots())
}

// TestPowerCutStopsStageAtOp: a cut armed on the N-th program leaves N-1
// programs applied (cut-before) or N (cut-after), and no later statement of
// the stage runs.
func TestPowerCutStopsStageAtOp(t *testing.T) {
	const n = 5
	for _, tc := range []struct {
		mode    storage.FaultMode
		applied int
	}{{storage.FaultCutBefore, n - 1}, {storage.FaultCutAfter, n}} {
		t.Run(tc.mode.String(), func(t *testing.T) {
			m := testMachine(t, 1)
			install(t, m, 0, bootDesc())
			statements := 0
			base := k64fAppStart
			m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
				for i := range 10 {
					if err := m.Internal().Program(base+uint64(i)*8, bytes.Repeat([]byte{byte(i)}, 8)); err != nil {
						t.Errorf("program %d: %v", i, err)
					}
					statements++
				}
				m.Print("done\n")
			}))
			rule, err := storage.ParseRule(fmt.Sprintf("kind=program,nth=%d,mode=%s", n, tc.mode))
			require.NoError(t, err)
			m.Storage().SetInjector(rule)
			m.PowerOn()
			m.Run(time.Second, nil)
			require.Equal(t, StateOff, m.State())
			require.Equal(t, n-1, statements, "no statement after the cut op ran")
			require.Empty(t, m.Serial())
			for i := range 10 {
				got := make([]byte, 8)
				m.Internal().Peek(base+uint64(i)*8, got)
				want := bytes.Repeat([]byte{0xFF}, 8)
				if i < tc.applied {
					want = bytes.Repeat([]byte{byte(i)}, 8)
				}
				require.Equal(t, want, got, "program %d", i+1)
			}
			last := m.Trace()[len(m.Trace())-1]
			require.Equal(t, EvPowerOff, last.Kind)
			require.Contains(t, last.Detail, tc.mode.String())
		})
	}
}

func TestPowerCutArmedOnTime(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	statements := 0
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		for range 100 {
			m.Spend(time.Millisecond)
			statements++
		}
	}))
	m.CutPowerAt(m.Now() + 50*time.Millisecond + 500*time.Microsecond)
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, StateOff, m.State())
	require.Equal(t, 49, statements, "1 ms reset time, then 49 whole steps before 50.5 ms")
}

func TestWatchdogResetKeepsNoInitRAM(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	var seen [][]byte
	var reasons []ResetReason
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		seen = append(seen, bytes.Clone(m.NoInit()[:8]))
		reasons = append(reasons, m.ResetReason())
		m.NoInit()[0]++
		m.StartWatchdog(100 * time.Millisecond)
		// Idle without kicking: the watchdog fires.
	}))
	m.PowerOn()
	m.Run(350*time.Millisecond, nil)
	require.Equal(t, []ResetReason{ResetPowerOn, ResetWatchdog, ResetWatchdog, ResetWatchdog}, reasons)
	for i := 1; i < len(seen); i++ {
		require.Equal(t, seen[i-1][0]+1, seen[i][0], "no-init RAM survives a watchdog reset")
		require.Equal(t, seen[0][1:], seen[i][1:])
	}
	// What power-on does to the RAM: TestPowerOnIsAColdStart.
}

func TestWatchdogInterruptsLongWork(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	steps := 0
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		if m.ResetReason() == ResetWatchdog {
			m.Halt("second boot")
		}
		m.StartWatchdog(10 * time.Millisecond)
		for range 100 {
			m.Spend(time.Millisecond)
			steps++
		}
	}))
	m.PowerOn()
	m.Run(time.Second, nil)
	require.Equal(t, 9, steps, "the 10th millisecond of work reaches the deadline")
	require.Equal(t, StateHalted, m.State())
}

func TestKickedWatchdogDoesNotFire(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		m.StartWatchdog(100 * time.Millisecond)
		var kick func()
		kick = func() { m.KickWatchdog(); m.After(50*time.Millisecond, kick) }
		kick()
	}))
	m.PowerOn()
	m.Run(10*time.Second, nil)
	require.Equal(t, 1, m.Boots())
	require.Equal(t, StateRunning, m.State())
}

func TestResetReasons(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	var reasons []ResetReason
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		reasons = append(reasons, m.ResetReason())
		if len(reasons) == 1 {
			m.After(time.Millisecond, m.SystemReset)
		}
	}))
	m.PowerOn()
	m.Run(100*time.Millisecond, nil)
	m.Reset(ResetPin)
	m.Run(200*time.Millisecond, nil)
	m.Reset(ResetBrownOut)
	m.Run(300*time.Millisecond, nil)
	require.Equal(t, []ResetReason{ResetPowerOn, ResetSoftware, ResetPin, ResetBrownOut}, reasons)
}

func TestHaltStopsEverything(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		m.Print("Failed to jump to application!\r\n")
		m.Halt("dead end")
		t.Error("Halt returned")
	}))
	m.PowerOn()
	m.Run(time.Hour, nil)
	require.Equal(t, StateHalted, m.State())
	require.Equal(t, time.Hour, m.Now())
	require.Equal(t, []string{"Failed to jump to application!"}, serialText(m))
}

func TestSameSeedSameTrace(t *testing.T) {
	run := func(seed uint64) string {
		m := testMachine(t, seed)
		install(t, m, 0, bootDesc())
		m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
			m.Printf("noise %x\n", m.NoInit()[:4])
			_ = m.Internal().Erase(k64fAppDetails, 4096)
			m.After(time.Duration(m.Rand().IntN(1000))*time.Microsecond, func() { m.Mark("tick", "") })
		}))
		m.PowerOn()
		m.Run(time.Second, nil)
		var b strings.Builder
		for _, e := range m.Trace() {
			fmt.Fprintln(&b, e)
		}
		return b.String()
	}
	require.Equal(t, run(7), run(7))
	require.NotEqual(t, run(7), run(8))
}

func TestFaultTraced(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		_ = m.Internal().Program(k64fAppStart, make([]byte, 8))
	}))
	m.Storage().SetInjector(&storage.Rule{Match: storage.OnIndex(0), Fault: storage.Fault{Mode: storage.FaultBitFlip, Seed: 1}})
	m.PowerOn()
	m.Run(time.Second, nil)
	var kinds []string
	for _, e := range m.Trace() {
		kinds = append(kinds, e.Kind.String())
	}
	require.Equal(t, []string{"power-on", "stage", "fault", "op"}, kinds)
	require.Equal(t, "bit-flip", m.Trace()[2].Name)
	require.Equal(t, StateRunning, m.State(), "a bit flip does not stop the stage")
}

func TestPowerCutOnMark(t *testing.T) {
	for _, tc := range []struct {
		delay time.Duration
		steps int
	}{{0, 3}, {2500 * time.Microsecond, 5}} {
		m := testMachine(t, 1)
		install(t, m, 0, bootDesc())
		steps := 0
		m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
			for i := range 10 {
				if i == 3 {
					m.Mark("verify-begin", "")
				}
				m.Spend(time.Millisecond)
				steps++
			}
		}))
		m.CutPowerOnMark("verify-begin", tc.delay)
		m.PowerOn()
		m.Run(time.Second, nil)
		require.Equal(t, StateOff, m.State())
		require.Equal(t, tc.steps, steps, "delay %s", tc.delay)
	}
}

func TestFactoryLeavesNoTrace(t *testing.T) {
	m := testMachine(t, 1)
	m.Factory(func() {
		require.NoError(t, m.Internal().Erase(0, 4096))
		require.NoError(t, m.Internal().Program(0, make([]byte, 8)))
	})
	require.Empty(t, m.Storage().Journal())
	require.Empty(t, m.Trace())
	require.Zero(t, m.Now())
	require.Equal(t, StateOff, m.State())
	require.False(t, m.Storage().Powered())
}

// TestPowerOnIsAColdStart: power-on after any reset reports the power-on
// reason, and refills every byte of the no-init RAM with fresh noise (what
// the last boot left there does not survive, and the noise differs from
// one power-on to the next).
func TestPowerOnIsAColdStart(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	var reasons []ResetReason
	var rams [][]byte
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		reasons = append(reasons, m.ResetReason())
		rams = append(rams, bytes.Clone(m.NoInit()))
		for i := range m.NoInit() {
			m.NoInit()[i] = 0xA5
		}
		if m.ResetReason() == ResetPowerOn {
			m.StartWatchdog(10 * time.Millisecond)
		}
	}))
	m.PowerOn()
	m.Run(15*time.Millisecond, nil) // boot 1, then a watchdog reset: boot 2
	m.PowerOff("test")
	m.PowerOn()
	m.Run(m.Now()+5*time.Millisecond, nil)
	require.Equal(t, []ResetReason{ResetPowerOn, ResetWatchdog, ResetPowerOn}, reasons)
	require.Equal(t, bytes.Repeat([]byte{0xA5}, len(rams[1])), rams[1], "a watchdog reset keeps every byte")
	kept := 0
	for i, b := range rams[2] {
		if b == 0xA5 {
			kept++
		}
		if b == rams[0][i] {
			kept++
		}
	}
	require.Less(t, kept, len(rams[2])/20, "power-on noise neither keeps the old contents nor repeats the last noise")
}

// TestArmedCutFiresWhileIdle: a power cut armed for a time fires at that
// time even when no stage code runs then (the device idles in its timers,
// or has nothing scheduled at all).
func TestArmedCutFiresWhileIdle(t *testing.T) {
	for _, timers := range []bool{false, true} {
		m := testMachine(t, 1)
		install(t, m, 0, bootDesc())
		m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
			if timers {
				var tick func()
				tick = func() { m.After(7*time.Millisecond, tick) }
				tick()
			}
		}))
		m.PowerOn()
		m.Run(5*time.Millisecond, nil)
		require.Equal(t, StateRunning, m.State())
		m.CutPowerAt(40 * time.Millisecond)
		m.Run(time.Second, nil)
		require.Equal(t, StateOff, m.State(), "timers %v", timers)
		last := m.Trace()[len(m.Trace())-1]
		require.Equal(t, EvPowerOff, last.Kind)
		require.Equal(t, 40*time.Millisecond, last.Time, "timers %v", timers)
	}
}

// TestSerialCarriageReturn: "\r\n" ends a line; a carriage return followed
// by text starts the line over, so a progress bar redrawn in place reads
// as its last drawing, split over any number of prints.
func TestSerialCarriageReturn(t *testing.T) {
	m := testMachine(t, 1)
	install(t, m, 0, bootDesc())
	m.Register("test-boot", ProgramFunc(func(m *Machine, _ *Image) {
		m.Print("\r\nbanner\r\n")
		m.Print("\r[+  ]")
		m.Print("\r[++ ]")
		m.Print("\r[+++]\r\n")
		m.Print("a\rb\r")
		m.Print("c\r\n")
		m.Halt("done")
	}))
	m.PowerOn()
	m.Run(time.Second, func() bool { return m.State() == StateHalted })
	require.Equal(t, []string{"", "banner", "[+++]", "c"}, serialText(m))
}

// TestResolveFindsByHeadAsByParse holds resolve's shortcut (comparing a known
// image's descriptor bytes in place) to what parsing the descriptor and
// looking its key up finds: the same image for every image added, and for a
// descriptor that differs from all of them in one field, the parse's
// "unknown program".
func TestResolveFindsByHeadAsByParse(t *testing.T) {
	m := testMachine(t, 1)
	at := map[*Image]uint64{}
	boot := install(t, m, 0, bootDesc())
	at[boot] = 0
	app := install(t, m, k64fAppStart, appDesc())
	at[app] = k64fAppStart
	v2 := appDesc()
	v2.Name, v2.Version = "app-v2", 8
	other := install(t, m, 0x40000, v2)
	at[other] = 0x40000
	for _, img := range []*Image{boot, app, other} {
		d, _, err := ParseDescriptor(img.Bytes)
		require.NoError(t, err)
		got, why := m.candidates(m.Internal(), at[img])
		require.Equal(t, []*Image{m.imageByKey(d.Key())}, got, why)
	}
	v3 := appDesc()
	v3.Version = 9
	data, err := BuildImage(v3, 1)
	require.NoError(t, err)
	m.Internal().Load(0x80000, data)
	got, why := m.candidates(m.Internal(), 0x80000)
	require.Empty(t, got)
	require.Equal(t, "unknown program "+v3.Key(), why)
	img, why := m.resolve(0x40000)
	require.Same(t, other, img, why)
}
