package firmware

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"fmt"
	"math/big"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Payload formats of the v3 manifest.
const (
	V3FormatRawBinary         = 1
	V3FormatArmPatchStream    = 5
	V3FormatCombined          = 6
	V3FormatEncryptedRaw      = 257
	V3FormatEncryptedCombined = 262
)

// PayloadMetadata describes the installed payload of a delta or encrypted
// v3 payload.
type PayloadMetadata struct {
	InstalledSize   uint64
	InstalledDigest []byte
	PrecursorDigest []byte // nil when absent
}

// ManifestV3 is a v3 SignedResource (manifest_v3.asn): a manifest and a raw
// ECDSA P-256 signature (r‖s, 64 bytes) over the SHA-256 of its DER. The
// device holds the vendor's public key; there is no certificate reference.
type ManifestV3 struct {
	VendorID       []byte
	ClassID        []byte
	UpdatePriority int64
	ComponentName  string
	// PayloadVersion is a semantic version, "1.2.3".
	PayloadVersion string
	PayloadDigest  []byte
	PayloadSize    uint64
	PayloadURI     string
	PayloadFormat  int
	// InstalledSignature is a raw r‖s signature over the installed payload's
	// digest, or empty.
	InstalledSignature []byte
	PayloadMetadata    *PayloadMetadata
	VendorData         []byte // nil when absent

	Signature []byte
	// ManifestDER is the DER of the Manifest element as decoded or last
	// signed: what the signature covers.
	ManifestDER []byte
}

// DecodeManifestV3 decodes a v3 SignedResource. Errors wrap ErrMalformed.
func DecodeManifestV3(b []byte) (*ManifestV3, error) {
	var err error
	top := newDERReader(b, "v3", &err)
	sr := top.seq("SignedResource")
	top.end()
	if v := sr.enum("manifest-version"); err == nil && v != 3 {
		return nil, fmt.Errorf("%w: v3: manifest-version %d, want 3", ErrMalformed, v)
	}
	m := &ManifestV3{ManifestDER: sr.element("manifest", asn1.SEQUENCE)}
	m.Signature = sr.octets("signature")
	sr.end()
	if err != nil {
		return nil, err
	}
	r := newDERReader(m.ManifestDER, "v3.SignedResource", &err).seq("manifest")
	m.VendorID = r.octets("vendor-id")
	m.ClassID = r.octets("class-id")
	m.UpdatePriority = r.int("update-priority")
	m.ComponentName = r.utf8("component-name")
	m.PayloadVersion = r.utf8("payload-version")
	m.PayloadDigest = r.octets("payload-digest")
	m.PayloadSize = r.uint("payload-size")
	m.PayloadURI = r.utf8("payload-uri")
	m.PayloadFormat = r.enum("payload-format")
	m.InstalledSignature = r.octets("installed-signature")
	if r.peek(asn1.SEQUENCE) {
		p := r.seq("payload-metadata")
		m.PayloadMetadata = &PayloadMetadata{InstalledSize: p.uint("installed-size"), InstalledDigest: p.octets("installed-digest")}
		if p.peek(asn1.OCTET_STRING) {
			m.PayloadMetadata.PrecursorDigest = p.octets("precursor-digest")
		}
		p.end()
	}
	if r.peek(asn1.OCTET_STRING) {
		m.VendorData = r.octets("vendor-data")
	}
	r.end()
	if err != nil {
		return nil, err
	}
	return m, nil
}

// EncodeManifest returns the DER of the Manifest element built from the fields.
func (m *ManifestV3) EncodeManifest() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(m.VendorID)
		b.AddASN1OctetString(m.ClassID)
		b.AddASN1Int64(m.UpdatePriority)
		addUTF8(b, m.ComponentName)
		addUTF8(b, m.PayloadVersion)
		b.AddASN1OctetString(m.PayloadDigest)
		b.AddASN1Uint64(m.PayloadSize)
		addUTF8(b, m.PayloadURI)
		b.AddASN1Enum(int64(m.PayloadFormat))
		b.AddASN1OctetString(m.InstalledSignature)
		if p := m.PayloadMetadata; p != nil {
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				b.AddASN1Uint64(p.InstalledSize)
				b.AddASN1OctetString(p.InstalledDigest)
				if p.PrecursorDigest != nil {
					b.AddASN1OctetString(p.PrecursorDigest)
				}
			})
		}
		if m.VendorData != nil {
			b.AddASN1OctetString(m.VendorData)
		}
	})
	return b.Bytes()
}

// Encode returns the DER of the SignedResource: ManifestDER and the signature.
func (m *ManifestV3) Encode() ([]byte, error) {
	if m.ManifestDER == nil {
		return nil, fmt.Errorf("firmware: v3 manifest is not signed yet (no ManifestDER)")
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1Enum(3)
		b.AddBytes(m.ManifestDER)
		b.AddASN1OctetString(m.Signature)
	})
	return b.Bytes()
}

// V3Params are the inputs of a v3 manifest.
type V3Params struct {
	VendorID       []byte
	ClassID        []byte
	Priority       int64
	ComponentName  string // default "MAIN"
	PayloadVersion string // semantic version
	PayloadDigest  []byte
	PayloadSize    uint64
	PayloadURI     string
}

// NewManifestV3 returns an unsigned raw-binary v3 manifest.
func NewManifestV3(p V3Params) *ManifestV3 {
	comp := p.ComponentName
	if comp == "" {
		comp = "MAIN"
	}
	m := &ManifestV3{
		VendorID: bytes.Clone(p.VendorID), ClassID: bytes.Clone(p.ClassID),
		UpdatePriority: p.Priority, ComponentName: comp, PayloadVersion: p.PayloadVersion,
		PayloadDigest: bytes.Clone(p.PayloadDigest), PayloadSize: p.PayloadSize, PayloadURI: p.PayloadURI,
		PayloadFormat: V3FormatRawBinary, InstalledSignature: []byte{},
	}
	return m
}

// Sign signs the manifest with key: raw r‖s over SHA-256(DER(Manifest)),
// deterministic per RFC 6979. With signInstalled it first sets the
// installed-signature over the payload digest.
func (m *ManifestV3) Sign(key *ecdsa.PrivateKey, signInstalled bool) error {
	if signInstalled {
		sig, err := rawSign(key, m.PayloadDigest)
		if err != nil {
			return err
		}
		m.InstalledSignature = sig
	}
	der, err := m.EncodeManifest()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(der)
	sig, err := rawSign(key, sum[:])
	if err != nil {
		return err
	}
	m.ManifestDER, m.Signature = der, sig
	return nil
}

// Verify checks the signature over the Manifest with the vendor's key.
func (m *ManifestV3) Verify(pub *ecdsa.PublicKey) error {
	if len(m.Signature) == 0 {
		return ErrUnsigned
	}
	sum := sha256.Sum256(m.ManifestDER)
	if !rawVerify(pub, sum[:], m.Signature) {
		return ErrSignature
	}
	if len(m.InstalledSignature) > 0 && !rawVerify(pub, m.PayloadDigest, m.InstalledSignature) {
		return fmt.Errorf("%w: installed-signature", ErrSignature)
	}
	return nil
}

// CheckPayload checks a payload against the manifest's size and digest.
func (m *ManifestV3) CheckPayload(payload []byte) error {
	return checkPayload(payload, m.PayloadSize, m.PayloadDigest)
}

// rawSign signs a digest and returns r‖s, each 32 bytes.
func rawSign(key *ecdsa.PrivateKey, digest []byte) ([]byte, error) {
	der, err := key.Sign(nil, digest, crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("firmware: signing: %w", err)
	}
	var (
		inner cryptobyte.String
		r, s  big.Int
	)
	in := cryptobyte.String(der)
	if !in.ReadASN1(&inner, asn1.SEQUENCE) || !inner.ReadASN1Integer(&r) || !inner.ReadASN1Integer(&s) {
		panic("firmware: crypto/ecdsa returned a malformed signature")
	}
	out := make([]byte, 64)
	r.FillBytes(out[:32])
	s.FillBytes(out[32:])
	return out, nil
}

func rawVerify(pub *ecdsa.PublicKey, digest, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, digest, r, s)
}
