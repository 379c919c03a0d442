package storage

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"time"
)

// Clock is the virtual clock device operations advance. The simulator's MCU
// provides one; ManualClock is a plain implementation for standalone use.
type Clock interface {
	Now() time.Duration
	Advance(d time.Duration)
}

// ManualClock is a Clock that only moves when advanced.
type ManualClock struct{ now time.Duration }

// Now implements Clock.
func (c *ManualClock) Now() time.Duration { return c.now }

// Advance implements Clock.
func (c *ManualClock) Advance(d time.Duration) { c.now += d }

// Region names a range of one device, for journal entries, fault matchers and
// reports (for example "active-app" on "internal").
type Region struct {
	Name   string
	Device string
	Start  uint64
	Size   uint64
}

// End returns the first address after the region.
func (r Region) End() uint64 { return r.Start + r.Size }

// Overlaps reports whether [addr, addr+n) on device dev touches the region.
func (r Region) Overlaps(dev string, addr, n uint64) bool {
	return dev == r.Device && addr < r.End() && r.Start < addr+max(n, 1)
}

// device is what a System needs from each of its devices beyond Device.
type device interface {
	Device
	// memory is the device's contents.
	memory() *memory
	// meta describes what the device holds beyond its bytes that a later
	// op or read can see (stuck bits, worn sectors, a card out, bad blocks).
	meta() string
	// apply carries out op, including op.Fault, on the medium and returns the
	// virtual time it took and the error the issuer sees.
	apply(op *Op) (time.Duration, error)
	// frozen returns a copy of the device that shares its pages and that no
	// one writes; restore makes a live device from such a copy.
	frozen() device
	restore(sys *System) device
	// freeze turns the device itself into a frozen one (Freeze).
	freeze()
}

// System is the set of devices of one simulated board and what they share:
// the op journal, the clock, the fault injector and the power state.
//
// A System is not safe for concurrent use. Snapshots are: any number of
// goroutines may Restore the same Snapshot at once.
type System struct {
	clock    Clock
	devices  []device
	regions  []Region
	journal  []Op
	changes  []Change
	injector Injector
	// readInjector, if set, is asked before every read (read faults);
	// reads counts them, for their Index.
	readInjector Injector
	reads        int
	onPowerLoss  func(Op)
	beforeOp     func(Op)
	observer     func(Op)
	powered      bool
	dropData     bool
	dataBytes    uint64 // bytes of op data the journal holds
	stage        string
	phase        string
}

// NewSystem returns an empty, powered system on the given clock (a new
// ManualClock if nil).
func NewSystem(clock Clock) *System {
	if clock == nil {
		clock = new(ManualClock)
	}
	return &System{clock: clock, powered: true}
}

func (s *System) add(d device) {
	if s.Device(d.Name()) != nil {
		panic(fmt.Sprintf("storage: a device named %q already exists", d.Name()))
	}
	s.devices = append(s.devices, d)
}

// Device returns the device with the given name, or nil.
func (s *System) Device(name string) Device {
	for _, d := range s.devices {
		if d.Name() == name {
			return d
		}
	}
	return nil
}

// Devices returns the devices in the order they were added.
func (s *System) Devices() []Device {
	out := make([]Device, len(s.devices))
	for i, d := range s.devices {
		out[i] = d
	}
	return out
}

// Clock returns the system's clock.
func (s *System) Clock() Clock { return s.clock }

// SetClock replaces the clock, for a restored snapshot that joins a new machine.
func (s *System) SetClock(c Clock) { s.clock = c }

// AddRegion names a range of a device. Regions must lie inside their device.
func (s *System) AddRegion(r Region) error {
	d := s.Device(r.Device)
	if d == nil {
		return fmt.Errorf("region %s: no device %q", r.Name, r.Device)
	}
	if r.Size == 0 || r.End() > d.Size() || r.End() < r.Start {
		return fmt.Errorf("region %s: 0x%x+0x%x does not fit in %s (0x%x bytes)", r.Name, r.Start, r.Size, r.Device, d.Size())
	}
	s.regions = append(s.regions, r)
	return nil
}

// Regions returns the named regions in the order they were added.
func (s *System) Regions() []Region { return slices.Clone(s.regions) }

// Region returns the region with the given name.
func (s *System) Region(name string) (Region, bool) {
	for _, r := range s.regions {
		if r.Name == name {
			return r, true
		}
	}
	return Region{}, false
}

func (s *System) regionOf(dev string, addr, n uint64) string {
	for _, r := range s.regions {
		if r.Overlaps(dev, addr, n) {
			return r.Name
		}
	}
	return ""
}

// SetReadInjector installs the injector consulted before every read, with
// an Op of kind OpRead (nil: none, and reads cost nothing more). A read
// takes FaultIOError (it fails, delivering nothing) or FaultBitFlip (it
// delivers the data with one seeded bit flipped; the medium is unchanged);
// the observer sees each faulted read.
func (s *System) SetReadInjector(inj Injector) { s.readInjector = inj }

// ReadFaults says whether reads can be faulted (SetReadInjector).
func (s *System) ReadFaults() bool { return s.readInjector != nil }

// readFault asks the read injector about a read.
func (s *System) readFault(dev string, addr, n uint64) (Op, bool) {
	op := Op{Index: s.reads, Device: dev, Kind: OpRead, Addr: addr, Len: n, Time: s.clock.Now(), Stage: s.stage, Phase: s.phase,
		Region: s.regionOf(dev, addr, n)}
	s.reads++
	f, ok := s.readInjector.Inject(&op)
	if !ok || (f.Mode != FaultIOError && f.Mode != FaultBitFlip) {
		return op, false
	}
	op.Fault = f
	if s.observer != nil {
		s.observer(op)
	}
	return op, true
}

// faultedRead delivers a read through fn as a read fault makes it: an
// io-error delivers nothing; a bit-flip delivers a copy with one seeded
// bit flipped.
func faultedRead(op Op, view func(func([]byte)), fn func([]byte)) error {
	if op.Fault.Mode == FaultIOError {
		return fmt.Errorf("%s read 0x%x: %w", op.Device, op.Addr, ErrIO)
	}
	buf := make([]byte, 0, op.Len)
	view(func(b []byte) { buf = append(buf, b...) })
	if len(buf) > 0 {
		bit := op.Fault.rng(op.Index).Uint64N(uint64(len(buf)) * 8)
		buf[bit/8] ^= 1 << (bit % 8)
	}
	fn(buf)
	return nil
}

// SetInjector installs the fault injector consulted before every mutating op
// (nil for none).
func (s *System) SetInjector(inj Injector) { s.injector = inj }

// SetPowerLossHandler installs the function called when a fault cuts power,
// after the op's partial effect is on the medium. The simulator's handler does
// not return: it unwinds the running firmware. If the handler returns (or none
// is set) the op returns ErrPowerLost, and so does every op until PowerOn.
func (s *System) SetPowerLossHandler(f func(Op)) { s.onPowerLoss = f }

// SetObserver installs a function called with every mutating op once its
// effect is on the medium and before time advances (nil for none): the
// simulator traces ops and injected faults through it.
func (s *System) SetObserver(f func(Op)) { s.observer = f }

// SetBeforeOp installs a function called with every mutating op before the
// injector is consulted and before the op touches the medium (nil for none):
// the storage is still as the op found it, so a sweep can snapshot the state
// "at op i" (and whatever else it needs, such as the update service's) in the
// same pass that runs the firmware. The function must not issue ops.
func (s *System) SetBeforeOp(f func(Op)) { s.beforeOp = f }

// SetActor records which firmware stage and phase issue the following ops.
func (s *System) SetActor(stage, phase string) { s.stage, s.phase = stage, phase }

// SetPhase changes only the phase.
func (s *System) SetPhase(phase string) { s.phase = phase }

// Powered reports whether the system has power.
func (s *System) Powered() bool { return s.powered }

// PowerOn restores power after a cut.
func (s *System) PowerOn() { s.powered = true }

// PowerOff removes power without a fault, as a scenario's power-cut step does
// between ops.
func (s *System) PowerOff() { s.powered = false }

// DropJournalData makes the journal keep only what each later op was
// (device, range, time, fault), not the bytes it programmed: for a system
// whose journal will never be rebuilt from, such as a sweep's recovery,
// where copying every programmed byte is most of the garbage.
func (s *System) DropJournalData() { s.dropData = true }

// ClearJournal forgets the ops issued and the external changes made so far,
// as after factory programming: a run's journal starts with the first op of
// the run.
func (s *System) ClearJournal() { s.journal, s.changes, s.dataBytes = nil, nil, 0 }

// JournalBytes is how many bytes of op data the journal holds: what a run
// keeps of every programmed byte when it keeps data (DropJournalData).
func (s *System) JournalBytes() uint64 { return s.dataBytes }

// Journal returns the ops issued so far. The slice is shared: callers must not
// modify it.
func (s *System) Journal() []Op { return s.journal[:len(s.journal):len(s.journal)] }

// mutate runs one mutating op that has passed its device's checks: it
// journals the op, consults the injector, applies the op and its fault to the
// medium, advances the clock, and cuts power if the fault says so.
func (s *System) mutate(d device, kind OpKind, addr uint64, data []byte, n uint64) error {
	return s.record(d, kind, addr, data, n, 0, nil)
}

// nextIndex is the index the next op gets: one past the last record's
// last op.
func (s *System) nextIndex() int {
	if n := len(s.journal); n > 0 {
		return s.journal[n-1].Last() + 1
	}
	return 0
}

// mutatePages programs data page by page, one op per page, as a driver
// that calls the HAL's page program in a loop: each page is offered to
// the injector in turn, and the pages up to the first one a rule hits are
// journaled as one record. A page a rule hits is an op of its own.
func (s *System) mutatePages(d device, addr uint64, data []byte, page uint64, pageTime time.Duration) error {
	if !s.powered {
		return fmt.Errorf("%s %s 0x%x: %w", d.Name(), OpProgram, addr, ErrPowerLost)
	}
	n := len(data) / int(page)
	for i := 0; i < n; {
		k, f, hit := n, Fault{}, false
		if !idle(s.injector) {
			lo := uint64(i) * page
			run := Op{Index: s.nextIndex(), Pages: n - i, Device: d.Name(), Kind: OpProgram, Addr: addr + lo,
				Len: uint64(len(data)) - lo, Data: data[lo:], Time: s.clock.Now(), Stage: s.stage, Phase: s.phase}
			for j := i; j < n; j++ {
				op := run.Page(j-i, pageTime)
				op.Region = s.regionOf(d.Name(), op.Addr, page)
				if ff, ok := s.injector.Inject(&op); ok {
					k, f, hit = j, ff, true
					break
				}
			}
		}
		if k > i {
			lo, hi := uint64(i)*page, uint64(k)*page
			if err := s.record(d, OpProgram, addr+lo, data[lo:hi], hi-lo, k-i, &Fault{}); err != nil {
				return err
			}
		}
		if !hit {
			return nil
		}
		lo := uint64(k) * page
		if err := s.record(d, OpProgram, addr+lo, data[lo:lo+page], page, 1, &f); err != nil {
			return err
		}
		i = k + 1
	}
	return nil
}

// record journals one record (pages ops of a run of page programs when
// pages > 1), applies it with its fault and tells the observers. A nil
// fault consults the injector; a given one was decided by mutatePages.
func (s *System) record(d device, kind OpKind, addr uint64, data []byte, n uint64, pages int, fault *Fault) error {
	if !s.powered {
		return fmt.Errorf("%s %s 0x%x: %w", d.Name(), kind, addr, ErrPowerLost)
	}
	op := Op{
		Index:  s.nextIndex(),
		Pages:  pages,
		Device: d.Name(),
		Kind:   kind,
		Addr:   addr,
		Len:    n,
		Time:   s.clock.Now(),
		Stage:  s.stage,
		Phase:  s.phase,
		Region: s.regionOf(d.Name(), addr, n),
	}
	if data != nil {
		op.Data = data
		if !s.dropData {
			op.Data = slices.Clone(data)
			s.dataBytes += uint64(len(data))
		}
	}
	if s.beforeOp != nil {
		s.beforeOp(op)
	}
	switch {
	case fault != nil:
		op.Fault = *fault
	case s.injector != nil:
		if f, ok := s.injector.Inject(&op); ok {
			op.Fault = f
		}
	}
	pos := len(s.journal)
	s.journal = append(s.journal, op)
	dur, err := s.applyOp(d, &op)
	op.Dur = dur
	s.journal[pos].Dur = dur
	if s.dropData {
		s.journal[pos].Data = nil
	}
	if op.Fault.Mode.CutsPower() {
		s.powered = false
	}
	if s.observer != nil {
		s.observer(op)
	}
	s.clock.Advance(dur)
	if op.Fault.Mode.CutsPower() {
		if s.onPowerLoss != nil {
			s.onPowerLoss(op)
		}
		return fmt.Errorf("%s: %w", op, ErrPowerLost)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

func (s *System) applyOp(d device, op *Op) (time.Duration, error) {
	if op.Fault.Mode == FaultSDRemoved {
		// The card leaves the slot whichever device the op addressed, so a
		// scenario can pull it at any moment of a flow.
		for _, other := range s.devices {
			if sd, ok := other.(*SDCard); ok {
				sd.removed = true // the op's fault, journaled with it: not an external change
			}
		}
	}
	return d.apply(op)
}

// Apply carries out a recorded op, with its recorded fault, and appends it to
// the journal. It neither consults the injector nor advances the clock nor
// changes the power state: a sweep uses it to rebuild the state at any op of a
// baseline run from a snapshot of the run's start.
func (s *System) Apply(op Op) error {
	d := s.deviceNamed(op.Device)
	if d == nil {
		return fmt.Errorf("apply %s: no device %q", op, op.Device)
	}
	// The op keeps its recorded index: its fault's damage is seeded by it,
	// and a record of page programs stands for several indices.
	s.journal = append(s.journal, op)
	_, err := s.applyOp(d, &op)
	return err
}

func (s *System) deviceNamed(name string) device {
	for _, x := range s.devices {
		if x.Name() == name {
			return x
		}
	}
	return nil
}

// Snapshot is a frozen copy of a System's devices, regions, journal and
// change log.
type Snapshot struct {
	devices []device
	regions []Region
	journal []Op
	changes []Change
}

// Freeze turns the system into a snapshot of its state without copying its
// devices, for a system nobody will use again: a sweep's fork, made to be
// restored by its recovery, took a snapshot per point only to drop the
// system. The system must not be used afterwards: it has no devices.
func (s *System) Freeze() *Snapshot {
	sn := &Snapshot{regions: s.regions[:len(s.regions):len(s.regions)], journal: s.Journal(), changes: s.Changes()}
	sn.devices = make([]device, len(s.devices))
	for i, d := range s.devices {
		d.freeze()
		sn.devices[i] = d
	}
	s.devices = nil
	return sn
}

// Snapshot returns a frozen copy of the system. It costs one pointer copy per
// MiB of device and shares every page; the system keeps working and copies a
// page the first time it writes it afterwards. The injector, power-loss handler
// and clock are not part of a snapshot.
func (s *System) Snapshot() *Snapshot {
	sn := &Snapshot{regions: slices.Clone(s.regions), journal: s.Journal(), changes: s.Changes()}
	for _, d := range s.devices {
		sn.devices = append(sn.devices, d.frozen())
	}
	return sn
}

// Restore returns a new, powered system with the snapshot's contents on the
// given clock (a new ManualClock if nil). It only reads the snapshot, so many
// goroutines may restore one snapshot at once.
func (sn *Snapshot) Restore(clock Clock) *System {
	s := NewSystem(clock)
	s.regions = sn.regions[:len(sn.regions):len(sn.regions)] // AddRegion appends to a copy
	s.journal = sn.journal[:len(sn.journal):len(sn.journal)]
	s.changes = sn.changes[:len(sn.changes):len(sn.changes)]
	s.devices = make([]device, 0, len(sn.devices))
	for _, d := range sn.devices {
		s.devices = append(s.devices, d.restore(s))
	}
	return s
}

// Release ends the system: the pages that only its devices hold are reused
// by later systems (a sweep's recoveries write a whole image each, and
// would otherwise leave it all to the garbage collector). Nothing of the
// system may be used afterwards; snapshots taken of it stay valid.
func (s *System) Release() {
	for _, d := range s.devices {
		d.memory().release()
	}
	s.devices = nil
}

// Clone returns an independent copy of the system on the given clock: the
// copy and the original never see each other's later writes.
func (s *System) Clone(clock Clock) *System { return s.Snapshot().Restore(clock) }

// Fingerprint is a digest of everything a snapshot's devices hold that a
// later op or read can see: every byte, the wear of every sector, worn-out
// sectors, stuck bits, whether a card is in and which blocks are bad. Two
// snapshots with equal fingerprints behave the same under the same ops.
func (sn *Snapshot) Fingerprint() [32]byte {
	h := sha256.New()
	for _, d := range sn.devices {
		fmt.Fprintf(h, "%s %d\n", d.Name(), d.Size())
		switch x := d.(type) {
		case *NORFlash:
			x.mem.digest(h)
			fmt.Fprintf(h, "erases %v worn %v stuck %v\n", x.erases, x.worn, x.stuck)
		case *SDCard:
			x.mem.digest(h)
			bad := slices.Sorted(maps.Keys(x.bad))
			fmt.Fprintf(h, "present %v bad %v stuck %v\n", !x.removed, bad, x.stuck)
		default:
			panic(fmt.Sprintf("storage: no fingerprint for a %T", d))
		}
	}
	var out [32]byte
	h.Sum(out[:0])
	return out
}
