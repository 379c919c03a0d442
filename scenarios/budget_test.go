package scenarios

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// heapAfter runs fn and returns the live heap after it, in MiB.
func heapAfter(fn func()) uint64 {
	fn()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc >> 20
}

// TestBudgetCrashLoopForever: issue 11's 8-line scenario, a crashing image
// under wait: 1000000h, grew 330 MB per virtual hour until Go ran out of
// memory. Now the run stops at its boots budget, fails naming it, and
// keeps little: a run keeps no programmed bytes.
func TestBudgetCrashLoopForever(t *testing.T) {
	l, err := Load("t.yaml", []byte(`scenario: crash-forever
summary: A crashing image under a very long wait.
device: {board: k64f}
firmware:
  app-v1: {version: 1, size: 200KiB}
  app-v2: {version: 2, size: 200KiB, behaviour: crash}
factory: {active: app-v1, slots: [app-v2]}
steps:
  - power-on
  - wait: 1000000h
`), nil)
	require.NoError(t, err)
	var res *Result
	heap := heapAfter(func() {
		res, err = Run(l, Options{})
	})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Contains(t, res.Error, "stopped after more than 10000 boots (a reset loop; the boots budget, --max-boots)")
	require.Less(t, heap, uint64(512), "MiB live after the run")
	for _, op := range res.Journal {
		require.Nil(t, op.Data, "a run keeps no programmed bytes")
	}
}

// TestBudgetTime: a wait longer than the time budget stops at the budget,
// never overflows the clock (a second wait: 2562047h overflowed it and the
// run passed), and the scenario and the options move the budget.
func TestBudgetTime(t *testing.T) {
	src := `scenario: long-waits
summary: Two very long waits.
device: {board: k64f}
firmware:
  app-v1: {version: 1, size: 64KiB}
factory: {active: app-v1}
steps:
  - power-on
  - wait: 2562047h
  - wait: 2562047h
`
	l, err := Load("t.yaml", []byte(src), nil)
	require.NoError(t, err)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Contains(t, res.Error, "stopped at 24h0m0s of virtual time (the time budget, --max-time)")
	require.Equal(t, 24*time.Hour, res.VirtualTime)

	res, err = Run(l, Options{MaxTime: time.Hour})
	require.NoError(t, err)
	require.Contains(t, res.Error, "stopped at 1h0m0s of virtual time")
	require.Contains(t, strings.Join(res.ReplayArgs(), " "), "--max-time 1h0m0s")

	l, err = Load("t.yaml", []byte(strings.Replace(src, "steps:", "budget: {time: 800000h}\nsteps:", 1)), nil)
	require.NoError(t, err)
	res, err = Run(l, Options{})
	require.NoError(t, err)
	require.Contains(t, res.Error, "stopped at 800000h0m0s of virtual time", "the scenario's budget")

	// A wait that runs past the budget from a later time stops exactly at
	// the budget, not at the wait's end.
	later := strings.Replace(strings.Replace(src, "2562047h", "10h", 1), "2562047h", "20h", 1)
	l, err = Load("t.yaml", []byte(later), nil)
	require.NoError(t, err)
	res, err = Run(l, Options{})
	require.NoError(t, err)
	require.Equal(t, 24*time.Hour, res.VirtualTime)
	require.Contains(t, res.Error, "stopped at 24h0m0s of virtual time")

	long := strings.ReplaceAll(strings.Replace(src, "steps:", "budget: {time: 100h}\nsteps:", 1), "2562047h", "30h")
	l, err = Load("t.yaml", []byte(long), nil)
	require.NoError(t, err)
	res, err = Run(l, Options{})
	require.NoError(t, err)
	require.True(t, res.Passed, "60 h within a budget of 100 h: %v %v", res.Error, res.Failures())

	_, err = Load("t.yaml", []byte(strings.Replace(src, "steps:", "budget: {time: 900000h}\nsteps:", 1)), nil)
	require.ErrorContains(t, err, "budget.time 900000h0m0s: want a positive duration up to 100 years")
}

// TestBudgetEvents: a device that never stops (an image that hangs and
// is reset by its watchdog for ever; a source that answered BUSY without
// end grew the trace to 5 GB in 20 seconds before the client gave up on
// BUSY as upstream does) runs out of its events budget, not of memory.
func TestBudgetEvents(t *testing.T) {
	l := hangLoop(t, "budget: {events: 20000}\n", "off, timeout: 1000000h")
	start := time.Now()
	res, err := Run(l, Options{})
	require.NoError(t, err)
	require.False(t, res.Passed)
	require.Contains(t, res.Error, "stopped after 20000 trace events (the events budget, --max-events)")
	require.LessOrEqual(t, len(res.Trace), 20000+1000, "the trace stops near its budget")
	require.Less(t, time.Since(start), time.Minute)
}

// TestBudgetJournal: a sweep's baseline keeps the programmed bytes; its
// journal budget bounds them.
func TestBudgetJournal(t *testing.T) {
	l, err := Load("t.yaml", []byte(`scenario: big-install
summary: An install that programs 200 KiB.
device: {board: k64f}
firmware:
  app-v1: {version: 1, size: 64KiB}
  app-v2: {version: 2, size: 200KiB}
factory: {active: app-v1, slots: [app-v2]}
budget: {journal: 64KiB}
steps:
  - power-on
  - wait: {until: {running: app-v2}, timeout: 1m}
`), nil)
	require.NoError(t, err)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	require.True(t, res.Passed, "a run keeps no data: the journal budget does not bind it")
	_, err = SweepScenario(l, SweepOptions{Workers: 1})
	require.NoError(t, err)
	g, err := newRig(l, 1)
	require.NoError(t, err)
	r, err := g.start(Options{keepJournalData: true})
	require.NoError(t, err)
	res = r.play()
	require.Contains(t, res.Error, "stopped after keeping 64KiB of programmed data (the journal budget)")
}

func TestBudgetChecks(t *testing.T) {
	for _, tc := range []struct{ budget, want string }{
		{"{boots: -1}", "budget.boots -1: want 1 to 10000000"},
		{"{events: 200000000}", "budget.events 200000000"},
		{"{journal: 32GiB}", "budget.journal 32GiB: want up to 16GiB"},
		{"{bots: 3}", `unknown field "bots"`},
	} {
		_, err := Load("t.yaml", []byte(strings.Replace(base, "steps:", "budget: "+tc.budget+"\nsteps:", 1)), nil)
		require.ErrorContains(t, err, tc.want)
		require.Regexp(t, `^t\.yaml:\d+:\d+: `, err.Error())
	}
}

// TestWaitReadsEachEventOnce: a wait for an event reads each new event of
// the trace once, however many events come (a watchdog reset loop that
// never shows the milestone waited for): it used to rescan the whole trace
// after every event (100,000 events took 20.8 s against 0.31 s with a
// plain wait).
func TestWaitReadsEachEventOnce(t *testing.T) {
	l := hangLoop(t, "", "{event: boot-retries-exceeded}, timeout: 1h")
	r, err := start(l, Options{})
	require.NoError(t, err)
	res := r.play()
	require.Contains(t, res.Error, "boot-retries-exceeded", "the milestone never comes: the wait times out")
	require.Greater(t, len(res.Trace), 20000)
	require.LessOrEqual(t, r.lastWait.reads, len(res.Trace), "each event read at most once")
	require.Greater(t, r.lastWait.reads, 20000, "and every one of them read")
}

// hangLoop is a device whose image hangs 2 s after it starts and is reset
// by its watchdog, for ever (its start-up zeroes the boot counter), under
// a wait.
func hangLoop(t *testing.T, budget, until string) *Loaded {
	l, err := Load("t.yaml", []byte(fmt.Sprintf(`scenario: hang-loop
summary: An image that hangs, reset by its watchdog for ever.
device: {board: k64f}
firmware:
  app-v1: {version: 1561517193, size: 64KiB, behaviour: hang, after: 2s, watchdog: 1s}
factory: {active: app-v1}
%ssteps:
  - power-on
  - wait: {until: %s}
`, budget, until)), nil)
	require.NoError(t, err)
	return l
}
