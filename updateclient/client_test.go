package updateclient

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
	"github.com/stretchr/testify/require"
)

// Paper-rule tests of the update client: the App runs at the reset vector
// (no bootloader), reads the active header, registers with the service and
// handles the campaign the test starts. Each test states one rule of the
// hub (reference/mbed-stack.md §4) and checks the marks, the result the
// service saw, the serial console and the slot.

// activeVersion is the version in the active header of every bench.
const activeVersion = 2000

// client is a device running the App against a service.
type client struct {
	*harness
	t testing.TB
	l *mbedlayout.Layout
}

// newClient builds a k64f with candidates on the given storage ("" for the
// SD card), a ROT in SOTP and an active header of activeVersion; edit may
// change the client's configuration.
func newClient(t *testing.T, storageKind string, edit func(*Config)) *client {
	t.Helper()
	h := newHarness(t)
	if storageKind != "" {
		b, err := sim.LoadBoard("k64f")
		require.NoError(t, err)
		l, err := mbedlayout.For(b, storageKind)
		require.NoError(t, err)
		m, err := sim.New(sim.Config{Board: b, Regions: l.Regions(b), Seed: 1})
		require.NoError(t, err)
		h.m, h.cfg.Layout = m, l
		m.Factory(func() {
			a1, a2 := l.SOTPAreas()
			require.NoError(t, sotp.New(m.Internal(), a1, a2).Set(sotp.TypeROT, bytes.Repeat([]byte{7}, 16)))
		})
	}
	if edit != nil {
		edit(h.cfg)
	}
	c := &client{harness: h, t: t, l: h.cfg.Layout}
	ih := firmware.InternalHeader{FirmwareVersion: activeVersion, FirmwareSize: 1, FirmwareHash: sha256.Sum256([]byte{1})}
	desc := &sim.Descriptor{Stage: "application", Impl: "app", Name: "app", Version: activeVersion, Behaviour: Healthy, Size: 2048}
	img, err := sim.BuildImage(desc, 1)
	require.NoError(t, err)
	h.m.AddImage(&sim.Image{Desc: desc, Bytes: img})
	h.m.Register("app", App{Client: h.cfg, Service: h.svc})
	h.m.Factory(func() {
		h.m.Internal().Load(0, img)
		h.m.Internal().Load(uint64(c.l.ApplicationDetails), ih.Encode())
	})
	return c
}

// v1 returns a genuine v1 manifest for payload, changed by edit before it
// is signed.
func (c *client) v1(payload []byte, timestamp uint64, edit func(*firmware.ManifestV1)) []byte {
	sum := sha256.Sum256(payload)
	m := firmware.NewManifestV1(firmware.V1Params{Timestamp: timestamp, VendorID: c.cfg.VendorID[:], ClassID: c.cfg.ClassID[:],
		PayloadURI: "https://x/fw.bin", PayloadDigest: sum[:], PayloadSize: uint64(len(payload))})
	if edit != nil {
		edit(m)
	}
	if err := m.Sign(c.key, c.cfg.Certificate); err != nil {
		panic(err)
	}
	der, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return der
}

// v3 returns a genuine v3 manifest for payload.
func (c *client) v3(payload []byte, version string) []byte {
	sum := sha256.Sum256(payload)
	m := firmware.NewManifestV3(firmware.V3Params{VendorID: c.cfg.VendorID[:], ClassID: c.cfg.ClassID[:],
		PayloadVersion: version, PayloadDigest: sum[:], PayloadSize: uint64(len(payload)), PayloadURI: "https://x/fw.bin"})
	if err := m.Sign(c.key, false); err != nil {
		panic(err)
	}
	der, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return der
}

// campaign starts a campaign that serves manifest and, at its URI, payload.
func (c *client) campaign(manifest, payload []byte) {
	c.svc.StartCampaign(&cloud.Campaign{Name: "fw", Manifest: manifest, PayloadURI: "https://x/fw.bin", Payload: payload, Target: 1 << 62})
}

// run powers the device on (if it is off) and runs it, within a virtual
// hour, until stop holds, an update fails, or the boot the device is in
// (or starts) ends in a reset.
func (c *client) run(stop func() bool) {
	m := c.m
	if m.State() == sim.StateOff {
		m.PowerOn()
	}
	from := len(m.Trace())
	m.Run(m.Now()+time.Hour, func() bool {
		if stop != nil && stop() {
			return true
		}
		started := m.State() != sim.StateBooting
		for _, e := range m.Trace()[from:] {
			switch {
			case e.Kind == sim.EvStage:
				started = true
			case e.Kind == sim.EvReset && started:
				return true
			case e.Kind == sim.EvMark && e.Name == MarkUpdateFailed:
				return true
			}
		}
		return false
	})
}

// count counts the marks of a name.
func (c *client) count(name string) int {
	n := 0
	for _, e := range c.m.Trace() {
		if e.Kind == sim.EvMark && e.Name == name {
			n++
		}
	}
	return n
}

// result is what the service last heard from the device.
func (c *client) result() int { return c.svc.Device(c.cfg.DeviceID).Result }

// slotWrites returns the ops the client issued on the candidate slot.
func (c *client) slotWrites() []storage.Op {
	var out []storage.Op
	for _, op := range c.m.Storage().Journal() {
		if op.Region == "slot-0" {
			out = append(out, op)
		}
	}
	return out
}

// printed reports whether a serial line contains s.
func (c *client) printed(s string) bool {
	for _, l := range c.m.Serial() {
		if strings.Contains(l.Text, s) {
			return true
		}
	}
	return false
}

// slotHolds reports whether the slot's body holds payload.
func (c *client) slotHolds(payload []byte) bool {
	dev := c.m.Storage().Device(c.l.Storage)
	b := make([]byte, len(payload))
	dev.Peek(c.l.SlotBody(c.m.Board(), 0, dev.ProgramSize()), b)
	return bytes.Equal(b, payload)
}

// payload returns n seeded bytes.
func payload(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31 + i>>8)
	}
	return b
}

// TestManifestRejections: each check of the manifest manager, with the
// result code it reports; a rejected manifest leaves the slot untouched and
// the service told why. §4.3.
func TestManifestRejections(t *testing.T) {
	p := payload(3000)
	for _, tc := range []struct {
		name     string
		manifest func(c *client) []byte
		result   int
		why      string
	}{
		{"older version", func(c *client) []byte { return c.v1(p, activeVersion-1, nil) }, ResultRollbackProtection, "is not newer than the active 2000"},
		{"same version", func(c *client) []byte { return c.v1(p, activeVersion, nil) }, ResultRollbackProtection, "is not newer than the active 2000"},
		{"manifest version 0", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.ManifestVersion = 0 })
		}, ResultUnsupportedManifest, "manifest version 0"},
		{"manifest version 3", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.ManifestVersion = 3 })
		}, ResultUnsupportedManifest, "manifest version 3"},
		{"encryption mode 0", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.EncryptionMode.Enum = 0 })
		}, ResultInvalidCryptoMode, "unsupported encryption mode"},
		{"encryption mode 6", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.EncryptionMode.Enum = 6 })
		}, ResultInvalidCryptoMode, "unsupported encryption mode"},
		{"encryption mode as an OID", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.EncryptionMode.OID = []int{1, 2, 3} })
		}, ResultInvalidCryptoMode, "unsupported encryption mode"},
		{"no payload", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.Payload = nil })
		}, ResultInvalidManifestFormat, "no payload description"},
		{"short payload hash", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.Payload.Reference.Hash = m.Payload.Reference.Hash[:31] })
		}, ResultInvalidManifestFormat, "no payload description"},
		{"wrong vendor", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.VendorID[0] ^= 1 })
		}, ResultWrongVendorID, "is not this device's"},
		{"wrong class", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.ClassID[0] ^= 1 })
		}, ResultWrongClassID, "is not this device's"},
		{"resource hash", func(c *client) []byte {
			der := c.v1(p, 3000, nil)
			m, err := firmware.DecodeManifestV1(der)
			require.NoError(t, err)
			m.Hash[0] ^= 1
			out, err := m.Encode()
			require.NoError(t, err)
			return out
		}, ResultManifestIntegrityFailed, "firmware: manifest hash"},
		{"unknown signer", func(c *client) []byte {
			der := c.v1(p, 3000, nil)
			c.cfg.Certificate = append([]byte(nil), c.cfg.Certificate...)
			c.cfg.Certificate[len(c.cfg.Certificate)-1] ^= 1
			return der
		}, ResultCertificateNotFound, "no signature by a known certificate"},
		{"bad signature", func(c *client) []byte {
			der := c.v1(p, 3000, nil)
			m, err := firmware.DecodeManifestV1(der)
			require.NoError(t, err)
			m.Signatures[0].Signature[len(m.Signatures[0].Signature)-3] ^= 1
			out, err := m.Encode()
			require.NoError(t, err)
			return out
		}, ResultInvalidSignature, ""},
		{"v3 bad signature", func(c *client) []byte {
			der := c.v3(p, "9.9.9")
			m, err := firmware.DecodeManifestV3(der)
			require.NoError(t, err)
			m.Signature[5] ^= 1
			out, err := m.Encode()
			require.NoError(t, err)
			return out
		}, ResultInvalidSignature, "the v3 signature does not verify with the vendor key"},
		{"v3 without a vendor key", func(c *client) []byte {
			c.cfg.PublicKey = nil
			return c.v3(p, "9.9.9")
		}, ResultInvalidSignature, "the v3 signature does not verify with the vendor key"},
		{"v3 wrong class", func(c *client) []byte {
			der := c.v3(p, "9.9.9")
			c.cfg.ClassID[3] ^= 1
			return der
		}, ResultWrongClassID, "is not this device's"},
		{"v3 wrong vendor", func(c *client) []byte {
			der := c.v3(p, "9.9.9")
			c.cfg.VendorID[3] ^= 1
			return der
		}, ResultWrongVendorID, "is not this device's"},
		{"neither v1 nor v3", func(c *client) []byte { return []byte{0x30, 0x03, 0x02, 0x01, 0x01} }, ResultInvalidManifestFormat, "neither a v1 nor a v3 manifest"},
		{"larger than the buffer", func(c *client) []byte { return append(c.v1(p, 3000, nil), make([]byte, manifestMax)...) }, ResultInvalidManifestSize, "-byte manifest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, "", nil)
			c.campaign(tc.manifest(c), p)
			c.run(nil)
			require.Equal(t, 1, c.count(MarkUpdateFailed), "the update fails")
			require.Equal(t, tc.result, c.result())
			require.True(t, c.printed(fmt.Sprintf("(%d %s)", tc.result, ResultName(tc.result))), "the console names the result")
			require.True(t, c.printed(tc.why), "the console says %q", tc.why)
			require.Zero(t, c.count(MarkDownloadBegin))
			require.Empty(t, c.slotWrites(), "a rejected manifest writes nothing")
			require.Zero(t, c.svc.Device(c.cfg.DeviceID).BytesServed)
			require.Equal(t, StateIdle, c.svc.Device(c.cfg.DeviceID).State)
		})
	}
}

// TestManifestAccepted: the manifests the rejections are made from are
// accepted: a newer v1 (and a v1 of manifest version 1, encryption modes 1
// and 5 at the ends of the range, a manifest of exactly the buffer's size)
// and a newer v3, downloaded, checked and activated. §4.3.
func TestManifestAccepted(t *testing.T) {
	p := payload(3000)
	for _, tc := range []struct {
		name     string
		manifest func(c *client) []byte
	}{
		{"v1", func(c *client) []byte { return c.v1(p, activeVersion+1, nil) }},
		{"manifest version 1", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.ManifestVersion = 1 })
		}},
		{"manifest version 2", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.ManifestVersion = 2 })
		}},
		{"encryption mode 1", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.EncryptionMode.Enum = 1 })
		}},
		{"encryption mode 5", func(c *client) []byte {
			return c.v1(p, 3000, func(m *firmware.ManifestV1) { m.EncryptionMode.Enum = 5 })
		}},
		{"v3", func(c *client) []byte { return c.v3(p, "1.0.0") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, "", nil)
			c.campaign(tc.manifest(c), p)
			c.run(nil)
			require.Zero(t, c.count(MarkUpdateFailed))
			require.Equal(t, 1, c.count(MarkActivated))
			require.True(t, c.slotHolds(p))
			require.True(t, c.printed("manifest from source lwm2m (cost 0)"), "a pushed manifest is cached: free")
			require.Equal(t, StateRebooting, c.svc.Device(c.cfg.DeviceID).State)
			require.Equal(t, int64(len(p)), c.svc.Device(c.cfg.DeviceID).BytesServed)
		})
	}

	// The size limit is the buffer's: a manifest of exactly manifestMax
	// bytes is read (and rejected for what it is, not for its size).
	c := newClient(t, "", nil)
	c.campaign(make([]byte, manifestMax), p)
	c.run(nil)
	require.Equal(t, ResultInvalidManifestFormat, c.result())
}

// TestPayloadLargerThanSlot: a manifest whose payload does not fit the
// slot fails with 225 before anything is erased. §4.4.
func TestPayloadLargerThanSlot(t *testing.T) {
	for _, st := range []string{"", "internal"} {
		c := newClient(t, st, nil)
		slot := c.l.Slots(c.m.Board())[0]
		room := slot.Start + slot.Size - c.l.SlotBody(c.m.Board(), 0, c.m.Storage().Device(c.l.Storage).ProgramSize())
		for _, n := range []uint64{room + 1, room} {
			c := newClient(t, st, nil)
			p := payload(int(n))
			c.campaign(c.v1(p, 3000, nil), p)
			c.run(func() bool { return c.count(MarkDownloadBegin) > 0 })
			if n > room {
				require.Equal(t, ResultInsufficientStorage, c.result(), "%s: %d bytes", st, n)
				require.Empty(t, c.slotWrites(), "%s: nothing erased", st)
				require.True(t, c.printed(fmt.Sprintf("%d bytes do not fit slot 0", n)))
			} else {
				require.Zero(t, c.count(MarkUpdateFailed), "%s: %d bytes fit", st, n)
				require.Equal(t, 1, c.count(MarkDownloadBegin))
			}
		}
	}
}

// TestDownloadAndActivate: the payload is fetched in bursts of 64 fragments
// of 512 bytes from the cheapest source, written to the slot, read back and
// hashed, then activated; 3.3 writes the header at prepare, 3.4 at
// activate. §4.2, §4.4.
func TestDownloadAndActivate(t *testing.T) {
	p := payload(70000)
	for _, gen := range []Generation{Gen33, Gen34} {
		t.Run(fmt.Sprint(gen), func(t *testing.T) {
			c := newClient(t, "", func(cfg *Config) { cfg.Generation = gen })
			c.campaign(c.v1(p, 3000, nil), p)
			c.run(nil)
			require.Equal(t, 1, c.count(MarkActivated))
			require.True(t, c.slotHolds(p))
			// The header: external, with the device key, naming the payload.
			dev := c.m.Storage().Device(c.l.Storage)
			hdr := make([]byte, 512)
			dev.Peek(c.l.Slots(c.m.Board())[0].Start, hdr)
			key, err := firmware.DeviceKey(bytes.Repeat([]byte{7}, 16), false)
			require.NoError(t, err)
			eh, err := firmware.DecodeExternalHeader(hdr[:firmware.ExternalHeaderSize], key)
			require.NoError(t, err)
			require.Equal(t, uint64(3000), eh.FirmwareVersion)
			require.Equal(t, uint64(len(p)), eh.FirmwareSize)
			require.Equal(t, sha256.Sum256(p), eh.FirmwareHash)
			// Where the header write falls among the phases.
			var phases []string
			for _, op := range c.slotWrites() {
				if op.Kind == storage.OpProgram && op.Addr == c.l.Slots(c.m.Board())[0].Start {
					phases = append(phases, op.Phase)
				}
			}
			want := map[Generation]string{Gen33: "prepare", Gen34: "activate"}[gen]
			require.Equal(t, []string{want}, phases)
			// 70000 bytes: 137 fragments of 512 (the last of 368, padded to
			// the SD block) in bursts of 64 fragments.
			n := 0
			for _, op := range c.slotWrites() {
				if op.Phase == "download" {
					require.Equal(t, uint64(512), op.Len)
					n++
				}
			}
			require.Equal(t, 137, n)
			require.Equal(t, 3, c.svc.Requests(), "three bursts")
			// The SD card is trimmed in one op from the slot's start to the
			// end of the candidate, rounded up to the block.
			var erases []string
			for _, op := range c.slotWrites() {
				if op.Kind == storage.OpErase {
					erases = append(erases, fmt.Sprintf("%s 0x%x+%d", op.Phase, op.Addr, op.Len))
				}
			}
			require.Equal(t, []string{"prepare 0x0+70656"}, erases)
			// Each burst asks for what is left, at most 64 fragments: the
			// link's time for a request is its latency plus its bytes.
			require.Equal(t, []time.Duration{burstTime(32768), burstTime(32768), burstTime(70000 - 65536)}, c.bursts())
			require.True(t, c.printed("Downloading: [++++++++++++++++++++++++++++++++++++++++++++++++++] 100 %"))
			require.True(t, c.printed("Firmware install requested"))
			// The reboot comes a second after activation.
			require.True(t, c.m.Run(c.m.Now()+2*time.Second, func() bool { return c.m.Boots() == 2 }))
			require.Equal(t, sim.ResetSoftware, c.m.ResetReason())
		})
	}
}

// burstTime is how long the harness's link (1 MiB/s, 1 ms) takes to serve
// n bytes.
func burstTime(n int) time.Duration {
	return time.Millisecond + time.Duration(uint64(n)*uint64(time.Second)/(1<<20))
}

// bursts returns how long each download request took on the link: from
// the hub's request (STORE_AND_DOWNLOAD) to the data's arrival
// (WAIT_FOR_STORAGE).
func (c *client) bursts() []time.Duration {
	var out []time.Duration
	var sent time.Duration
	for _, e := range c.m.Trace() {
		if e.Kind != sim.EvState {
			continue
		}
		switch {
		case strings.HasSuffix(e.Detail, "→ STORE_AND_DOWNLOAD"):
			sent = e.Time
		case strings.HasSuffix(e.Detail, "STORE_AND_DOWNLOAD → WAIT_FOR_STORAGE"):
			out = append(out, e.Time-sent)
		}
	}
	return out
}

// TestPrepareErasesWholeSectors: on NOR flash the prepare step erases the
// slot sector by sector, from the slot's start to the sector that holds
// the candidate's last byte, so that a slot holding an older candidate ends
// up holding exactly the new one.
func TestPrepareErasesWholeSectors(t *testing.T) {
	p := payload(10000)
	c := newClient(t, "internal", nil)
	slot := c.l.Slots(c.m.Board())[0]
	c.m.Factory(func() { c.m.Storage().Device(c.l.Storage).Load(slot.Start, payload(int(slot.Size))[100:]) })
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(nil)
	require.Equal(t, 1, c.count(MarkActivated), "result %d", c.result())
	require.True(t, c.slotHolds(p))
	var erases []uint64
	for _, op := range c.slotWrites() {
		if op.Kind == storage.OpErase {
			require.Equal(t, "prepare", op.Phase)
			require.Equal(t, uint64(4096), op.Len)
			erases = append(erases, op.Addr-slot.Start)
		}
	}
	// The header takes 0x70 bytes: 0x70 + 10000 bytes end in the third sector.
	require.Equal(t, []uint64{0, 0x1000, 0x2000}, erases)
}

// TestProgressInQuarters: the progress bar is printed at 25, 50, 75 and
// 100 % only.
func TestProgressInQuarters(t *testing.T) {
	p := payload(64 * 512 * 8) // eight bursts: 12.5 % each
	c := newClient(t, "", nil)
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(nil)
	var bars []string
	for _, l := range c.m.Serial() {
		if strings.HasPrefix(l.Text, "Downloading: ") {
			bars = append(bars, l.Text[strings.LastIndex(l.Text, "]")+2:])
		}
	}
	require.Equal(t, []string{"25 %", "50 %", "75 %", "100 %"}, bars)
}

// TestCorruptedDownloadIsNotActivated: a payload whose SHA-256 does not
// match the manifest fails with 504 after the read-back; a payload that
// ends early fails with 306. §4.4.
func TestCorruptedDownloadIsNotActivated(t *testing.T) {
	p := payload(5000)
	c := newClient(t, "", nil)
	c.campaign(c.v1(p, 3000, nil), p)
	c.svc.CorruptAt(cloud.Corruption{Offset: 4999, Mask: 1})
	c.run(nil)
	require.Equal(t, ResultWriterHashError, c.result())
	require.Zero(t, c.count(MarkActivated))
	require.Zero(t, c.count(MarkFinalized))

	c = newClient(t, "", nil)
	c.campaign(c.v1(p, 3000, nil), p[:4000])
	c.run(nil)
	require.Equal(t, ResultFetcherConnectionLoss, c.result())
	require.True(t, c.printed("the payload ends at 4000 of 5000 bytes"))
}

// TestSources: the cheapest source serves; a failing one is excluded and
// the next one used; a busy one is asked again after a second; with no
// source that can serve, 302. §4.5.
func TestSources(t *testing.T) {
	p := payload(5000)
	for _, tc := range []struct {
		name    string
		sources []cloud.Source
		result  int
		says    string
		served  int64
	}{
		{"http", []cloud.Source{{Name: "lwm2m", Kind: "lwm2m"}, {Name: "http", Kind: "http"}}, 0, "firmware from source http (cost 700)", 5000},
		{"cheaper mirror first", []cloud.Source{{Name: "http", Kind: "http"}, {Name: "mirror", Kind: "http", Cost: 10}}, 0, "firmware from source mirror (cost 10)", 5000},
		{"tie: first registered", []cloud.Source{{Name: "a", Kind: "http"}, {Name: "b", Kind: "http"}}, 0, "firmware from source a (cost 700)", 5000},
		{"failover", []cloud.Source{{Name: "mirror", Kind: "http", Cost: 10, Fails: true}, {Name: "http", Kind: "http"}}, 0, "source mirror failed", 5000},
		{"busy twice", []cloud.Source{{Name: "http", Kind: "http", Busy: 2}}, 0, "source http is busy; asking again in 500ms", 5000},
		// MAX_BUSY_RETRIES is 2: a third BUSY ends the update.
		{"busy three times", []cloud.Source{{Name: "http", Kind: "http", Busy: 3}}, ResultNonspecificSystemError, "source http is still busy after 2 retries", 0},
		{"no firmware source", []cloud.Source{{Name: "lwm2m", Kind: "lwm2m"}}, ResultFetcherNoRoute, "no source can provide the firmware", 0},
		{"all fail", []cloud.Source{{Name: "http", Kind: "http", Fails: true}}, ResultFetcherNoRoute, "no source can provide the firmware", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, "", nil)
			c.svc.SetSources(tc.sources)
			c.campaign(c.v1(p, 3000, nil), p)
			start := c.m.Now()
			c.run(nil)
			require.Equal(t, tc.result, c.result())
			require.True(t, c.printed(tc.says), "want %q", tc.says)
			require.Equal(t, tc.served, c.svc.Device(c.cfg.DeviceID).BytesServed)
			if tc.name == "busy twice" {
				require.Greater(t, c.m.Now()-start, time.Second, "two busy answers cost two retries of 500 ms")
			}
		})
	}
	// A manifest needs a source too: pushed over LwM2M, it is cached and
	// free; with only an HTTP source it costs 700; with none, 302.
	c := newClient(t, "", nil)
	c.svc.SetSources(nil)
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(nil)
	require.Equal(t, ResultFetcherNoRoute, c.result())
	require.True(t, c.printed("no source can provide the manifest"))
}

// TestLinkDropResumes: when the link drops during the download the client
// waits with the resume backoff (5 s, doubling) and resumes at the offset
// it reached with a Range request. §4.5.
func TestLinkDropResumes(t *testing.T) {
	p := payload(64 * 512 * 3)
	c := newClient(t, "", nil)
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(func() bool { return c.count(MarkDownloadBegin) > 0 })
	c.svc.SetLinkUp(false)
	c.m.Run(c.m.Now()+12*time.Second, nil)
	var waits []string
	for _, l := range c.m.Serial() {
		if strings.Contains(l.Text, "fragment fetch failed, retrying in ") {
			waits = append(waits, l.Text[strings.LastIndex(l.Text, " ")+1:])
		}
	}
	require.Equal(t, []string{"5s", "10s"}, waits, "the backoff doubles")
	c.svc.SetLinkUp(true)
	c.run(nil)
	require.Equal(t, 1, c.count(MarkActivated))
	require.True(t, c.slotHolds(p))
	require.True(t, c.printed("resuming from byte 0 (Range: bytes=0-)"))
	require.Equal(t, int64(len(p)), c.svc.Device(c.cfg.DeviceID).BytesServed, "nothing is fetched twice")
}

// TestRegisterRetries: registration waits for the link with the same
// backoff, and a device that registers below the campaign's target is
// notified.
func TestRegisterRetries(t *testing.T) {
	p := payload(3000)
	c := newClient(t, "", nil)
	c.campaign(c.v1(p, 3000, nil), p)
	c.svc.SetLinkUp(false)
	c.m.PowerOn()
	c.m.Run(20*time.Second, nil)
	require.Zero(t, c.count(MarkRegistered))
	// The first attempt comes when the network is up, 2 s after start-up.
	var first time.Duration
	for _, l := range c.m.Serial() {
		if strings.Contains(l.Text, "registration failed") {
			first = l.Time
			break
		}
	}
	var idle time.Duration
	for _, e := range c.m.Trace() {
		if e.Kind == sim.EvState && strings.HasSuffix(e.Detail, "→ IDLE") {
			idle = e.Time
			break
		}
	}
	require.Equal(t, idle+2*time.Second, first)
	require.True(t, c.printed("registration failed, retrying in 5s"))
	require.True(t, c.printed("registration failed, retrying in 10s"))
	c.svc.SetLinkUp(true)
	c.run(nil)
	require.Equal(t, 1, c.count(MarkRegistered))
	require.Equal(t, 1, c.count(MarkNotified))
	require.Equal(t, 1, c.count(MarkActivated))
}

// TestAuthorization: a denied download or install leaves the update with
// no result; a delayed one waits. §4.2.
func TestAuthorization(t *testing.T) {
	p := payload(3000)
	for _, tc := range []struct {
		name              string
		download, install Policy
		activated         bool
		downloaded        bool
		rejected          int
	}{
		{"grant", Policy{}, Policy{}, true, true, 0},
		{"delay download", Policy{Delay: 20 * time.Second}, Policy{}, true, true, 0},
		{"deny download", Policy{Deny: true}, Policy{}, false, false, 315},
		{"deny install", Policy{}, Policy{Deny: true}, false, true, 511},
		{"delay install", Policy{}, Policy{Delay: 30 * time.Second}, true, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, "", func(cfg *Config) { cfg.Download, cfg.Install = tc.download, tc.install })
			c.campaign(c.v1(p, 3000, nil), p)
			c.run(func() bool { return c.printed("Authorization rejected") })
			require.Equal(t, tc.activated, c.count(MarkActivated) == 1)
			require.Equal(t, tc.downloaded, c.count(MarkDownloadDone) == 1)
			if !tc.activated {
				// The hub's error handler: AUTH_ERR_DOWNLOAD_REJECTED is
				// FETCHER_AUTHORIZATON_REJECTED (315), AUTH_ERR_INSTALL_REJECTED
				// WRITER_AUTHORIZATON_REJECTED (511).
				require.Equal(t, tc.rejected, c.result(), "a refusal reports its result")
				require.Equal(t, StateIdle, c.svc.Device(c.cfg.DeviceID).State)
			}
			if tc.activated {
				// An authorization comes after the policy's delay: at once
				// (in the same step) without one.
				require.Equal(t, tc.download.Delay, c.markTime(MarkDownloadAuthorize)-c.markTime(MarkManifestVerified))
				require.Equal(t, tc.install.Delay, c.markTime(MarkInstallAuthorize)-c.markTime(MarkFinalized))
			}
		})
	}
}

// markTime returns when the first mark of a name was reported.
func (c *client) markTime(name string) time.Duration {
	for _, e := range c.m.Trace() {
		if e.Kind == sim.EvMark && e.Name == name {
			return e.Time
		}
	}
	c.t.Fatalf("no mark %s", name)
	return 0
}

// TestNotifiedWhileBusy: a manifest pushed while an update is in progress
// is ignored.
func TestNotifiedWhileBusy(t *testing.T) {
	p := payload(64 * 512 * 2)
	c := newClient(t, "", nil)
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(func() bool { return c.count(MarkDownloadBegin) > 0 })
	c.svc.StartCampaign(&cloud.Campaign{Name: "other", Manifest: c.v1(payload(10), 4000, nil), PayloadURI: "https://x/other.bin", Payload: payload(10), Target: 1 << 62})
	require.Equal(t, 2, c.svc.Device(c.cfg.DeviceID).Notifications, "the service pushed")
	c.run(nil)
	require.Equal(t, 1, c.count(MarkNotified), "the client ignored the push")
	require.Equal(t, 1, c.count(MarkActivated))
	require.True(t, c.slotHolds(p))
}

// resumeRecord is the progress record the client keeps when resuming.
func resumeRecord(hash [32]byte, offset uint64) []byte {
	rec := make([]byte, 40)
	copy(rec, hash[:])
	binary.LittleEndian.PutUint64(rec[32:], offset)
	return rec
}

// TestResumeRecords: with Resume on, a download restarts where the record
// says, moved back to its erase sector on NOR flash; a record for another
// payload, of the wrong length, or past the payload's end is not trusted
// blindly; the record is deleted once the download is checked. §4.5.
func TestResumeRecords(t *testing.T) {
	p := payload(20000)
	sum := sha256.Sum256(p)
	other := sha256.Sum256([]byte("another payload"))
	for _, tc := range []struct {
		name    string
		storage string
		record  []byte
		from    uint64 // where the download resumes, 0 for a fresh start
	}{
		{"sd: where it stopped", "", resumeRecord(sum, 12800), 12800},
		{"sd: back to the block", "", resumeRecord(sum, 12900), 12800},
		{"sd: within the header block", "", resumeRecord(sum, 100), 0},
		{"sd: another payload", "", resumeRecord(other, 12800), 0},
		{"sd: short record", "", resumeRecord(sum, 12800)[:39], 0},
		{"sd: complete before the reset", "", resumeRecord(sum, 20000), 20000},
		{"sd: past the end", "", resumeRecord(sum, 1<<40), 20000},
		{"internal: back to the sector", "internal", resumeRecord(sum, 12800), 0x3000 - 0x70},
		{"internal: within the header sector", "internal", resumeRecord(sum, 100), 0},
		{"internal: exactly on a sector", "internal", resumeRecord(sum, 0x2000-0x70), 0x2000 - 0x70},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newClient(t, tc.storage, func(cfg *Config) { cfg.Resume = true })
			a1, a2 := c.l.SOTPAreas()
			// The payload so far is in the slot, as an interrupted download
			// left it.
			dev := c.m.Storage().Device(c.l.Storage)
			c.m.Factory(func() {
				require.NoError(t, sotp.New(c.m.Internal(), a1, a2).Set(TypeUpdateResume, tc.record))
				body := c.l.SlotBody(c.m.Board(), 0, dev.ProgramSize())
				dev.Load(body, p)
			})
			c.campaign(c.v1(p, 3000, nil), p)
			c.run(nil)
			require.Equal(t, 1, c.count(MarkActivated), "%v", c.result())
			require.True(t, c.slotHolds(p))
			served := c.svc.Device(c.cfg.DeviceID).BytesServed
			require.Equal(t, int64(uint64(len(p))-tc.from), served)
			if tc.from > 0 {
				require.True(t, c.printed(fmt.Sprintf("resuming the download at byte %d", tc.from)))
			} else {
				require.Zero(t, c.count(MarkDownloadResume))
			}
			_, err := sotp.New(c.m.Internal(), a1, a2).Get(TypeUpdateResume)
			require.ErrorIs(t, err, sotp.ErrNotFound, "the record is gone once the payload checked")
		})
	}
}

// TestResumeRecordsProgress: with Resume on, the record follows the
// download burst by burst; without it, none is written.
func TestResumeRecordsProgress(t *testing.T) {
	p := payload(64 * 512 * 3)
	sum := sha256.Sum256(p)
	for _, resume := range []bool{true, false} {
		c := newClient(t, "", func(cfg *Config) { cfg.Resume = resume })
		c.campaign(c.v1(p, 3000, nil), p)
		c.run(func() bool {
			return c.svc.Device(c.cfg.DeviceID).BytesServed >= 2*64*512 && c.m.State() == sim.StateRunning
		})
		a1, a2 := c.l.SOTPAreas()
		rec, err := sotp.New(c.m.Internal(), a1, a2).Get(TypeUpdateResume)
		if !resume {
			require.ErrorIs(t, err, sotp.ErrNotFound)
			continue
		}
		require.NoError(t, err)
		require.Equal(t, resumeRecord(sum, 2*64*512), rec)
		require.False(t, c.printed("could not record"), "the record was written")
	}
}

// setActive rewrites the active header with another version.
func (c *client) setActive(version uint64) {
	ih := firmware.InternalHeader{FirmwareVersion: version, FirmwareSize: 1, FirmwareHash: sha256.Sum256([]byte{1})}
	c.m.Factory(func() { c.m.Internal().Load(uint64(c.l.ApplicationDetails), ih.Encode()) })
}

// TestV3VersionCheck: v3 manifests carry semantic versions, packed with a
// flag bit above any timestamp; the check is the same strict "newer".
func TestV3VersionCheck(t *testing.T) {
	p := payload(3000)
	active, err := firmware.PackSemver("1.2.3")
	require.NoError(t, err)
	for _, tc := range []struct {
		version string
		result  int
	}{{"1.2.2", ResultRollbackProtection}, {"1.2.3", ResultRollbackProtection}, {"1.2.4", 0}, {"2.0.0", 0}} {
		c := newClient(t, "", nil)
		c.setActive(active)
		c.campaign(c.v3(p, tc.version), p)
		c.run(nil)
		require.Equal(t, tc.result, c.result(), tc.version)
		require.Equal(t, tc.result == 0, c.count(MarkActivated) == 1, tc.version)
	}
}

// TestShortServeResumesAtTheRightByte: when a source serves less than was
// asked, the next request (and the progress record) starts at the first
// byte not received, not at the end of the padded fragment.
func TestShortServeResumesAtTheRightByte(t *testing.T) {
	p := payload(5000)
	c := newClient(t, "", func(cfg *Config) { cfg.Resume = true })
	c.campaign(c.v1(p, 3000, nil), p[:4000])
	c.run(nil)
	require.Equal(t, ResultFetcherConnectionLoss, c.result())
	a1, a2 := c.l.SOTPAreas()
	rec, err := sotp.New(c.m.Internal(), a1, a2).Get(TypeUpdateResume)
	require.NoError(t, err)
	require.Equal(t, resumeRecord(sha256.Sum256(p), 4000), rec)
	// The service is fixed and pushes again; the device is reset first.
	c.m.Reset(sim.ResetPin)
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(func() bool { return c.count(MarkActivated) > 0 })
	require.Equal(t, 1, c.count(MarkActivated), "result %d", c.result())
	require.True(t, c.slotHolds(p))
	require.True(t, c.printed("resuming the download at byte 3584"), "the start of the block byte 4000 is in")
}

// TestSDTrimCoversTheCandidate: on an SD card the prepare step trims, in
// one op, from the slot's start (or, resuming, from the block it resumes
// at) to the candidate's last byte rounded up to the block - exactly to
// the candidate's end when that is on a block boundary.
func TestSDTrimCoversTheCandidate(t *testing.T) {
	trims := func(c *client) []string {
		var out []string
		for _, op := range c.slotWrites() {
			if op.Kind == storage.OpErase {
				out = append(out, fmt.Sprintf("0x%x+%d", op.Addr, op.Len))
			}
		}
		return out
	}
	p := payload(137*512 - 512) // the body starts at 512: it ends at 137 blocks
	c := newClient(t, "", nil)
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(nil)
	require.Equal(t, 1, c.count(MarkActivated))
	require.Equal(t, []string{fmt.Sprintf("0x0+%d", 137*512)}, trims(c))

	p = payload(20000)
	c = newClient(t, "", func(cfg *Config) { cfg.Resume = true })
	a1, a2 := c.l.SOTPAreas()
	c.m.Factory(func() {
		require.NoError(t, sotp.New(c.m.Internal(), a1, a2).Set(TypeUpdateResume, resumeRecord(sha256.Sum256(p), 12900)))
		c.m.Storage().Device(c.l.Storage).Load(512, p)
	})
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(nil)
	require.Equal(t, 1, c.count(MarkActivated))
	// Resumed at 12800: the block at 512+12800; 512+20000 rounds up to 20992.
	require.Equal(t, []string{fmt.Sprintf("0x%x+%d", 512+12800, 20992-(512+12800))}, trims(c))
}

// TestSourceReselectedPerFragment: a source that failed is excluded for the
// fragment it failed, not for the download: the next fragment is a new
// request and asks the cheapest source again (ARM_UCSM_GetCommon resets
// the request's exclusions).
func TestSourceReselectedPerFragment(t *testing.T) {
	p := payload(3*burstFragments*fragmentSize - 100) // three bursts
	c := newClient(t, "", nil)
	c.svc.SetSources([]cloud.Source{{Name: "mirror", Kind: "http", Cost: 10, Fails: true}, {Name: "http", Kind: "http"}})
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(nil)
	require.Zero(t, c.result(), "no failure")
	require.Equal(t, int64(len(p)), int64(c.svc.Device(c.cfg.DeviceID).BytesServed), "all of it from the other source")
	failed := 0
	for _, l := range c.m.Serial() {
		if strings.Contains(l.Text, "source mirror failed") {
			failed++
		}
	}
	require.Equal(t, 3, failed, "the failing mirror is asked first for each of the three fragments")
}

// TestWriteFailurePerPAL: a fragment write that fails on an SD card is
// lost: the block-device PAL returns success and never signals the
// write, so the client waits for ever, reporting nothing (upstream's
// arm_uc_pal_blockdevice_implementation.c). On internal flash the
// FlashIAP PAL reports it, and the update fails with 503.
func TestWriteFailurePerPAL(t *testing.T) {
	p := payload(3 * burstFragments * fragmentSize)
	for _, tc := range []struct {
		storage string
		result  int
		lost    int
	}{{"sd", 0, 1}, {"internal", ResultWriterWriteFailure, 0}} {
		t.Run(tc.storage, func(t *testing.T) {
			c := newClient(t, tc.storage, nil)
			rule, err := storage.ParseRule("kind=program,region=slot-0,nth=10,mode=io-error")
			require.NoError(t, err)
			c.m.Storage().SetInjector(storage.Rules{rule.Arm()})
			c.campaign(c.v1(p, 3000, nil), p)
			c.run(func() bool { return c.count(MarkWriteLost) > 0 })
			c.m.Run(c.m.Now()+time.Hour, func() bool { return false })
			require.Equal(t, tc.result, c.result())
			require.Equal(t, tc.lost, c.count(MarkWriteLost))
			if tc.lost > 0 {
				require.Equal(t, StateDownloadingUpdate, c.svc.Device(c.cfg.DeviceID).State, "an hour later the service still sees a download")
				require.Zero(t, c.count(MarkDownloadDone))
			}
		})
	}
}

// TestDownloadGivesUpAfterSevenDays: with the link down, the client waits
// and retries with its backoff; once its waits for the fragment add up to
// the maximum download time (7 days), the resume engine terminates the
// request, the source is excluded, and with no other source the update
// ends with 302. Six days of waiting do not end it.
func TestDownloadGivesUpAfterSevenDays(t *testing.T) {
	p := payload(64 * 512 * 3)
	c := newClient(t, "", nil)
	c.campaign(c.v1(p, 3000, nil), p)
	c.run(func() bool { return c.count(MarkDownloadBegin) > 0 })
	c.svc.SetLinkUp(false)
	start := c.m.Now()
	c.m.Run(start+6*24*time.Hour, nil)
	require.Zero(t, c.count(MarkUpdateFailed), "six days: still trying")
	c.m.Run(start+8*24*time.Hour, func() bool { return c.count(MarkUpdateFailed) > 0 })
	require.Equal(t, 1, c.count(MarkUpdateFailed))
	require.True(t, c.printed("(302 FETCHER_NO_ROUTE_AVAILABLE)"), "no source left: 302 (reported when the link is back)")
	require.True(t, c.printed("resume terminated after 16"), "the waits add up to 7 days")
	took := c.m.Now() - start
	require.GreaterOrEqual(t, took, 7*24*time.Hour)
	require.Less(t, took, 7*24*time.Hour+2*time.Hour, "the wait that crosses 7 days is the last")
}
