package bootloader

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"time"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/hardened"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// Milestones of the hardened bootloader, beside the classic ones it shares
// (active-valid, candidate-found, copy-begin … copy-done, booting).
const (
	MarkSignatureRejected = "signature-rejected"
	MarkDowngradeRefused  = "downgrade-refused"
	MarkSaveBegin         = "save-begin"
	MarkSaveDone          = "save-done"
	MarkTrialBoot         = "trial-boot"
	MarkRollback          = "rollback"
	MarkCounterRaised     = "counter-raised"
	MarkRetry             = "retry"
)

// HardenedConfig configures the hardened bootloader.
type HardenedConfig struct {
	Layout *mbedlayout.Layout
	// Vendor is the key the bootloader was built with: every image it
	// installs, saves, restores or boots carries a signature by it.
	Vendor *ecdsa.PublicKey
	// MaxAttempts is how many boots a new version gets to confirm.
	MaxAttempts int
	// Watchdog is the bootloader's own watchdog, kicked after every flash
	// operation of a copy.
	Watchdog time.Duration
	// BackoffFirst and BackoffMax bound the delay before a retry at a dead
	// end; it doubles at each retry.
	BackoffFirst, BackoffMax time.Duration
	// Encrypt keeps candidates and the saved copy encrypted when they are
	// off-chip (AES-CTR under a key derived from the device key).
	Encrypt bool
	// BackwardCompatibleKey derives the device key the old way.
	BackwardCompatibleKey bool
}

// Defaults of HardenedConfig.
const (
	DefaultHardenedAttempts = 3
	DefaultHardenedWatchdog = 10 * time.Second
	DefaultBackoffFirst     = time.Second
	DefaultBackoffMax       = 8 * time.Second // below the watchdog, which keeps running
)

// DefaultHardenedConfig returns the defaults over a layout and a key.
func DefaultHardenedConfig(l *mbedlayout.Layout, vendor *ecdsa.PublicKey) HardenedConfig {
	return HardenedConfig{Layout: l, Vendor: vendor, MaxAttempts: DefaultHardenedAttempts, Watchdog: DefaultHardenedWatchdog,
		BackoffFirst: DefaultBackoffFirst, BackoffMax: DefaultBackoffMax}
}

// Hardened is the hardened profile's bootloader: the Mbed layout with the
// five weaknesses of mbed-stack.md §7 fixed. It boots and installs only
// images signed by the vendor, saves the active image before it replaces
// it, boots a new version on trial and restores the saved one if the new
// one does not confirm within its attempts, counts those attempts in SOTP
// on every boot, refuses any version below a monotonic counter, writes
// every header after the body it describes, and at a dead end retries with
// a growing delay instead of halting. RATIONALE.md says why for each.
type Hardened struct {
	cfg HardenedConfig
}

// NewHardened returns the hardened bootloader.
func NewHardened(cfg HardenedConfig) *Hardened {
	if cfg.Layout == nil || cfg.Vendor == nil {
		panic("bootloader: Hardened needs a layout and a vendor key")
	}
	return &Hardened{cfg: cfg}
}

// Where the retry count of the dead end lives in no-init RAM: after the
// classic cells, behind a magic word, since power-on leaves noise there.
const (
	retryMagicOffset = 16
	retryCountOffset = 20
	retryMagic       = 0x48525459 // "HRTY"
)

// stored is what the bootloader knows of an image it checked.
type stored struct {
	version, size uint64 // size includes the signature trailer
	hash          [32]byte
	campaign      [16]byte
	// crypt decrypts the image where it is stored (nil: in clear).
	crypt *firmware.CandidateCipher
}

// hardenedRun is one boot of the hardened bootloader.
type hardenedRun struct {
	*run
	h     *Hardened
	st    *hardened.Store
	state hardened.State
	// counter is the anti-rollback counter as stored; floor is the lowest
	// version the boot accepts, which also counts the confirmed active
	// image (the counter record may have been erased by an attacker).
	counter, floor uint64
}

// Run implements sim.Program.
func (h *Hardened) Run(m *sim.Machine, _ *sim.Image) {
	lay := h.cfg.Layout
	r := &hardenedRun{h: h, run: &run{Classic: &Classic{cfg: Config{Layout: lay, BackwardCompatibleKey: h.cfg.BackwardCompatibleKey}},
		m: m, l: lay, active: m.Internal(), store: m.Storage().Device(lay.Storage)}}
	r.buffer = buffers.Get().(*[BufferSize]byte)
	*r.buffer = [BufferSize]byte{}
	defer buffers.Put(r.buffer)

	m.Print("\r\nHardened Bootloader\r\n")
	m.StartWatchdog(h.cfg.Watchdog)
	if sd, ok := r.store.(*storage.SDCard); ok && !sd.Present() {
		m.Print("[WARN] no candidate storage: booting what is installed\r\n")
		r.store = nil
	}
	if r.boot() {
		binary.LittleEndian.PutUint32(m.NoInit()[retryMagicOffset:], 0)
		m.Print("booting...\r\n\r\n")
		m.Mark(MarkBooting, "")
		m.Jump(uint64(lay.ApplicationStart))
	}
	r.retry()
}

// boot decides what to run, installing or restoring first if it must, and
// reports whether the active region holds an image to jump to.
func (r *hardenedRun) boot() bool {
	m := r.m
	m.SetPhase("state")
	a1, a2 := r.l.SOTPAreas()
	st, err := hardened.Open(r.active, a1, a2)
	if err != nil {
		m.Printf("[ERR ] SOTP: %v\r\n", err)
		m.Check("sotp", false, err.Error())
		return false
	}
	r.st = st
	if r.state, err = st.State(); err != nil {
		m.Printf("[WARN] boot state: %v\r\n", err)
		m.Check("boot-state", false, err.Error())
	}
	if r.counter, err = st.Counter(); err != nil {
		m.Printf("[WARN] anti-rollback counter: %v\r\n", err)
		m.Check("counter", false, err.Error())
	}
	// A confirmation whose counter write was cut: finish it.
	if r.state.Status == hardened.Confirmed && r.counter < r.state.Version {
		r.raise(r.state.Version)
	}
	r.floor = r.counter

	m.SetPhase("check-active")
	act, actOK := r.checkActive()
	settled := r.state.Status == hardened.Idle || r.state.Status == hardened.Confirmed || r.state.Status == hardened.RolledBack
	if actOK && settled && act.version > r.floor {
		r.floor = act.version
	}

	// Finish what a cut interrupted, then the trial.
	switch {
	case r.state.Status == hardened.Installing && actOK && act.version == r.state.Version:
		r.setState(hardened.State{Status: hardened.Trial, Version: act.version, Previous: r.state.Previous})
	case r.state.Status == hardened.Trial && actOK && r.state.Previous != 0 && act.version == r.state.Previous:
		r.setState(hardened.State{Status: hardened.RolledBack, Version: r.state.Version, Previous: act.version})
	}
	if r.state.Status == hardened.Trial {
		onTrial := actOK && act.version == r.state.Version
		if onTrial && int(r.state.Attempts) < r.h.cfg.MaxAttempts {
			r.state.Attempts++
			r.setState(r.state)
			m.Printf("[BOOT] version %d on trial: attempt %d of %d\r\n", act.version, r.state.Attempts, r.h.cfg.MaxAttempts)
			m.Mark(MarkTrialBoot, fmt.Sprintf("version %d attempt %d", act.version, r.state.Attempts))
			return true
		}
		why := fmt.Sprintf("version %d did not confirm in %d attempts", r.state.Version, r.h.cfg.MaxAttempts)
		if !onTrial {
			why = fmt.Sprintf("version %d on trial is no longer intact", r.state.Version)
		}
		if r.rollback(why) {
			return true
		}
		if actOK {
			m.Printf("[WARN] no previous version to roll back to: keeping version %d\r\n", act.version)
			return true
		}
		return false
	}
	if actOK {
		m.Mark(MarkActiveValid, fmt.Sprintf("version %d", act.version))
	}

	// The candidate.
	m.SetPhase("scan")
	if cand, ok := r.checkCandidate(); ok {
		resume := r.state.Status == hardened.Installing && cand.version == r.state.Version
		if !actOK && !resume {
			// With no valid active image the floor cannot come from it,
			// and the counter may have been erased with SOTP: the saved
			// copy, an authentic version the device held, is a floor too.
			if s, ok := r.checkSaved(); ok && s.version > r.floor {
				r.floor = s.version
			}
		}
		switch {
		case cand.version < r.floor:
			m.Printf("[WARN] update image version %d is below the anti-rollback floor %d\r\n", cand.version, r.floor)
			m.Mark(MarkDowngradeRefused, fmt.Sprintf("version %d below %d", cand.version, r.floor))
		case r.state.Status == hardened.RolledBack && cand.version == r.state.Version:
			m.Print("Update image failed its trial before\r\n")
		case resume || !actOK || cand.version > act.version:
			m.Mark(MarkCandidateFound, fmt.Sprintf("slot 0 version %d", cand.version))
			installed, touched := r.install(cand, act, actOK)
			switch {
			case installed:
				return true
			case touched:
				// What was saved goes back, and the candidate is not
				// tried again: the state says it failed.
				return r.rollback(fmt.Sprintf("installing version %d failed", cand.version))
			}
		default:
			m.Print("Update image is not newer\r\n")
		}
	}
	if actOK {
		m.Print("[DBG ] Active firmware up-to-date\r\n")
		return true
	}
	return r.restore("the active image is not valid")
}

// retry ends a boot that found nothing to run: it says so, and resets after
// a delay that doubles at each retry (kept in no-init RAM, which a software
// reset keeps).
func (r *hardenedRun) retry() {
	m := r.m
	ram := m.NoInit()
	n := uint32(0)
	if binary.LittleEndian.Uint32(ram[retryMagicOffset:]) == retryMagic {
		n = binary.LittleEndian.Uint32(ram[retryCountOffset:])
	}
	delay := r.h.cfg.BackoffMax
	if n < 16 {
		delay = min(r.h.cfg.BackoffFirst<<n, r.h.cfg.BackoffMax)
	}
	binary.LittleEndian.PutUint32(ram[retryMagicOffset:], retryMagic)
	binary.LittleEndian.PutUint32(ram[retryCountOffset:], n+1)
	m.Printf("[ERR ] no bootable image: retry %d in %s\r\n", n+1, delay)
	m.Mark(MarkRetry, fmt.Sprintf("retry %d in %s", n+1, delay))
	m.After(delay, m.SystemReset)
}

// setState writes the boot state.
func (r *hardenedRun) setState(s hardened.State) {
	if err := r.st.SetState(s); err != nil {
		r.m.Check("write-state", false, err.Error())
		return
	}
	r.state = s
}

// raise raises the anti-rollback counter.
func (r *hardenedRun) raise(v uint64) {
	if err := r.st.Raise(v); err != nil {
		r.m.Check("write-counter", false, err.Error())
		return
	}
	r.counter = v
	r.m.Printf("[BOOT] anti-rollback counter raised to %d\r\n", v)
	r.m.Mark(MarkCounterRaised, fmt.Sprintf("%d", v))
}

// checkActive reads the active header and verifies the image it describes.
func (r *hardenedRun) checkActive() (stored, bool) {
	b := make([]byte, firmware.InternalHeaderSize)
	if err := r.active.Read(uint64(r.l.ApplicationDetails), b); err != nil {
		return stored{}, false
	}
	h, err := firmware.DecodeInternalHeader(b)
	if err != nil {
		r.m.Print("[DBG ] Active firmware slot is empty or its header is damaged\r\n")
		r.m.Mark(MarkActiveInvalid, err.Error())
		return stored{}, false
	}
	s := stored{version: h.FirmwareVersion, size: h.FirmwareSize, hash: h.FirmwareHash, campaign: h.Campaign}
	if !r.verify("active", r.active, uint64(r.l.ApplicationStart), s) {
		r.m.Mark(MarkActiveInvalid, "")
		return stored{}, false
	}
	if s.version < r.counter {
		r.m.Printf("[WARN] active version %d is below the anti-rollback counter %d\r\n", s.version, r.counter)
		r.m.Mark(MarkDowngradeRefused, fmt.Sprintf("active version %d below %d", s.version, r.counter))
		return stored{}, false
	}
	return s, true
}

// savedSlot is the slot of the saved copy: the last one (the update
// client writes slot 0).
func (r *hardenedRun) savedSlot() int { return len(r.l.Slots(r.m.Board())) - 1 }

// checkCandidate reads slot 0's header, the update client's: external
// with the device HMAC off-chip (a second check, when the device key is
// there), internal with a CRC on internal flash; then verifies the image.
func (r *hardenedRun) checkCandidate() (stored, bool) {
	if r.store == nil {
		return stored{}, false
	}
	slot := r.l.Slots(r.m.Board())[0]
	var s stored
	if r.l.Storage == sim.DeviceInternal {
		b := make([]byte, firmware.InternalHeaderSize)
		if err := r.store.Read(slot.Start, b); err != nil {
			return stored{}, false
		}
		h, err := firmware.ParseInternalHeader(b)
		if err != nil {
			r.m.Print("No Update image\r\n")
			return stored{}, false
		}
		s = stored{version: h.FirmwareVersion, size: h.FirmwareSize, hash: h.FirmwareHash, campaign: h.Campaign}
	} else {
		b := make([]byte, firmware.ExternalHeaderSize)
		if err := r.readAligned(r.store, slot.Start, b); err != nil {
			return stored{}, false
		}
		key, kerr := r.deviceKey()
		if kerr != nil {
			r.m.Print("[WARN] no device key: the candidate's signature is its only check\r\n")
		}
		h, err := firmware.DecodeExternalHeader(b, key)
		if err != nil {
			r.m.Print("No Update image\r\n")
			r.m.Check("slot-0-header", false, err.Error())
			return stored{}, false
		}
		s = stored{version: h.FirmwareVersion, size: h.FirmwareSize, hash: h.FirmwareHash, campaign: h.Campaign}
		if r.h.cfg.Encrypt {
			if h.TransformationMode != firmware.TransformAESCTR {
				r.m.Print("[WARN] slot-0: the candidate is not encrypted\r\n")
				r.m.Check("slot-0-encrypted", false, "transformation mode 0")
				return stored{}, false
			}
			if s.crypt = r.cipher(s.hash); s.crypt == nil || s.crypt.IV() != h.InitVector {
				r.m.Print("[WARN] slot-0: the candidate cannot be decrypted on this device\r\n")
				r.m.Check("slot-0-encrypted", false, "no device key, or another initial counter block")
				return stored{}, false
			}
		}
	}
	if !r.verify("slot-0", r.store, r.l.SlotBody(r.m.Board(), 0, r.store.ProgramSize()), s) {
		r.m.Print("Update image integrity check failed\r\n")
		return stored{}, false
	}
	return s, true
}

// checkSaved reads the saved copy's header (the bootloader's own, an
// internal header) and verifies the image.
func (r *hardenedRun) checkSaved() (stored, bool) {
	if r.store == nil {
		return stored{}, false
	}
	i := r.savedSlot()
	slot := r.l.Slots(r.m.Board())[i]
	b := make([]byte, firmware.InternalHeaderSize)
	if err := r.readAligned(r.store, slot.Start, b); err != nil {
		return stored{}, false
	}
	h, err := firmware.DecodeInternalHeader(b)
	if err != nil {
		return stored{}, false
	}
	s := stored{version: h.FirmwareVersion, size: h.FirmwareSize, hash: h.FirmwareHash, campaign: h.Campaign}
	if r.encryptsOffChip() {
		if s.crypt = r.cipher(s.hash); s.crypt == nil {
			return stored{}, false
		}
	}
	if !r.verify("saved", r.store, r.l.SlotBody(r.m.Board(), i, r.store.ProgramSize()), s) {
		return stored{}, false
	}
	return s, true
}

// verify checks a stored image against its signature trailer: the trailer
// is for this size and version, the image hashes to the signed digest, and
// the signature is the vendor's.
func (r *hardenedRun) verify(what string, dev storage.Device, body uint64, s stored) bool {
	m := r.m
	fail := func(why string) bool {
		m.Printf("[WARN] %s: %s\r\n", what, why)
		m.Check(what+"-signature", false, why)
		m.Mark(MarkSignatureRejected, what+": "+why)
		return false
	}
	if s.size < firmware.TrailerSize || s.size > uint64(r.l.MaxApplicationSize) || body+s.size > dev.Size() {
		return fail(fmt.Sprintf("size %d out of bounds", s.size))
	}
	tb := make([]byte, firmware.TrailerSize)
	if err := r.readAligned(dev, body+s.size-firmware.TrailerSize, tb); err != nil {
		return fail(err.Error())
	}
	if s.crypt != nil {
		s.crypt.XORAt(s.size-firmware.TrailerSize, tb)
	}
	t, err := firmware.ParseTrailer(tb)
	switch {
	case err != nil:
		return fail("not signed")
	case t.Size != s.size-firmware.TrailerSize:
		return fail(fmt.Sprintf("the signature is for %d bytes, the header says %d", t.Size, s.size-firmware.TrailerSize))
	case t.Version != s.version:
		return fail(fmt.Sprintf("the header says version %d, the signature %d", s.version, t.Version))
	}
	sum, ok := r.hashStored(dev, body, t.Size, s.crypt)
	if !ok {
		return fail("read error")
	}
	if sum != t.Digest {
		return fail("the image does not match its signed digest")
	}
	m.Spend(m.Board().VerifyTime())
	if !firmware.VerifyCached(r.h.cfg.Vendor, tb, t) {
		return fail("the signature is not the vendor's")
	}
	m.Check(what+"-signature", true, fmt.Sprintf("version %d", s.version))
	return true
}

// install saves the active image (unless an interrupted install saved it
// already), copies the candidate into the active region, verifies it,
// writes its header last, and starts its trial. touched reports whether
// the active region was changed (a failed save leaves it as it was).
func (r *hardenedRun) install(cand, act stored, actOK bool) (installed, touched bool) {
	m := r.m
	prev := r.state.Previous
	if r.state.Status != hardened.Installing {
		prev = 0
		if actOK {
			if !r.save(act) {
				m.Print("[ERR ] could not save the active image: not installing\r\n")
				return false, false
			}
			prev = act.version
		} else if s, ok := r.checkSaved(); ok {
			prev = s.version
		}
		r.setState(hardened.State{Status: hardened.Installing, Version: cand.version, Previous: prev})
	}
	m.Print("[DBG ] Update active firmware\r\n")
	m.Mark(MarkCopyBegin, fmt.Sprintf("slot 0 version %d", cand.version))
	if !r.copyToActive(r.l.SlotBody(m.Board(), 0, r.store.ProgramSize()), cand, "slot-0") {
		m.Print("[DBG ] Firmware update failed\r\n")
		m.Mark(MarkCopyFailed, "")
		return false, true
	}
	m.Mark(MarkCopyDone, fmt.Sprintf("version %d", cand.version))
	r.setState(hardened.State{Status: hardened.Trial, Version: cand.version, Previous: prev, Attempts: 1})
	m.Printf("[BOOT] version %d on trial: attempt 1 of %d\r\n", cand.version, r.h.cfg.MaxAttempts)
	m.Mark(MarkTrialBoot, fmt.Sprintf("version %d attempt 1", cand.version))
	return true, true
}

// rollback restores the saved copy after a failed trial.
func (r *hardenedRun) rollback(why string) bool {
	m := r.m
	m.Printf("[BOOT] %s: rolling back\r\n", why)
	failed := r.state.Version
	if !r.restore(why) {
		return false
	}
	r.setState(hardened.State{Status: hardened.RolledBack, Version: failed, Previous: r.state.Previous})
	m.Mark(MarkRollback, fmt.Sprintf("version %d to %d", failed, r.state.Previous))
	return true
}

// restore copies the saved copy into the active region, if it is valid and
// not below the counter.
func (r *hardenedRun) restore(why string) bool {
	m := r.m
	s, ok := r.checkSaved()
	if !ok {
		m.Printf("[ERR ] %s, and there is no saved copy to restore\r\n", why)
		return false
	}
	if s.version < r.counter {
		m.Printf("[WARN] saved version %d is below the anti-rollback counter %d\r\n", s.version, r.counter)
		m.Mark(MarkDowngradeRefused, fmt.Sprintf("saved version %d below %d", s.version, r.counter))
		return false
	}
	m.Printf("[BOOT] restoring saved version %d\r\n", s.version)
	i := r.savedSlot()
	if !r.copyToActive(r.l.SlotBody(m.Board(), i, r.store.ProgramSize()), s, "restored") {
		return false
	}
	r.state.Previous = s.version
	return true
}

// save copies the active image to the saved slot: erase, body, verify,
// header last.
func (r *hardenedRun) save(act stored) bool {
	m := r.m
	i := r.savedSlot()
	slot := r.l.Slots(m.Board())[i]
	body := r.l.SlotBody(m.Board(), i, r.store.ProgramSize())
	if body+act.size > slot.Start+slot.Size {
		m.Check("save", false, fmt.Sprintf("%d bytes do not fit the saved slot", act.size))
		return false
	}
	m.Printf("[DBG ] Save active firmware version %d\r\n", act.version)
	m.Mark(MarkSaveBegin, fmt.Sprintf("version %d", act.version))
	m.SetPhase("save")
	if !r.eraseOn(r.store, slot.Start, body-slot.Start+act.size) {
		return false
	}
	saved := act
	saved.crypt = nil
	if r.encryptsOffChip() {
		if saved.crypt = r.cipher(act.hash); saved.crypt == nil {
			m.Check("save", false, "no device key to encrypt the saved copy with")
			return false
		}
	}
	if !r.copyBody(r.active, uint64(r.l.ApplicationStart), nil, r.store, body, saved.crypt, act.size) {
		return false
	}
	if !r.verify("saved", r.store, body, saved) {
		return false
	}
	h := firmware.InternalHeader{FirmwareVersion: act.version, FirmwareSize: act.size, FirmwareHash: act.hash, Campaign: act.campaign}
	if err := r.store.Program(slot.Start, storage.PadToUnit(h.Encode(), r.store.ProgramSize())); err != nil {
		m.Check("save-header", false, err.Error())
		return false
	}
	m.Mark(MarkSaveDone, fmt.Sprintf("version %d", act.version))
	return true
}

// copyToActive installs an image from the candidate storage: the header and
// body erased, the body copied and verified, the header written last, so
// that a valid header always means a complete, verified image.
func (r *hardenedRun) copyToActive(src uint64, s stored, what string) bool {
	m := r.m
	m.Print("[DBG ] Erase active application\r\n")
	m.Mark(MarkEraseBegin, "")
	m.SetPhase("erase")
	if !r.eraseActiveFirmware(s.size) {
		return false
	}
	m.KickWatchdog()
	m.Print("[DBG ] Copy application\r\n")
	m.Mark(MarkBodyBegin, "")
	m.SetPhase("body")
	if !r.copyBody(r.store, src, s.crypt, r.active, uint64(r.l.ApplicationStart), nil, s.size) {
		return false
	}
	s.crypt = nil // in clear on internal flash
	m.Print("[DBG ] Verify application\r\n")
	m.Mark(MarkVerifyBegin, "")
	m.SetPhase("verify")
	if !r.verify("active", r.active, uint64(r.l.ApplicationStart), s) {
		return false
	}
	m.Print("[DBG ] Write header\r\n")
	m.Mark(MarkHeaderBegin, "")
	m.SetPhase("header")
	return r.writeActiveFirmwareHeader(&details{version: s.version, size: s.size, hash: s.hash, campaign: s.campaign})
}

// eraseOn erases whole erase units of dev covering [addr, addr+n).
func (r *hardenedRun) eraseOn(dev storage.Device, addr, n uint64) bool {
	for at := addr; at < addr+n; {
		k := dev.EraseSize(at)
		if err := dev.Erase(at, k); err != nil {
			r.m.Check("erase", false, err.Error())
			return false
		}
		r.m.KickWatchdog()
		at += k
	}
	return true
}

// copyBody copies n bytes between devices through the work buffer, each
// program rounded up to the destination's unit, kicking the watchdog;
// dec decrypts what it reads, enc encrypts what it writes (nil: in clear).
func (r *hardenedRun) copyBody(from storage.Device, src uint64, dec *firmware.CandidateCipher, to storage.Device, dst uint64, enc *firmware.CandidateCipher, n uint64) bool {
	page := to.ProgramSize()
	readSize := BufferSize / page * page
	for off := uint64(0); off < n; {
		k := min(n-off, readSize)
		if err := r.readAligned(from, src+off, r.buffer[:k]); err != nil {
			r.m.Check("read", false, err.Error())
			return false
		}
		for _, c := range []*firmware.CandidateCipher{dec, enc} {
			if c != nil {
				c.XORAt(off, r.buffer[:k])
				r.m.Spend(r.m.Board().AESTime(k))
			}
		}
		prog := (k + page - 1) / page * page
		if err := to.Program(dst+off, r.buffer[:prog]); err != nil {
			r.m.Check("copy", false, err.Error())
			return false
		}
		r.m.KickWatchdog()
		off += prog
	}
	return true
}

// encryptsOffChip reports whether images on the candidate storage are kept
// encrypted.
func (r *hardenedRun) encryptsOffChip() bool {
	return r.h.cfg.Encrypt && r.l.Storage != sim.DeviceInternal
}

// cipher returns the cipher of an image on this device, or nil when the
// device key cannot be derived.
func (r *hardenedRun) cipher(hash [32]byte) *firmware.CandidateCipher {
	key, err := r.deviceKey()
	if err != nil {
		return nil
	}
	c, err := firmware.NewCandidateCipher(key, hash)
	if err != nil {
		r.m.Check("cipher", false, err.Error())
		return nil
	}
	return c
}

// hashStored hashes n bytes of a stored image, decrypting them first when
// it is kept encrypted (then through the work buffer, with the time AES
// takes; in clear it is the bootloader's ordinary hash).
func (r *hardenedRun) hashStored(dev storage.Device, addr, n uint64, c *firmware.CandidateCipher) ([32]byte, bool) {
	if c == nil {
		return r.hash(dev, addr, n)
	}
	h := sha256.New()
	for off := uint64(0); off < n; {
		k := min(n-off, BufferSize)
		buf := r.buffer[:k]
		if err := r.readAligned(dev, addr+off, buf); err != nil {
			return [32]byte{}, false
		}
		c.XORAt(off, buf)
		r.m.Spend(r.m.Board().AESTime(k))
		h.Write(buf)
		r.m.SpendHashing(k)
		off += k
	}
	var out [32]byte
	h.Sum(out[:0])
	return out, true
}
