package firmware

import (
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/bootsim/bootsim/internal/testref"
	"github.com/stretchr/testify/require"
)

type manifestVectors struct {
	Input struct {
		Vendor struct {
			Domain string `json:"domain"`
		} `json:"vendor"`
		Device struct {
			ModelName string `json:"model-name"`
		} `json:"device"`
		Payload struct {
			URL string `json:"url"`
		} `json:"payload"`
	} `json:"input_config"`
	VendorID        string `json:"vendor_id"`
	ClassID         string `json:"class_id"`
	PayloadSHA256   string `json:"payload_sha256"`
	PayloadSize     uint64 `json:"payload_size"`
	PublicKey       string `json:"public_key_uncompressed"`
	CertFingerprint string `json:"certificate_sha256_fingerprint"`
	V1              struct {
		Size        int    `json:"size"`
		Timestamp   uint64 `json:"timestamp"`
		ResourceSHA string `json:"resource_der_sha256"`
		Decoded     struct {
			Signature struct {
				Hash       string `json:"hash"`
				Signatures []struct {
					Signature string `json:"signature"`
				} `json:"signatures"`
			} `json:"signature"`
		} `json:"decoded"`
	} `json:"v1"`
	V3 struct {
		Size           int    `json:"size"`
		PayloadVersion string `json:"payload_version"`
		Decoded        struct {
			Signature string `json:"signature"`
		} `json:"decoded"`
	} `json:"v3"`
	V3Signed struct {
		PayloadVersion string `json:"payload_version"`
		Decoded        struct {
			Manifest struct {
				InstalledSignature string `json:"installed-signature"`
			} `json:"manifest"`
		} `json:"decoded"`
	} `json:"v3_signed_image"`
}

func loadManifestVectors(t *testing.T) manifestVectors {
	var v manifestVectors
	testref.JSON(t, "manifest/manifest_vectors.json", &v)
	return v
}

func TestVendorAndClassID(t *testing.T) {
	v := loadManifestVectors(t)
	vid := VendorID(v.Input.Vendor.Domain)
	require.Equal(t, v.VendorID, hexs(vid[:]))
	cid := ClassID(vid, v.Input.Device.ModelName)
	require.Equal(t, v.ClassID, hexs(cid[:]))
}

func TestDecodeManifestV1Vector(t *testing.T) {
	v := loadManifestVectors(t)
	raw := testref.Read(t, "manifest/manifest_v1.der")
	require.Len(t, raw, v.V1.Size)
	m, err := DecodeManifestV1(raw)
	require.NoError(t, err)
	require.Equal(t, 1, m.ManifestVersion)
	require.Equal(t, ResourceTypeManifest, m.ResourceType)
	require.Nil(t, m.URI)
	require.Equal(t, v.V1.Timestamp, m.Timestamp)
	require.Equal(t, v.VendorID, hexs(m.VendorID))
	require.Equal(t, v.ClassID, hexs(m.ClassID))
	require.Empty(t, m.DeviceID)
	require.Empty(t, m.Nonce)
	require.Empty(t, m.VendorInfo)
	require.True(t, m.ApplyImmediately)
	require.NotNil(t, m.Priority)
	require.Equal(t, int64(0), *m.Priority)
	require.Equal(t, EnumOrOID{Enum: EncryptionNoneECCSecp256r1SHA256}, m.EncryptionMode)
	require.Empty(t, m.Aliases)
	require.Empty(t, m.Dependencies)
	require.NotNil(t, m.Payload)
	require.Equal(t, EnumOrOID{Enum: FormatRawBinary}, m.Payload.Format)
	require.Equal(t, "default", m.Payload.StorageIdentifier)
	require.Equal(t, v.PayloadSHA256, hexs(m.Payload.Reference.Hash))
	require.Equal(t, v.Input.Payload.URL, *m.Payload.Reference.URI)
	require.Equal(t, v.PayloadSize, m.Payload.Reference.Size)
	require.Equal(t, v.V1.Decoded.Signature.Hash, hexs(m.Hash))
	require.Len(t, m.Signatures, 1)
	require.Equal(t, v.V1.Decoded.Signature.Signatures[0].Signature, hexs(m.Signatures[0].Signature))
	require.Equal(t, v.CertFingerprint, hexs(m.Signatures[0].Certificates[0].Fingerprint))

	sum := sha256.Sum256(m.ResourceDER)
	require.Equal(t, v.V1.ResourceSHA, hexs(sum[:]))

	// Encoding the decoded fields gives back the same bytes.
	res, err := m.EncodeResource()
	require.NoError(t, err)
	require.Equal(t, m.ResourceDER, res)
	again, err := m.Encode()
	require.NoError(t, err)
	require.Equal(t, raw, again)

	require.NoError(t, m.Verify(testref.Read(t, "manifest/test_update_cert.der")))
	require.NoError(t, m.CheckPayload(testref.Read(t, "payload.bin")))
	pub, err := ParsePublicKey(testref.Read(t, "manifest/test_public_key_uncompressed.bin"))
	require.NoError(t, err)
	require.NoError(t, m.VerifyWithKey(pub))
}

func TestDecodeManifestV3Vectors(t *testing.T) {
	v := loadManifestVectors(t)
	pub, err := ParsePublicKey(testref.Read(t, "manifest/test_public_key_uncompressed.bin"))
	require.NoError(t, err)
	for _, tc := range []struct {
		file, version, installed string
	}{
		{"manifest/manifest_v3.der", v.V3.PayloadVersion, ""},
		{"manifest/manifest_v3_signed_image.der", v.V3Signed.PayloadVersion, v.V3Signed.Decoded.Manifest.InstalledSignature},
	} {
		raw := testref.Read(t, tc.file)
		m, err := DecodeManifestV3(raw)
		require.NoError(t, err, tc.file)
		require.Equal(t, v.VendorID, hexs(m.VendorID))
		require.Equal(t, v.ClassID, hexs(m.ClassID))
		require.Equal(t, int64(0), m.UpdatePriority)
		require.Equal(t, "MAIN", m.ComponentName)
		require.Equal(t, tc.version, m.PayloadVersion)
		require.Equal(t, v.PayloadSHA256, hexs(m.PayloadDigest))
		require.Equal(t, v.PayloadSize, m.PayloadSize)
		require.Equal(t, v.Input.Payload.URL, m.PayloadURI)
		require.Equal(t, V3FormatRawBinary, m.PayloadFormat)
		require.Equal(t, tc.installed, hexs(m.InstalledSignature))
		require.Nil(t, m.PayloadMetadata)
		require.Nil(t, m.VendorData)
		require.Len(t, m.Signature, 64)
		require.NoError(t, m.Verify(pub), tc.file)
		require.NoError(t, m.CheckPayload(testref.Read(t, "payload.bin")))
		der, err := m.EncodeManifest()
		require.NoError(t, err)
		require.Equal(t, m.ManifestDER, der)
		again, err := m.Encode()
		require.NoError(t, err)
		require.Equal(t, raw, again, tc.file)
	}
	m, err := DecodeManifestV3(testref.Read(t, "manifest/manifest_v3.der"))
	require.NoError(t, err)
	require.Equal(t, v.V3.Decoded.Signature, hexs(m.Signature))
}

func testKey(t *testing.T) ([]byte, []byte) {
	return testref.Read(t, "manifest/test_signing_key.pem"), testref.Read(t, "manifest/test_update_cert.der")
}

// TestCreateV1MatchesManifestTool: a manifest built from the vector's inputs
// has the same Resource bytes as the one the real manifest-tool made, so its
// hash matches; only the (randomised there, deterministic here) signature
// differs, and it verifies.
func TestCreateV1MatchesManifestTool(t *testing.T) {
	v := loadManifestVectors(t)
	keyPEM, cert := testKey(t)
	key, err := ParsePrivateKey(keyPEM)
	require.NoError(t, err)
	vid := VendorID(v.Input.Vendor.Domain)
	cid := ClassID(vid, v.Input.Device.ModelName)
	payload := testref.Read(t, "payload.bin")
	sum := sha256.Sum256(payload)
	m := NewManifestV1(V1Params{Timestamp: v.V1.Timestamp, VendorID: vid[:], ClassID: cid[:],
		PayloadURI: v.Input.Payload.URL, PayloadDigest: sum[:], PayloadSize: uint64(len(payload))})
	require.NoError(t, m.Sign(key, cert))
	require.Equal(t, v.V1.ResourceSHA, hexs(m.Hash))
	ref, _ := DecodeManifestV1(testref.Read(t, "manifest/manifest_v1.der"))
	require.Equal(t, ref.ResourceDER, m.ResourceDER)
	require.NoError(t, m.Verify(cert))
	der, err := m.Encode()
	require.NoError(t, err)
	back, err := DecodeManifestV1(der)
	require.NoError(t, err)
	require.NoError(t, back.Verify(cert))

	// Deterministic: signing again gives the same bytes.
	m2 := NewManifestV1(V1Params{Timestamp: v.V1.Timestamp, VendorID: vid[:], ClassID: cid[:],
		PayloadURI: v.Input.Payload.URL, PayloadDigest: sum[:], PayloadSize: uint64(len(payload))})
	require.NoError(t, m2.Sign(key, cert))
	der2, _ := m2.Encode()
	require.Equal(t, der, der2)
}

func TestCreateV3MatchesManifestTool(t *testing.T) {
	v := loadManifestVectors(t)
	keyPEM, _ := testKey(t)
	key, err := ParsePrivateKey(keyPEM)
	require.NoError(t, err)
	vid := VendorID(v.Input.Vendor.Domain)
	cid := ClassID(vid, v.Input.Device.ModelName)
	payload := testref.Read(t, "payload.bin")
	sum := sha256.Sum256(payload)
	for _, tc := range []struct {
		file      string
		version   string
		installed bool
	}{{"manifest/manifest_v3.der", "1.2.3", false}, {"manifest/manifest_v3_signed_image.der", "1.2.4", true}} {
		m := NewManifestV3(V3Params{VendorID: vid[:], ClassID: cid[:], PayloadVersion: tc.version,
			PayloadDigest: sum[:], PayloadSize: uint64(len(payload)), PayloadURI: v.Input.Payload.URL})
		require.NoError(t, m.Sign(key, tc.installed))
		require.NoError(t, m.Verify(&key.PublicKey))
		ref, err := DecodeManifestV3(testref.Read(t, tc.file))
		require.NoError(t, err)
		if !tc.installed {
			require.Equal(t, ref.ManifestDER, m.ManifestDER, "same Manifest bytes as manifest-tool")
		} else {
			require.Len(t, m.InstalledSignature, 64)
		}
	}
}

func TestManifestVerifyFailures(t *testing.T) {
	keyPEM, cert := testKey(t)
	key, _ := ParsePrivateKey(keyPEM)
	raw := testref.Read(t, "manifest/manifest_v1.der")

	// A flipped bit in the timestamp breaks the hash.
	m, _ := DecodeManifestV1(raw)
	tampered := append([]byte(nil), raw...)
	tampered[20] ^= 1 // inside the timestamp INTEGER
	tm, err := DecodeManifestV1(tampered)
	require.NoError(t, err)
	require.NotEqual(t, m.Timestamp, tm.Timestamp)
	require.ErrorIs(t, tm.Verify(cert), ErrManifestHash)

	// Re-hashed but not re-signed: the signature fails.
	rehashed := *tm
	sum := sha256.Sum256(tm.ResourceDER)
	rehashed.Hash = sum[:]
	require.ErrorIs(t, rehashed.Verify(cert), ErrSignature)

	// Another certificate: no known signer.
	other := append([]byte(nil), cert...)
	other[len(other)-1] ^= 1
	require.ErrorIs(t, m.Verify(other), ErrUnknownSigner)

	// Unsigned.
	unsigned := *m
	unsigned.Signatures = nil
	require.ErrorIs(t, unsigned.Verify(cert), ErrUnsigned)

	// v3: a wrong key, and a payload that does not match.
	m3, _ := DecodeManifestV3(testref.Read(t, "manifest/manifest_v3.der"))
	require.NoError(t, m3.Verify(&key.PublicKey))
	otherKey, _ := ParsePrivateKey(keyPEM)
	otherKey.D.Add(otherKey.D, otherKey.D)
	otherKey.PublicKey.X, otherKey.PublicKey.Y = otherKey.Curve.ScalarBaseMult(otherKey.D.Bytes())
	require.ErrorIs(t, m3.Verify(&otherKey.PublicKey), ErrSignature)
	require.ErrorIs(t, m3.CheckPayload([]byte("not the payload")), ErrPayload)
}

// TestManifestTruncation: every proper prefix of each manifest is rejected
// with ErrMalformed, never a panic.
func TestManifestTruncation(t *testing.T) {
	for _, f := range []string{"manifest/manifest_v1.der"} {
		raw := testref.Read(t, f)
		for n := range len(raw) {
			_, err := DecodeManifestV1(raw[:n])
			require.ErrorIs(t, err, ErrMalformed, "%s: %d bytes", f, n)
		}
	}
	for _, f := range []string{"manifest/manifest_v3.der", "manifest/manifest_v3_signed_image.der"} {
		raw := testref.Read(t, f)
		for n := range len(raw) {
			_, err := DecodeManifestV3(raw[:n])
			require.ErrorIs(t, err, ErrMalformed, "%s: %d bytes", f, n)
		}
	}
	// Each version refuses the other.
	_, err := DecodeManifestV1(testref.Read(t, "manifest/manifest_v3.der"))
	require.ErrorIs(t, err, ErrMalformed)
	_, err = DecodeManifestV3(testref.Read(t, "manifest/manifest_v1.der"))
	require.ErrorIs(t, err, ErrMalformed)
	// Trailing data is refused.
	_, err = DecodeManifestV1(append(testref.Read(t, "manifest/manifest_v1.der"), 0))
	require.ErrorIs(t, err, ErrMalformed)
	require.ErrorContains(t, err, "unexpected bytes")
}

// TestManifestVerifiesWithOpenSSL: a manifest this package signs verifies
// with an independent implementation. Skipped where openssl is missing.
func TestManifestVerifiesWithOpenSSL(t *testing.T) {
	openssl, err := exec.LookPath("openssl")
	if err != nil {
		t.Skip("openssl not installed")
	}
	keyPEM, cert := testKey(t)
	key, _ := ParsePrivateKey(keyPEM)
	payload := testref.Read(t, "payload.bin")
	sum := sha256.Sum256(payload)
	vid := VendorID("example.org")
	cid := ClassID(vid, "board")
	m := NewManifestV1(V1Params{Timestamp: 1700000000, VendorID: vid[:], ClassID: cid[:],
		PayloadURI: "https://example.org/fw.bin", PayloadDigest: sum[:], PayloadSize: uint64(len(payload))})
	require.NoError(t, m.Sign(key, cert))

	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, b, 0o600))
		return p
	}
	certPath := testref.Path("manifest/test_update_cert.der")
	pubPath := filepath.Join(dir, "pub.pem")
	out, err := exec.Command(openssl, "x509", "-inform", "DER", "-in", certPath, "-pubkey", "-noout", "-out", pubPath).CombinedOutput()
	require.NoError(t, err, "%s", out)
	// openssl hashes the message itself: give it the DER Resource.
	res := write("resource.der", m.ResourceDER)
	sig := write("sig.der", m.Signatures[0].Signature)
	out, err = exec.Command(openssl, "dgst", "-sha256", "-verify", pubPath, "-signature", sig, res).CombinedOutput()
	require.NoError(t, err, "%s", out)
	require.Contains(t, string(out), "Verified OK")

	// And a tampered Resource fails there too.
	bad := append([]byte(nil), m.ResourceDER...)
	bad[len(bad)-1] ^= 1
	out, err = exec.Command(openssl, "dgst", "-sha256", "-verify", pubPath, "-signature", sig, write("bad.der", bad)).CombinedOutput()
	require.Error(t, err)
	require.Contains(t, string(out), "Verification failure")
	var exitErr *exec.ExitError
	require.True(t, errors.As(err, &exitErr))
}

type semverVectors struct {
	Vectors []struct {
		Semver string `json:"semver"`
		Uint64 uint64 `json:"uint64"`
	} `json:"vectors"`
	Legacy struct {
		Uint64 uint64 `json:"uint64"`
		Print  string `json:"semver_print"`
	} `json:"legacy_timestamp_example"`
}

func TestSemverVectors(t *testing.T) {
	var v semverVectors
	testref.JSON(t, "fota_semver_vectors.json", &v)
	require.NotEmpty(t, v.Vectors)
	for _, vec := range v.Vectors {
		got, err := PackSemver(vec.Semver)
		require.NoError(t, err, vec.Semver)
		require.Equal(t, vec.Uint64, got, vec.Semver)
		require.Equal(t, vec.Semver, FormatSemver(vec.Uint64))
		require.Greater(t, got, v.Legacy.Uint64, "a semver compares above a legacy timestamp")
	}
	require.Equal(t, v.Legacy.Print, FormatSemver(v.Legacy.Uint64))
	for _, bad := range []string{"1.2", "1.2.3.4", "1000.0.0", "01.2.3", "a.b.c", "", "-1.0.0"} {
		_, err := PackSemver(bad)
		require.ErrorIs(t, err, ErrSemver, bad)
	}
}

type aliceVector struct {
	Key           string `json:"key"`
	Counter       string `json:"initial_counter_block"`
	Size          int    `json:"ciphertext_size"`
	PlainSHA      string `json:"plaintext_sha256"`
	First5120SHA  string `json:"plaintext_first_5120_bytes_sha256"`
	StartsWith    string `json:"plaintext_starts_with"`
	CiphertextSHA string `json:"ciphertext_sha256"`
}

func TestAESCTRAlice(t *testing.T) {
	var v aliceVector
	testref.JSON(t, "aes256ctr_alice.json", &v)
	ct := testref.Read(t, "aes256ctr_alice_ciphertext.bin")
	require.Len(t, ct, v.Size)
	ctSum := sha256.Sum256(ct)
	require.Equal(t, v.CiphertextSHA, hexs(ctSum[:]))
	pt, err := DecryptAESCTR(testref.Hex(t, v.Key), testref.Hex(t, v.Counter), ct)
	require.NoError(t, err)
	sum := sha256.Sum256(pt)
	require.Equal(t, v.PlainSHA, hexs(sum[:]))
	first := sha256.Sum256(pt[:5120])
	require.Equal(t, v.First5120SHA, hexs(first[:]))
	require.Equal(t, v.StartsWith, string(pt[:len(v.StartsWith)]))

	// Decrypting in fragments, as the firmware manager does, with the counter
	// advanced by whole blocks, gives the same plaintext.
	var joined []byte
	ctr := testref.Hex(t, v.Counter)
	for off := 0; off < len(ct); off += 1024 {
		end := min(off+1024, len(ct))
		part, err := DecryptAESCTR(testref.Hex(t, v.Key), addCounter(ctr, uint64(off/16)), ct[off:end])
		require.NoError(t, err)
		joined = append(joined, part...)
	}
	require.Equal(t, pt, joined)
	_, err = DecryptAESCTR(make([]byte, 31), ctr, ct)
	require.Error(t, err)
}

// addCounter adds n to a 128-bit big-endian counter block.
func addCounter(ctr []byte, n uint64) []byte {
	out := append([]byte(nil), ctr...)
	carry := n
	for i := 15; i >= 0 && carry > 0; i-- {
		s := uint64(out[i]) + carry&0xFF
		out[i] = byte(s)
		carry = carry>>8 + s>>8
	}
	return out
}

func FuzzManifests(f *testing.F) {
	dir := testref.Dir()
	for _, name := range []string{"manifest/manifest_v1.der", "manifest/manifest_v3.der", "manifest/manifest_v3_signed_image.der"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if m, err := DecodeManifestV1(b); err == nil {
			// What decodes re-encodes to the same bytes (DER is canonical).
			enc, err := m.Encode()
			if err != nil || string(enc) != string(b) {
				t.Fatalf("v1 round trip differs (%v)", err)
			}
			res, err := m.EncodeResource()
			if err != nil || string(res) != string(m.ResourceDER) {
				t.Fatalf("v1 resource round trip differs (%v)", err)
			}
			_ = m.Verify(b)
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("v1 error not typed: %v", err)
		}
		if m, err := DecodeManifestV3(b); err == nil {
			enc, err := m.Encode()
			if err != nil || string(enc) != string(b) {
				t.Fatalf("v3 round trip differs (%v)", err)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("v3 error not typed: %v", err)
		}
	})
}
