package updateclient

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/mbedlayout"
	"github.com/bootsim/bootsim/sim"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/storage/sotp"
)

// harness is a k64f with a provisioned ROT, the vendor's certificate, and a
// program that hands the hub whatever the test pushes.
type harness struct {
	m       *sim.Machine
	svc     *cloud.Service
	cfg     *Config
	key     *ecdsa.PrivateKey
	payload []byte
}

// fixture is what every harness shares, built once: the board and its
// layout, the vendor's key and certificate (an ECDSA signature each), and
// the factory state with the ROT provisioned. A fuzz input then costs a
// fresh machine over the factory snapshot and a run, not a certificate.
type fixture struct {
	b       *sim.Board
	l       *mbedlayout.Layout
	key     *ecdsa.PrivateKey
	cfg     Config
	factory *storage.Snapshot
	payload []byte
}

func newFixture(t testing.TB) *fixture {
	b, err := sim.LoadBoard("k64f")
	if err != nil {
		t.Fatal(err)
	}
	l, err := mbedlayout.For(b, "")
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256([]byte("fuzz vendor"))
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fuzz"},
		NotBefore: time.Unix(0, 0), NotAfter: time.Unix(1<<31, 0)}
	cert, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	vid := firmware.VendorID("example.com")
	fx := &fixture{b: b, l: l, key: key, payload: bytes.Repeat([]byte("firmware"), 1000)}
	fx.cfg = Config{DeviceID: "d", Generation: Gen34, VendorID: vid, ClassID: firmware.ClassID(vid, "m"),
		Certificate: cert, PublicKey: &key.PublicKey, Layout: l}
	m, err := sim.New(sim.Config{Board: b, Regions: l.Regions(b), Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	m.Factory(func() {
		st := sotp.New(m.Internal(), sotp.Area{Addr: uint64(l.SOTP1Address), Size: uint64(l.SOTP1Size)},
			sotp.Area{Addr: uint64(l.SOTP2Address), Size: uint64(l.SOTP2Size)})
		if err := st.Set(sotp.TypeROT, bytes.Repeat([]byte{7}, 16)); err != nil {
			t.Fatal(err)
		}
	})
	fx.factory = m.Storage().Snapshot()
	return fx
}

// fuzzImage is the image of the program that hands the hub its input,
// built once.
var fuzzImage = func() *sim.Image {
	desc := &sim.Descriptor{Stage: "application", Impl: "fuzz", Name: "f", Version: 1, Behaviour: "healthy", Size: 2048}
	img, err := sim.BuildImage(desc, 1)
	if err != nil {
		panic(err)
	}
	return &sim.Image{Desc: desc, Bytes: img}
}()

// harness returns a fresh device over the fixture's factory state.
func (fx *fixture) harness(t testing.TB) *harness {
	m, err := sim.New(sim.Config{Board: fx.b, Regions: fx.l.Regions(fx.b), Seed: 1, Storage: fx.factory})
	if err != nil {
		t.Fatal(err)
	}
	cfg := fx.cfg
	h := &harness{m: m, key: fx.key, payload: fx.payload, cfg: &cfg}
	h.svc = cloud.New(cloud.Link{Bandwidth: 1 << 20, Latency: time.Millisecond})
	h.svc.SetSources([]cloud.Source{{Name: "lwm2m", Kind: "lwm2m"}, {Name: "http", Kind: "http"}})
	return h
}

func newHarness(t testing.TB) *harness { return newFixture(t).harness(t) }

// signed returns a genuine v1 manifest for the harness's payload.
func (h *harness) signed() []byte {
	sum := sha256.Sum256(h.payload)
	m := firmware.NewManifestV1(firmware.V1Params{Timestamp: 2000, VendorID: h.cfg.VendorID[:], ClassID: h.cfg.ClassID[:],
		PayloadURI: "https://x/fw.bin", PayloadDigest: sum[:], PayloadSize: uint64(len(h.payload))})
	if err := m.Sign(h.key, h.cfg.Certificate); err != nil {
		panic(err)
	}
	der, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return der
}

// push runs a hub that receives manifest and, for its payload URI, is
// served served; it returns the marks the hub reported.
func (h *harness) push(manifest, served []byte) []string {
	h.svc.StartCampaign(&cloud.Campaign{Manifest: manifest, PayloadURI: "https://x/fw.bin", Payload: served, Target: 1 << 62})
	h.m.Register("fuzz", sim.ProgramFunc(func(m *sim.Machine, _ *sim.Image) {
		hb := &hub{m: m, cfg: h.cfg, svc: h.svc}
		hb.start()
		hb.notified(manifest)
	}))
	h.m.AddImage(fuzzImage)
	h.m.Internal().Load(0, fuzzImage.Bytes) // the fuzz program runs at the reset vector
	h.m.PowerOn()
	h.m.Run(10*time.Minute, func() bool {
		st := h.m.State()
		return h.m.Boots() > 1 || h.m.Boots() == 1 && st != sim.StateRunning && st != sim.StateBooting
	})
	var marks []string
	for _, e := range h.m.Trace() {
		if e.Kind == sim.EvMark {
			marks = append(marks, e.Name)
		}
	}
	return marks
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// FuzzClientInputs feeds the client manifests and payloads from the network.
// Whatever they hold: no crash, nothing written to the slot unless the
// manifest verifies with the vendor's certificate, and no activation unless
// the stored payload matches the manifest's digest.
func FuzzClientInputs(f *testing.F) {
	fx := newFixture(f)
	h := fx.harness(f)
	good := h.signed()
	f.Add(good, h.payload, false)
	f.Add(good, h.payload[:100], true)
	f.Add(h.signedV3(), h.payload, false)
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01}, []byte{}, false)
	f.Fuzz(func(t *testing.T, manifest, payload []byte, useGood bool) {
		h := fx.harness(t)
		if useGood {
			manifest = good
		}
		marks := h.push(manifest, payload)
		verified, size, digest := h.oracle(manifest)
		for _, op := range h.m.Storage().Journal() {
			if op.Region == "slot-0" && op.Kind == storage.OpProgram && !verified {
				t.Fatalf("wrote the slot for a manifest that does not verify: %s", op)
			}
		}
		if contains(marks, MarkActivated) {
			// The client fetches exactly the manifest's size: bytes the
			// service serves past it are never read.
			if !verified || uint64(len(payload)) < size {
				t.Fatal("activated a payload that does not match a verified manifest")
			}
			sum := sha256.Sum256(payload[:size])
			if !bytes.Equal(sum[:], digest) {
				t.Fatal("activated a payload that does not match a verified manifest")
			}
		}
	})
}

// oracle decides, independently of the client, whether a manifest is
// genuine: a v1 manifest whose signature verifies with the vendor's
// certificate, or a v3 manifest whose signature verifies with the vendor's
// key. It returns the payload size and digest the manifest describes.
func (h *harness) oracle(manifest []byte) (bool, uint64, []byte) {
	if m, err := firmware.DecodeManifestV1(manifest); err == nil {
		if m.Verify(h.cfg.Certificate) != nil || m.Payload == nil {
			return false, 0, nil
		}
		return true, m.Payload.Reference.Size, m.Payload.Reference.Hash
	}
	if m, err := firmware.DecodeManifestV3(manifest); err == nil && m.Verify(&h.key.PublicKey) == nil {
		return true, m.PayloadSize, m.PayloadDigest
	}
	return false, 0, nil
}

// signedV3 returns a genuine v3 manifest for the harness's payload.
func (h *harness) signedV3() []byte {
	sum := sha256.Sum256(h.payload)
	m := firmware.NewManifestV3(firmware.V3Params{VendorID: h.cfg.VendorID[:], ClassID: h.cfg.ClassID[:],
		PayloadVersion: "1.0.0", PayloadDigest: sum[:], PayloadSize: uint64(len(h.payload)), PayloadURI: "https://x/fw.bin"})
	if err := m.Sign(h.key, false); err != nil {
		panic(err)
	}
	der, err := m.Encode()
	if err != nil {
		panic(err)
	}
	return der
}

// TestClientActivatesOnlyWhatVerifies is the fuzz target's seed corpus as a
// plain test: the genuine manifest and payload activate; a truncated payload
// and a tampered manifest do not.
func TestClientActivatesOnlyWhatVerifies(t *testing.T) {
	h := newHarness(t)
	if marks := h.push(h.signed(), h.payload); !contains(marks, MarkActivated) {
		t.Fatalf("genuine update not activated: %v", marks)
	}
	h = newHarness(t)
	bad := append([]byte(nil), h.payload...)
	bad[10] ^= 1
	if marks := h.push(h.signed(), bad); contains(marks, MarkActivated) || !contains(marks, MarkUpdateFailed) {
		t.Fatalf("corrupted payload activated: %v", marks)
	}
	h = newHarness(t)
	m := h.signed()
	m[40] ^= 1
	if marks := h.push(m, h.payload); contains(marks, MarkDownloadBegin) {
		t.Fatalf("tampered manifest downloaded: %v", marks)
	}
	h = newHarness(t)
	if marks := h.push(h.signedV3(), h.payload); !contains(marks, MarkActivated) {
		t.Fatalf("genuine v3 update not activated: %v", marks)
	}
	h = newHarness(t)
	m = h.signedV3()
	m[len(m)-5] ^= 1
	if ok, _, _ := h.oracle(m); ok {
		t.Fatal("the oracle takes a tampered v3 manifest for genuine")
	}
	if marks := h.push(m, h.payload); contains(marks, MarkDownloadBegin) {
		t.Fatalf("tampered v3 manifest downloaded: %v", marks)
	}
}

// TestEmptyPayloadManifest: a manifest for a 0-byte payload downloads
// nothing and finalizes (the hub's way of erasing a slot).
func TestEmptyPayloadManifest(t *testing.T) {
	h := newHarness(t)
	h.payload = []byte{}
	marks := h.push(h.signed(), nil)
	if contains(marks, MarkDownloadBegin) && !contains(marks, MarkFinalized) {
		t.Fatalf("empty payload not finalized: %v", marks)
	}
	if !contains(marks, MarkActivated) {
		t.Fatalf("empty payload not activated: %v", marks)
	}
	if h.svc.Requests() != 0 {
		t.Fatalf("%d requests for an empty payload", h.svc.Requests())
	}
}
