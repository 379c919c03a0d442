package scenarios

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

	"go.yaml.in/yaml/v3"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/bootsim/bootsim/updateclient"
)

// StepAttack is an attacker with the storage in hand: an SD card in a
// reader, a programmer on the flash. The step writes what the attacker
// writes and nothing else (no time passes, no op is issued); the change
// log records it, so a sweep's forks see it.
const StepAttack = "attack"

// Attack kinds.
const (
	// AttackPlant writes a firmware to candidate slot 0 with a header:
	// "device", the header this device's update client would write for it
	// (replayed from an earlier update, or made with the device key), or
	// "forged", one under a key that is not the device's.
	AttackPlant = "plant"
	// AttackTruncate cuts the candidate in slot 0 short: the bytes from an
	// offset on are erased, the header left as it was.
	AttackTruncate = "truncate"
	// AttackEraseSOTP erases both SOTP areas: the ROT, and under the
	// hardened profile the boot state and the anti-rollback counter, are
	// gone.
	AttackEraseSOTP = "erase-sotp"
	// AttackTearSOTP damages the newest SOTP record, as a write cut short
	// would: its last bytes read erased.
	AttackTearSOTP = "tear-sotp"
	// AttackTearRecord damages the newest copy of the chain profile's boot
	// record (its CRC reads erased); AttackEraseRecord erases both copies.
	AttackTearRecord  = "tear-record"
	AttackEraseRecord = "erase-record"
	// AttackSwapSlots exchanges the contents of candidate slot 0 and the
	// last slot (the hardened profile's saved copy), headers included.
	AttackSwapSlots = "swap-slots"
)

// attackKinds lists the attacks, for errors and the schema.
var attackKinds = []string{AttackEraseRecord, AttackEraseSOTP, AttackPlant, AttackSwapSlots, AttackTearRecord, AttackTearSOTP, AttackTruncate}

// stateAttacks are the attacks written as one word.
var stateAttacks = []string{AttackEraseSOTP, AttackTearSOTP, AttackEraseRecord, AttackTearRecord, AttackSwapSlots}

// Attack is the attack step's argument.
type Attack struct {
	Kind string
	// Plant and Header: the firmware and its header (AttackPlant).
	Plant  string
	Header string
	// Truncate: where the candidate's body is cut.
	Truncate units.Size
	pos      strictyaml.Pos
}

// UnmarshalStrictYAML accepts "attack: erase-sotp", "attack: tear-sotp",
// "attack: {plant: NAME, header: device|forged}" and
// "attack: {truncate: SIZE}".
func (a *Attack) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	a.pos = d.At(n)
	if n.Kind == yaml.ScalarNode {
		if !slices.Contains(stateAttacks, n.Value) {
			return d.Errorf(n, "attack %q: want one of %v (plant and truncate take a mapping)", n.Value, attackKinds)
		}
		a.Kind = n.Value
		return nil
	}
	var p struct {
		Plant    string     `yaml:"plant,omitempty"`
		Header   string     `yaml:"header,omitempty"`
		Truncate units.Size `yaml:"truncate,omitempty"`
	}
	if err := d.Decode(n, &p); err != nil {
		return err
	}
	switch {
	case p.Plant != "" && p.Truncate != 0:
		return d.Errorf(n, "attack: one of plant or truncate")
	case p.Plant != "":
		a.Kind, a.Plant, a.Header = AttackPlant, p.Plant, p.Header
		if a.Header == "" {
			a.Header = "device"
		}
		if a.Header != "device" && a.Header != "forged" {
			return d.Errorf(n, "attack header %q: want device or forged", a.Header)
		}
	case p.Truncate != 0:
		if p.Header != "" {
			return d.Errorf(n, "attack: header goes with plant")
		}
		a.Kind, a.Truncate = AttackTruncate, p.Truncate
	default:
		return d.Errorf(n, "attack: want plant: NAME or truncate: SIZE in a mapping (or one of the words %v)", stateAttacks)
	}
	return nil
}

func (a *Attack) String() string {
	switch a.Kind {
	case AttackPlant:
		return fmt.Sprintf("attack plant %s (%s header)", a.Plant, a.Header)
	case AttackTruncate:
		return fmt.Sprintf("attack truncate at %s", a.Truncate)
	}
	return "attack " + a.Kind
}

// checkAttack checks an attack against the device.
func (l *Loaded) checkAttack(a *Attack) error {
	record := a.Kind == AttackTearRecord || a.Kind == AttackEraseRecord
	switch {
	case l.Chain != nil && !record:
		return a.pos.Errorf("attack %s: the chain profile keeps no SOTP and no candidate slot 0 (its attacks: %s, %s, and app: {plant: NAME})", a.Kind, AttackTearRecord, AttackEraseRecord)
	case l.Chain == nil && record:
		return a.pos.Errorf("attack %s: the %s profile has no boot record; its state is in SOTP (%s, %s)", a.Kind, l.Profile, AttackTearSOTP, AttackEraseSOTP)
	}
	switch a.Kind {
	case AttackEraseSOTP, AttackTearSOTP:
		if !l.Layout.HasSOTP() {
			return a.pos.Errorf("attack %s: the layout has no SOTP sections", a.Kind)
		}
	case AttackPlant:
		if err := l.firmwareRef(a.Plant, a.pos, "attack.plant"); err != nil {
			return err
		}
		u := uint64(l.Board.Flash.ProgramUnit)
		if l.Layout.Storage != sim.DeviceInternal {
			u = 512
		}
		slot := l.Layout.Slots(l.Board)[0]
		if body := l.Layout.SlotBody(l.Board, 0, u); body+uint64(l.Firmware.Get(a.Plant).Size) > slot.Start+slot.Size {
			return a.pos.Errorf("attack.plant: %s does not fit slot 0", a.Plant)
		}
	case AttackSwapSlots:
		if len(l.Layout.Slots(l.Board)) < 2 {
			return a.pos.Errorf("attack swap-slots: the layout has one candidate slot (update-client.storage-locations: 2 gives two)")
		}
	case AttackTruncate:
		if uint64(a.Truncate) >= l.Layout.Slots(l.Board)[0].Size {
			return a.pos.Errorf("attack.truncate: %s is past the end of slot 0", a.Truncate)
		}
	}
	return nil
}

// damagesSOTP reports whether the scenario's attacker damages SOTP itself:
// the sotp-intact invariant then says nothing of the design.
func (l *Loaded) damagesSOTP() bool {
	return slices.ContainsFunc(l.Steps, func(st Step) bool {
		a, ok := st.Action.(stepAttack)
		return ok && (a.a.Kind == AttackEraseSOTP || a.a.Kind == AttackTearSOTP)
	})
}

// attack carries out an attack step.
func (r *runner) attack(a *Attack) error {
	l, m := r.l, r.m
	internal := m.Internal()
	switch a.Kind {
	case AttackEraseSOTP:
		a1, a2 := l.Layout.SOTPAreas()
		for _, ar := range []struct{ addr, size uint64 }{{a1.Addr, a1.Size}, {a2.Addr, a2.Size}} {
			internal.Tamper(ar.addr, bytes.Repeat([]byte{0xFF}, int(ar.size)))
		}
		m.Mark("attacked", "SOTP erased")
	case AttackTearSOTP:
		// The newest record ends where the programmed part of an area ends.
		a1, a2 := l.Layout.SOTPAreas()
		torn := false
		for _, ar := range []struct{ addr, size uint64 }{{a1.Addr, a1.Size}, {a2.Addr, a2.Size}} {
			b := make([]byte, ar.size)
			internal.Peek(ar.addr, b)
			end := len(bytes.TrimRight(b, "\xff"))
			if end > 16 { // more than a master record
				internal.Tamper(ar.addr+uint64(end-4), []byte{0xFF, 0xFF, 0xFF, 0xFF})
				torn = true
			}
		}
		if !torn {
			return fmt.Errorf("attack tear-sotp: SOTP holds no record to tear")
		}
		m.Mark("attacked", "SOTP record torn")
	case AttackTearRecord:
		newest, seq := -1, uint32(0)
		for i, p := range l.Chain.Record {
			b := make([]byte, chain.RecordSize)
			internal.Peek(p.Start, b)
			if rec, err := chain.DecodeRecord(b); err == nil && (newest < 0 || rec.Seq > seq) {
				newest, seq = i, rec.Seq
			}
		}
		if newest < 0 {
			return fmt.Errorf("attack tear-record: no valid boot record to tear")
		}
		internal.Tamper(l.Chain.Record[newest].Start+chain.RecordSize-4, []byte{0xFF, 0xFF, 0xFF, 0xFF})
		m.Mark("attacked", fmt.Sprintf("boot record copy %c torn", 'a'+newest))
	case AttackEraseRecord:
		for _, p := range l.Chain.Record {
			internal.Tamper(p.Start, bytes.Repeat([]byte{0xFF}, int(p.Size)))
		}
		m.Mark("attacked", "boot record erased")
	case AttackSwapSlots:
		dev := m.Storage().Device(l.Layout.Storage)
		slots := l.Layout.Slots(l.Board)
		a0, a1 := slots[0], slots[len(slots)-1]
		// Everything an image of the scenario can occupy: its header and
		// body (an SD slot may be many megabytes, nothing past that was
		// written).
		var largest uint64
		for _, f := range l.Firmware {
			largest = max(largest, uint64(len(r.imgs.app[f.Name].Bytes)))
		}
		n := min(a0.Size, a1.Size, l.Layout.SlotBody(l.Board, 0, dev.ProgramSize())-a0.Start+largest)
		b0, b1 := make([]byte, n), make([]byte, n)
		dev.Peek(a0.Start, b0)
		dev.Peek(a1.Start, b1)
		dev.Tamper(a0.Start, b1)
		dev.Tamper(a1.Start, b0)
		m.Mark("attacked", "slots swapped")
	case AttackPlant:
		dev := m.Storage().Device(l.Layout.Storage)
		img := r.imgs.app[a.Plant]
		f := l.Firmware.Get(a.Plant)
		var hdr, body []byte
		var err error
		if a.Header == "forged" {
			// No device key: a header under another key, the image in clear.
			forged := func() ([]byte, error) { return firmware.DeviceKey(seededROT(l.Seed^0xA77AC4), false) }
			hdr, err = updateclient.CandidateHeader(l.Layout.Storage, f.Version, uint64(len(img.Bytes)), sha256.Sum256(img.Bytes), forged)
			body = img.Bytes
		} else {
			// What this device's client wrote (or would write) for it.
			if hdr, err = l.candidateHeaderFor(img, f.Version, l.candidateKey); err == nil {
				body, err = l.offChipBytes(img)
			}
		}
		if err != nil {
			return fmt.Errorf("attack plant: %v", err)
		}
		u := dev.ProgramSize()
		dev.Tamper(l.Layout.Slots(l.Board)[0].Start, storage.PadToUnit(hdr, u))
		dev.Tamper(l.Layout.SlotBody(l.Board, 0, u), storage.PadToUnit(body, u))
		m.Mark("attacked", fmt.Sprintf("%s planted in slot 0 (%s header)", a.Plant, a.Header))
	case AttackTruncate:
		dev := m.Storage().Device(l.Layout.Storage)
		slot := l.Layout.Slots(l.Board)[0]
		from := l.Layout.SlotBody(l.Board, 0, dev.ProgramSize()) + uint64(a.Truncate)
		blank := byte(0xFF)
		if v := dev.EraseValue(); v >= 0 {
			blank = byte(v)
		}
		// Up to the end of the largest image the scenario has: an SD slot
		// may be many megabytes, and nothing past that was ever written.
		var largest uint64
		for _, f := range l.Firmware {
			largest = max(largest, uint64(len(r.imgs.app[f.Name].Bytes)))
		}
		end := min(slot.Start+slot.Size, l.Layout.SlotBody(l.Board, 0, dev.ProgramSize())+largest)
		if from < end {
			dev.Tamper(from, bytes.Repeat([]byte{blank}, int(end-from)))
		}
		m.Mark("attacked", fmt.Sprintf("slot 0 truncated at %s", a.Truncate))
	}
	return nil
}
