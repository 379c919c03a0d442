package updateclient

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bootsim/bootsim/chain"
	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/hardened"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
)

// Generation selects when the client writes the candidate's header: at
// Prepare, before any payload (clients up to 3.3.0), or at Activate, after
// the hash check and install authorization (3.4.0 on). They fail
// differently after a power cut (reference/mbed-stack.md §4.2).
type Generation int

// The two client generations.
const (
	Gen33 Generation = 33
	Gen34 Generation = 34
)

// Policy is how the application answers an authorization request.
type Policy struct {
	// Deny refuses; otherwise the request is granted after Delay.
	Deny  bool
	Delay time.Duration
}

// Config is the update client's configuration: what the device was
// provisioned with and how the application behaves.
type Config struct {
	DeviceID   string
	Generation Generation
	VendorID   [16]byte
	ClassID    [16]byte
	// Certificate is the vendor's certificate (v1 manifests name it by its
	// fingerprint); PublicKey its key (v3 manifests).
	Certificate []byte
	PublicKey   *ecdsa.PublicKey
	Layout      *mbedlayout.Layout
	// Chain, if set, is the chain profile's layout: updates go to the
	// stages' slots on internal flash and into the boot record.
	Chain *chain.Layout
	// Hardened, if set, holds the hardened profile's SOTP areas: the
	// running version confirms itself there once registered.
	Hardened *hardened.Areas
	// Encrypt keeps an off-chip candidate encrypted (AES-CTR under a key
	// derived from the device key; the hardened profile's option).
	Encrypt bool
	// BackwardCompatibleKey derives the device key the old way.
	BackwardCompatibleKey bool
	Download, Install     Policy
	// Sources the source manager can use, in registration order.
	Sources []cloud.Source
	// Resume keeps the download's progress in the key store (SOTP) after
	// every burst, so that a download interrupted by a reset resumes with a
	// Range request instead of starting again. The Pelion client 4.x does
	// not (it starts again when re-notified); the later FOTA client does.
	Resume bool
}

// TypeUpdateResume is the SOTP record type the client keeps its download
// progress in when Resume is on: the payload's SHA-256 and the offset stored
// so far. Types 0..8 are the Mbed client's; 9 is free.
const TypeUpdateResume sotp.Type = 9

// Hub timing, from update-client's mbed_lib.json where it says (resume) and
// estimates of an Mbed Cloud Client example application otherwise.
const (
	connectTime    = 2 * time.Second        // network up and LwM2M registration
	resumeFirst    = 5 * time.Second        // update-client.http-resume-initial-delay
	resumeFactor   = 2                      // update-client.http-resume-exponentiation-factor
	resumeMax      = time.Hour              // update-client.http-resume-maximum-delay
	busyRetry      = 500 * time.Millisecond // BUSY_RETRY_DELAY_MS (arm_uc_source_manager.c)
	maxBusyRetries = 2                      // MAX_BUSY_RETRIES: over the client's life, not per fragment
	resumeGiveUp   = 7 * 24 * time.Hour     // update-client.http-resume-maximum-download-time-secs
	rebootDelay    = time.Second            // INITIALIZE_REBOOT_TIMER
	fragmentSize   = 512                    // half of the 1 KiB double buffer (ARM_UC_BUFFER_SIZE/2)
	burstFragments = 64                     // update-client.http-resume-fragments-per-burst
	readBackBuffer = 1024                   // the firmware manager's read-back buffer
	manifestMax    = 2048                   // the manifest manager's buffer
)

// Milestones the update client reports.
const (
	MarkRegistered        = "registered"
	MarkNotified          = "notified"
	MarkManifestFetched   = "manifest-fetched"
	MarkManifestVerified  = "manifest-verified"
	MarkDownloadAuthorize = "download-authorized"
	MarkDownloadBegin     = "download-begin"
	MarkDownloadResume    = "download-resume"
	MarkDownloadDone      = "download-done"
	MarkFinalized         = "finalized"
	MarkInstallAuthorize  = "install-authorized"
	MarkActivated         = "activated"
	MarkRebooting         = "rebooting"
	MarkUpdateFailed      = "update-failed"
	// MarkWriteLost: a fragment write failed and the block-device PAL
	// reported success without signalling the write: the client waits
	// for ever.
	MarkWriteLost = "write-lost"
	// MarkEvicted: a chain update takes the slot of an older version.
	MarkEvicted = "evicted"
)

// fwInfo is what a verified manifest says of the firmware to fetch.
type fwInfo struct {
	version uint64 // the header version: v1 timestamp, or v3 packed semver
	uri     string
	hash    [32]byte
	size    uint64
	label   string // how the version prints
	// component is the v1 payload's storage identifier or the v3
	// component name.
	component string
}

// hub is the update client of one boot (in RAM: a reset loses it).
type hub struct {
	m      *sim.Machine
	cfg    *Config
	svc    *cloud.Service
	state  string
	active struct {
		version uint64
		hash    [32]byte
		valid   bool
	}
	cached   []byte // a manifest pushed over LwM2M
	fw       fwInfo
	excluded map[string]bool
	// busyRetries counts the BUSY retries of the client's life: the
	// source manager's static num_busy_retries is only reset when it
	// gives up (arm_uc_source_manager.c:137-159).
	busyRetries int
	// waited sums the resume waits of the fragment being fetched.
	waited   time.Duration
	source   string // the source the download uses
	offset   uint64
	delay    time.Duration
	busy     bool // an update is in progress
	reported int  // percent of the download last printed
	// running is the application image that runs the hub; chain is where
	// a chain update goes (nil for the classic profile).
	running *sim.Descriptor
	chain   *chainUpdate
}

func (h *hub) dev() storage.Device {
	if h.cfg.Chain != nil {
		return h.m.Internal()
	}
	return h.m.Storage().Device(h.cfg.Layout.Storage)
}

func (h *hub) slot() mbedlayout.Slot {
	if h.chain != nil {
		p := h.cfg.Chain.Slots(h.chain.stage)[h.chain.slot]
		return mbedlayout.Slot{Start: p.Start, Size: p.Size}
	}
	return h.cfg.Layout.Slots(h.m.Board())[0]
}

// body returns where the firmware goes in the slot.
func (h *hub) body() uint64 {
	if h.chain != nil {
		return h.slot().Start + chain.HeaderSpace
	}
	return h.cfg.Layout.SlotBody(h.m.Board(), 0, h.dev().ProgramSize())
}

// where names the slot an update goes to, for the log.
func (h *hub) where() string {
	if h.chain != nil {
		return fmt.Sprintf("%s slot %d on internal flash", h.chain.stage, h.chain.slot)
	}
	return "slot 0 on " + h.cfg.Layout.Storage
}

// to moves the hub to a state and traces it.
func (h *hub) to(state string) {
	h.m.Transition("update-client", h.state, state)
	h.state = state
}

func (h *hub) info(group, format string, args ...any) {
	h.m.Printf("[INFO][%s]: %s\r\n", group, fmt.Sprintf(format, args...))
}

func (h *hub) report(state, result int) {
	h.svc.Report(h.cfg.DeviceID, state, result)
}

// start runs the client's start-up: read and report the active firmware,
// then register with the service once the network is up.
func (h *hub) start() {
	h.state = "UNINITIALIZED"
	h.to("INITIALIZED")
	h.to("GET_ACTIVE_FIRMWARE_DETAILS")
	hdr := make([]byte, firmware.InternalHeaderSize)
	if h.cfg.Chain != nil {
		h.active.version, h.active.valid = h.running.Version, true
	} else if err := h.m.Internal().Read(uint64(h.cfg.Layout.ApplicationDetails), hdr); err == nil {
		if ih, err := firmware.DecodeInternalHeader(hdr); err == nil {
			h.active.version, h.active.hash, h.active.valid = ih.FirmwareVersion, ih.FirmwareHash, true
		}
	}
	h.to("REPORT_ACTIVE_HASH")
	h.to("REPORT_ACTIVE_VERSION")
	h.to("GET_INSTALLER_DETAILS")
	h.to("REPORT_INSTALLER_DETAILS")
	h.to("IDLE")
	h.delay = resumeFirst
	h.m.After(connectTime, h.register)
}

// register registers with the service, retrying with the resume backoff
// while the link is down.
func (h *hub) register() {
	boot := h.m.Boots()
	if err := h.svc.Register(h.cfg.DeviceID, h.active.version); err != nil {
		h.retry("registration", h.register)
		return
	}
	h.delay = resumeFirst
	h.m.Print("Client registered\r\n")
	h.m.Printf("Endpoint Name: %s\r\n", h.cfg.DeviceID)
	h.m.Mark(MarkRegistered, fmt.Sprintf("version %d", h.active.version))
	if h.cfg.Chain != nil {
		confirmChain(h.m, h.cfg.Chain, h.running)
	}
	if h.cfg.Hardened != nil {
		confirmHardened(h.m, *h.cfg.Hardened, h.running)
	}
	h.report(StateIdle, resultNone)
	// The service pushes manifests over the LwM2M connection; a push that
	// arrives after a reset belongs to a connection that no longer exists.
	push := func(manifest []byte) {
		h.m.After(h.svc.TransferTime(h.m.Now(), len(manifest)), func() { h.notified(manifest) })
	}
	h.svc.Subscribe(h.cfg.DeviceID, func(manifest []byte) bool {
		if h.m.Boots() != boot || h.m.Stage() != sim.StageApplication || h.m.State() != sim.StateRunning {
			return false
		}
		push(manifest)
		return true
	})
	// A device that registers again still below a campaign's target is
	// notified again.
	if manifest, ok := h.svc.Pending(h.cfg.DeviceID); ok {
		push(manifest)
	}
}

// retry schedules fn after the current backoff and doubles it, up to the
// maximum (update-client's HTTP resume policy).
func (h *hub) retry(what string, fn func()) {
	h.m.Printf("[WARN][UCHB]: %s failed, retrying in %s\r\n", what, h.delay)
	d := h.delay
	h.delay = min(h.delay*resumeFactor, resumeMax)
	h.m.After(d, fn)
}

// fail ends an update with a result: report it and go back to IDLE.
func (h *hub) fail(result int, why string) {
	h.m.Printf("[ERR ][UCHB]: update failed: %s (%d %s)\r\n", why, result, ResultName(result))
	h.m.Mark(MarkUpdateFailed, fmt.Sprintf("%d %s", result, ResultName(result)))
	h.report(StateIdle, result)
	h.busy = false
	h.to("IDLE")
}

// notified handles a manifest pushed by the service (LwM2M source).
func (h *hub) notified(manifest []byte) {
	if h.busy {
		return // MANIFEST_ALREADY_PROCESSING: the push is ignored
	}
	h.busy = true
	h.cached = manifest
	h.to("NOTIFIED")
	h.info("UCHB", "notification: the service pushed a %d-byte manifest", len(manifest))
	h.m.Mark(MarkNotified, fmt.Sprintf("%d-byte manifest", len(manifest)))
	h.report(StateProcessingManifest, resultNone)
	src, ok := h.cheapest("manifest")
	if !ok {
		h.fail(ResultFetcherNoRoute, "no source can provide the manifest")
		return
	}
	h.info("UCSM", "manifest from source %s (cost %d)", src.Name, cloud.Cost(src, "manifest", h.cached != nil))
	h.manifestFetched(h.cached)
}

// cheapest returns the lowest-cost source for a request that is not
// excluded; the first registered wins a tie.
func (h *hub) cheapest(request string) (cloud.Source, bool) {
	var best cloud.Source
	var bestCost uint32 = cloud.Unavailable
	for _, s := range h.svc.Sources() {
		if h.excluded[s.Name] {
			continue
		}
		if c := cloud.Cost(s, request, h.cached != nil); c < bestCost {
			best, bestCost = s, c
		}
	}
	return best, bestCost != cloud.Unavailable
}

// manifestFetched inserts a manifest: basic checks, hash, signature,
// applicability, then the version check.
func (h *hub) manifestFetched(raw []byte) {
	h.to("MANIFEST_FETCHED")
	h.m.Mark(MarkManifestFetched, fmt.Sprintf("%d bytes", len(raw)))
	h.to("MANIFEST_AWAIT_INSERT")
	h.m.SpendHashing(uint64(len(raw)))
	if len(raw) > manifestMax {
		h.fail(ResultInvalidManifestSize, fmt.Sprintf("%d-byte manifest", len(raw)))
		return
	}
	info, result, why := h.verify(raw)
	if result != resultNone {
		h.fail(result, why)
		return
	}
	h.fw = info
	h.to("MANIFEST_INSERT_DONE")
	h.to("MANIFEST_COMPLETE")
	h.m.Mark(MarkManifestVerified, fmt.Sprintf("version %s, %d bytes from %s", info.label, info.size, info.uri))
	h.info("UCMM", "manifest ok: version %s, %d bytes, %s", info.label, info.size, info.uri)
	h.to("CHECK_VERSION")
	active := h.active.version
	h.chain = nil
	if h.cfg.Chain != nil {
		stage, ok := chainStage(info.component)
		if !ok {
			h.fail(ResultInvalidManifestFormat, fmt.Sprintf("no stage is named %q", info.component))
			return
		}
		slot, current, err := chainPlan(h.m, h.cfg.Chain, stage)
		if err != nil {
			h.fail(ResultInsufficientStorage, err.Error())
			return
		}
		h.chain, active = &chainUpdate{stage: stage, slot: slot}, current
	}
	if !(info.version > active) {
		h.fail(ResultRollbackProtection, fmt.Sprintf("version %s is not newer than the active %d", info.label, active))
		return
	}
	h.to("PREPARE_FIRMWARE_SETUP")
	h.to("REQUEST_DOWNLOAD_AUTHORIZATION")
	h.report(StateAwaitingDownloadApproval, resultNone)
	h.m.Print("Firmware download requested\r\n")
	h.to("WAIT_FOR_DOWNLOAD_AUTHORIZATION")
	h.authorize(h.cfg.Download, ResultFetcherAuthorizationRejected, func() {
		h.m.Mark(MarkDownloadAuthorize, "")
		h.setupFirmware()
	})
}

// authorize asks the application; a refusal ends the update with the
// result the hub's error handler gives it: 315 for a download, 511 for an
// install (update_client_hub_error_handler.c: AUTH_ERR_DOWNLOAD_REJECTED,
// AUTH_ERR_INSTALL_REJECTED; arm_uc_public.h).
func (h *hub) authorize(p Policy, rejected int, then func()) {
	if p.Deny {
		h.m.Print("Authorization rejected\r\n")
		h.fail(rejected, "the application rejected it")
		return
	}
	grant := func() {
		h.m.Print("Authorization granted\r\n")
		then()
	}
	if p.Delay > 0 {
		h.m.After(p.Delay, grant)
		return
	}
	grant()
}

// verify checks a manifest as the manifest manager does and returns what it
// describes, or a result code and why.
func (h *hub) verify(raw []byte) (fwInfo, int, string) {
	if m, err := firmware.DecodeManifestV1(raw); err == nil {
		switch {
		case m.ManifestVersion < 1 || m.ManifestVersion > 2:
			return fwInfo{}, ResultUnsupportedManifest, fmt.Sprintf("manifest version %d", m.ManifestVersion)
		case m.EncryptionMode.OID != nil || m.EncryptionMode.Enum < 1 || m.EncryptionMode.Enum > 5:
			return fwInfo{}, ResultInvalidCryptoMode, "unsupported encryption mode"
		case m.Payload == nil || len(m.Payload.Reference.Hash) != 32:
			return fwInfo{}, ResultInvalidManifestFormat, "no payload description"
		}
		err := m.Verify(h.cfg.Certificate)
		switch {
		case errors.Is(err, firmware.ErrManifestHash):
			return fwInfo{}, ResultManifestIntegrityFailed, err.Error()
		case errors.Is(err, firmware.ErrUnknownSigner):
			return fwInfo{}, ResultCertificateNotFound, err.Error()
		case err != nil:
			return fwInfo{}, ResultInvalidSignature, err.Error()
		}
		if r, why := h.applicable(m.VendorID, m.ClassID); r != resultNone {
			return fwInfo{}, r, why
		}
		info := fwInfo{version: m.Timestamp, size: m.Payload.Reference.Size, label: fmt.Sprint(m.Timestamp), component: m.Payload.StorageIdentifier}
		if m.Payload.Reference.URI != nil {
			info.uri = *m.Payload.Reference.URI
		}
		copy(info.hash[:], m.Payload.Reference.Hash)
		return info, resultNone, ""
	}
	m, err := firmware.DecodeManifestV3(raw)
	if err != nil {
		return fwInfo{}, ResultInvalidManifestFormat, "neither a v1 nor a v3 manifest"
	}
	if h.cfg.PublicKey == nil || m.Verify(h.cfg.PublicKey) != nil {
		return fwInfo{}, ResultInvalidSignature, "the v3 signature does not verify with the vendor key"
	}
	if r, why := h.applicable(m.VendorID, m.ClassID); r != resultNone {
		return fwInfo{}, r, why
	}
	v, err := firmware.PackSemver(m.PayloadVersion)
	if err != nil || len(m.PayloadDigest) != 32 {
		return fwInfo{}, ResultInvalidManifestFormat, fmt.Sprintf("payload-version %q", m.PayloadVersion)
	}
	info := fwInfo{version: v, uri: m.PayloadURI, size: m.PayloadSize, label: m.PayloadVersion, component: m.ComponentName}
	copy(info.hash[:], m.PayloadDigest)
	return info, resultNone, ""
}

func (h *hub) applicable(vendor, class []byte) (int, string) {
	switch {
	case !bytes.Equal(vendor, h.cfg.VendorID[:]):
		return ResultWrongVendorID, fmt.Sprintf("vendor id %x is not this device's", vendor)
	case !bytes.Equal(class, h.cfg.ClassID[:]):
		return ResultWrongClassID, fmt.Sprintf("class id %x is not this device's", class)
	}
	return resultNone, ""
}

// CandidateHeader returns the header the client writes at the start of a
// candidate slot on the given storage device: the internal header (CRC) on
// internal flash, the external one (HMAC-SHA256 with the device key)
// elsewhere. deviceKey is called only for the external header. Written
// through the block device, it is padded to the program unit
// (storage.PadToUnit), which is where the body starts (mbedlayout.Layout.SlotBody).
func CandidateHeader(device string, version, size uint64, hash [32]byte, deviceKey func() ([]byte, error)) ([]byte, error) {
	if device == sim.DeviceInternal {
		ih := firmware.InternalHeader{FirmwareVersion: version, FirmwareSize: size, FirmwareHash: hash}
		return ih.Encode(), nil
	}
	key, err := deviceKey()
	if err != nil {
		return nil, err
	}
	eh := firmware.ExternalHeader{FirmwareVersion: version, FirmwareSize: size, FirmwareHash: hash,
		PayloadSize: size, PayloadHash: hash}
	return eh.Encode(key)
}

// EncryptedCandidateHeader is CandidateHeader for an off-chip candidate
// kept encrypted: the external header says so (transformation mode
// AES-CTR) and carries the initial counter block.
func EncryptedCandidateHeader(version, size uint64, hash [32]byte, iv [16]byte, key []byte) ([]byte, error) {
	eh := firmware.ExternalHeader{FirmwareVersion: version, FirmwareSize: size, FirmwareHash: hash,
		PayloadSize: size, PayloadHash: hash, TransformationMode: firmware.TransformAESCTR, InitVector: iv}
	return eh.Encode(key)
}

// cipher returns the candidate's cipher when the client keeps it
// encrypted, nil otherwise.
func (h *hub) cipher() (*firmware.CandidateCipher, error) {
	if !h.cfg.Encrypt || h.chain != nil || h.cfg.Layout.Storage == sim.DeviceInternal {
		return nil, nil
	}
	key, err := h.deviceKey()
	if err != nil {
		return nil, err
	}
	return firmware.NewCandidateCipher(key, h.fw.hash)
}

// deviceKey reads the ROT and derives the device key: from SOTP (the
// client initialises the store), or from the KVStore's reserved area
// (DeviceKey reads it without writing).
func (h *hub) deviceKey() ([]byte, error) {
	rot, err := h.cfg.Layout.ClientROT(h.m.Internal())
	if err != nil {
		return nil, err
	}
	return firmware.DeviceKey(rot, h.cfg.BackwardCompatibleKey)
}

// setupFirmware prepares the slot: erase it, and (3.3) write the header.
func (h *hub) setupFirmware() {
	h.to("SETUP_FIRMWARE")
	h.report(StateDownloadingUpdate, resultNone)
	if h.body()+h.fw.size > h.slot().Start+h.slot().Size {
		h.fail(ResultInsufficientStorage, fmt.Sprintf("%d bytes do not fit slot 0", h.fw.size))
		return
	}
	h.m.SetPhase("prepare")
	if h.chain != nil {
		evicted, err := chainRelease(h.m, h.cfg.Chain, *h.chain)
		if err != nil {
			h.fail(ResultWriterWriteFailure, err.Error())
			return
		}
		if evicted != 0 {
			h.info("UCFM", "evicting %s version %d from %s", h.chain.stage, evicted, h.where())
			h.m.Mark(MarkEvicted, fmt.Sprintf("%s version %d", h.chain.stage, evicted))
		}
	}
	from := h.resumePoint()
	if err := h.eraseSlot(from); err != nil {
		h.fail(ResultWriterWriteFailure, err.Error())
		return
	}
	if h.cfg.Generation == Gen33 && from == 0 && h.chain == nil {
		if err := h.writeHeader(); err != nil {
			h.fail(ResultWriterWriteFailure, err.Error())
			return
		}
	}
	h.to("AWAIT_FIRMWARE_SETUP")
	h.to("FIRMWARE_SETUP_DONE")
	h.offset, h.reported = from, 0
	if from > 0 {
		h.m.Mark(MarkDownloadResume, fmt.Sprintf("at %d after a reset", from))
		h.info("UCSM", "resuming the download at byte %d (Range: bytes=%d-)", from, from)
	}
	h.excluded = map[string]bool{}
	h.delay, h.waited = resumeFirst, 0
	h.m.Mark(MarkDownloadBegin, fmt.Sprintf("%d bytes", h.fw.size))
	h.source = ""
	when := map[Generation]string{Gen33: "written now", Gen34: "written at activate"}[h.cfg.Generation]
	if h.chain != nil {
		when = "written at activate"
	}
	h.info("UCFM", "writing the candidate to %s at 0x%x (header %s)", h.where(), h.slot().Start, when)
	if h.offset >= h.fw.size {
		// Nothing to fetch: a manifest for an empty payload (the hub's way
		// of erasing a slot), or a resumed download that had stored every
		// byte before the reset. Finalize checks what the slot holds.
		h.to("LAST_FRAGMENT_STORE_DONE")
		h.finalize()
		return
	}
	h.to("FETCH_FIRST_FRAGMENT")
	h.fetch()
}

func (h *hub) writeHeader() error {
	hdr, err := CandidateHeader(h.cfg.Layout.Storage, h.fw.version, h.fw.size, h.fw.hash, h.deviceKey)
	if c, cerr := h.cipher(); cerr != nil {
		return cerr
	} else if c != nil {
		key, kerr := h.deviceKey()
		if kerr != nil {
			return kerr
		}
		hdr, err = EncryptedCandidateHeader(h.fw.version, h.fw.size, h.fw.hash, c.IV(), key)
	}
	if err != nil {
		return err
	}
	return h.dev().Program(h.slot().Start, storage.PadToUnit(hdr, h.dev().ProgramSize()))
}

// eraseSlot erases what the candidate will occupy from a body offset on:
// whole sectors on NOR flash, a trim on an SD card.
func (h *hub) eraseSlot(from uint64) error {
	dev := h.dev()
	start, end := h.slot().Start, h.body()+h.fw.size
	if from > 0 {
		start = h.body() + from
	}
	for at := start; at < end; {
		n := dev.EraseSize(at)
		if dev.EraseValue() < 0 {
			n = (end - at + n - 1) / n * n
		}
		if err := dev.Erase(at, n); err != nil {
			return err
		}
		if h.cfg.Chain != nil {
			// The chain application's main loop kicks its watchdog
			// between flash operations (one sector erase can take
			// longer than a kick period).
			h.m.KickWatchdog()
		}
		at += n
	}
	return nil
}

// fetch requests the next burst of fragments from the cheapest source.
func (h *hub) fetch() {
	src, ok := h.cheapest("firmware")
	if !ok {
		h.fail(ResultFetcherNoRoute, "no source can provide the firmware")
		return
	}
	if src.Name != h.source {
		h.source = src.Name
		h.info("UCSM", "firmware from source %s (cost %d): %s", src.Name, cloud.Cost(src, "firmware", h.cached != nil), h.fw.uri)
	}
	n := int(min(h.fw.size-h.offset, burstFragments*fragmentSize))
	h.to("STORE_AND_DOWNLOAD")
	h.m.After(h.svc.TransferTime(h.m.Now(), n), func() {
		data, err := h.svc.Fetch(h.cfg.DeviceID, src.Name, h.fw.uri, int64(h.offset), n)
		switch {
		case errors.Is(err, cloud.ErrLinkDown):
			h.to("WAIT_FOR_NETWORK")
			d := h.delay
			h.retry("fragment fetch", func() {
				// The resume engine sums its waits for the request and
				// terminates it past the maximum download time
				// (arm_uc_resume.c:424-441): the source fails, is excluded
				// for the fragment, and with no other the update ends (302).
				h.waited += d
				if h.waited >= resumeGiveUp {
					h.info("UCSM", "source %s: resume terminated after %s of waiting; excluded for this fragment", src.Name, h.waited)
					h.excluded[src.Name] = true
					h.waited = 0
					h.fetch()
					return
				}
				h.m.Mark(MarkDownloadResume, fmt.Sprintf("at %d", h.offset))
				h.info("UCSM", "resuming from byte %d (Range: bytes=%d-)", h.offset, h.offset)
				h.fetch()
			})
		case errors.Is(err, cloud.ErrBusy):
			h.busyRetries++
			if h.busyRetries > maxBusyRetries {
				// SOMA_ERR_UNSPECIFIED, which the hub's error handler
				// leaves at its default: a nonspecific system error.
				h.busyRetries = 0
				h.fail(ResultNonspecificSystemError, fmt.Sprintf("source %s is still busy after %d retries", src.Name, maxBusyRetries))
				return
			}
			h.info("UCSM", "source %s is busy; asking again in %s", src.Name, busyRetry)
			h.m.After(busyRetry, h.fetch)
		case err != nil:
			h.info("UCSM", "source %s failed (%v); excluded for this fragment", src.Name, err)
			h.excluded[src.Name] = true
			h.fetch()
		case len(data) == 0:
			h.fail(ResultFetcherConnectionLoss, fmt.Sprintf("the payload ends at %d of %d bytes", h.offset, h.fw.size))
		default:
			h.delay, h.waited = resumeFirst, 0
			// The next fragment is a new request, whose exclusions start
			// afresh: a source that failed is tried again first if it is
			// the cheapest (ARM_UCSM_GetCommon → RequestStructInit,
			// arm_uc_source_manager.c:686-699).
			clear(h.excluded)
			h.store(data)
		}
	})
}

// swallowsWrites says whether the client writes through the block-device
// PAL of the Pelion client (candidates on an external device), whose
// failed writes are never reported; the hardened and chain profiles keep
// reporting them (503).
func (h *hub) swallowsWrites() bool {
	return h.cfg.Layout != nil && h.cfg.Layout.Storage != sim.DeviceInternal && h.cfg.Hardened == nil && h.chain == nil
}

// store writes a burst in fragments, then fetches the next or finalizes.
func (h *hub) store(data []byte) {
	h.to("WAIT_FOR_STORAGE")
	h.m.SetPhase("download")
	dev, body := h.dev(), h.body()
	c, err := h.cipher()
	if err != nil {
		h.fail(ResultWriterWriteFailure, err.Error())
		return
	}
	if c != nil {
		data = bytes.Clone(data)
		c.XORAt(h.offset, data)
		h.m.Spend(h.m.Board().AESTime(uint64(len(data))))
	}
	for len(data) > 0 {
		n := min(len(data), fragmentSize)
		// A short fragment is padded to the program unit; the offset moves
		// by what was received, so that a resume asks for the right byte.
		if err := dev.Program(body+h.offset, storage.PadToUnit(data[:n], dev.ProgramSize())); err != nil {
			if h.swallowsWrites() && !errors.Is(err, storage.ErrPowerLost) {
				// ARM_UC_PAL_BlockDevice_Write keeps the ERR_NONE of its slot
				// lookup and signals neither WRITE_DONE nor WRITE_ERROR when
				// the program fails (pal-blockdevice/source/
				// arm_uc_pal_blockdevice_implementation.c:328-395): the
				// firmware manager waits for an event that never comes.
				h.m.Check("write", false, err.Error()+"; the PAL returns success and never signals the write")
				h.m.Mark(MarkWriteLost, fmt.Sprintf("at byte %d", h.offset))
				return
			}
			h.fail(ResultWriterWriteFailure, err.Error())
			return
		}
		data = data[n:]
		h.offset += uint64(n)
	}
	h.saveProgress()
	h.progress()
	if h.offset < h.fw.size {
		h.fetch()
		return
	}
	h.to("LAST_FRAGMENT_STORE_DONE")
	h.m.Print("Download completed\r\n")
	h.m.Mark(MarkDownloadDone, fmt.Sprintf("%d bytes", h.fw.size))
	h.finalize()
}

// progress prints the example application's progress bar in quarters.
func (h *hub) progress() {
	pct := int(h.offset * 100 / max(h.fw.size, 1))
	if pct/25 <= h.reported/25 {
		return
	}
	h.reported = pct
	bar := strings.Repeat("+", pct/2) + strings.Repeat(" ", 50-pct/2)
	h.m.Printf("Downloading: [%s] %d %%\r\n", bar, pct)
}

// finalize reads the slot back and checks its SHA-256 against the manifest.
func (h *hub) finalize() {
	h.to("FINALIZE_STORAGE")
	h.m.SetPhase("finalize")
	dev, body := h.dev(), h.body()
	c, err := h.cipher()
	if err != nil {
		h.fail(ResultWriterWriteFailure, err.Error())
		return
	}
	sum := sha256.New()
	buf := make([]byte, readBackBuffer)
	u := dev.ReadSize()
	for off := uint64(0); off < h.fw.size; off += readBackBuffer {
		n := min(uint64(readBackBuffer), h.fw.size-off)
		rd := (n + u - 1) / u * u
		if err := dev.Read(body+off, buf[:rd]); err != nil {
			h.fail(ResultWriterWriteFailure, err.Error())
			return
		}
		if c != nil {
			c.XORAt(off, buf[:n])
			h.m.Spend(h.m.Board().AESTime(n))
		}
		sum.Write(buf[:n])
		h.m.SpendHashing(n)
	}
	h.forgetProgress()
	if !bytes.Equal(sum.Sum(nil), h.fw.hash[:]) {
		h.fail(ResultWriterHashError, "the stored payload does not match the manifest's SHA-256")
		return
	}
	h.to("STORAGE_FINALIZED")
	h.info("UCFM", "SHA-256 of %s matches the manifest", h.where())
	h.m.Mark(MarkFinalized, "")
	h.report(StateDownloadedUpdate, resultNone)
	h.to("WAIT_FOR_INSTALL_AUTHORIZATION")
	h.report(StateAwaitingInstallApproval, resultNone)
	h.m.Print("Firmware install requested\r\n")
	h.authorize(h.cfg.Install, ResultWriterAuthorizationRejected, func() {
		h.m.Mark(MarkInstallAuthorize, "")
		h.activate()
	})
}

// activate commits the candidate (3.4: writes its header) and reboots.
func (h *hub) activate() {
	h.to("INSTALL_AUTHORIZED")
	h.report(StateInstallingUpdate, resultNone)
	h.to("ACTIVATE_FIRMWARE")
	h.m.SetPhase("activate")
	if h.chain != nil {
		if err := chainCommit(h.m, h.cfg.Chain, *h.chain, h.fw); err != nil {
			h.fail(ResultWriterActivationFailure, err.Error())
			return
		}
	} else if h.cfg.Generation == Gen34 {
		if err := h.writeHeader(); err != nil {
			h.fail(ResultWriterActivationFailure, err.Error())
			return
		}
	}
	h.m.Mark(MarkActivated, "")
	h.to("PREP_REBOOT")
	h.report(StateRebooting, resultNone)
	h.to("INITIALIZE_REBOOT_TIMER")
	h.m.Mark(MarkRebooting, "")
	h.info("UCHB", "rebooting into the bootloader in %s", rebootDelay)
	h.m.After(rebootDelay, func() {
		h.to("REBOOT")
		h.m.SystemReset()
	})
}

func (h *hub) keyStore() *sotp.Store {
	a1, a2 := h.cfg.Layout.SOTPAreas()
	return sotp.New(h.m.Internal(), a1, a2)
}

// resumePoint returns the body offset an interrupted download of the same
// payload can resume from: the payload's size when every byte was stored
// (nothing to fetch or erase); otherwise where the progress record says,
// moved back to the start of its erase sector on NOR flash (a torn program
// there cannot be programmed over) or of its block on an SD card (writes
// are whole blocks) - 0 when there is nothing to resume.
func (h *hub) resumePoint() uint64 {
	if !h.cfg.Resume {
		return 0
	}
	rec, err := h.keyStore().Get(TypeUpdateResume)
	if err != nil || len(rec) != 40 || !bytes.Equal(rec[:32], h.fw.hash[:]) {
		return 0
	}
	off := binary.LittleEndian.Uint64(rec[32:])
	if off >= h.fw.size {
		return h.fw.size
	}
	dev := h.dev()
	at := h.body() + off
	if dev.EraseValue() >= 0 {
		for start := uint64(0); start <= at; {
			n := dev.EraseSize(start)
			if start+n > at {
				at = start
				break
			}
			start += n
		}
	} else {
		at = at / dev.ProgramSize() * dev.ProgramSize()
	}
	if at <= h.body() {
		return 0
	}
	return at - h.body()
}

// saveProgress records how far the download got, when resuming is on.
func (h *hub) saveProgress() {
	if !h.cfg.Resume {
		return
	}
	rec := make([]byte, 40)
	copy(rec, h.fw.hash[:])
	binary.LittleEndian.PutUint64(rec[32:], h.offset)
	if err := h.keyStore().Set(TypeUpdateResume, rec); err != nil {
		h.info("UCFM", "could not record the download's progress: %v", err)
	}
}

// forgetProgress deletes the progress record once the download is checked.
func (h *hub) forgetProgress() {
	if h.cfg.Resume {
		_ = h.keyStore().Delete(TypeUpdateResume)
	}
}
