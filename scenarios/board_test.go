package scenarios

import (
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/bootsim/bootsim/sim"
	"github.com/stretchr/testify/require"
)

// files is a ReadFile over a map, for scenarios that name files.
func files(m map[string]string) ReadFile {
	return func(name string) ([]byte, error) {
		if s, ok := m[name]; ok {
			return []byte(s), nil
		}
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
}

// TestOwnBoardFile: a scenario names a board file of its own, written from
// a built-in one (bootsim boards --show); the board's figures are the
// file's, and the scenario runs on it as on the built-in board.
func TestOwnBoardFile(t *testing.T) {
	src, _, err := sim.BoardSource("k64f")
	require.NoError(t, err)
	// A slower part: twice the sector erase time.
	mine := strings.Replace(strings.Replace(string(src), "name: k64f", "name: my-k64f", 1), "erase-time: 15ms", "erase-time: 30ms", 1)
	scen := strings.Replace(base, "board: k64f", "board: boards/mine.yaml", 1)
	l, err := Load("s.yaml", []byte(scen), files(map[string]string{"boards/mine.yaml": mine}))
	require.NoError(t, err)
	require.Equal(t, "my-k64f", l.Board.Name)
	res, err := Run(l, Options{})
	require.NoError(t, err)
	require.True(t, res.Passed, res.Failures())

	ref, err := Load("s.yaml", []byte(base), nil)
	require.NoError(t, err)
	refRes, err := Run(ref, Options{})
	require.NoError(t, err)
	// The same install, each of its erases twice as long.
	require.Greater(t, res.VirtualTime, refRes.VirtualTime)
	require.Equal(t, refRes.Boots, res.Boots)
}

// TestBoardByMbedTarget: the Mbed target name picks the built-in board.
func TestBoardByMbedTarget(t *testing.T) {
	for target, name := range map[string]string{"K64F": "k64f", "nucleo_f429zi": "nucleo-f429zi", "DISCO_L475VG_IOT01A": "disco-l475vg"} {
		b, err := sim.LoadBoard(target)
		require.NoError(t, err, target)
		require.Equal(t, name, b.Name)
	}
	_, err := sim.LoadBoard("K66F")
	require.True(t, errors.Is(err, sim.ErrUnknownBoard))
	require.ErrorContains(t, err, "K64F, NUCLEO_F429ZI")
}

// TestOwnBoardFileErrors: a board file that does not exist or does not
// parse is reported where the scenario names it, with the board file's
// own line and column.
func TestOwnBoardFileErrors(t *testing.T) {
	scen := strings.Replace(base, "board: k64f", "board: mine.yaml", 1)
	_, err := Load("s.yaml", []byte(scen), files(nil))
	require.ErrorContains(t, err, "s.yaml:4:10: device.board: open mine.yaml: file does not exist")

	src, _, err := sim.BoardSource("k64f")
	require.NoError(t, err)
	for _, tc := range []struct{ edit, want string }{
		{strings.Replace(string(src), "program-unit: 8 ", "program-unit: eight ", 1), "s.yaml:4:10: device.board: mine.yaml:30:17: size \"eight\""},
		{strings.Replace(string(src), "count: 256", "count: 2000000", 1), "flash.sectors[0]: 2000000 sectors of 4KiB: past any microcontroller's flash"},
		{strings.Replace(string(src), "size: 64MiB", "size: 4096GiB", 1), "external.size 4096GiB: at most 1 TiB"},
		{strings.Replace(string(src), "name: k64f", "name: my board", 1), `name "my board"`},
	} {
		_, err := Load("s.yaml", []byte(scen), files(map[string]string{"mine.yaml": tc.edit}))
		require.ErrorContains(t, err, tc.want)
	}
	_, err = Load("s.yaml", []byte(scen), nil)
	require.ErrorContains(t, err, "cannot name files")
}
