package firmware

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	encasn1 "encoding/asn1"
	"fmt"

	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Enumerated values of the v1 manifest (manifest-1.0.0.asn).
const (
	ResourceTypeManifest = 0
	ResourceTypePayload  = 1

	// EncryptionMode: the manifest-tool writes NoneECCSecp256r1SHA256.
	EncryptionInvalid                  = 0
	EncryptionAES128CTRECCSecp256r1SHA = 1
	EncryptionNoneECCSecp256r1SHA256   = 2
	EncryptionNoneNoneSHA256           = 3
	EncryptionNonePSKAES128CCMSHA256   = 4
	EncryptionAES128CCMPSKSHA256       = 5

	FormatRawBinary = 1
)

// EnumOrOID is an ASN.1 CHOICE between an ENUMERATED and an OBJECT
// IDENTIFIER, as the v1 encryptionMode and payload format are. OID is nil
// when the enumerated alternative is used.
type EnumOrOID struct {
	Enum int
	OID  encasn1.ObjectIdentifier
}

// ResourceReference points at a resource by hash, optional URI and size.
type ResourceReference struct {
	Hash []byte
	URI  *string
	Size uint64
}

// ResourceAlias is another URI for a resource.
type ResourceAlias struct {
	Hash []byte
	URI  string
}

// CertificateReference names a certificate by the SHA-256 of its DER.
type CertificateReference struct {
	Fingerprint []byte
	URI         string
}

// SignatureBlock is one signature (DER ECDSA) and the certificates that may
// verify it.
type SignatureBlock struct {
	Signature    []byte
	Certificates []CertificateReference
}

// PayloadDescription describes the payload a v1 manifest authorises.
type PayloadDescription struct {
	Format EnumOrOID
	// EncryptionInfo is the DER of the optional encryptionInfo element, kept
	// as is (the simulator never encrypts v1 payloads).
	EncryptionInfo    []byte
	StorageIdentifier string
	Reference         ResourceReference
	InstalledSize     *uint64
	InstalledDigest   []byte
	Version           *string
}

// ApplyPeriod bounds when a v1 manifest may be applied.
type ApplyPeriod struct {
	ValidFrom, ValidTo int64
}

// ManifestV1 is a v1 SignedResource whose resource is a manifest
// (manifest-1.0.0.asn, DER with implicit tags).
type ManifestV1 struct {
	// Resource.
	URI          *string
	ResourceType int

	// Manifest.
	ManifestVersion  int
	Description      *string
	Timestamp        uint64
	VendorID         []byte
	ClassID          []byte
	DeviceID         []byte
	Nonce            []byte
	VendorInfo       []byte
	PrecursorDigest  []byte // nil when absent
	ApplyPeriod      *ApplyPeriod
	ApplyImmediately bool
	Priority         *int64
	EncryptionMode   EnumOrOID
	Aliases          []ResourceAlias
	Dependencies     []ResourceReference
	Payload          *PayloadDescription

	// ResourceSignature.
	Hash       []byte
	Signatures []SignatureBlock
	// MACs is the DER of the optional macs element, kept as is.
	MACs []byte

	// ResourceDER is the DER of the Resource element as decoded or last
	// signed: what the hash and signatures cover.
	ResourceDER []byte
}

// DecodeManifestV1 decodes a v1 SignedResource holding a manifest. Errors
// wrap ErrMalformed and name the field.
func DecodeManifestV1(b []byte) (*ManifestV1, error) {
	var err error
	top := newDERReader(b, "v1", &err)
	sr := top.seq("SignedResource")
	top.end()
	m := &ManifestV1{}
	m.ResourceDER = sr.element("resource", asn1.SEQUENCE)
	if err != nil {
		return nil, err
	}
	res := newDERReader(m.ResourceDER, "v1.SignedResource", &err).seq("resource")
	if res.peek(asn1.UTF8String) {
		u := res.utf8("uri")
		m.URI = &u
	}
	m.ResourceType = res.enum("resourceType")
	if err == nil && m.ResourceType != ResourceTypeManifest {
		return nil, fmt.Errorf("%w: v1: resourceType %d is not a manifest", ErrMalformed, m.ResourceType)
	}
	m.decodeManifest(res.seq("manifest"))
	res.end()

	sig := sr.seq("signature")
	m.Hash = sig.octets("hash")
	sigs := sig.seq("signatures")
	for i := 0; err == nil && !sigs.s.Empty(); i++ {
		blk := sigs.seq(fmt.Sprintf("[%d]", i))
		sb := SignatureBlock{Signature: blk.octets("signature")}
		certs := blk.seq("certificates")
		for j := 0; err == nil && !certs.s.Empty(); j++ {
			c := certs.seq(fmt.Sprintf("[%d]", j))
			sb.Certificates = append(sb.Certificates, CertificateReference{Fingerprint: c.octets("fingerprint"), URI: c.utf8("uri")})
			c.end()
		}
		blk.end()
		m.Signatures = append(m.Signatures, sb)
	}
	if sig.peek(asn1.SEQUENCE) {
		m.MACs = sig.element("macs", asn1.SEQUENCE)
	}
	sig.end()
	sr.end()
	if err != nil {
		return nil, err
	}
	return m, nil
}

func (m *ManifestV1) decodeManifest(r *derReader) {
	m.ManifestVersion = r.enum("manifestVersion")
	if r.peek(asn1.UTF8String) {
		d := r.utf8("description")
		m.Description = &d
	}
	m.Timestamp = r.uint("timestamp")
	m.VendorID = r.octets("vendorId")
	m.ClassID = r.octets("classId")
	m.DeviceID = r.octets("deviceId")
	m.Nonce = r.octets("nonce")
	m.VendorInfo = r.octets("vendorInfo")
	if r.peek(asn1.OCTET_STRING) {
		m.PrecursorDigest = r.octets("precursorDigest")
	}
	if r.peek(asn1.SEQUENCE) {
		p := r.seq("applyPeriod")
		m.ApplyPeriod = &ApplyPeriod{ValidFrom: p.int("validFrom"), ValidTo: p.int("validTo")}
		p.end()
	}
	m.ApplyImmediately = r.boolean("applyImmediately")
	if r.peek(asn1.INTEGER) {
		p := r.int("priority")
		m.Priority = &p
	}
	m.EncryptionMode = readEnumOrOID(r, "encryptionMode")
	al := r.seq("aliases")
	for i := 0; !al.failed() && !al.s.Empty(); i++ {
		a := al.seq(fmt.Sprintf("[%d]", i))
		m.Aliases = append(m.Aliases, ResourceAlias{Hash: a.octets("hash"), URI: a.utf8("uri")})
		a.end()
	}
	deps := r.seq("dependencies")
	for i := 0; !deps.failed() && !deps.s.Empty(); i++ {
		m.Dependencies = append(m.Dependencies, readReference(deps.seq(fmt.Sprintf("[%d]", i))))
	}
	if r.peek(asn1.SEQUENCE) {
		p := r.seq("payload")
		pd := &PayloadDescription{Format: readEnumOrOID(p, "format")}
		if p.peek(asn1.SEQUENCE) {
			pd.EncryptionInfo = p.element("encryptionInfo", asn1.SEQUENCE)
		}
		pd.StorageIdentifier = p.utf8("storageIdentifier")
		pd.Reference = readReference(p.seq("reference"))
		if p.peek(asn1.INTEGER) {
			v := p.uint("installedSize")
			pd.InstalledSize = &v
		}
		if p.peek(asn1.OCTET_STRING) {
			pd.InstalledDigest = p.octets("installedDigest")
		}
		if p.peek(asn1.UTF8String) {
			v := p.utf8("version")
			pd.Version = &v
		}
		p.end()
		m.Payload = pd
	}
	r.end()
}

func readEnumOrOID(r *derReader, field string) EnumOrOID {
	if r.peek(asn1.OBJECT_IDENTIFIER) {
		var oid encasn1.ObjectIdentifier
		if !r.s.ReadASN1ObjectIdentifier(&oid) {
			r.fail(field, "bad OBJECT IDENTIFIER")
		}
		return EnumOrOID{OID: oid}
	}
	return EnumOrOID{Enum: r.enum(field)}
}

func readReference(r *derReader) ResourceReference {
	ref := ResourceReference{Hash: r.octets("hash")}
	if r.peek(asn1.UTF8String) {
		u := r.utf8("uri")
		ref.URI = &u
	}
	ref.Size = r.uint("size")
	r.end()
	return ref
}

func addEnumOrOID(b *cryptobyte.Builder, v EnumOrOID) {
	if v.OID != nil {
		b.AddASN1ObjectIdentifier(v.OID)
		return
	}
	b.AddASN1Enum(int64(v.Enum))
}

func addReference(b *cryptobyte.Builder, r ResourceReference) {
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddASN1OctetString(r.Hash)
		if r.URI != nil {
			addUTF8(b, *r.URI)
		}
		b.AddASN1Uint64(r.Size)
	})
}

// EncodeResource returns the DER of the Resource element built from the
// fields (not ResourceDER).
func (m *ManifestV1) EncodeResource() ([]byte, error) {
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		if m.URI != nil {
			addUTF8(b, *m.URI)
		}
		b.AddASN1Enum(int64(m.ResourceType))
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1Enum(int64(m.ManifestVersion))
			if m.Description != nil {
				addUTF8(b, *m.Description)
			}
			b.AddASN1Uint64(m.Timestamp)
			b.AddASN1OctetString(m.VendorID)
			b.AddASN1OctetString(m.ClassID)
			b.AddASN1OctetString(m.DeviceID)
			b.AddASN1OctetString(m.Nonce)
			b.AddASN1OctetString(m.VendorInfo)
			if m.PrecursorDigest != nil {
				b.AddASN1OctetString(m.PrecursorDigest)
			}
			if p := m.ApplyPeriod; p != nil {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					b.AddASN1Int64(p.ValidFrom)
					b.AddASN1Int64(p.ValidTo)
				})
			}
			b.AddASN1Boolean(m.ApplyImmediately)
			if m.Priority != nil {
				b.AddASN1Int64(*m.Priority)
			}
			addEnumOrOID(b, m.EncryptionMode)
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, a := range m.Aliases {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1OctetString(a.Hash)
						addUTF8(b, a.URI)
					})
				}
			})
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, d := range m.Dependencies {
					addReference(b, d)
				}
			})
			if p := m.Payload; p != nil {
				b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
					addEnumOrOID(b, p.Format)
					if p.EncryptionInfo != nil {
						b.AddBytes(p.EncryptionInfo)
					}
					addUTF8(b, p.StorageIdentifier)
					addReference(b, p.Reference)
					if p.InstalledSize != nil {
						b.AddASN1Uint64(*p.InstalledSize)
					}
					if p.InstalledDigest != nil {
						b.AddASN1OctetString(p.InstalledDigest)
					}
					if p.Version != nil {
						addUTF8(b, *p.Version)
					}
				})
			}
		})
	})
	return b.Bytes()
}

// Encode returns the DER of the SignedResource: ResourceDER (the signed
// bytes) followed by the signature block.
func (m *ManifestV1) Encode() ([]byte, error) {
	if m.ResourceDER == nil {
		return nil, fmt.Errorf("firmware: v1 manifest is not signed yet (no ResourceDER)")
	}
	var b cryptobyte.Builder
	b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
		b.AddBytes(m.ResourceDER)
		b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
			b.AddASN1OctetString(m.Hash)
			b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
				for _, s := range m.Signatures {
					b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
						b.AddASN1OctetString(s.Signature)
						b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
							for _, c := range s.Certificates {
								b.AddASN1(asn1.SEQUENCE, func(b *cryptobyte.Builder) {
									b.AddASN1OctetString(c.Fingerprint)
									addUTF8(b, c.URI)
								})
							}
						})
					})
				}
			})
			if m.MACs != nil {
				b.AddBytes(m.MACs)
			}
		})
	})
	return b.Bytes()
}

// V1Params are the inputs of a v1 manifest, as manifest-tool takes them.
type V1Params struct {
	Timestamp  uint64
	VendorID   []byte
	ClassID    []byte
	PayloadURI string
	// PayloadDigest is the SHA-256 of the payload.
	PayloadDigest []byte
	PayloadSize   uint64
	Priority      int64
	// StorageIdentifier defaults to "default" (slot 0).
	StorageIdentifier string
}

// NewManifestV1 returns an unsigned manifest with manifest-tool v2.6.2's
// defaults: encryption mode none-ecc-secp256r1-sha256, storage "default",
// apply immediately, empty device id, nonce and vendor info, raw-binary
// payload.
func NewManifestV1(p V1Params) *ManifestV1 {
	storage := p.StorageIdentifier
	if storage == "" {
		storage = "default"
	}
	uri := p.PayloadURI
	prio := p.Priority
	return &ManifestV1{
		ResourceType:     ResourceTypeManifest,
		ManifestVersion:  1,
		Timestamp:        p.Timestamp,
		VendorID:         bytes.Clone(p.VendorID),
		ClassID:          bytes.Clone(p.ClassID),
		DeviceID:         []byte{},
		Nonce:            []byte{},
		VendorInfo:       []byte{},
		ApplyImmediately: true,
		Priority:         &prio,
		EncryptionMode:   EnumOrOID{Enum: EncryptionNoneECCSecp256r1SHA256},
		Payload: &PayloadDescription{
			Format:            EnumOrOID{Enum: FormatRawBinary},
			StorageIdentifier: storage,
			Reference:         ResourceReference{Hash: bytes.Clone(p.PayloadDigest), URI: &uri, Size: p.PayloadSize},
		},
	}
}

// Sign encodes the Resource, sets the hash and replaces the signatures with
// one ECDSA P-256 signature (DER, deterministic per RFC 6979) that references
// the certificate by its SHA-256 fingerprint.
func (m *ManifestV1) Sign(key *ecdsa.PrivateKey, certDER []byte) error {
	der, err := m.EncodeResource()
	if err != nil {
		return err
	}
	sum := sha256.Sum256(der)
	sig, err := key.Sign(nil, sum[:], crypto.SHA256)
	if err != nil {
		return fmt.Errorf("firmware: signing manifest: %w", err)
	}
	fp := sha256.Sum256(certDER)
	m.ResourceDER = der
	m.Hash = sum[:]
	m.Signatures = []SignatureBlock{{Signature: sig, Certificates: []CertificateReference{{Fingerprint: fp[:], URI: ""}}}}
	return nil
}

// checkHash verifies ResourceSignature.hash against the DER Resource, as
// ARM_UC_mmValidateManifestHash does.
func (m *ManifestV1) checkHash() error {
	sum := sha256.Sum256(m.ResourceDER)
	if !bytes.Equal(sum[:], m.Hash) {
		return fmt.Errorf("%w: stored %x, SHA-256 of the Resource is %x", ErrManifestHash, m.Hash, sum)
	}
	return nil
}

// Verify checks the manifest as the update client does: the hash of the
// Resource, then at least one signature that verifies with a certificate
// found by its fingerprint among certs (DER certificates).
func (m *ManifestV1) Verify(certs ...[]byte) error {
	if err := m.checkHash(); err != nil {
		return err
	}
	if len(m.Signatures) == 0 {
		return ErrUnsigned
	}
	known := false
	var lastErr error
	for _, s := range m.Signatures {
		for _, ref := range s.Certificates {
			for _, c := range certs {
				fp := sha256.Sum256(c)
				if !bytes.Equal(fp[:], ref.Fingerprint) {
					continue
				}
				known = true
				pub, err := certPublicKey(c)
				if err != nil {
					lastErr = err
					continue
				}
				if ecdsa.VerifyASN1(pub, m.Hash, s.Signature) {
					return nil
				}
				lastErr = fmt.Errorf("%w: by certificate %x", ErrSignature, fp[:8])
			}
		}
	}
	if !known {
		return ErrUnknownSigner
	}
	return lastErr
}

// VerifyWithKey checks the hash and that some signature verifies with pub,
// whatever certificate it references.
func (m *ManifestV1) VerifyWithKey(pub *ecdsa.PublicKey) error {
	if err := m.checkHash(); err != nil {
		return err
	}
	if len(m.Signatures) == 0 {
		return ErrUnsigned
	}
	for _, s := range m.Signatures {
		if ecdsa.VerifyASN1(pub, m.Hash, s.Signature) {
			return nil
		}
	}
	return ErrSignature
}

// CheckPayload checks a payload against the manifest's size and digest.
func (m *ManifestV1) CheckPayload(payload []byte) error {
	if m.Payload == nil {
		return fmt.Errorf("%w: the manifest describes no payload", ErrPayload)
	}
	return checkPayload(payload, m.Payload.Reference.Size, m.Payload.Reference.Hash)
}

func checkPayload(payload []byte, size uint64, digest []byte) error {
	if uint64(len(payload)) != size {
		return fmt.Errorf("%w: %d bytes, manifest says %d", ErrPayload, len(payload), size)
	}
	sum := sha256.Sum256(payload)
	if !bytes.Equal(sum[:], digest) {
		return fmt.Errorf("%w: SHA-256 %x, manifest says %x", ErrPayload, sum, digest)
	}
	return nil
}

// certPublicKey returns the ECDSA public key of a DER certificate.
func certPublicKey(der []byte) (*ecdsa.PublicKey, error) {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("firmware: certificate: %w", err)
	}
	pub, ok := c.PublicKey.(*ecdsa.PublicKey)
	if !ok {
		return nil, fmt.Errorf("firmware: certificate key is %T, not ECDSA", c.PublicKey)
	}
	return pub, nil
}
