package scenarios

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/sim/cloud"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"github.com/bootsim/bootsim/updateclient"
	"go.yaml.in/yaml/v3"
)

// Step kinds of the update flow.
const (
	StepCampaign = "campaign"
	StepNetwork  = "network"
	StepApp      = "app"
)

// Payloads a campaign can serve besides the firmware's own.
const (
	PayloadMismatch = "mismatch" // other bytes than the manifest describes
	PayloadEmpty    = "empty"    // a manifest and a payload of no bytes
)

// Attacks a campaign can carry instead of an honest manifest.
const (
	AttackForged      = "forged"       // signed with a key that is not the vendor's
	AttackUnsigned    = "unsigned"     // no signature at all
	AttackWrongClass  = "wrong-class"  // properly signed, for another device class
	AttackWrongVendor = "wrong-vendor" // properly signed, by another vendor id
	AttackReplay      = "replay"       // an old, properly signed manifest
)

// Campaign starts an update campaign on the service.
type Campaign struct {
	Firmware string `yaml:"firmware" jsonschema:"required,description=The firmware the campaign installs."`
	// Manifest is the manifest format: v1 (default) or v3.
	Manifest string `yaml:"manifest,omitempty" jsonschema:"enum=v1,enum=v3"`
	// Attack replaces the honest manifest.
	Attack string `yaml:"attack,omitempty" jsonschema:"enum=forged,enum=unsigned,enum=wrong-class,enum=wrong-vendor,enum=replay"`
	// Replay names the firmware whose (old) manifest a replay serves.
	Replay string `yaml:"replay,omitempty"`
	// Payload: mismatch serves other bytes than the manifest describes;
	// empty describes (and serves) a payload of no bytes, the hub's way of
	// erasing a device's candidate slot.
	Payload string `yaml:"payload,omitempty" jsonschema:"enum=match,enum=mismatch,enum=empty"`
	// Sources the device's source manager uses (default lwm2m then http).
	Sources []SourceSpec `yaml:"sources,omitempty"`
	// Authorize is how the application answers (default: grant both at once).
	Authorize struct {
		Download Authorization `yaml:"download,omitempty"`
		Install  Authorization `yaml:"install,omitempty"`
	} `yaml:"authorize,omitempty"`
	pos strictyaml.Pos
}

// Authorization is grant, deny or {delay: 10s}.
type Authorization struct {
	Deny  bool
	Delay units.Duration
}

// UnmarshalStrictYAML implements strictyaml.StrictUnmarshaler.
func (a *Authorization) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	kind, v, err := oneOf(d, n, "authorization", []string{"grant", "deny"}, []string{"delay"})
	if err != nil {
		return err
	}
	switch kind {
	case "deny":
		a.Deny = true
	case "delay":
		return d.Decode(v, &a.Delay)
	}
	return nil
}

func (a Authorization) policy() updateclient.Policy {
	return updateclient.Policy{Deny: a.Deny, Delay: a.Delay.D()}
}

// SourceSpec is an update source: a kind ("lwm2m" or "http"), or a mapping
// with a name and how it misbehaves.
type SourceSpec struct {
	Name  string `yaml:"name"`
	Kind  string `yaml:"kind"`
	Cost  uint32 `yaml:"cost,omitempty"`
	Fails bool   `yaml:"fails,omitempty"`
	Busy  int    `yaml:"busy,omitempty"`
}

// UnmarshalStrictYAML accepts "http" or {name: mirror, kind: http, fails: true}.
func (s *SourceSpec) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		s.Name, s.Kind = n.Value, n.Value
	} else {
		type plain SourceSpec
		var p plain
		if err := d.Decode(n, &p); err != nil {
			return err
		}
		*s = SourceSpec(p)
		if s.Name == "" {
			s.Name = s.Kind
		}
	}
	if s.Kind != "lwm2m" && s.Kind != "http" {
		return d.Errorf(n, "source kind %q: want lwm2m or http", s.Kind)
	}
	if s.Busy < 0 {
		return d.Errorf(n, "source %s: busy %d: want 0 or more (how many requests it answers BUSY)", s.Name, s.Busy)
	}
	return nil
}

// UnmarshalStrictYAML records the campaign's position.
func (c *Campaign) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	type plain Campaign
	var p plain
	if err := d.Decode(n, &p); err != nil {
		return err
	}
	*c = Campaign(p)
	c.pos = d.At(n)
	if c.Manifest == "" {
		c.Manifest = "v1"
	}
	if c.Manifest != "v1" && c.Manifest != "v3" {
		return d.Errorf(n, "manifest %q: want v1 or v3", c.Manifest)
	}
	if (c.Attack == AttackReplay) != (c.Replay != "") {
		return d.Errorf(n, "a replay attack names the firmware whose manifest it replays (replay: NAME), and only a replay does")
	}
	return nil
}

// Network changes the device's link: down, up, or a mapping.
type Network struct {
	Down, Up  bool
	Corrupt   *int64 // offset of a payload byte flipped in transit
	Bandwidth uint64
	Latency   *units.Duration
	Stall     units.Duration // requests sent in the next Stall hang until it ends
}

// UnmarshalStrictYAML implements strictyaml.StrictUnmarshaler.
func (nw *Network) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		switch n.Value {
		case "down":
			nw.Down = true
			return nil
		case "up":
			nw.Up = true
			return nil
		}
		return d.Errorf(n, "network %q: want down, up or a mapping (corrupt, bandwidth, latency, stall)", n.Value)
	}
	var x struct {
		Corrupt   *units.Size     `yaml:"corrupt"`
		Bandwidth uint64          `yaml:"bandwidth"`
		Latency   *units.Duration `yaml:"latency"`
		Stall     units.Duration  `yaml:"stall"`
	}
	if err := d.Decode(n, &x); err != nil {
		return err
	}
	if x.Corrupt != nil {
		v := int64(*x.Corrupt)
		nw.Corrupt = &v
	}
	nw.Bandwidth, nw.Latency, nw.Stall = x.Bandwidth, x.Latency, x.Stall
	return nil
}

// AppAction is something the running application does: crash, or (a
// compromised application) plant an image in the candidate slot and reboot.
type AppAction struct {
	Crash bool
	// Confirm confirms the running chain application in the boot record,
	// as its own code would.
	Confirm bool
	Plant   string // firmware to plant
	pos     strictyaml.Pos
}

// UnmarshalStrictYAML implements strictyaml.StrictUnmarshaler.
func (a *AppAction) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	a.pos = d.At(n)
	kind, v, err := oneOf(d, n, "application action", []string{"crash", "confirm"}, []string{"plant"})
	if err != nil {
		return err
	}
	switch kind {
	case "crash":
		a.Crash = true
		return nil
	case "confirm":
		a.Confirm = true
		return nil
	}
	return d.Decode(v, &a.Plant)
}

// vendor is the scenario's vendor: its signing key and certificate, derived
// from the seed so that runs are reproducible.
type vendor struct {
	key  *ecdsa.PrivateKey
	cert []byte
}

// rfc6979 is a crypto.Signer that signs deterministically (RFC 6979)
// whatever random source it is given, so certificates are reproducible.
type rfc6979 struct{ key *ecdsa.PrivateKey }

func (s rfc6979) Public() crypto.PublicKey { return &s.key.PublicKey }

func (s rfc6979) Sign(_ io.Reader, digest []byte, opts crypto.SignerOpts) ([]byte, error) {
	return s.key.Sign(nil, digest, opts)
}

func seededKey(seed uint64, label string) *ecdsa.PrivateKey {
	for i := uint64(0); ; i++ {
		var b [16]byte
		binary.BigEndian.PutUint64(b[:], seed)
		binary.BigEndian.PutUint64(b[8:], i)
		d := sha256.Sum256(append([]byte("bootsim "+label+" key "), b[:]...))
		if k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:]); err == nil {
			return k
		}
	}
}

type nilReader struct{}

func (nilReader) Read([]byte) (int, error) { return 0, io.EOF }

func newVendor(seed uint64) (*vendor, error) {
	key := seededKey(seed, "vendor")
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "bootsim test vendor (TEST ONLY)"},
		NotBefore:    time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:     time.Date(2050, 1, 1, 0, 0, 0, 0, time.UTC),
	}
	cert, err := x509.CreateCertificate(nilReader{}, tmpl, tmpl, &key.PublicKey, rfc6979{key})
	if err != nil {
		return nil, fmt.Errorf("vendor certificate: %v", err)
	}
	return &vendor{key: key, cert: cert}, nil
}

// defaultSources are the sources an Mbed Cloud Client registers: the LwM2M
// connection (pushed manifests) and HTTP (payloads).
var defaultSources = []SourceSpec{{Name: "lwm2m", Kind: "lwm2m"}, {Name: "http", Kind: "http"}}

func cloudSources(specs []SourceSpec) []cloud.Source {
	if len(specs) == 0 {
		specs = defaultSources
	}
	out := make([]cloud.Source, len(specs))
	for i, s := range specs {
		out[i] = cloud.Source{Name: s.Name, Kind: s.Kind, Cost: s.Cost, Fails: s.Fails, Busy: s.Busy}
	}
	return out
}

// payloadURI is where the service serves a firmware.
func payloadURI(name string) string { return "https://updates.example.com/firmware/" + name + ".bin" }

// manifest builds the manifest a campaign pushes.
func (r *runner) manifest(c *Campaign) ([]byte, error) {
	l := r.l
	target := c.Firmware
	if c.Attack == AttackReplay {
		target = c.Replay
	}
	body := r.imgs.app[target].Bytes
	if c.Payload == PayloadEmpty {
		body = nil
	}
	f := l.Firmware.Get(target)
	sum := sha256.Sum256(body)
	vid := firmware.VendorID(l.vendorDomain())
	cid := firmware.ClassID(vid, l.modelName())
	switch c.Attack {
	case AttackWrongClass:
		cid = firmware.ClassID(vid, l.modelName()+"-other")
	case AttackWrongVendor:
		vid = firmware.VendorID("attacker.example")
	}
	key := r.vendor.key
	if c.Attack == AttackForged {
		key = seededKey(r.seed, "attacker")
	}
	// A chain update names its stage: the v1 payload's storage
	// identifier, or the v3 component.
	storageID, component := "", ""
	if f.isBootloader() {
		storageID, component = updateclient.StorageBootloader, updateclient.ComponentBootloader
	}
	if c.Manifest == "v3" {
		m := firmware.NewManifestV3(firmware.V3Params{VendorID: vid[:], ClassID: cid[:], PayloadVersion: f.Semver,
			PayloadDigest: sum[:], PayloadSize: uint64(len(body)), PayloadURI: payloadURI(target), ComponentName: component})
		if err := m.Sign(key, false); err != nil {
			return nil, err
		}
		if c.Attack == AttackUnsigned {
			m.Signature = []byte{}
		}
		return m.Encode()
	}
	m := firmware.NewManifestV1(firmware.V1Params{Timestamp: f.Version, VendorID: vid[:], ClassID: cid[:],
		PayloadURI: payloadURI(target), PayloadDigest: sum[:], PayloadSize: uint64(len(body)), StorageIdentifier: storageID})
	if err := m.Sign(key, r.vendor.cert); err != nil {
		return nil, err
	}
	if c.Attack == AttackUnsigned {
		m.Signatures = nil
	}
	return m.Encode()
}
