// Package bootloader holds the bootloaders bootsim runs: Classic, the Mbed
// bootloader as it is (reference/mbed-stack.md §2), and later the hardened
// and chain variants.
package bootloader

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/storage"
)

// BufferSize is the bootloader's work buffer: the unit of hashing and of the
// body copy (BUFFER_SIZE in source/bootloader_common.h).
const BufferSize = 16 << 10

// Where the classic bootloader's two uninitialised heap cells land in the
// no-init RAM: malloc returns the same addresses on every boot.
const (
	heapVersionOffset = 0 // uint64 heapVersion
	bootCounterOffset = 8 // uint8 bootCounter
)

// Milestones the classic bootloader reports (sim.Machine.Mark), for
// scenarios to wait on and expect.
const (
	MarkActiveValid      = "active-valid"
	MarkActiveInvalid    = "active-invalid"
	MarkActiveEmpty      = "active-empty"
	MarkBootRetries      = "boot-retries-exceeded"
	MarkCandidateFound   = "candidate-found"
	MarkCopyBegin        = "copy-begin"
	MarkEraseBegin       = "erase-begin"
	MarkHeaderBegin      = "header-begin"
	MarkBodyBegin        = "body-begin"
	MarkVerifyBegin      = "verify-begin"
	MarkCopyDone         = "copy-done"
	MarkCopyFailed       = "copy-failed"
	MarkBooting          = "booting"
	MarkDeadEnd          = "dead-end"
	MarkStorageInitError = "storage-init-failed"
	// MarkAssert: an MBED_BOOTLOADER_ASSERT failed; the bootloader waits
	// for interrupts for ever.
	MarkAssert = "bootloader-assert"
)

// Config is the classic bootloader's configuration: the layout keys and the
// mbed-bootloader keys of mbed_lib.json.
type Config struct {
	Layout *mbedlayout.Layout
	// MaxCopyRetries is mbed-bootloader.max-copy-retries (default 1: one attempt).
	MaxCopyRetries int
	// MaxBootRetries is mbed-bootloader.max-boot-retries (default 3).
	MaxBootRetries int
	// Generation is the mbed-bootloader release the configuration models
	// (SetGeneration).
	Generation Generation
	// CountFrom is the first reset reason that counts as a failed boot
	// (hwResetReason), as the generation has it.
	CountFrom sim.ResetReason
	// BackwardCompatibleKey derives the device key the old way
	// (PAL_DEVICE_KEY_DERIVATION_BACKWARD_COMPATIBILITY_CALC).
	BackwardCompatibleKey bool
}

// DefaultConfig returns the mbed_lib.json defaults over a layout, for the
// default generation.
func DefaultConfig(l *mbedlayout.Layout) Config {
	c := Config{Layout: l, MaxCopyRetries: 1, MaxBootRetries: 3}
	c.SetGeneration(DefaultGeneration)
	return c
}

// Generation is an mbed-bootloader release line whose behaviour the
// classic bootloader tells apart.
type Generation string

// The generations. Upstream tags in PelionIoT/mbed-bootloader.
const (
	GenV33  Generation = "v3.3"   // v3.3.0: every boot counted
	GenV40  Generation = "v4.0"   // v4.0.0–v4.0.3: every boot counted
	GenV41  Generation = "v4.1"   // v4.1.0–v4.1.2: software resets and above counted
	GenV413 Generation = "v4.1.3" // v4.1.3: watchdog resets and above counted
	// DefaultGeneration is the last v4.1 release.
	DefaultGeneration = GenV413
)

// Generations lists the generations, oldest first.
func Generations() []Generation { return []Generation{GenV33, GenV40, GenV41, GenV413} }

// SetGeneration sets what depends on the release: which resets the boot
// counter counts. v3.3.0 and v4.0.x update it at every boot
// (source/upgrade.cpp has no reset-reason check there); v4.1.0 added
// hwResetReason(), which skips resets below RESET_REASON_SOFTWARE
// (upgrade.cpp@v4.1.0:371); commit 833ca0b, in v4.1.3, raised that to
// RESET_REASON_WATCHDOG (upgrade.cpp@v4.1.3:321), so software resets no
// longer count.
func (c *Config) SetGeneration(g Generation) {
	c.Generation = g
	switch g {
	case GenV33, GenV40:
		c.CountFrom = sim.ResetPowerOn
	case GenV41:
		c.CountFrom = sim.ResetSoftware
	case GenV413:
		c.CountFrom = sim.ResetWatchdog
	default:
		panic(fmt.Sprintf("bootloader: unknown generation %q", g))
	}
}

// Classic is the Mbed bootloader (mbed-bootloader v4.1 logic on the v3.3
// SOTP layout): check the active image, scan the candidate slots, copy the
// newest valid candidate erase → header → body → verify, and jump, or end
// in mbed_die at a dead end (LED1 blinking SOS). Its weaknesses are kept: no
// signature check, no previous image, a boot counter in uninitialised RAM,
// a halt with no retry.
type Classic struct {
	cfg Config
}

// NewClassic returns the classic bootloader with a configuration.
func NewClassic(cfg Config) *Classic {
	if cfg.Layout == nil {
		panic("bootloader: Classic needs a layout")
	}
	return &Classic{cfg: cfg}
}

// details is arm_uc_firmware_details_t: what a header says of an image.
type details struct {
	version  uint64
	size     uint64
	hash     [32]byte
	campaign [16]byte
}

// internalDetails is what an internal header says of its image.
func internalDetails(h *firmware.InternalHeader) details {
	return details{version: h.FirmwareVersion, size: h.FirmwareSize, hash: h.FirmwareHash, campaign: h.Campaign}
}

type activeStatus int

const (
	resultSuccess activeStatus = iota
	resultEmpty
	resultError
)

// run is one boot of the classic bootloader.
type run struct {
	*Classic
	m      *sim.Machine
	l      *mbedlayout.Layout
	active storage.Device
	store  storage.Device
	buffer *[BufferSize]byte // buffer_array: survives between reads, as in the C code
	key    []byte            // device key, once derived
	keyErr error
	// v3 is the v3.3.0 bootloader's voice; lastPercent its progress
	// bar's static.
	v3          bool
	lastPercent uint8
	// stale is the block-device PAL's read quirk: a read of the candidate
	// storage that fails reports success and leaves the buffer as it was
	// (ARM_UC_PAL_BlockDevice_Read and _GetFirmwareDetails keep the
	// ERR_NONE of their slot lookup: arm_uc_pal_blockdevice_implementation.c
	// @v4.1.3:364-393, :426-450).
	stale bool
}

// buffers recycles the bootloaders' work buffers.
var buffers = sync.Pool{New: func() any { return new([BufferSize]byte) }}

// Run implements sim.Program: main() of the bootloader.
func (c *Classic) Run(m *sim.Machine, _ *sim.Image) {
	r := &run{Classic: c, m: m, l: c.cfg.Layout, active: m.Internal(), store: m.Storage().Device(c.cfg.Layout.Storage)}
	// buffer_array is in .bss: zero at every boot. It comes from a pool
	// (a boot that allocated it was a third of a clean boot's garbage) and
	// goes back however the boot ends: a jump, a halt or a power cut unwinds
	// through here.
	r.buffer = buffers.Get().(*[BufferSize]byte)
	*r.buffer = [BufferSize]byte{}
	defer buffers.Put(r.buffer)
	// v4.0 kept v3.3's main() and its tr_* words (main.cpp and
	// bootloader_common.h@v4.0.0 differ from v3.3.0 only in the banner's
	// capital M); boot_debug and the "[DBG ]" lines came with v4.1.
	r.v3 = c.cfg.Generation == GenV33 || c.cfg.Generation == GenV40
	r.stale = r.l.Storage != sim.DeviceInternal
	if r.v3 {
		r.v3Main()
		return
	}
	m.Print("\r\nMbed Bootloader\r\n")
	if sd, ok := r.store.(*storage.SDCard); ok && !sd.Present() {
		// MBED_CLOUD_CLIENT_UPDATE_STORAGE.Initialize() fails without a card,
		// and main returns: the device never reaches the active image.
		m.Print("Failed to initialize update storage\r\n")
		m.Mark(MarkStorageInitError, "no SD card")
		m.MbedDie("Failed to initialize update storage")
	}
	if r.upgradeApplicationFromStorage() {
		m.Print("booting...\r\n\r\n")
		m.Mark(MarkBooting, "")
		m.Jump(uint64(r.l.ApplicationStart))
	}
	m.NoInit()[bootCounterOffset] = 0
	m.Print("Failed to jump to application!\r\n")
	m.Mark(MarkDeadEnd, "")
	// main returns -1: _exit → mbed_die (mbed-os platform/source/mbed_retarget.cpp).
	m.MbedDie("Failed to jump to application!")
}

// v3Main is main() of v3.3.0 (source/main.cpp@v3.3.0:73-196): when update
// storage does not initialise it forwards to the active application
// unchecked (canForward starts true); at its dead end it asserts, printing
// the message as an error, and waits for interrupts for ever: main never
// returns, so no mbed_die.
func (r *run) v3Main() {
	m := r.m
	r.v3Banner()
	canForward := true
	if sd, ok := r.store.(*storage.SDCard); ok && !sd.Present() {
		m.Mark(MarkStorageInitError, "no SD card")
	} else {
		canForward = r.upgradeApplicationFromStorage()
	}
	if canForward {
		r.v3Forward()
		m.Mark(MarkBooting, "")
		m.Jump(uint64(r.l.ApplicationStart))
	}
	m.NoInit()[bootCounterOffset] = 0
	r.errorf("Failed to jump to application!")
	m.Mark(MarkDeadEnd, "")
	m.Halt("Failed to jump to application!")
}

func (r *run) upgradeApplicationFromStorage() bool {
	m := r.m
	activeValid := false
	bestIndex := -1
	var best details

	// Step 1: the active application.
	m.SetPhase("check-active")
	if r.v3 {
		r.info("Active firmware integrity check:")
	}
	var active details
	status := r.checkActiveApplication(&active)
	local := uint8(0)
	ram := m.NoInit()
	if m.ResetReason() >= r.cfg.CountFrom {
		hv := binary.LittleEndian.Uint64(ram[heapVersionOffset:])
		if hv != active.version {
			binary.LittleEndian.PutUint64(ram[heapVersionOffset:], active.version)
			ram[bootCounterOffset] = 0
		} else {
			ram[bootCounterOffset]++
		}
		local = ram[bootCounterOffset]
	}
	switch {
	case status == resultSuccess && int(local) < r.cfg.MaxBootRetries:
		activeValid = true
		best.version = active.version
		if r.v3 {
			r.printSHA256(active.hash)
			r.info("Version: %d", active.version)
		}
		m.Mark(MarkActiveValid, "version "+strconv.FormatUint(active.version, 10))
	case status == resultEmpty:
		r.say("[DBG ] Active firmware slot is empty", "[BOOT] Active firmware slot is empty")
		m.Mark(MarkActiveEmpty, "")
	case int(local) >= r.cfg.MaxBootRetries:
		r.say("[DBG ] Failed to boot active application", fmt.Sprintf("[ERR ] Failed to boot active application %d times", r.cfg.MaxBootRetries))
		m.Mark(MarkBootRetries, fmt.Sprintf("boot counter %d", local))
	default:
		r.say("[DBG ] Active firmware integrity check failed", "[ERR ] Active firmware integrity check failed")
		m.Mark(MarkActiveInvalid, "")
	}

	// Step 2: the candidates.
	m.SetPhase("scan")
	heapVersion := binary.LittleEndian.Uint64(ram[heapVersionOffset:])
	slots := r.l.Slots(m.Board())
	prev := active // imageDetails: the active image's, then each slot's
	for i := range slots {
		c, ok := r.firmwareDetails(i, prev)
		if ok {
			prev = c
		}
		if !ok {
			r.say("No Update image", "[BOOT] Slot "+strconv.Itoa(i)+" is empty")
			continue
		}
		different := heapVersion != c.version
		if c.version > best.version && c.size > 0 && (different || !activeValid) {
			if r.v3 {
				r.info("Slot %d firmware integrity check:", i)
			}
			if r.checkStoredApplication(i, &c) {
				if r.v3 {
					r.printSHA256(c.hash)
					r.info("Version: %d", c.version)
				}
				if c.size <= uint64(r.l.MaxApplicationSize) {
					bestIndex, best = i, c
					m.Mark(MarkCandidateFound, fmt.Sprintf("slot %d version %d", i, c.version))
				} else {
					r.say("Update image too large", fmt.Sprintf("[ERR ] Slot %d firmware size too large %d > %d", i, uint32(c.size), uint32(r.l.MaxApplicationSize)))
				}
			} else {
				r.say("Update image integrity check failed", fmt.Sprintf("[ERR ] Slot %d firmware integrity check failed", i))
			}
		} else {
			r.say("Update image is older", "[BOOT] Slot "+strconv.Itoa(i)+" firmware is of older date")
			if r.v3 {
				r.info("Version: %d", c.version)
			}
		}
	}

	// Step 3: the copy.
	switch {
	case bestIndex >= 0:
		for range r.cfg.MaxCopyRetries {
			r.say("[DBG ] Update active firmware", fmt.Sprintf("[BOOT] Update active firmware using slot %d:", bestIndex))
			activeValid = r.copyStoredApplication(bestIndex, &best)
			if activeValid {
				r.say("[DBG ] New active firmware is valid", "[BOOT] New active firmware is valid")
				m.Mark(MarkCopyDone, fmt.Sprintf("version %d", best.version))
				break
			}
			r.say("[DBG ] Firmware update failed", "[ERR ] Firmware update failed")
			m.Mark(MarkCopyFailed, "")
		}
	case activeValid:
		r.say("[DBG ] Active firmware up-to-date", "[BOOT] Active firmware up-to-date")
	default:
		r.say("[ERR ] Active firmware invalid", "[ERR ] Active firmware invalid")
	}
	return activeValid
}

// say prints a line as the generation words it: v4's, or v3.3.0's.
func (r *run) say(v4, v3 string) {
	if r.v3 {
		r.m.PrintLine(v3)
		return
	}
	r.m.PrintLine(v4)
}

// checkActiveApplication reads the active header (version, then magic, then
// CRC) and hashes size bytes from the application start.
func (r *run) checkActiveApplication(d *details) activeStatus {
	if r.l.ApplicationDetails == 0 {
		return resultEmpty
	}
	hdr := make([]byte, firmware.InternalHeaderSize)
	if err := r.active.Read(uint64(r.l.ApplicationDetails), hdr); err != nil {
		return resultError
	}
	h, err := firmware.DecodeInternalHeader(hdr)
	if err != nil {
		r.m.Check("active-header", false, err.Error())
		return resultError
	}
	*d = internalDetails(h)
	if d.size == 0 {
		return resultEmpty
	}
	sum, ok := r.hash(r.active, uint64(r.l.ApplicationStart), d.size)
	if r.v3 && ok && sum != d.hash {
		r.printSHA256(d.hash)
		r.printSHA256(sum)
	}
	ok = ok && sum == d.hash
	r.m.Check("active-hash", ok, "version "+strconv.FormatUint(d.version, 10)+", "+strconv.FormatUint(d.size, 10)+" bytes")
	if !ok {
		return resultError
	}
	return resultSuccess
}

// hash reads n bytes from dev at addr in BufferSize reads and returns their
// SHA-256, costing the board's hash rate in virtual time. It reports false
// if a read fails.
//
// The reads and their time are the code's; only the host's SHA-256 work is
// skipped when the machine's cache knows the digest of the same pages (a
// sweep's recoveries hash the same unchanged image again and again).
func (r *run) hash(dev storage.Device, addr, n uint64) ([32]byte, bool) {
	// With read faults armed the bytes read may not be the bytes stored
	// (a flipped bit, a stale buffer): no digest is taken from the cache
	// or left in it, and every read fills the buffer.
	faulty := r.m.Storage().ReadFaults()
	stamp := dev.Stamp(addr, n)
	cache := r.m.Cache()
	var (
		known any
		hit   bool
	)
	if !faulty {
		known, hit = cache.Get(dev.Name(), addr, n, storage.TagSHA256, stamp)
		if !hit {
			if known, hit = cache.GetByContent(dev, addr, n, storage.TagSHA256); hit {
				cache.Put(dev.Name(), addr, n, storage.TagSHA256, stamp, known)
			}
		}
	}
	h := sha256.New()
	write := h.Write
	if hit {
		write = func([]byte) (int, error) { return 0, nil }
	}
	// The buffer keeps what the last reads left in it (a copy that
	// follows may program its stale tail), and the last two reads decide
	// all of it; the reads before them are only looked at, so they need
	// not be copied, when the device reads at the byte.
	viewUntil := uint64(0)
	if !faulty && n > 2*BufferSize && addr%dev.ReadSize() == 0 && BufferSize%dev.ReadSize() == 0 {
		viewUntil = ((n+BufferSize-1)/BufferSize - 2) * BufferSize
	}
	look := func(b []byte) { write(b) } // one closure, not one per read
	for off := uint64(0); off < n; {
		k := min(n-off, BufferSize)
		if off < viewUntil {
			if err := dev.ReadView(addr+off, k, look); err != nil {
				return [32]byte{}, false
			}
		} else {
			buf := r.buffer[:k]
			if _, err := r.readFor(dev, addr+off, buf); err != nil {
				if dev == r.store && errors.Is(err, storage.ErrIO) && !r.v3 {
					// The FlashIAP PAL reports the failure: the loop
					// says so and stops (upgrade.cpp@v4.1.3:96).
					r.m.Print("[DBG ] ARM_UCP_Read returned 0 bytes\r\n")
				}
				return [32]byte{}, false
			}
			write(buf)
		}
		r.m.SpendHashing(k)
		off += k
		if r.v3 {
			r.progress(off, n)
		}
	}
	if hit {
		return known.([32]byte), true
	}
	var out [32]byte
	h.Sum(out[:0])
	if !faulty {
		cache.Put(dev.Name(), addr, n, storage.TagSHA256, stamp, out)
		cache.PutContent(dev, addr, n, storage.TagSHA256, out)
	}
	return out, true
}

// readAligned reads into buf from a device whose read unit may be larger
// than the request (an SD card reads whole blocks), as the block-device PAL
// does with its bounce buffer.
func (r *run) readAligned(dev storage.Device, addr uint64, buf []byte) error {
	unit := dev.ReadSize()
	start := addr / unit * unit
	end := (addr + uint64(len(buf)) + unit - 1) / unit * unit
	if start == addr && end == addr+uint64(len(buf)) {
		return dev.Read(addr, buf)
	}
	tmp := make([]byte, end-start)
	if err := dev.Read(start, tmp); err != nil {
		return err
	}
	copy(buf, tmp[addr-start:])
	return nil
}

// readFor reads for the code: from the candidate storage with the block
// device PAL's quirk (a failed read reports success, the buffer keeps what
// it held), from anything else plainly. It reports whether a failure was
// swallowed so.
func (r *run) readFor(dev storage.Device, addr uint64, buf []byte) (swallowed bool, err error) {
	err = r.readAligned(dev, addr, buf)
	if err != nil && r.stale && dev == r.store && errors.Is(err, storage.ErrIO) {
		r.m.Check("read", false, fmt.Sprintf("%v; the PAL reports success, the buffer keeps what it held", err))
		return true, nil
	}
	return false, err
}

// deviceKey derives the device key from the ROT where the layout keeps
// it: in SOTP, read as the v3.3 bootloader does (sotp_probe, no writes), or
// in the KVStore's reserved area, read as v4 does
// (direct_access_to_devicekey). It is derived once per boot.
func (r *run) deviceKey() ([]byte, error) {
	if r.key != nil || r.keyErr != nil {
		return r.key, r.keyErr
	}
	rot, err := r.l.ReadROT(r.active)
	if err == nil {
		r.key, err = firmware.DeviceKey(rot, r.cfg.BackwardCompatibleKey)
	}
	if err != nil {
		r.keyErr = err
		r.m.Print("[ERR ] Couldn't find valid DeviceKey\r\n")
		r.m.Check("device-key", false, err.Error())
	}
	return r.key, r.keyErr
}

// firmwareDetails reads slot i's header: an internal header (CRC only, no
// magic check) on internal flash, an external header (HMAC with the device
// key) elsewhere. A slot whose header does not check reads as empty.
//
// prev is what the caller's details held before (upstream reuses one
// struct: the active image's details, then each slot's): a header read
// that fails on the candidate storage reports success and leaves them, so
// they come back as the slot's.
func (r *run) firmwareDetails(i int, prev details) (details, bool) {
	s := r.l.Slots(r.m.Board())[i]
	if r.l.Storage == sim.DeviceInternal {
		b := make([]byte, firmware.InternalHeaderSize)
		if err := r.store.Read(s.Start, b); err != nil {
			return details{}, false
		}
		h, err := firmware.ParseInternalHeader(b)
		if err != nil {
			r.m.Check("slot-"+strconv.Itoa(i)+"-header", false, err.Error())
			return details{}, false
		}
		return internalDetails(h), true
	}
	b := make([]byte, firmware.ExternalHeaderSize)
	swallowed, err := r.readFor(r.store, s.Start, b)
	if err != nil {
		r.m.Check("slot-"+strconv.Itoa(i)+"-header", false, err.Error())
		return details{}, false
	}
	if swallowed {
		return prev, true
	}
	key, err := r.deviceKey()
	if err != nil {
		return details{}, false
	}
	// The HMAC is the check: the block-device PAL hands the header
	// straight to arm_uc_parse_external_header_v2, which checks nothing
	// else, magic and header version included
	// (arm_uc_pal_blockdevice_implementation.c@v4.1.3:445,
	// arm_uc_metadata_header_v2.c:141-201).
	h, err := firmware.ParseExternalHeader(b, key)
	if err != nil {
		r.m.Check("slot-"+strconv.Itoa(i)+"-header", false, err.Error())
		return details{}, false
	}
	return details{version: h.FirmwareVersion, size: h.FirmwareSize, hash: h.FirmwareHash, campaign: h.Campaign}, true
}

// checkStoredApplication hashes slot i's body against its header.
func (r *run) checkStoredApplication(i int, d *details) bool {
	sum, ok := r.hash(r.store, r.l.SlotBody(r.m.Board(), i, r.store.ProgramSize()), d.size)
	if r.v3 && ok && sum != d.hash {
		r.printSHA256(d.hash)
		r.printSHA256(sum)
	}
	ok = ok && sum == d.hash
	r.m.Check(fmt.Sprintf("slot-%d-hash", i), ok, fmt.Sprintf("version %d, %d bytes", d.version, d.size))
	return ok
}

// copyStoredApplication installs slot i: erase, header, body, verify.
func (r *run) copyStoredApplication(i int, d *details) bool {
	m := r.m
	m.Mark(MarkCopyBegin, fmt.Sprintf("slot %d version %d", i, d.version))
	if !r.v3 {
		m.Print("[DBG ] Erase active application\r\n")
	}
	m.Mark(MarkEraseBegin, "")
	m.SetPhase("erase")
	if !r.eraseActiveFirmware(d.size) {
		return false
	}
	if !r.v3 {
		m.Print("[DBG ] Write header\r\n")
	}
	m.Mark(MarkHeaderBegin, "")
	m.SetPhase("header")
	if !r.writeActiveFirmwareHeader(d) {
		return false
	}
	if !r.v3 {
		m.Print("[DBG ] Copy application\r\n")
	}
	m.Mark(MarkBodyBegin, "")
	m.SetPhase("body")
	if !r.writeActiveFirmware(i, d) {
		return false
	}
	r.say("[DBG ] Verify application", "[BOOT] Verify new active firmware:")
	m.Mark(MarkVerifyBegin, "")
	m.SetPhase("verify")
	var again details
	return r.checkActiveApplication(&again) == resultSuccess
}

// sectorAlignedSize is getSectorAlignedSize: from addr, whole sectors
// covering size bytes.
func (r *run) sectorAlignedSize(addr, size uint64) uint64 {
	end := addr
	for end < addr+size {
		end += r.active.EraseSize(end)
	}
	return end - addr
}

// eraseActiveFirmware erases the header (separately if it does not share
// sectors with the application) and the sectors the new image needs, one
// sector per erase op, refusing to pass the maximum application size.
func (r *run) eraseActiveFirmware(size uint64) bool {
	hdrAddr, appStart := uint64(r.l.ApplicationDetails), uint64(r.l.ApplicationStart)
	hdrSize := r.sectorAlignedSize(hdrAddr, firmware.InternalHeaderSize)
	start, needed := hdrAddr, appStart-hdrAddr+size
	// v3.3.0 erases from the header through the image, always
	// (active_application.cpp@v3.3.0:190-235); v4.0 erases a header that
	// is apart from the image on its own, saying so only in a tr_debug
	// that prints nothing (active_application.cpp@v4.0.0:225-236).
	if r.cfg.Generation != GenV33 && (hdrAddr+hdrSize < appStart || hdrAddr > appStart) {
		if !r.v3 {
			r.m.Print("[DBG ] Erasing header separately from active application\r\n")
		}
		if !r.eraseSectors(hdrAddr, hdrSize) {
			return false
		}
		start, needed = appStart, size
	}
	end := start + r.sectorAlignedSize(start, needed)
	if end > appStart+uint64(r.l.MaxApplicationSize) {
		if r.v3 {
			r.errorf("Firmware size 0x%X rounded up to the nearest sector boundary 0x%X is larger than the maximum application size 0x%X",
				uint32(size), uint32(end-appStart), uint32(r.l.MaxApplicationSize))
		} else {
			r.m.Print("[DBG ] Firmware size rounded up to the nearest sector boundary is larger than the maximum application size\r\n")
		}
		r.m.Check("erase-bounds", false, fmt.Sprintf("erase to 0x%x passes the maximum application size", end))
		return false
	}
	return r.eraseSectors(start, needed)
}

func (r *run) eraseSectors(addr, size uint64) bool {
	for at := addr; at < addr+size; {
		n := r.active.EraseSize(at)
		if err := r.active.Erase(at, n); err != nil {
			r.m.Check("erase", false, err.Error())
			return false
		}
		at += n
	}
	return true
}

// programPages is arm_uc_flashiap_program: one flash_program_page per
// page (arm_uc_pal_flashiap_mbed.c@v4.1.3:98-103, the same loop in
// v3.3.0), so each page is an op of its own for fault rules and sweeps.
func (r *run) programPages(addr uint64, data []byte) error {
	if pp, ok := r.active.(storage.PageProgrammer); ok {
		return pp.ProgramPages(addr, data, r.active.ProgramSize())
	}
	return r.active.Program(addr, data)
}

// assert is MBED_BOOTLOADER_ASSERT: when the condition fails the
// bootloader says so and waits for interrupts for ever, with interrupts
// still on (no mbed_die: a watchdog or a reset is the way out). v4.1 prints
// "[ERR ] ASSERT" (bootloader_common.h@v4.1.3:66-72); v3.3 and v4.0 print
// the message through tr_error (bootloader_common.h@v3.3.0:54-60,
// @v4.0.0:54-60), whose format adds "\r\n" to the message's own.
func (r *run) assert(ok bool, format string, args ...any) {
	if ok {
		return
	}
	msg := fmt.Sprintf(format, args...)
	if r.v3 {
		r.m.Print("[ERR ] " + msg + "\r\n")
	} else {
		r.m.Print("[ERR ] ASSERT\r\n")
	}
	r.m.Mark(MarkAssert, msg)
	r.m.Halt("MBED_BOOTLOADER_ASSERT: " + strings.TrimSpace(msg))
}

// writeActiveFirmwareHeader programs a fresh internal header, built in
// buffer_array padded with 0xFF to the flash page, as upstream does
// (active_application.cpp@v4.1.3:221-240): the body copy that follows
// starts from a buffer that holds it.
func (r *run) writeActiveFirmwareHeader(d *details) bool {
	h := firmware.InternalHeader{FirmwareVersion: d.version, FirmwareSize: d.size, FirmwareHash: d.hash, Campaign: d.campaign}
	enc := h.Encode()
	unit := r.active.ProgramSize()
	n := (uint64(len(enc)) + unit - 1) / unit * unit
	hdrSize := r.sectorAlignedSize(uint64(r.l.ApplicationDetails), firmware.InternalHeaderSize)
	r.assert(n <= BufferSize, "Header program size %d bigger than buffer %d", n, BufferSize)
	r.assert(n <= hdrSize, "Header program size %d bigger than expected header %d", n, hdrSize)
	buf := r.buffer[:n]
	for i := range buf {
		buf[i] = 0xFF
	}
	copy(buf, enc)
	if err := r.programPages(uint64(r.l.ApplicationDetails), buf); err != nil {
		r.m.Check("write-header", false, err.Error())
		return false
	}
	return true
}

// writeActiveFirmware copies the body in reads of BufferSize rounded down to
// the page; the last program is rounded up to the page, its tail being
// whatever the buffer held from the previous read.
func (r *run) writeActiveFirmware(i int, d *details) bool {
	page := r.active.ProgramSize()
	r.assert(uint64(r.l.ApplicationStart)%page == 0, "Application (0x%X) does not start on a page size (0x%X) aligned address\r\n", uint64(r.l.ApplicationStart), page)
	readSize := BufferSize / page * page
	src, dst := r.l.SlotBody(r.m.Board(), i, r.store.ProgramSize()), uint64(r.l.ApplicationStart)
	for off := uint64(0); off < d.size; {
		n := min(d.size-off, readSize)
		if _, err := r.readFor(r.store, src+off, r.buffer[:n]); err != nil {
			if errors.Is(err, storage.ErrIO) {
				// active_application.cpp@v4.1.3:304-309 (a tr_error in v3.3.0:381).
				r.say("[DBG ] ARM_UCP_Read returned 0 bytes", "[ERR ] ARM_UCP_Read returned 0 bytes")
			}
			r.m.Check("read-candidate", false, err.Error())
			return false
		}
		prog := (n + page - 1) / page * page
		if err := r.programPages(dst+off, r.buffer[:prog]); err != nil {
			r.m.Check("copy", false, err.Error())
			return false
		}
		if r.v3 {
			// v3.3.0 draws the bar after each page it programs.
			for p := page; p <= prog; p += page {
				r.progress(off+p, d.size)
			}
		}
		off += prog
	}
	return true
}
