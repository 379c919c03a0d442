package updateclient

import (
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/bootsim/bootsim/firmware"
	"github.com/bootsim/bootsim/sim"
	"github.com/stretchr/testify/require"
)

// TestCandidateHeader: on internal flash the candidate carries an internal
// header and the device key is never asked for; elsewhere an external header
// that decodes with that key and names the firmware.
func TestCandidateHeader(t *testing.T) {
	hash := sha256.Sum256([]byte("payload"))
	noKey := func() ([]byte, error) { t.Fatal("the device key was asked for"); return nil, nil }
	b, err := CandidateHeader(sim.DeviceInternal, 7, 1234, hash, noKey)
	require.NoError(t, err)
	ih, err := firmware.DecodeInternalHeader(b)
	require.NoError(t, err)
	require.Equal(t, uint64(7), ih.FirmwareVersion)
	require.Equal(t, uint64(1234), ih.FirmwareSize)
	require.Equal(t, hash, ih.FirmwareHash)

	key, err := firmware.DeviceKey(make([]byte, firmware.ROTSize), false)
	require.NoError(t, err)
	b, err = CandidateHeader(sim.DeviceSD, 7, 1234, hash, func() ([]byte, error) { return key, nil })
	require.NoError(t, err)
	require.Len(t, b, firmware.ExternalHeaderSize)
	eh, err := firmware.DecodeExternalHeader(b, key)
	require.NoError(t, err)
	require.Equal(t, uint64(7), eh.FirmwareVersion)
	require.Equal(t, uint64(1234), eh.PayloadSize)
	require.Equal(t, hash, eh.PayloadHash)

	_, err = CandidateHeader(sim.DeviceSPI, 7, 1234, hash, func() ([]byte, error) { return nil, errors.New("no ROT") })
	require.ErrorContains(t, err, "no ROT")
}
