package sim

import (
	"bytes"
	"container/heap"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/bootsim/bootsim/storage"
)

// ResetReason is why the MCU last started, in the order of Mbed OS's
// reset_reason_t (hal/reset_reason_api.h): the Mbed bootloader v4 counts a
// boot attempt only for reasons from Watchdog on.
type ResetReason uint8

// The reset reasons the simulator produces.
const (
	ResetPowerOn ResetReason = iota
	ResetPin
	ResetBrownOut
	ResetSoftware
	ResetWatchdog
	ResetLockup
)

var resetNames = [...]string{"power-on", "pin", "brown-out", "software", "watchdog", "lockup"}

func (r ResetReason) String() string {
	if int(r) < len(resetNames) {
		return resetNames[r]
	}
	return fmt.Sprintf("ResetReason(%d)", uint8(r))
}

// State is what the device is doing.
type State uint8

// The device states.
const (
	StateOff      State = iota // no power
	StateBooting               // in reset, about to start the image at address 0
	StateRunning               // a stage is running or idling in its timers
	StateHalted                // a stage stopped the CPU for good (while(1))
	StateLockedUp              // the core locked up after a fault, and the chip does not reset itself
	StateDeadEnd               // a stage found nothing left to run and says so (DeadEnd)
)

var stateNames = [...]string{"off", "booting", "running", "halted", "locked-up", "dead-end"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint8(s))
}

// Random streams of one run: each component draws from its own generator,
// seeded by the run's seed and the stream, so adding draws to one component
// never shifts another's.
const (
	streamNoInit uint64 = iota + 1
	streamFirmware
	streamCrashData
)

// CrashDataSize is the size of the crash-data RAM (Mbed OS's
// MBED_CRASH_REPORT_RAM_SIZE region): RAM no start-up code initialises,
// where the platform keeps an error context across a warm reset.
const CrashDataSize = 256

// Config is what a machine is built from.
type Config struct {
	Board *Board
	// Regions are the named parts of the profile's layout, for the journal
	// and fault matchers.
	Regions []storage.Region
	Seed    uint64
	// Storage, if set, is the state the machine's storage starts from
	// (a snapshot of another machine's); otherwise it starts blank.
	Storage *storage.Snapshot
	// Cache, if set, is shared with other machines (the forks of one run)
	// for checks over unchanged pages: the image a jump lands on, and
	// whatever stages keep there (Machine.Cache). Otherwise the machine has
	// its own.
	Cache *storage.StampCache
}

// Machine is the virtual MCU with its storage: clock, power, resets,
// watchdog, no-init RAM, serial console, trace, and the stage dispatch that
// runs images from the bytes in flash.
//
// A Machine is a synchronous, deterministic state machine: nothing happens
// except inside its methods, and the same calls with the same seed give the
// same trace. It is not safe for concurrent use.
type Machine struct {
	board   *Board
	seed    uint64
	storage *storage.System

	now   time.Duration
	state State
	// inStage is true while stage code runs, when hard events (watchdog, an
	// armed power cut) unwind it as soon as time passes their deadline.
	inStage bool
	stage   Stage
	image   *Image
	reason  ResetReason
	// flags are the reset causes the chip has recorded (a bit per
	// ResetReason) on a board with sticky reset flags.
	flags uint8
	boots int

	epoch  uint64 // bumped by every reset and power loss; timers of an older epoch are dead
	seq    uint64
	timers timerQueue

	wdEnabled  bool
	wdTimeout  time.Duration
	wdDeadline time.Duration
	cutAt      time.Duration // armed power cut; -1 if none
	cutOnMark  string        // a milestone that arms a power cut, "" if none
	cutDelay   time.Duration // how long after that milestone power fails

	noInit    []byte
	noInitRNG *rand.Rand
	firmware  *rand.Rand
	crashData [CrashDataSize]byte
	crashRNG  *rand.Rand
	// The generators' states live in the machine: a machine is built for
	// every boot of a sweep, and six small objects apiece showed.
	rngs [3]struct {
		pcg rand.PCG
		r   rand.Rand
	}

	// programs and images are a handful each: slices searched in order
	// cost a machine (one per boot in a sweep) less than two maps.
	programs []namedProgram
	// images holds the images in the order they were added.
	images []*Image
	// The first few of each live in the machine, without an allocation.
	programsBuf [4]namedProgram
	imagesBuf   [4]*Image
	serialBuf   [8]SerialLine // a clean boot prints fewer lines
	// found is what candidates returns in the common case.
	found [1]*Image
	raw   []*Image
	cache *storage.StampCache

	trace   []Event
	serial  []SerialLine
	partial strings.Builder
	// carriage is a carriage return printed and not yet followed by text
	// or a newline.
	carriage bool
}

type unwindKind uint8

const (
	unwindJump unwindKind = iota + 1
	unwindReset
	unwindPower
	unwindHalt
	unwindFault
)

// unwind is the private panic value that stops stage code. Only the machine
// recovers it.
type unwind struct {
	kind   unwindKind
	addr   uint64
	reason ResetReason
	detail string
	// deadEnd marks a halt as a dead end (DeadEnd).
	deadEnd bool
}

type machineClock struct{ m *Machine }

func (c machineClock) Now() time.Duration { return c.m.now }

// Advance moves time on; inside stage code, a hard event whose deadline has
// passed unwinds the stage at once.
func (c machineClock) Advance(d time.Duration) {
	m := c.m
	m.now += d
	if !m.inStage || !m.storage.Powered() {
		return
	}
	if m.cutAt >= 0 && m.now >= m.cutAt {
		m.armedCutFires()
	}
	if m.wdEnabled && m.now >= m.wdDeadline {
		m.watchdogBites()
	}
}

// New builds a powered-off machine with blank storage.
func New(cfg Config) (*Machine, error) {
	if cfg.Board == nil {
		return nil, fmt.Errorf("sim: a machine needs a board")
	}
	m := &Machine{
		board:  cfg.Board,
		seed:   cfg.Seed,
		cutAt:  -1,
		noInit: make([]byte, cfg.Board.NoInitRAM),
		// A clean boot records 16 events; growing from nil to that copied
		// the trace four times.
		trace: make([]Event, 0, 16),
		cache: cfg.Cache,
	}
	for i, stream := range [3]uint64{streamNoInit, streamFirmware, streamCrashData} {
		g := &m.rngs[i]
		g.pcg = *rand.NewPCG(cfg.Seed, stream)
		g.r = *rand.New(&g.pcg)
	}
	m.noInitRNG, m.firmware, m.crashRNG = &m.rngs[0].r, &m.rngs[1].r, &m.rngs[2].r
	m.programs, m.images, m.serial = m.programsBuf[:0], m.imagesBuf[:0], m.serialBuf[:0]
	if m.cache == nil {
		m.cache = storage.NewStampCache()
	}
	if cfg.Storage != nil {
		m.storage = cfg.Storage.Restore(machineClock{m})
		m.storage.ClearJournal()
	} else {
		m.storage = cfg.Board.NewStorage(machineClock{m})
		for _, r := range cfg.Regions {
			if err := m.storage.AddRegion(r); err != nil {
				return nil, err
			}
		}
	}
	m.storage.SetPowerLossHandler(m.onPowerLoss)
	m.storage.SetObserver(m.onOp)
	m.storage.PowerOff()
	return m, nil
}

// Board returns the machine's board.
func (m *Machine) Board() *Board { return m.board }

// Storage returns the machine's storage system.
func (m *Machine) Storage() *storage.System { return m.storage }

// Internal returns the internal flash.
func (m *Machine) Internal() storage.Device { return m.storage.Device(DeviceInternal) }

// Now returns the virtual time.
func (m *Machine) Now() time.Duration { return m.now }

// State returns what the device is doing.
func (m *Machine) State() State { return m.state }

// Stage returns the stage running ("" when none is).
func (m *Machine) Stage() Stage { return m.stage }

// Image returns the image the running stage was started from (nil if none).
func (m *Machine) Image() *Image { return m.image }

// ResetReason returns why the MCU last started, as Mbed's
// hal_reset_reason_get reports it. With sticky reset flags (STM32) that is
// the highest-priority flag set since power-on or since the flags were
// last cleared (targets/TARGET_STM/reset_reason.c tests watchdog, then
// software, then power-on, brown-out and pin), not necessarily the cause
// of the last reset: after one watchdog reset, every later reset reads
// as a watchdog reset.
func (m *Machine) ResetReason() ResetReason {
	if m.board.ResetFlags != ResetFlagsSticky {
		return m.reason
	}
	for _, r := range []ResetReason{ResetWatchdog, ResetSoftware, ResetPowerOn, ResetBrownOut, ResetPin, ResetLockup} {
		if m.flags&(1<<r) != 0 {
			return r
		}
	}
	return m.reason
}

// LastReset returns the cause of the last reset, whatever the chip's
// reset flags say (ResetReason).
func (m *Machine) LastReset() ResetReason { return m.reason }

// ClearResetFlags clears the chip's reset flags, as Mbed's
// hal_reset_reason_clear does (ResetReason::get calls it): the next reset
// is reported by its own cause.
func (m *Machine) ClearResetFlags() { m.flags = 0 }

// Boots returns how many times the image at address 0 was started.
func (m *Machine) Boots() int { return m.boots }

// Trace returns the events so far. The slice is shared: do not modify it.
func (m *Machine) Trace() []Event { return m.trace[:len(m.trace):len(m.trace)] }

// Serial returns the complete lines printed so far.
func (m *Machine) Serial() []SerialLine { return m.serial[:len(m.serial):len(m.serial)] }

// Register makes a stage implementation available to images whose
// descriptor names it.
func (m *Machine) Register(impl string, p Program) {
	if m.program(impl) != nil {
		panic(fmt.Sprintf("sim: implementation %q registered twice", impl))
	}
	m.programs = append(m.programs, namedProgram{impl, p})
}

type namedProgram struct {
	impl string
	p    Program
}

// program returns the implementation registered as impl, or nil.
func (m *Machine) program(impl string) Program {
	for _, np := range m.programs {
		if np.impl == impl {
			return np.p
		}
	}
	return nil
}

// imageByKey returns the image added with key, or nil.
func (m *Machine) imageByKey(key string) *Image {
	for _, img := range m.images {
		if k, _ := img.ident(); k == key {
			return img
		}
	}
	return nil
}

// AddImage tells the machine about an image the scenario built, so that it
// runs when a stage jumps to an exact copy of it.
func (m *Machine) AddImage(img *Image) {
	key, _ := img.ident()
	if m.imageByKey(key) != nil {
		panic(fmt.Sprintf("sim: image %s added twice", key))
	}
	m.images = append(m.images, img)
}

// AddRawImage tells the machine about a user's binary, which carries no
// descriptor: it runs with the given descriptor's implementation and
// behaviour when a stage jumps to an exact copy of it.
func (m *Machine) AddRawImage(img *Image) {
	m.raw = append(m.raw, img)
}

func (m *Machine) emit(e Event) {
	e.Time = m.now
	m.record(e)
}

// record appends an event with the running stage and image filled in.
func (m *Machine) record(e Event) {
	if e.Stage == "" {
		e.Stage = m.stage
	}
	if m.image != nil {
		e.Image, e.Version = m.image.Desc.Name, m.image.Desc.Version
	}
	m.trace = append(m.trace, e)
}

func (m *Machine) onOp(op storage.Op) {
	if op.Kind == storage.OpRead {
		// A faulted read: not a journal op (Op -1), nothing changed.
		m.record(Event{Time: op.Time, Kind: EvFault, Op: -1, Name: op.Fault.Mode.String(), Detail: op.String()})
		return
	}
	if op.Fault.Mode != storage.FaultNone {
		m.record(Event{Time: op.Time, Kind: EvFault, Op: op.Index, Name: op.Fault.Mode.String(), Detail: op.String()})
	}
	m.record(Event{Time: op.Time, Kind: EvOp, Op: op.Index, Detail: op.String()})
}

func (m *Machine) onPowerLoss(op storage.Op) {
	m.losePower(fmt.Sprintf("power cut at op #%d (%s)", op.Index, op.Fault.Mode))
}

// losePower removes power now: stage code stops where it is (unwinding to
// exec, which powers down); outside stage code the machine powers down at once.
func (m *Machine) losePower(why string) {
	if m.inStage {
		panic(&unwind{kind: unwindPower, detail: why})
	}
	m.powerDown(why)
}

// armedCutFires carries out the power cut armed by CutPowerAt.
func (m *Machine) armedCutFires() {
	m.cutAt = -1
	m.losePower("power cut (armed at " + strings.TrimSpace(FormatTime(m.now)) + ")")
}

// watchdogBites resets the MCU when the watchdog was not kicked in time.
func (m *Machine) watchdogBites() {
	m.emit(Event{Kind: EvWatchdog, Detail: fmt.Sprintf("not kicked for %s", m.wdTimeout)})
	if m.inStage {
		panic(&unwind{kind: unwindReset, reason: ResetWatchdog})
	}
	m.reset(ResetWatchdog, "")
}

// PowerOn applies power: the no-init RAM fills with noise, the reset reason
// is power-on, and the image at address 0 starts after the board's reset
// time. It does nothing if the device has power.
func (m *Machine) PowerOn() {
	if m.state != StateOff {
		return
	}
	m.storage.PowerOn()
	for i := range m.noInit {
		m.noInit[i] = byte(m.noInitRNG.Uint32())
	}
	for i := 0; i < len(m.crashData); i += 8 {
		binary.LittleEndian.PutUint64(m.crashData[i:], m.crashRNG.Uint64())
	}
	m.reason = ResetPowerOn
	// A power-on reset clears the flags and sets its own (and the pin's,
	// which the reset circuit drives).
	m.flags = 1<<ResetPowerOn | 1<<ResetPin
	m.emit(Event{Kind: EvPowerOn})
	m.scheduleBoot()
}

// PowerOff removes power between two instructions, as a scenario step does.
func (m *Machine) PowerOff(why string) {
	if m.state == StateOff {
		return
	}
	m.powerDown(why)
}

func (m *Machine) powerDown(why string) {
	m.flushSerial()
	m.storage.PowerOff()
	m.stop()
	m.state = StateOff
	m.emit(Event{Kind: EvPowerOff, Detail: why})
	m.stage = ""
}

// stop ends everything the current boot started: timers, watchdog, stage.
func (m *Machine) stop() {
	m.stopStage()
	m.wdEnabled = false
	m.image = nil
}

// Reset resets the MCU from outside (pin, brown-out, a debug probe's
// SYSRESETREQ, which reads as software): RAM keeps its contents.
func (m *Machine) Reset(reason ResetReason) {
	if m.state == StateOff {
		return
	}
	m.reset(reason, "")
}

func (m *Machine) reset(reason ResetReason, detail string) {
	m.flushSerial()
	wd, wdDeadline := m.wdEnabled, m.wdDeadline
	m.stop()
	if wd && m.board.WatchdogSurvivesReset(reason) {
		// The watchdog is not reset with the core: it keeps counting from
		// where it was, and nothing in the boot path knows to kick it.
		m.wdEnabled, m.wdDeadline = true, wdDeadline
	}
	m.reason = reason
	m.flags |= 1<<reason | 1<<ResetPin
	m.emit(Event{Kind: EvReset, Name: reason.String(), Detail: detail})
	m.stage = ""
	m.scheduleBoot()
}

// CutPowerAt arms a power cut at a virtual time: stage code running then
// stops at once, as after its last completed storage op.
func (m *Machine) CutPowerAt(t time.Duration) { m.cutAt = t }

// CutPowerOnMark arms a power cut for when a stage reports the named
// milestone (Mark), delay after it: with no delay, the stage stops right
// after reporting it.
func (m *Machine) CutPowerOnMark(name string, delay time.Duration) {
	m.cutOnMark, m.cutDelay = name, delay
}

// Disarm cancels armed power cuts (by time and by milestone).
func (m *Machine) Disarm() {
	m.cutAt, m.cutOnMark = -1, ""
}

// Factory runs fn with the storage powered, as a factory programmer does
// before the device is first switched on, then forgets the ops and time it
// took: the run's journal, trace and clock start after it.
func (m *Machine) Factory(fn func()) {
	if m.state != StateOff {
		panic("sim: Factory on a powered machine")
	}
	m.storage.PowerOn()
	defer func() {
		m.storage.PowerOff()
		m.storage.ClearJournal()
		m.trace = m.trace[:0]
		m.now = 0
	}()
	fn()
}

func (m *Machine) scheduleBoot() {
	m.state = StateBooting
	m.schedule(m.board.ResetTime.D(), func() {
		m.boots++
		m.enter(0)
	})
}

// Run runs the machine until the stop condition holds (checked before the
// first event and after each one) or virtual time reaches the deadline. It
// reports whether the condition held.
func (m *Machine) Run(deadline time.Duration, stop func() bool) bool {
	for {
		if stop != nil && stop() {
			return true
		}
		at, kind := m.next()
		if kind == nextNone || at > deadline {
			m.now = max(m.now, deadline)
			return stop != nil && stop()
		}
		m.now = max(m.now, at)
		switch kind {
		case nextTimer:
			t := heap.Pop(&m.timers).(*timer)
			m.exec(t.fn)
		case nextWatchdog:
			m.watchdogBites()
		case nextCut:
			m.armedCutFires()
		}
	}
}

type nextKind uint8

const (
	nextNone nextKind = iota
	nextTimer
	nextWatchdog
	nextCut
)

func (m *Machine) next() (time.Duration, nextKind) {
	for len(m.timers) > 0 && m.timers[0].epoch != m.epoch {
		heap.Pop(&m.timers)
	}
	at, kind := time.Duration(0), nextNone
	consider := func(t time.Duration, k nextKind) {
		if kind == nextNone || t < at {
			at, kind = t, k
		}
	}
	if len(m.timers) > 0 {
		consider(m.timers[0].at, nextTimer)
	}
	if m.wdEnabled && m.state != StateOff {
		consider(m.wdDeadline, nextWatchdog)
	}
	if m.cutAt >= 0 && m.state != StateOff {
		consider(m.cutAt, nextCut)
	}
	return at, kind
}

// exec runs stage code and carries out whatever unwound it.
func (m *Machine) exec(fn func()) {
	u := m.protect(fn)
	for u != nil {
		if !m.storage.Powered() && u.kind != unwindPower {
			u = &unwind{kind: unwindPower, detail: "power lost"}
		}
		switch u.kind {
		case unwindJump:
			addr := u.addr
			u = m.protect(func() { m.enter(addr) })
		case unwindReset:
			m.reset(u.reason, u.detail)
			u = nil
		case unwindPower:
			m.powerDown(u.detail)
			u = nil
		case unwindHalt:
			m.flushSerial()
			m.state = StateHalted
			if u.deadEnd {
				m.state = StateDeadEnd
			}
			m.emit(Event{Kind: EvHalt, Detail: u.detail})
			u = nil
		case unwindFault:
			m.flushSerial()
			m.emit(Event{Kind: EvLockup, Detail: u.detail})
			if m.board.LockupResets {
				m.reset(ResetLockup, "")
			} else {
				m.stopStage()
				m.state = StateLockedUp
			}
			u = nil
		}
	}
}

// stopStage ends the stage's timers but leaves the watchdog running, as a
// locked-up core does.
func (m *Machine) stopStage() {
	m.epoch++
	m.timers = m.timers[:0]
}

func (m *Machine) protect(fn func()) (u *unwind) {
	m.inStage = true
	defer func() {
		m.inStage = false
		if r := recover(); r != nil {
			x, ok := r.(*unwind)
			if !ok {
				panic(r)
			}
			u = x
		}
	}()
	fn()
	return nil
}

// enter starts the program at addr, if the bytes there are one the machine
// knows; anything else faults.
func (m *Machine) enter(addr uint64) {
	img, why := m.resolve(addr)
	if img == nil {
		m.Fault(fmt.Sprintf("HardFault: no runnable image at 0x%x (%s)", addr, why))
	}
	p := m.program(img.Desc.Impl)
	if p == nil {
		panic(fmt.Sprintf("sim: image %s needs implementation %q, which is not registered", img.Desc.Key(), img.Desc.Impl))
	}
	m.state = StateRunning
	m.stage = img.Desc.Stage
	m.image = img
	m.storage.SetActor(string(m.stage), "")
	m.emit(Event{Kind: EvStage, Addr: addr, Name: string(img.Desc.Stage), Detail: img.Desc.Name + " version " + strconv.FormatUint(img.Desc.Version, 10) + " at 0x" + strconv.FormatUint(addr, 16)})
	p.Run(m, img)
}

// resolve finds the known image whose every byte is at addr on internal flash.
func (m *Machine) resolve(addr uint64) (*Image, string) {
	dev := m.Internal()
	if addr >= dev.Size() {
		return nil, "outside flash"
	}
	candidates, why := m.candidates(dev, addr)
	if len(candidates) == 0 {
		return nil, why
	}
	for _, img := range candidates {
		if m.verify(dev, addr, img) {
			return img, ""
		}
	}
	return nil, "image " + candidates[0].Desc.Key() + " is damaged"
}

// candidates returns the known images that may be at addr, or why there is
// none: the image whose descriptor's encoding is there, compared in place
// (every boot resolves two images, and a descriptor has one encoding, so
// this finds what parsing it and looking its key up would); failing that,
// what the descriptor there names, or the users' binaries that begin with
// the bytes there.
func (m *Machine) candidates(dev storage.Device, addr uint64) ([]*Image, string) {
	for _, img := range m.images {
		if _, h := img.ident(); h != nil && addr+uint64(len(h)) <= dev.Size() && dev.Holds(addr, h) {
			m.found[0] = img // resolve reads it at once: no allocation per jump
			return m.found[:], ""
		}
	}
	head := make([]byte, min(maxDescriptor, dev.Size()-addr))
	dev.Peek(addr, head)
	d, _, err := ParseDescriptor(head)
	if err == nil {
		if img := m.imageByKey(d.Key()); img != nil {
			return []*Image{img}, ""
		}
		return nil, "unknown program " + d.Key()
	}
	var out []*Image
	for _, img := range m.raw {
		n := min(len(img.Bytes), len(head))
		if bytes.Equal(img.Bytes[:n], head[:n]) {
			out = append(out, img)
		}
	}
	if len(out) > 0 {
		return out, ""
	}
	if bytes.Count(head[:min(len(head), 64)], []byte{0xFF}) == min(len(head), 64) {
		return nil, "erased flash"
	}
	return nil, "not a program: " + err.Error()
}

// verify reports whether flash holds exactly img at addr. A match is
// remembered in the cache with the stamp of the pages it covered, so an
// unchanged image is not compared again; any write to those pages changes
// the stamp.
func (m *Machine) verify(dev storage.Device, addr uint64, img *Image) bool {
	n := uint64(len(img.Bytes))
	if addr+n > dev.Size() {
		return false
	}
	st := dev.Stamp(addr, n)
	tag := img.cacheTag()
	if _, ok := m.cache.Get(dev.Name(), addr, n, tag, st); ok {
		return true
	}
	// A stage that hashed exactly these pages (the bootloader checking the
	// image it is about to boot) left their digest: equal to the image's,
	// it proves the bytes without comparing them.
	if sum, ok := m.cache.Get(dev.Name(), addr, n, storage.TagSHA256, st); ok && sum.([32]byte) == img.Sum() {
		m.cache.Put(dev.Name(), addr, n, tag, st, true)
		return true
	}
	if !dev.Holds(addr, img.Bytes) {
		return false
	}
	m.cache.Put(dev.Name(), addr, n, tag, st, true)
	return true
}

// Cache returns the cache of checks over unchanged pages that the machine
// shares with the other forks of its run: a stage may keep there what it
// computes from storage (a digest), keyed by the pages it read, and skip
// the computation when the pages are the same (never the reads: they cost
// virtual time and may fail).
func (m *Machine) Cache() *storage.StampCache { return m.cache }

// Stage API: what firmware running on the machine may call.

// Jump hands the CPU to the image at addr. It does not return.
func (m *Machine) Jump(addr uint64) {
	m.flushSerial()
	// Every boot passes here: no fmt, whose code is cold after a hash.
	m.emit(Event{Kind: EvJump, Addr: addr, Detail: "0x" + strconv.FormatUint(addr, 16)})
	panic(&unwind{kind: unwindJump, addr: addr})
}

// Halt stops the CPU for good (a while(1) loop with interrupts off). It does
// not return.
func (m *Machine) Halt(why string) {
	panic(&unwind{kind: unwindHalt, detail: why})
}

// MbedDie is Mbed OS's mbed_die(), where a main() that returns ends up
// (_exit): interrupts off, LED1 blinking the SOS pattern for ever. The CPU
// is halted as far as anything but a watchdog or an external reset is
// concerned, and the board shows it. It does not return.
func (m *Machine) MbedDie(why string) {
	m.flushSerial()
	m.emit(Event{Kind: EvLED, Name: LEDSOS, Detail: "LED1 (mbed_die)"})
	panic(&unwind{kind: unwindHalt, detail: why})
}

// DeadEnd stops the CPU for good, as Halt does, in the state dead-end: a
// stage that has tried everything it could run says so, and a scenario can
// tell that apart from a silent halt. It does not return.
func (m *Machine) DeadEnd(why string) {
	panic(&unwind{kind: unwindHalt, detail: why, deadEnd: true})
}

// SystemReset requests a software reset (NVIC_SystemReset). It does not return.
func (m *Machine) SystemReset() {
	panic(&unwind{kind: unwindReset, reason: ResetSoftware})
}

// Fault raises a HardFault the stage cannot handle: the core locks up. It
// does not return.
func (m *Machine) Fault(why string) {
	panic(&unwind{kind: unwindFault, detail: why})
}

// Spend advances time by CPU work of duration d.
func (m *Machine) Spend(d time.Duration) { machineClock{m}.Advance(d) }

// SpendHashing advances time by hashing n bytes at the board's hash rate.
func (m *Machine) SpendHashing(n uint64) { m.Spend(m.board.HashTime(n)) }

// After runs fn once the stage is idle and d has passed, unless a reset or
// power loss comes first. d below a microsecond counts as a microsecond, so
// a stage cannot spin without time passing.
func (m *Machine) After(d time.Duration, fn func()) {
	m.schedule(max(d, time.Microsecond), fn)
}

func (m *Machine) schedule(d time.Duration, fn func()) {
	m.seq++
	heap.Push(&m.timers, &timer{at: m.now + d, seq: m.seq, epoch: m.epoch, fn: fn})
}

// StartWatchdog starts (or restarts) the watchdog with a timeout. Only a
// reset or power loss stops it.
func (m *Machine) StartWatchdog(timeout time.Duration) {
	m.wdEnabled = true
	m.wdTimeout = timeout
	m.wdDeadline = m.now + timeout
}

// KickWatchdog restarts the watchdog's count.
func (m *Machine) KickWatchdog() {
	if m.wdEnabled {
		m.wdDeadline = m.now + m.wdTimeout
	}
}

// NoInit returns the RAM that survives warm resets and holds noise after
// power-on. Stages read and write it in place.
func (m *Machine) NoInit() []byte { return m.noInit }

// CrashData returns the crash-data RAM: like NoInit, it survives warm
// resets and holds noise after power-on, but no start-up code clears it
// (it is a NOLOAD section of every Mbed OS image's linker script).
func (m *Machine) CrashData() []byte { return m.crashData[:] }

// WatchdogRunning says whether the watchdog is counting.
func (m *Machine) WatchdogRunning() bool { return m.wdEnabled }

// Rand returns the generator for firmware-level randomness (a nonce, a
// backoff jitter), seeded by the run's seed.
func (m *Machine) Rand() *rand.Rand { return m.firmware }

// Print writes text to the serial console. Lines end at "\n"; "\r" is dropped.
func (m *Machine) Print(s string) {
	for {
		i := strings.IndexByte(s, '\n')
		if i < 0 {
			m.printLine(s)
			return
		}
		if line, ok := m.wholeLine(s[:i]); ok {
			m.addLine(line)
		} else {
			m.printLine(s[:i])
			m.endLine()
		}
		s = s[i+1:]
	}
}

// PrintLine writes s and ends the line, as Print(s + "\r\n") does, without
// building that string.
func (m *Machine) PrintLine(s string) {
	if line, ok := m.wholeLine(s); ok && !strings.ContainsRune(s, '\n') {
		m.addLine(line)
		return
	}
	m.Print(s + "\r\n")
}

// wholeLine returns seg, the text before a newline, as the line it ends
// when nothing is pending and seg holds no carriage return but a last one:
// the common "text\r\n" becomes a line without a copy.
func (m *Machine) wholeLine(seg string) (string, bool) {
	if m.partial.Len() > 0 {
		return "", false
	}
	seg = strings.TrimSuffix(seg, "\r")
	if strings.IndexByte(seg, '\r') >= 0 {
		return "", false
	}
	return seg, true
}

// printLine adds text without a newline to the line being printed. A
// carriage return followed by a newline is dropped ("\r\n" ends a line);
// one followed by text starts the line over, as a terminal shows it (a
// progress bar redrawn in place ends as its last drawing), even when the
// text comes in a later print.
func (m *Machine) printLine(s string) {
	for s != "" {
		if s[0] == '\r' {
			m.carriage = true
			s = s[1:]
			continue
		}
		if m.carriage {
			m.partial.Reset()
			m.carriage = false
		}
		i := strings.IndexByte(s, '\r')
		if i < 0 {
			i = len(s)
		}
		m.partial.WriteString(s[:i])
		s = s[i:]
	}
}

// Printf formats and writes text to the serial console.
func (m *Machine) Printf(format string, args ...any) { m.Print(fmt.Sprintf(format, args...)) }

func (m *Machine) endLine() {
	text := m.partial.String()
	m.partial.Reset()
	m.addLine(text)
}

// addLine records a finished line of serial output.
func (m *Machine) addLine(text string) {
	m.carriage = false
	m.serial = append(m.serial, SerialLine{Time: m.now, Text: text})
	m.emit(Event{Kind: EvSerial, Detail: text})
}

func (m *Machine) flushSerial() {
	if m.partial.Len() > 0 {
		m.endLine()
	}
}

// Mark records a named milestone ("copy-begin", "app-running"), which
// scenarios wait for and expect.
func (m *Machine) Mark(name, detail string) {
	m.emit(Event{Kind: EvMark, Name: name, Detail: detail})
	if m.cutOnMark != "" && m.cutOnMark == name {
		m.cutOnMark = ""
		if m.cutDelay > 0 {
			m.cutAt = m.now + m.cutDelay
			return
		}
		m.losePower("power cut at " + name)
	}
}

// Check records the outcome of a check a stage made.
func (m *Machine) Check(name string, ok bool, detail string) {
	m.emit(Event{Kind: EvCheck, Name: name, OK: ok, Detail: detail})
}

// Transition records a state-machine transition.
func (m *Machine) Transition(machine, from, to string) {
	m.emit(Event{Kind: EvState, Name: machine, Detail: from + " → " + to})
}

// SetPhase labels the storage ops that follow (for the journal and matchers).
func (m *Machine) SetPhase(phase string) { m.storage.SetPhase(phase) }

type timer struct {
	at    time.Duration
	seq   uint64
	epoch uint64
	fn    func()
}

type timerQueue []*timer

func (q timerQueue) Len() int { return len(q) }
func (q timerQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q timerQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *timerQueue) Push(x any)   { *q = append(*q, x.(*timer)) }
func (q *timerQueue) Pop() any {
	old := *q
	t := old[len(old)-1]
	*q = old[:len(old)-1]
	return t
}
