package firmware

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"testing"

	"github.com/bootsim/bootsim/internal/testref"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

type headerVectors struct {
	PayloadSize     int    `json:"payload_size"`
	PayloadSHA256   string `json:"payload_sha256"`
	FirmwareVersion uint64 `json:"firmware_version"`
	Campaign        string `json:"campaign"`
	Internal        struct {
		Hex            string `json:"hex"`
		CRC            string `json:"crc32_over_bytes_0_108"`
		TamperedByte20 string `json:"tampered_byte20_hex"`
	} `json:"internal_header_v2"`
	DeviceKey struct {
		ROT          string `json:"rot_128"`
		Key          string `json:"device_key_256"`
		KeyBackward  string `json:"device_key_256_backward_compat"`
		SecondExampl struct {
			ROT string `json:"rot_128"`
			Key string `json:"device_key_256"`
		} `json:"second_example"`
	} `json:"device_key"`
	External struct {
		Hex            string `json:"hex"`
		HMAC           string `json:"hmac_sha256"`
		TamperedByte15 string `json:"tampered_byte15_hex"`
	} `json:"external_header_v2"`
}

func loadHeaderVectors(t *testing.T) headerVectors {
	var v headerVectors
	testref.JSON(t, "metadata_header_v2_vectors.json", &v)
	return v
}

// headerFromPayload builds the header fields the vectors were made from.
func headerFromPayload(t *testing.T, v headerVectors) (uint64, [32]byte, [16]byte) {
	payload := testref.Read(t, "payload.bin")
	require.Len(t, payload, v.PayloadSize)
	sum := sha256.Sum256(payload)
	require.Equal(t, v.PayloadSHA256, hexs(sum[:]))
	var campaign [16]byte
	copy(campaign[:], testref.Hex(t, v.Campaign))
	return uint64(len(payload)), sum, campaign
}

func hexs(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, 0, 2*len(b))
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return string(out)
}

func TestInternalHeaderRebuildsVector(t *testing.T) {
	v := loadHeaderVectors(t)
	size, sum, campaign := headerFromPayload(t, v)
	h := InternalHeader{FirmwareVersion: v.FirmwareVersion, FirmwareSize: size, FirmwareHash: sum, Campaign: campaign}
	got := h.Encode()
	require.Equal(t, testref.Read(t, "internal_header_v2.bin"), got, "byte for byte")
	require.Equal(t, v.Internal.Hex, hexs(got))
	require.Equal(t, v.Internal.CRC, hexs(got[108:]))

	dec, err := DecodeInternalHeader(got)
	require.NoError(t, err)
	require.Equal(t, uint32(HeaderMagic), dec.Magic)
	require.Equal(t, v.FirmwareVersion, dec.FirmwareVersion)
	require.Equal(t, size, dec.FirmwareSize)
	require.Equal(t, sum, dec.FirmwareHash)
	require.Equal(t, campaign, dec.Campaign)
}

func TestExternalHeaderRebuildsVector(t *testing.T) {
	v := loadHeaderVectors(t)
	size, sum, campaign := headerFromPayload(t, v)
	key, err := DeviceKey(testref.Hex(t, v.DeviceKey.ROT), false)
	require.NoError(t, err)
	require.Equal(t, v.DeviceKey.Key, hexs(key))
	h := ExternalHeader{FirmwareVersion: v.FirmwareVersion, FirmwareSize: size, FirmwareHash: sum,
		PayloadSize: size, PayloadHash: sum, Campaign: campaign}
	got, err := h.Encode(key)
	require.NoError(t, err)
	require.Equal(t, testref.Read(t, "external_header_v2.bin"), got, "byte for byte")
	require.Equal(t, v.External.HMAC, hexs(got[232:264]))

	dec, err := DecodeExternalHeader(got, key)
	require.NoError(t, err)
	require.Equal(t, v.FirmwareVersion, dec.FirmwareVersion)
	require.Equal(t, sum, dec.PayloadHash)
	require.Equal(t, campaign, dec.Campaign)
}

func TestDeviceKeyDerivations(t *testing.T) {
	v := loadHeaderVectors(t)
	k, err := DeviceKey(testref.Hex(t, v.DeviceKey.ROT), true)
	require.NoError(t, err)
	require.Equal(t, v.DeviceKey.KeyBackward, hexs(k))
	k, err = DeviceKey(testref.Hex(t, v.DeviceKey.SecondExampl.ROT), false)
	require.NoError(t, err)
	require.Equal(t, v.DeviceKey.SecondExampl.Key, hexs(k))
	for _, n := range []int{0, 15, 17, 32} {
		_, err := DeviceKey(make([]byte, n), false)
		require.ErrorIs(t, err, ErrROTSize, "ROT of %d bytes", n)
	}
}

// TestTamperedHeadersRejected: the negatives of the vector file fail with the
// typed error that names what is wrong.
func TestTamperedHeadersRejected(t *testing.T) {
	v := loadHeaderVectors(t)
	_, err := DecodeInternalHeader(testref.Hex(t, v.Internal.TamperedByte20))
	require.ErrorIs(t, err, ErrCRC)
	_, err = ParseInternalHeader(testref.Hex(t, v.Internal.TamperedByte20))
	require.ErrorIs(t, err, ErrCRC)

	key, _ := DeviceKey(testref.Hex(t, v.DeviceKey.ROT), false)
	_, err = DecodeExternalHeader(testref.Hex(t, v.External.TamperedByte15), key)
	require.ErrorIs(t, err, ErrHMAC)
	// The right header with the other derivation's key fails too.
	bk, _ := DeviceKey(testref.Hex(t, v.DeviceKey.ROT), true)
	_, err = DecodeExternalHeader(testref.Read(t, "external_header_v2.bin"), bk)
	require.ErrorIs(t, err, ErrHMAC)
}

// TestEveryBitOfTheInternalHeaderIsChecked: flipping any one of the 896 bits
// is caught by the version, magic or CRC check (the CRC covers 0..107 and
// guards itself).
func TestEveryBitOfTheInternalHeaderIsChecked(t *testing.T) {
	good := testref.Read(t, "internal_header_v2.bin")
	for i := range good {
		for bit := range 8 {
			b := append([]byte(nil), good...)
			b[i] ^= 1 << bit
			_, err := DecodeInternalHeader(b)
			require.True(t, errors.Is(err, ErrCRC) || errors.Is(err, ErrMagic) || errors.Is(err, ErrHeaderVersion),
				"byte %d bit %d: %v", i, bit, err)
		}
	}
}

func TestMagicAndVersionChecks(t *testing.T) {
	good := testref.Read(t, "internal_header_v2.bin")
	b := append([]byte(nil), good...)
	b[7] = 3
	_, err := DecodeInternalHeader(b)
	require.ErrorIs(t, err, ErrHeaderVersion)
	require.ErrorContains(t, err, "3 (want 2)")
	b = append([]byte(nil), good...)
	b[0] = 0
	_, err = DecodeInternalHeader(b)
	require.ErrorIs(t, err, ErrMagic)
	// The candidate-slot parser checks only the CRC: a header with a wrong
	// magic and a CRC that matches it is accepted, as in the real code.
	h, err := ParseInternalHeader(good)
	require.NoError(t, err)
	forged := h.Encode()
	forged[0] = 0x11
	fixCRC(forged)
	parsed, err := ParseInternalHeader(forged)
	require.NoError(t, err)
	require.Equal(t, uint32(0x1151b3d4), parsed.Magic)
	_, err = DecodeInternalHeader(forged)
	require.ErrorIs(t, err, ErrMagic)
}

// fixCRC recomputes the CRC of a modified internal header.
func fixCRC(b []byte) {
	binary.BigEndian.PutUint32(b[108:], crc32.ChecksumIEEE(b[:108]))
}

// TestHeaderTruncation: every proper prefix of a valid header is rejected
// with ErrShort, never a panic.
func TestHeaderTruncation(t *testing.T) {
	in := testref.Read(t, "internal_header_v2.bin")
	ex := testref.Read(t, "external_header_v2.bin")
	key, _ := DeviceKey(testref.Hex(t, loadHeaderVectors(t).DeviceKey.ROT), false)
	for n := range len(in) {
		_, err := DecodeInternalHeader(in[:n])
		require.ErrorIs(t, err, ErrShort, "internal, %d bytes", n)
		_, err = ParseInternalHeader(in[:n])
		require.ErrorIs(t, err, ErrShort, "internal parse, %d bytes", n)
	}
	for n := range len(ex) {
		_, err := DecodeExternalHeader(ex[:n], key)
		require.ErrorIs(t, err, ErrShort, "external, %d bytes", n)
	}
}

type nistVectors struct {
	Vectors []struct {
		ID   int    `json:"id"`
		Key  string `json:"key"`
		Msg  string `json:"msg"`
		Full string `json:"mac_full_sha256_computed"`
		OK   bool   `json:"key_len_ok_for_arm_uc_hmac"`
	} `json:"vectors"`
}

func TestHMACNISTVectors(t *testing.T) {
	var v nistVectors
	testref.JSON(t, "hmac_sha256_nist_cavs.json", &v)
	require.Len(t, v.Vectors, 6)
	for _, vec := range v.Vectors {
		mac, err := HMACSHA256(testref.Hex(t, vec.Key), testref.Hex(t, vec.Msg))
		if !vec.OK {
			require.ErrorIs(t, err, ErrKeyTooLong, "vector %d", vec.ID)
			continue
		}
		require.NoError(t, err, "vector %d", vec.ID)
		require.Equal(t, vec.Full, hexs(mac), "vector %d", vec.ID)
	}
	_, err := HMACSHA256(make([]byte, 64), nil)
	require.NoError(t, err, "a 64-byte key is accepted")
	_, err = HMACSHA256(make([]byte, 65), nil)
	require.ErrorIs(t, err, ErrKeyTooLong, "a 65-byte key is refused")
}

func FuzzHeaders(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := DecodeInternalHeader(b); err == nil {
			// A header that decodes re-encodes to the same 112 bytes, except
			// the 32 ignored bytes after the hash.
			enc := h.Encode()
			for i := range enc {
				if (i < 56 || i >= 88) && enc[i] != b[i] {
					t.Fatalf("byte %d: %02x re-encodes as %02x", i, b[i], enc[i])
				}
			}
		}
		key := make([]byte, 32)
		if h, err := DecodeExternalHeader(b, key); err == nil {
			enc, err := h.Encode(key)
			if err != nil || hexs(enc[232:264]) != hexs(b[232:264]) {
				t.Fatalf("external header authenticates but re-encodes differently (%v)", err)
			}
		}
	})
}

// TestHMACSHA256MatchesCryptoHMAC holds HMACSHA256's stack path (short
// messages) and its crypto/hmac path (long ones) to crypto/hmac, for every
// key length it accepts and messages on both sides of the boundary.
func TestHMACSHA256MatchesCryptoHMAC(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		key := rapid.SliceOfN(rapid.Byte(), 0, maxHMACKeySize).Draw(t, "key")
		msg := rapid.SliceOfN(rapid.Byte(), 0, 2*hmacStackMessage).Draw(t, "msg")
		got, err := HMACSHA256(key, msg)
		if err != nil {
			t.Fatal(err)
		}
		m := hmac.New(sha256.New, key)
		m.Write(msg)
		if want := m.Sum(nil); !bytes.Equal(got, want) {
			t.Fatalf("key %x msg %d bytes: got %x, want %x", key, len(msg), got, want)
		}
	})
	_, err := HMACSHA256(make([]byte, maxHMACKeySize+1), nil)
	require.ErrorIs(t, err, ErrKeyTooLong)
}
