package main

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/bootsim/bootsim/firmware"
	"github.com/spf13/cobra"
)

func newImageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Build and inspect firmware images with Mbed metadata headers",
		Long: `Build and inspect firmware images: a v2 metadata header followed by the payload.

The internal header (112 bytes, CRC-32) is what the active image and
candidates on internal flash carry; the external header (296 bytes,
HMAC-SHA256 with the per-device key derived from the 128-bit root of trust)
is what candidates on an SD card or SPI flash carry.`,
	}
	cmd.AddCommand(newImageBuildCmd(), newImageInspectCmd())
	return cmd
}

func newImageBuildCmd() *cobra.Command {
	var (
		payload, campaign, format, rot, out, outFormat string
		version                                        string
		headerOnly, backward                           bool
	)
	cmd := &cobra.Command{
		Use:   "build --payload FILE --version N",
		Short: "Write a metadata header and a payload",
		Example: `  bootsim image build --payload app.bin --version 1561517193 -O app-with-header.bin
  bootsim image build --payload app.bin --version 1561517193 --format external \
      --rot 000102030405060708090a0b0c0d0e0f --header-only -O header.bin`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if payload == "" {
				return usageErr("--payload is required")
			}
			ver, err := strconv.ParseUint(version, 10, 64)
			if err != nil {
				return usageErr("--version %q: want a non-negative integer (the manifest timestamp)", version)
			}
			data, err := readInput(cmd, payload, inFirmware)
			if err != nil {
				return err
			}
			var camp [16]byte
			if campaign != "" {
				b, err := parseHexFlag("campaign", campaign, 16)
				if err != nil {
					return err
				}
				copy(camp[:], b)
			}
			sum := sha256.Sum256(data)
			var hdr []byte
			switch format {
			case "internal":
				if rot != "" {
					return usageErr("--rot applies to --format external only")
				}
				h := firmware.InternalHeader{FirmwareVersion: ver, FirmwareSize: uint64(len(data)), FirmwareHash: sum, Campaign: camp}
				hdr = h.Encode()
			case "external":
				if rot == "" {
					return usageErr("--format external needs --rot (the 128-bit root of trust, 32 hex digits)")
				}
				r, err := parseHexFlag("rot", rot, firmware.ROTSize)
				if err != nil {
					return err
				}
				key, err := firmware.DeviceKey(r, backward)
				if err != nil {
					return usageErr("%v", err)
				}
				h := firmware.ExternalHeader{FirmwareVersion: ver, FirmwareSize: uint64(len(data)), FirmwareHash: sum,
					PayloadSize: uint64(len(data)), PayloadHash: sum, Campaign: camp}
				if hdr, err = h.Encode(key); err != nil {
					return err
				}
			default:
				return usageErr("--format %q: want internal or external", format)
			}
			if !headerOnly {
				hdr = append(hdr, data...)
			}
			if err := checkBinaryOutput(outFormat); err != nil {
				return err
			}
			return writeOutput(cmd, out, hdr)
		},
	}
	f := cmd.Flags()
	f.StringVar(&payload, "payload", "", "the firmware payload (- for stdin)")
	f.StringVar(&version, "version", "", "firmware version: the manifest timestamp")
	f.StringVar(&campaign, "campaign", "", "campaign GUID, 32 hex digits (default zeros)")
	f.StringVar(&format, "format", "internal", "header format: internal or external")
	f.StringVar(&rot, "rot", "", "root of trust for the external header's HMAC, 32 hex digits")
	f.BoolVar(&backward, "backward-compatible-key", false, "derive the device key the old way (HMAC keyed with the label)")
	f.BoolVar(&headerOnly, "header-only", false, "write only the header")
	addBinaryOutput(cmd, &out, &outFormat)
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"internal", "external"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// imageReport is what image inspect prints.
type imageReport struct {
	Schema        string   `json:"schema"`
	File          string   `json:"file"`
	Format        string   `json:"format"`
	Version       uint64   `json:"version"`
	Size          uint64   `json:"size"`
	Hash          string   `json:"hash"`
	Campaign      string   `json:"campaign"`
	CRCOK         *bool    `json:"crc_ok,omitempty"`
	HMACOK        *bool    `json:"hmac_ok,omitempty"`
	PayloadHashOK *bool    `json:"payload_hash_ok,omitempty"`
	PayloadBytes  int      `json:"payload_bytes"`
	Problems      []string `json:"problems,omitempty"`
}

func ptr[T any](v T) *T { return &v }

func newImageInspectCmd() *cobra.Command {
	var rot, format, output string
	var backward bool
	cmd := &cobra.Command{
		Use:   "inspect FILE",
		Short: "Decode and check a metadata header (and the payload after it)",
		Long: `Decode a v2 metadata header and check it: the CRC of an internal header, the
HMAC of an external header (with --rot), and the SHA-256 of the payload when
it follows the header in the file.

The format is told by the checks: a header whose CRC holds is internal;
otherwise a file of at least 296 bytes is read as external. --format forces it.

Exit status: 0 the header (and payload, if present) checks, 1 a check fails,
2 the file is not a header at all.`,
		Example: `  bootsim image inspect app-with-header.bin
  bootsim image inspect candidate.bin --rot 000102030405060708090a0b0c0d0e0f -o json`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkOutput(output, "text", "json"); err != nil {
				return err
			}
			data, err := readInput(cmd, args[0], inFirmware)
			if err != nil {
				return err
			}
			var key []byte
			if rot != "" {
				r, err := parseHexFlag("rot", rot, firmware.ROTSize)
				if err != nil {
					return err
				}
				if key, err = firmware.DeviceKey(r, backward); err != nil {
					return usageErr("%v", err)
				}
			}
			rep, err := inspectImage(displayName(args[0]), data, format, key)
			if err != nil {
				return err
			}
			if output == "json" {
				if err := writeJSON(cmd.OutOrStdout(), rep); err != nil {
					return err
				}
			} else {
				printImageReport(cmd.OutOrStdout(), rep)
			}
			if len(rep.Problems) > 0 {
				return failed("%s: %s", rep.File, rep.Problems[0])
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&rot, "rot", "", "root of trust, 32 hex digits: checks an external header's HMAC")
	cmd.Flags().BoolVar(&backward, "backward-compatible-key", false, "derive the device key the old way")
	cmd.Flags().StringVar(&format, "format", "auto", "header format: auto, internal or external")
	addOutputFlag(cmd, &output, "text|json")
	return cmd
}

func inspectImage(name string, data []byte, format string, key []byte) (*imageReport, error) {
	if len(data) < 8 {
		return nil, usageErr("%s: %d bytes is too short for a metadata header", name, len(data))
	}
	// Magic and version are the same in both formats: a file without the
	// magic is not a header at all (the firmware checks the version first,
	// but a person needs to hear that first).
	if m := binary.BigEndian.Uint32(data); m != firmware.HeaderMagic {
		return nil, usageErr("%s: no metadata header: the file starts with %08x, a header with the magic %08x (is it a bare firmware binary? 'bootsim image build' puts a header on one)", name, m, uint32(firmware.HeaderMagic))
	}
	if _, err := firmware.DecodeInternalHeader(data[:min(len(data), firmware.InternalHeaderSize)]); errors.Is(err, firmware.ErrMagic) || errors.Is(err, firmware.ErrHeaderVersion) {
		return nil, usageErr("%s: a metadata header of another version: %v", name, err)
	}
	rep := &imageReport{Schema: "bootsim/image/v1", File: name}
	_, ierr := firmware.DecodeInternalHeader(data)
	switch {
	case format == "internal" || format == "auto" && ierr == nil:
		if errors.Is(ierr, firmware.ErrShort) {
			return nil, usageErr("%s: %v", name, ierr)
		}
		h, _ := firmware.ParseInternalHeader(data) // the fields, even when the CRC fails
		rep.Format = "internal"
		rep.Version, rep.Size, rep.Hash, rep.Campaign = h.FirmwareVersion, h.FirmwareSize, hex.EncodeToString(h.FirmwareHash[:]), hex.EncodeToString(h.Campaign[:])
		rep.CRCOK = ptr(ierr == nil)
		if ierr != nil {
			rep.Problems = append(rep.Problems, ierr.Error())
		}
		checkPayloadAfter(rep, data[firmware.InternalHeaderSize:], h.FirmwareSize, h.FirmwareHash[:])
	case format == "external" || format == "auto":
		if len(data) < firmware.ExternalHeaderSize {
			if format == "auto" {
				return nil, usageErr("%s: the internal header's CRC fails (%v) and the file is too short (%d bytes) for an external header", name, ierr, len(data))
			}
			return nil, usageErr("%s: %d bytes is too short for a %d-byte external header", name, len(data), firmware.ExternalHeaderSize)
		}
		h, err := firmware.ParseExternalHeader(data, nil)
		if err != nil {
			return nil, usageErr("%s: %v", name, err)
		}
		rep.Format = "external"
		rep.Version, rep.Size, rep.Hash, rep.Campaign = h.FirmwareVersion, h.FirmwareSize, hex.EncodeToString(h.FirmwareHash[:]), hex.EncodeToString(h.Campaign[:])
		if key != nil {
			_, err := firmware.ParseExternalHeader(data, key)
			rep.HMACOK = ptr(err == nil)
			if err != nil {
				rep.Problems = append(rep.Problems, err.Error())
			}
		}
		checkPayloadAfter(rep, data[firmware.ExternalHeaderSize:], h.PayloadSize, h.PayloadHash[:])
	default:
		return nil, usageErr("--format %q: want auto, internal or external", format)
	}
	return rep, nil
}

func checkPayloadAfter(rep *imageReport, rest []byte, size uint64, hash []byte) {
	rep.PayloadBytes = len(rest)
	if len(rest) == 0 {
		return
	}
	if uint64(len(rest)) < size {
		rep.PayloadHashOK = ptr(false)
		rep.Problems = append(rep.Problems, fmt.Sprintf("the payload is %d bytes, the header says %d", len(rest), size))
		return
	}
	sum := sha256.Sum256(rest[:size])
	ok := hex.EncodeToString(sum[:]) == hex.EncodeToString(hash)
	rep.PayloadHashOK = ptr(ok)
	if !ok {
		rep.Problems = append(rep.Problems, fmt.Sprintf("the payload's SHA-256 is %x, the header says %x", sum, hash))
	}
}

func printImageReport(w io.Writer, r *imageReport) {
	yes := func(b *bool) string {
		if *b {
			return "ok"
		}
		return "MISMATCH"
	}
	fmt.Fprintf(w, "%s: %s metadata header v2\n", r.File, r.Format)
	fmt.Fprintf(w, "  version   %d\n", r.Version)
	fmt.Fprintf(w, "  size      %d bytes\n", r.Size)
	fmt.Fprintf(w, "  sha-256   %s\n", r.Hash)
	fmt.Fprintf(w, "  campaign  %s\n", r.Campaign)
	switch {
	case r.CRCOK != nil:
		fmt.Fprintf(w, "  crc       %s\n", yes(r.CRCOK))
	case r.HMACOK != nil:
		fmt.Fprintf(w, "  hmac      %s\n", yes(r.HMACOK))
	default:
		fmt.Fprintf(w, "  hmac      not checked (give --rot)\n")
	}
	if r.PayloadHashOK != nil {
		fmt.Fprintf(w, "  payload   %s (%d bytes follow the header)\n", yes(r.PayloadHashOK), r.PayloadBytes)
	} else {
		fmt.Fprintf(w, "  payload   none in the file\n")
	}
	for _, p := range r.Problems {
		fmt.Fprintf(w, "  problem   %s\n", p)
	}
}
