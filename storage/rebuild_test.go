package storage

import (
	"bytes"
	"fmt"
	"hash/fnv"
	"testing"

	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

// stateOf describes everything a device holds that a later op or a firmware
// read can see: the bytes, the wear, worn sectors, stuck bits, whether the
// card is in and which blocks are bad.
func stateOf(s *System) string {
	var b bytes.Buffer
	for _, d := range s.devices {
		h := fnv.New64a()
		h.Write(contents(d))
		fmt.Fprintf(&b, "%s %x", d.Name(), h.Sum64())
		switch x := d.(type) {
		case *NORFlash:
			fmt.Fprintf(&b, " erases %v worn %v stuck %v", x.erases, x.worn, x.stuck)
		case *SDCard:
			bad := []uint64{}
			for lba := range x.Size() / SDBlockSize {
				if x.bad[lba] {
					bad = append(bad, lba)
				}
			}
			fmt.Fprintf(&b, " present %v bad %v stuck %v", !x.removed, bad, x.stuck)
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// step is one thing a drawn script does to a system: an op or an external
// change.
type step func(s *System)

// drawScript draws up to 30 ops on a NOR flash and an SD card, with external
// changes (bit flips, the card out and in, bad blocks, an attacker's
// writes) between them.
func drawScript(t *rapid.T) []step {
	var script []step
	nor := func(s *System) *NORFlash { return s.Device("nor").(*NORFlash) }
	sdc := func(s *System) *SDCard { return s.Device("sd").(*SDCard) }
	shape := newScriptSystem() // for drawing aligned ranges only
	for i := range rapid.IntRange(1, 30).Draw(t, "steps") {
		label := fmt.Sprint(i)
		switch rapid.IntRange(0, 7).Draw(t, "kind-"+label) {
		case 0:
			a, n := drawSectorRange(t, nor(shape), label)
			script = append(script, func(s *System) { _ = nor(s).Erase(a, n) })
		case 1, 2:
			a, d := drawProgram(t, nor(shape), label)
			script = append(script, func(s *System) { _ = nor(s).Program(a, d) })
		case 3:
			blocks := rapid.Uint64Range(1, 4).Draw(t, "blocks-"+label)
			at := rapid.Uint64Range(0, 32-blocks).Draw(t, "lba-"+label)
			data := rapid.SliceOfN(rapid.Byte(), int(blocks*SDBlockSize), int(blocks*SDBlockSize)).Draw(t, "sd-"+label)
			script = append(script, func(s *System) { _ = sdc(s).Program(at*SDBlockSize, data) })
		case 4:
			dev := rapid.SampledFrom([]string{"nor", "sd"}).Draw(t, "flip-dev-"+label)
			addr := rapid.Uint64Range(0, shape.Device(dev).Size()-1).Draw(t, "flip-addr-"+label)
			bit := uint(rapid.IntRange(0, 7).Draw(t, "flip-bit-"+label))
			script = append(script, func(s *System) { s.Device(dev).FlipBit(addr, bit) })
		case 5:
			out := rapid.Bool().Draw(t, "remove-"+label)
			script = append(script, func(s *System) {
				if out {
					sdc(s).Remove()
				} else {
					sdc(s).Insert()
				}
			})
		case 6:
			lba := rapid.Uint64Range(0, 31).Draw(t, "bad-lba-"+label)
			bad := rapid.Bool().Draw(t, "bad-"+label)
			script = append(script, func(s *System) { sdc(s).SetBadBlock(lba, bad) })
		case 7:
			dev := rapid.SampledFrom([]string{"nor", "sd"}).Draw(t, "tamper-dev-"+label)
			size := shape.Device(dev).Size()
			addr := rapid.Uint64Range(0, size-1).Draw(t, "tamper-addr-"+label)
			data := rapid.SliceOfN(rapid.Byte(), 1, int(min(64, size-addr))).Draw(t, "tamper-data-"+label)
			script = append(script, func(s *System) { s.Device(dev).Tamper(addr, data) })
		}
	}
	return script
}

func newScriptSystem() *System {
	s := NewSystem(nil)
	s.NewNORFlash(NORConfig{Name: "nor", ProgramUnit: 8, Sectors: []SectorRun{{Size: 2048, Count: 8}}})
	s.NewSDCard(SDConfig{Name: "sd", Size: 16 << 10, Blank: 0x00})
	return s
}

// drawRules draws faults at op indexes, of the modes that leave the run going
// (a power cut is followed by power coming back, as a new boot would).
func drawRules(t *rapid.T, label string) Rules {
	modes := []FaultMode{FaultBitFlip, FaultStuckBit, FaultIOError, FaultTorn, FaultCutAfter, FaultCutBefore, FaultWearOut, FaultSDRemoved}
	var rules Rules
	for i := range rapid.IntRange(0, 3).Draw(t, label) {
		rules = append(rules, &Rule{
			Match: OnIndex(rapid.IntRange(0, 30).Draw(t, fmt.Sprint(label, "-at-", i))),
			Fault: Fault{Mode: rapid.SampledFrom(modes).Draw(t, fmt.Sprint(label, "-mode-", i)), Seed: rapid.Uint64().Draw(t, fmt.Sprint(label, "-seed-", i))},
		})
	}
	return rules
}

// play runs a script on a system, power coming back before each step, and
// stops once stop says so (checked after each step).
func play(s *System, script []step, stop func() bool) {
	for _, st := range script {
		s.PowerOn()
		st(s)
		if stop != nil && stop() {
			return
		}
	}
}

// TestPropertyRebuildMatchesRun: the state a Rebuilder gives before op i,
// from the run's start, journal and change log, is the state the live run
// had when it was about to issue op i (seen through the before-op hook),
// for runs with faults, bit flips, a card pulled out and bad blocks.
func TestPropertyRebuildMatchesRun(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		script := drawScript(t)
		s := newScriptSystem()
		start := s.Snapshot()
		s.SetInjector(drawRules(t, "faults"))
		var live []string
		s.SetBeforeOp(func(op Op) {
			if op.Index != len(live) {
				t.Fatalf("before-op hook saw op %d after %d ops", op.Index, len(live))
			}
			live = append(live, stateOf(s))
		})
		play(s, script, nil)
		final := stateOf(s)

		r := start.Rebuild(s.Journal(), s.Changes())
		for i := range live {
			require.Equal(t, i, r.Index())
			sn, err := r.Snapshot()
			require.NoError(t, err)
			if got := stateOf(sn.Restore(nil)); got != live[i] {
				t.Fatalf("before op %d (%s): rebuilt\n%s\nlive\n%s", i, s.Journal()[i], got, live[i])
			}
			require.NoError(t, r.Step())
		}
		require.True(t, r.Done())
		sn, err := r.Snapshot()
		require.NoError(t, err)
		require.Equal(t, final, stateOf(sn.Restore(nil)), "after the last op and the changes that followed it")
	})
}

// TestPropertyForkMatchesReplay: forking the rebuilt state at op i with a
// fault gives the state a run from the start reaches when that fault hits
// op i (pebble's crash clone, checked against the naive replay).
func TestPropertyForkMatchesReplay(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		script := drawScript(t)
		rules := drawRules(t, "faults")
		s := newScriptSystem()
		start := s.Snapshot()
		s.SetInjector(rules)
		play(s, script, nil)
		if len(s.Journal()) == 0 {
			return
		}
		i := rapid.IntRange(0, len(s.Journal())-1).Draw(t, "fork-at")
		f := Fault{
			Mode: rapid.SampledFrom(append([]FaultMode{FaultNone}, FaultModes()...)).Draw(t, "fork-mode"),
			Seed: rapid.Uint64().Draw(t, "fork-seed"),
		}
		r := start.Rebuild(s.Journal(), s.Changes())
		for r.Index() < i {
			require.NoError(t, r.Step())
		}
		forked, err := r.Fork(f, nil)
		require.NoError(t, err)

		// The naive way: the same script from the start, with f at op i
		// instead of whatever the rules said, stopped once op i is done.
		replay := newScriptSystem()
		at := &Rule{Match: OnIndex(i), Fault: f}
		if f.Mode == FaultNone {
			at.Fault = Fault{Mode: FaultNone}
		}
		replay.SetInjector(forkFirst{at: at, rest: rules})
		play(replay, script, func() bool { return len(replay.Journal()) > i })
		require.Equal(t, stateOf(replay), stateOf(forked), "fork at op %d with %s", i, f)
	})
}

// forkFirst injects at's fault (even FaultNone: the op completes cleanly) at
// its op, and the other rules elsewhere.
type forkFirst struct {
	at   *Rule
	rest Rules
}

func (f forkFirst) Inject(op *Op) (Fault, bool) {
	fault, ok := f.rest.Inject(op)
	if g, hit := f.at.Inject(op); hit {
		return g, g.Mode != FaultNone
	}
	return fault, ok
}

// TestFingerprintSeesEveryState: the fingerprint changes with a byte, a
// sector's wear, a stuck bit, the card leaving and a bad block, and not
// with a clone.
func TestFingerprintSeesEveryState(t *testing.T) {
	s := newScriptSystem()
	fp := func() [32]byte { return s.Snapshot().Fingerprint() }
	seen := map[[32]byte]string{fp(): "start"}
	require.Equal(t, fp(), s.Clone(nil).Snapshot().Fingerprint())
	nor, sd := s.Device("nor").(*NORFlash), s.Device("sd").(*SDCard)
	for _, ch := range []struct {
		name string
		do   func()
	}{
		{"a flipped bit", func() { nor.FlipBit(100, 3) }},
		{"an erase of an erased sector (wear only)", func() { require.NoError(t, nor.Erase(2048, 2048)) }},
		{"a stuck bit", func() { nor.stuck = append(nor.stuck, stuckBit{addr: 9, mask: 1}) }},
		{"a card out", func() { sd.Remove() }},
		{"a bad block", func() { sd.SetBadBlock(3, true) }},
		{"an SD byte", func() { sd.FlipBit(600, 0) }},
		{"an attacker's write", func() { nor.Tamper(4000, []byte{1, 2, 3}) }},
	} {
		ch.do()
		got := fp()
		require.NotContains(t, seen, got, "%s left the fingerprint as after %s", ch.name, seen[got])
		seen[got] = ch.name
	}
}

// TestFingerprintIsContents: the fingerprint depends on the bytes, not on
// how they are stored: a page written with blank bytes is a page never
// written, and the same bytes written in other orders give the same print.
func TestFingerprintIsContents(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := newScriptSystem(), newScriptSystem()
		sda, sdb := a.Device("sd").(*SDCard), b.Device("sd").(*SDCard)
		// b writes blank blocks where a writes nothing.
		for range rapid.IntRange(0, 3).Draw(t, "blank-writes") {
			lba := rapid.Uint64Range(0, 31).Draw(t, "blank-lba")
			sdb.Load(lba*SDBlockSize, make([]byte, SDBlockSize))
		}
		writes := rapid.SliceOfN(rapid.Uint64Range(0, 31), 0, 6).Draw(t, "lbas")
		for _, lba := range writes {
			sda.Load(lba*SDBlockSize, bytes.Repeat([]byte{byte(lba + 1)}, SDBlockSize))
		}
		for i := len(writes) - 1; i >= 0; i-- {
			sdb.Load(writes[i]*SDBlockSize, bytes.Repeat([]byte{byte(writes[i] + 1)}, SDBlockSize))
		}
		if rapid.Bool().Draw(t, "differ") {
			at := rapid.Uint64Range(0, sda.Size()-1).Draw(t, "flip-at")
			sdb.flip(at, 0)
			require.NotEqual(t, a.Snapshot().Fingerprint(), b.Snapshot().Fingerprint())
			return
		}
		require.Equal(t, a.Snapshot().Fingerprint(), b.Snapshot().Fingerprint())
	})
}

// TestStampCache: a value comes back only for the same range, tag and page
// contents; a write, a clone's write or another range misses; forks share
// the pages they did not write, and with them the entries.
func TestStampCache(t *testing.T) {
	s := newScriptSystem()
	nor := s.Device("nor")
	require.NoError(t, nor.Program(0, bytes.Repeat([]byte{0x5A}, 64)))
	c := NewStampCache()
	c.Put("nor", 0, 64, "sum", nor.Stamp(0, 64), "v1")
	got, ok := c.Get("nor", 0, 64, "sum", nor.Stamp(0, 64))
	require.True(t, ok)
	require.Equal(t, "v1", got)
	for _, miss := range []struct {
		dev     string
		addr, n uint64
		tag     string
	}{{"sd", 0, 64, "sum"}, {"nor", 8, 64, "sum"}, {"nor", 0, 32, "sum"}, {"nor", 0, 64, "other"}} {
		_, ok := c.Get(miss.dev, miss.addr, miss.n, miss.tag, nor.Stamp(miss.addr, miss.n))
		require.False(t, ok, "%+v", miss)
	}
	// A fork that did not write the page hits; one that did misses, and so
	// does the original after its own write.
	fork := s.Clone(nil)
	_, ok = c.Get("nor", 0, 64, "sum", fork.Device("nor").Stamp(0, 64))
	require.True(t, ok, "a fork shares the unchanged page")
	require.NoError(t, fork.Device("nor").Program(1024, bytes.Repeat([]byte{0}, 8)))
	_, ok = c.Get("nor", 0, 64, "sum", fork.Device("nor").Stamp(0, 64))
	require.False(t, ok, "the fork wrote the page")
	require.NoError(t, nor.Program(64, bytes.Repeat([]byte{0}, 8)))
	_, ok = c.Get("nor", 0, 64, "sum", nor.Stamp(0, 64))
	require.False(t, ok, "the original wrote the page")
	// Only a few contents of a range are kept.
	for i := range 6 {
		require.NoError(t, nor.Program(uint64(128+8*i), bytes.Repeat([]byte{0}, 8)))
		c.Put("nor", 0, 64, "sum", nor.Stamp(0, 64), i)
	}
	require.Equal(t, stampsPerRange, c.rangeOf(stampKey{"nor", 0, 64, "sum"}).n)
	for i := range stampsPerRange { // the newest, oldest first
		v, ok := c.Get("nor", 0, 64, "sum", c.rangeOf(stampKey{"nor", 0, 64, "sum"}).es[i].stamp)
		require.True(t, ok)
		require.Equal(t, 6-stampsPerRange+i, v)
	}
	var nilCache *StampCache
	nilCache.Put("nor", 0, 64, "sum", nor.Stamp(0, 64), 1)
	_, ok = nilCache.Get("nor", 0, 64, "sum", nor.Stamp(0, 64))
	require.False(t, ok)
}

// TestDropJournalData: a system that drops journal data programs the same
// bytes and journals the same ops, without their data.
func TestDropJournalData(t *testing.T) {
	a, b := newScriptSystem(), newScriptSystem()
	b.DropJournalData()
	for _, s := range []*System{a, b} {
		buf := bytes.Repeat([]byte{0x3C}, 1024)
		require.NoError(t, s.Device("nor").Program(2048, buf))
		buf[0] = 0 // the caller reuses its buffer
		require.NoError(t, s.Device("sd").Program(512, bytes.Repeat([]byte{7}, 512)))
	}
	require.Equal(t, a.Snapshot().Fingerprint(), b.Snapshot().Fingerprint())
	require.Len(t, b.Journal(), 2)
	for i, op := range b.Journal() {
		require.Nil(t, op.Data)
		want := a.Journal()[i]
		want.Data = nil
		require.Equal(t, want, op)
	}
	require.Equal(t, byte(0x3C), a.Journal()[0].Data[0], "a kept copy is not the caller's buffer")
}

// TestTouchesAndIdentity: reads, peeks, stamps and writes mark their pages;
// a snapshot matches an identity while the touched pages and the device
// state stay as they were, whatever happens elsewhere.
func TestTouchesAndIdentity(t *testing.T) {
	s := newScriptSystem()
	nor, sd := s.Device("nor"), s.Device("sd")
	start := s.Snapshot()
	run := start.Restore(nil)
	run.TrackTouches()
	buf := make([]byte, 16)
	require.NoError(t, run.Device("nor").Read(8, buf))           // page 0
	run.Device("nor").Peek(4096, buf)                            // page 1
	_ = run.Device("sd").Stamp(0, 512)                           // page 0
	require.NoError(t, run.Device("nor").Program(8192, buf[:8])) // page 2
	touched := run.Touched()
	require.Equal(t, 4, touched.Pages())
	id := start.Identity(touched)
	require.True(t, start.Matches(touched, id))
	require.True(t, id.Equal(s.Snapshot().Identity(touched)))

	require.NoError(t, nor.Program(12288, buf[:8])) // an untouched page
	require.True(t, s.Snapshot().Matches(touched, id), "a write elsewhere")
	require.NoError(t, sd.Program(4096, make([]byte, 512)))
	require.True(t, s.Snapshot().Matches(touched, id), "an SD write elsewhere")
	require.NoError(t, nor.Program(4096+64, buf[:8])) // touched page 1 (peeked)
	require.False(t, s.Snapshot().Matches(touched, id), "a write to a touched page")

	other := start.Restore(nil)
	other.Device("sd").(*SDCard).Remove()
	require.False(t, other.Snapshot().Matches(touched, id), "the card is out")
	stuck := start.Restore(nil)
	stuck.Device("nor").(*NORFlash).stuck = []stuckBit{{addr: 1, mask: 1}}
	require.False(t, stuck.Snapshot().Matches(touched, id), "a stuck bit")
}

// TestTouchedPagesExactly: an access marks exactly the pages it spans,
// across page boundaries.
func TestTouchedPagesExactly(t *testing.T) {
	for _, tc := range []struct {
		addr, n uint64
		want    []uint64
	}{
		{0, 1, []uint64{0}},
		{4095, 1, []uint64{0}},
		{4095, 2, []uint64{0, 1}},
		{4096, 4096, []uint64{1}},
		{4000, 5000, []uint64{0, 1, 2}},
	} {
		s := newScriptSystem()
		s.TrackTouches()
		s.Device("nor").Peek(tc.addr, make([]byte, tc.n))
		got := s.Touched()
		require.Equal(t, []string{"nor", "sd"}, got.devices)
		require.Equal(t, tc.want, got.pages[0], "%d+%d", tc.addr, tc.n)
		require.Empty(t, got.pages[1])
	}
}

// TestFingerprintSeesWhereBytesAre: a byte written at any page of a card
// with nil chunks, whole blank chunks and a partial last page gives its own
// fingerprint; written with the blank value, it gives the blank one.
func TestFingerprintSeesWhereBytesAre(t *testing.T) {
	const size = 2*chunkSize + 3*pageSize + 512 // two whole chunks, three pages and a partial one
	blankPrint := func() [32]byte {
		s := NewSystem(nil)
		s.NewSDCard(SDConfig{Name: "sd", Size: size, Blank: 0x00})
		return s.Snapshot().Fingerprint()
	}()
	seen := map[[32]byte]uint64{}
	for _, at := range []uint64{0, pageSize, chunkSize - pageSize, chunkSize, chunkSize + pageSize, 2 * chunkSize, 2*chunkSize + 3*pageSize, size - 1} {
		s := NewSystem(nil)
		sd := s.NewSDCard(SDConfig{Name: "sd", Size: size, Blank: 0x00})
		sd.Load(at, []byte{1})
		fp := s.Snapshot().Fingerprint()
		require.NotEqual(t, blankPrint, fp, "a byte at 0x%x", at)
		prev, dup := seen[fp]
		require.False(t, dup, "a byte at 0x%x prints as one at 0x%x", at, prev)
		seen[fp] = at
		sd.Load(at, []byte{0})
		require.Equal(t, blankPrint, s.Snapshot().Fingerprint(), "blank again at 0x%x", at)
	}
}

// TestMetaSeesWearOnlyWhereItMatters: a flash that wears out tells its erase
// counts apart; one that does not, does not.
func TestMetaSeesWearOnlyWhereItMatters(t *testing.T) {
	for _, endurance := range []int{0, 1000} {
		s := NewSystem(nil)
		f := s.NewNORFlash(NORConfig{Name: "nor", ProgramUnit: 8, Endurance: endurance, Sectors: []SectorRun{{Size: 2048, Count: 4}}})
		before := f.meta()
		require.NoError(t, f.Erase(0, 2048))
		if endurance == 0 {
			require.Equal(t, before, f.meta())
		} else {
			require.NotEqual(t, before, f.meta())
		}
	}
}

// TestApplyChangeBounds: a logged change that does not fit its device is
// an error, not a panic.
func TestApplyChangeBounds(t *testing.T) {
	s := newScriptSystem()
	size := s.Device("nor").Size()
	require.NoError(t, s.ApplyChange(Change{Device: "nor", Kind: ChangeFlipBit, Addr: size - 1, Bit: 7}))
	require.ErrorContains(t, s.ApplyChange(Change{Device: "nor", Kind: ChangeFlipBit, Addr: size, Bit: 0}), "out of bounds")
	require.ErrorContains(t, s.ApplyChange(Change{Device: "nor", Kind: ChangeFlipBit, Addr: 0, Bit: 8}), "out of bounds")
	require.ErrorContains(t, s.ApplyChange(Change{Device: "nor", Kind: ChangeRemove}), "not an SD card")
	require.ErrorContains(t, s.ApplyChange(Change{Device: "spi", Kind: ChangeRemove}), `no device "spi"`)
	require.NoError(t, s.ApplyChange(Change{Device: "sd", Kind: ChangeBadBlock, Addr: 3}))
	require.ErrorContains(t, s.ApplyChange(Change{Device: "sd", Kind: ChangeKind(99)}), "unknown change")
}

// TestChangeText: changes read as the log shows them, unknown kinds by
// number.
func TestChangeText(t *testing.T) {
	for _, tc := range []struct {
		c    Change
		want string
	}{
		{Change{Before: 3, Device: "nor", Kind: ChangeFlipBit, Addr: 0x10, Bit: 2}, "before #3 nor flip-bit 0x10 bit 2"},
		{Change{Before: 0, Device: "sd", Kind: ChangeRemove}, "before #0 sd remove"},
		{Change{Before: 1, Device: "sd", Kind: ChangeInsert}, "before #1 sd insert"},
		{Change{Before: 2, Device: "sd", Kind: ChangeBadBlock, Addr: 7}, "before #2 sd bad-block 7"},
		{Change{Before: 2, Device: "sd", Kind: ChangeGoodBlock, Addr: 7}, "before #2 sd good-block 7"},
		{Change{Device: "sd", Kind: 0}, "before #0 sd ChangeKind(0)"},
		{Change{Device: "sd", Kind: ChangeKind(len(changeKindNames))}, fmt.Sprintf("before #0 sd ChangeKind(%d)", len(changeKindNames))},
	} {
		require.Equal(t, tc.want, tc.c.String())
	}
}

// TestParseScheduleNamesTheRule: an error says which rule of a schedule is
// wrong, counting from 1.
func TestParseScheduleNamesTheRule(t *testing.T) {
	_, err := ParseSchedule("op=1;op=2;colour=red")
	require.ErrorContains(t, err, "rule 3: ")
	rules, err := ParseSchedule("op=1;kind=erase,nth=2,mode=torn")
	require.NoError(t, err)
	require.Len(t, rules, 2)
	require.Equal(t, "kind=erase,nth=2,mode=torn,seed=0", rules[1].String())
}
