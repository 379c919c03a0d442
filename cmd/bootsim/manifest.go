package main

import (
	"crypto/ecdsa"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"path/filepath"
	"strconv"

	"github.com/bootsim/bootsim/firmware"
	"github.com/spf13/cobra"
)

func newManifestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Create, inspect and verify update manifests (v1 and v3)",
		Long: `Create, inspect and verify Pelion update manifests, byte-compatible with
manifest-tool: v1 (DER, signed with ECDSA P-256 and referencing the signing
certificate by its SHA-256 fingerprint, timestamp as version) and v3 (DER,
raw r||s signature, semantic version, the device holds the public key).`,
	}
	cmd.AddCommand(newManifestCreateCmd(), newManifestInspectCmd(), newManifestVerifyCmd())
	return cmd
}

func newManifestCreateCmd() *cobra.Command {
	var payload, keyFile, domain, model, version, uri, format, certFile, out, outFormat string
	var priority int64
	var signInstalled bool
	cmd := &cobra.Command{
		Use:   "create --payload FILE --key PEM --vendor-domain D --model-name M --version N -o OUT",
		Short: "Create and sign a manifest for a payload",
		Long: `Create and sign a manifest for a payload, with manifest-tool's defaults.

The vendor id is uuid5(DNS, vendor-domain) and the class id
uuid5(vendor-id, model-name). For v1, --version is the timestamp (an integer)
and --cert the certificate whose fingerprint the signature references; for
v3, --version is a semantic version (1.2.3). Signatures are deterministic
(RFC 6979): the same inputs give the same bytes.`,
		Example: `  bootsim manifest create --payload app.bin --key key.pem --cert cert.der \
      --vendor-domain example.com --model-name sim-device --version 1561517193 \
      --uri https://example.com/fw/app.bin -O app.manifest
  bootsim manifest create --format v3 --payload app.bin --key key.pem \
      --vendor-domain example.com --model-name sim-device --version 1.2.3 -O app.v3`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			for _, req := range []struct{ name, v string }{{"payload", payload}, {"key", keyFile}, {"vendor-domain", domain}, {"model-name", model}, {"version", version}, {"output", out}} {
				if req.v == "" {
					return usageErr("--%s is required", req.name)
				}
			}
			// A flag the format would ignore is refused: the user meant
			// something the manifest would not say.
			switch {
			case format == "v3" && certFile != "":
				return usageErr("--cert applies to v1 manifests (a v3 manifest is verified with the vendor's public key)")
			case format == "v1" && signInstalled:
				return usageErr("--sign-installed applies to v3 manifests")
			}
			data, err := readInput(cmd, payload, inFirmware)
			if err != nil {
				return err
			}
			keyPEM, err := readInput(cmd, keyFile, inKey)
			if err != nil {
				return err
			}
			key, err := firmware.ParsePrivateKey(keyPEM)
			if err != nil {
				return usageErr("%s: %v", keyFile, err)
			}
			if uri == "" {
				uri = filepath.Base(payload)
			}
			vid := firmware.VendorID(domain)
			cid := firmware.ClassID(vid, model)
			sum := sha256.Sum256(data)
			var der []byte
			switch format {
			case "v1":
				ts, err := strconv.ParseUint(version, 10, 64)
				if err != nil {
					return usageErr("--version %q: a v1 manifest's version is a timestamp (an integer)", version)
				}
				if certFile == "" {
					return usageErr("--format v1 needs --cert: the signature references the certificate's fingerprint")
				}
				cert, err := readInput(cmd, certFile, inKey)
				if err != nil {
					return err
				}
				m := firmware.NewManifestV1(firmware.V1Params{Timestamp: ts, VendorID: vid[:], ClassID: cid[:],
					PayloadURI: uri, PayloadDigest: sum[:], PayloadSize: uint64(len(data)), Priority: priority})
				if err := m.Sign(key, cert); err != nil {
					return err
				}
				if err := m.Verify(cert); err != nil {
					return usageErr("--cert %s does not hold the public key of --key %s: %v", certFile, keyFile, err)
				}
				der, err = m.Encode()
				if err != nil {
					return err
				}
			case "v3":
				if _, err := firmware.PackSemver(version); err != nil {
					return usageErr("--version %q: a v3 manifest's version is a semantic version like 1.2.3", version)
				}
				m := firmware.NewManifestV3(firmware.V3Params{VendorID: vid[:], ClassID: cid[:], Priority: priority,
					PayloadVersion: version, PayloadDigest: sum[:], PayloadSize: uint64(len(data)), PayloadURI: uri})
				if err := m.Sign(key, signInstalled); err != nil {
					return err
				}
				if der, err = m.Encode(); err != nil {
					return err
				}
			default:
				return usageErr("--format %q: want v1 or v3", format)
			}
			if err := checkBinaryOutput(outFormat); err != nil {
				return err
			}
			return writeOutput(cmd, out, der)
		},
	}
	f := cmd.Flags()
	f.StringVar(&payload, "payload", "", "the payload the manifest authorises")
	f.StringVar(&keyFile, "key", "", "the vendor's ECDSA P-256 private key (PEM)")
	f.StringVar(&certFile, "cert", "", "the signing certificate (DER), v1 only")
	f.StringVar(&domain, "vendor-domain", "", "vendor domain: the vendor id is uuid5(DNS, domain)")
	f.StringVar(&model, "model-name", "", "device model: the class id is uuid5(vendor id, model)")
	f.StringVar(&version, "version", "", "v1: timestamp (integer); v3: semantic version")
	f.StringVar(&uri, "uri", "", "where the device fetches the payload (default: the payload's file name)")
	f.StringVar(&format, "format", "v1", "manifest format: v1 or v3")
	f.Int64Var(&priority, "priority", 0, "update priority")
	f.BoolVar(&signInstalled, "sign-installed", false, "v3: add an installed-signature over the payload digest")
	addBinaryOutput(cmd, &out, &outFormat)
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"v1", "v3"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// decodedManifest is either version, decoded from bytes of unknown version.
type decodedManifest struct {
	v1 *firmware.ManifestV1
	v3 *firmware.ManifestV3
}

func decodeManifest(name string, data []byte) (*decodedManifest, error) {
	m1, err1 := firmware.DecodeManifestV1(data)
	if err1 == nil {
		return &decodedManifest{v1: m1}, nil
	}
	m3, err3 := firmware.DecodeManifestV3(data)
	if err3 == nil {
		return &decodedManifest{v3: m3}, nil
	}
	return nil, usageErr("%s: not a manifest: as v1: %v; as v3: %v", name, err1, err3)
}

type manifestReport struct {
	Schema          string `json:"schema"`
	File            string `json:"file"`
	ManifestVersion int    `json:"manifest_version"`
	Timestamp       uint64 `json:"timestamp,omitempty"`
	PayloadVersion  string `json:"payload_version,omitempty"`
	VendorID        string `json:"vendor_id"`
	ClassID         string `json:"class_id"`
	Priority        int64  `json:"priority"`
	PayloadURI      string `json:"payload_uri"`
	PayloadHash     string `json:"payload_hash"`
	PayloadSize     uint64 `json:"payload_size"`
	PayloadFormat   int    `json:"payload_format"`
	StorageID       string `json:"storage_identifier,omitempty"`
	EncryptionMode  int    `json:"encryption_mode,omitempty"`
	ComponentName   string `json:"component_name,omitempty"`
	Signatures      int    `json:"signatures"`
	CertFingerprint string `json:"certificate_fingerprint,omitempty"`
	InstalledSig    bool   `json:"installed_signature,omitempty"`
	ResourceHash    string `json:"resource_hash,omitempty"`
}

func (d *decodedManifest) report(name string) manifestReport {
	r := manifestReport{Schema: "bootsim/manifest/v1", File: name}
	if m := d.v1; m != nil {
		r.ManifestVersion = m.ManifestVersion
		r.Timestamp = m.Timestamp
		r.VendorID, r.ClassID = hex.EncodeToString(m.VendorID), hex.EncodeToString(m.ClassID)
		if m.Priority != nil {
			r.Priority = *m.Priority
		}
		if p := m.Payload; p != nil {
			if p.Reference.URI != nil {
				r.PayloadURI = *p.Reference.URI
			}
			r.PayloadHash, r.PayloadSize = hex.EncodeToString(p.Reference.Hash), p.Reference.Size
			r.PayloadFormat, r.StorageID = p.Format.Enum, p.StorageIdentifier
		}
		r.EncryptionMode = m.EncryptionMode.Enum
		r.Signatures = len(m.Signatures)
		if len(m.Signatures) > 0 && len(m.Signatures[0].Certificates) > 0 {
			r.CertFingerprint = hex.EncodeToString(m.Signatures[0].Certificates[0].Fingerprint)
		}
		r.ResourceHash = hex.EncodeToString(m.Hash)
		return r
	}
	m := d.v3
	r.ManifestVersion = 3
	r.PayloadVersion = m.PayloadVersion
	r.VendorID, r.ClassID = hex.EncodeToString(m.VendorID), hex.EncodeToString(m.ClassID)
	r.Priority = m.UpdatePriority
	r.PayloadURI, r.PayloadHash, r.PayloadSize, r.PayloadFormat = m.PayloadURI, hex.EncodeToString(m.PayloadDigest), m.PayloadSize, m.PayloadFormat
	r.ComponentName = m.ComponentName
	if len(m.Signature) > 0 {
		r.Signatures = 1
	}
	r.InstalledSig = len(m.InstalledSignature) > 0
	return r
}

func printManifestReport(w io.Writer, r manifestReport) {
	fmt.Fprintf(w, "%s: manifest v%d\n", r.File, r.ManifestVersion)
	if r.ManifestVersion == 3 {
		fmt.Fprintf(w, "  payload-version  %s\n", r.PayloadVersion)
		fmt.Fprintf(w, "  component        %s\n", r.ComponentName)
	} else {
		fmt.Fprintf(w, "  timestamp        %d\n", r.Timestamp)
	}
	fmt.Fprintf(w, "  vendor-id        %s\n", r.VendorID)
	fmt.Fprintf(w, "  class-id         %s\n", r.ClassID)
	fmt.Fprintf(w, "  priority         %d\n", r.Priority)
	fmt.Fprintf(w, "  payload-uri      %s\n", r.PayloadURI)
	fmt.Fprintf(w, "  payload-hash     %s\n", r.PayloadHash)
	fmt.Fprintf(w, "  payload-size     %d\n", r.PayloadSize)
	fmt.Fprintf(w, "  payload-format   %d\n", r.PayloadFormat)
	if r.ManifestVersion != 3 {
		fmt.Fprintf(w, "  storage          %s\n", r.StorageID)
		fmt.Fprintf(w, "  encryption-mode  %d\n", r.EncryptionMode)
		fmt.Fprintf(w, "  resource-hash    %s\n", r.ResourceHash)
		fmt.Fprintf(w, "  signatures       %d (certificate %s)\n", r.Signatures, r.CertFingerprint)
	} else {
		fmt.Fprintf(w, "  signatures       %d (installed-signature: %v)\n", r.Signatures, r.InstalledSig)
	}
}

func newManifestInspectCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Decode a manifest (v1 or v3) and print its fields",
		Example: `  bootsim manifest inspect app.manifest
  bootsim manifest inspect app.manifest -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			data, err := readInput(cmd, args[0], inManifest)
			if err != nil {
				return err
			}
			d, err := decodeManifest(displayName(args[0]), data)
			if err != nil {
				return err
			}
			r := d.report(displayName(args[0]))
			if output == "json" {
				return writeJSON(cmd.OutOrStdout(), r)
			}
			printManifestReport(cmd.OutOrStdout(), r)
			return nil
		},
	}
	addOutputFlag(cmd, &output, "text|json")
	return cmd
}

func newManifestVerifyCmd() *cobra.Command {
	var certFile, pubFile, payload string
	cmd := &cobra.Command{
		Use:   "verify FILE (--cert DER | --pubkey FILE) [--payload FILE]",
		Short: "Verify a manifest's signature (and a payload against it)",
		Long: `Verify a manifest as the device does. v1: the SHA-256 of the DER Resource
must equal the stored hash, and a signature must verify with the certificate
it references by fingerprint (--cert), or with --pubkey. v3: the raw r||s
signature over the DER Manifest must verify with the public key (--pubkey, or
the key of --cert). With --payload, the payload's size and SHA-256 must match.

--pubkey takes a 65-byte uncompressed point, a certificate or a public key
(PEM or DER).

Exit status: 0 valid, 1 the signature, hash or payload does not match,
2 the file is malformed.`,
		Example: `  bootsim manifest verify app.manifest --cert cert.der --payload app.bin
  bootsim manifest verify app.v3 --pubkey key.pub`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (certFile == "") == (pubFile == "") {
				return usageErr("give exactly one of --cert or --pubkey")
			}
			name := displayName(args[0])
			data, err := readInput(cmd, args[0], inManifest)
			if err != nil {
				return err
			}
			d, err := decodeManifest(name, data)
			if err != nil {
				return err
			}
			var cert []byte
			var pub *ecdsa.PublicKey
			if certFile != "" {
				if cert, err = readInput(cmd, certFile, inKey); err != nil {
					return err
				}
				if pub, err = firmware.ParsePublicKey(cert); err != nil {
					return usageErr("%s: %v", certFile, err)
				}
			} else {
				b, err := readInput(cmd, pubFile, inKey)
				if err != nil {
					return err
				}
				if pub, err = firmware.ParsePublicKey(b); err != nil {
					return usageErr("%s: %v", pubFile, err)
				}
			}
			var verr error
			switch {
			case d.v1 != nil && cert != nil:
				verr = d.v1.Verify(cert)
			case d.v1 != nil:
				verr = d.v1.VerifyWithKey(pub)
			default:
				verr = d.v3.Verify(pub)
			}
			if verr != nil {
				return failed("%s: INVALID: %v", name, verr)
			}
			what := "signature"
			if payload != "" {
				p, err := readInput(cmd, payload, inFirmware)
				if err != nil {
					return err
				}
				if d.v1 != nil {
					verr = d.v1.CheckPayload(p)
				} else {
					verr = d.v3.CheckPayload(p)
				}
				if verr != nil {
					return failed("%s: signature ok, but %s: %v", name, displayName(payload), verr)
				}
				what = "signature and payload"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: valid (%s)\n", name, what)
			return nil
		},
	}
	cmd.Flags().StringVar(&certFile, "cert", "", "the vendor's certificate (DER or PEM)")
	cmd.Flags().StringVar(&pubFile, "pubkey", "", "the vendor's public key")
	cmd.Flags().StringVar(&payload, "payload", "", "also check this payload against the manifest")
	return cmd
}
