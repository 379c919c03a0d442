package sim

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bootsim/bootsim/storage"
	"github.com/stretchr/testify/require"
)

func TestBuiltInBoards(t *testing.T) {
	require.Equal(t, []string{"disco-l475vg", "k64f", "nucleo-f429zi"}, BoardNames())
	for _, b := range Boards() {
		t.Run(b.Name, func(t *testing.T) {
			s := b.NewStorage(nil)
			require.Equal(t, uint64(b.Flash.Size()), s.Device(DeviceInternal).Size())
			require.Len(t, b.External, 1)
			for _, d := range b.External.Devices() {
				require.Equal(t, b.DeviceSize(d), s.Device(d).Size())
			}
		})
	}
}

func TestBoardFigures(t *testing.T) {
	k, err := LoadBoard("k64f")
	require.NoError(t, err)
	require.Equal(t, uint64(1<<20), uint64(k.Flash.Size()))
	f := k.NewStorage(nil).Device(DeviceInternal).(*storage.NORFlash)
	require.Equal(t, 256, f.Sectors())
	require.Equal(t, uint64(8), f.ProgramSize())

	st, err := LoadBoard("nucleo-f429zi")
	require.NoError(t, err)
	nf := st.NewStorage(nil).Device(DeviceInternal).(*storage.NORFlash)
	require.Equal(t, uint64(2<<20), nf.Size())
	require.Equal(t, 24, nf.Sectors())
	require.Equal(t, uint64(16<<10), nf.EraseSize(0))
	require.Equal(t, uint64(64<<10), nf.EraseSize(0x10000))
	require.Equal(t, uint64(128<<10), nf.EraseSize(0x20000))
	require.Equal(t, uint64(16<<10), nf.EraseSize(0x100000), "bank 2 starts again with 16 KiB sectors")

	l4, err := LoadBoard("disco-l475vg")
	require.NoError(t, err)
	s := l4.NewStorage(nil)
	spi := s.Device(DeviceSPI).(*storage.NORFlash)
	require.Equal(t, uint64(8<<20), spi.Size())
	require.Equal(t, uint64(4096), spi.EraseSize(0))
	require.Equal(t, uint64(1), spi.ProgramSize())
	require.Equal(t, time.Second, l4.HashTime(2300000), "hash-rate is bytes of SHA-256 per second")
}

func TestLoadBoardErrors(t *testing.T) {
	_, err := LoadBoard("nope")
	require.ErrorIs(t, err, ErrUnknownBoard)
	require.ErrorContains(t, err, "known boards: disco-l475vg, k64f, nucleo-f429zi")
	_, err = LoadBoard("../boards/k64f")
	require.ErrorIs(t, err, ErrUnknownBoard)

	_, err = ParseBoard("mine.yaml", []byte("name: x\nflahs: {}\n"))
	require.ErrorContains(t, err, `mine.yaml:2:1: unknown field "flahs" (did you mean "flash"?)`)
	_, err = ParseBoard("mine.yaml", nil)
	require.ErrorContains(t, err, "mine.yaml:1:1: empty document")
}

func TestDescriptorRoundTrip(t *testing.T) {
	d := &Descriptor{Stage: "application", Impl: "app", Name: "app-v2", Version: 1561520000,
		Behaviour: "crash", Params: [][2]string{{"crash-after", "2s"}, {"at", "boot"}}, Size: 4096}
	enc, err := d.Encode()
	require.NoError(t, err)
	require.True(t, strings.HasPrefix(string(enc), "BOOTSIM-PROGRAM 1\nstage=application\n"))
	got, n, err := ParseDescriptor(append(enc, 0xAA, 0xBB))
	require.NoError(t, err)
	require.Equal(t, len(enc), n)
	d.Params = [][2]string{{"at", "boot"}, {"crash-after", "2s"}}
	require.Equal(t, d, got)
	v, ok := got.Param("crash-after")
	require.True(t, ok)
	require.Equal(t, "2s", v)

	img, err := BuildImage(d, 9)
	require.NoError(t, err)
	require.Len(t, img, 4096)
	again, _ := BuildImage(d, 9)
	require.Equal(t, img, again, "same descriptor and seed, same bytes")
	other, _ := BuildImage(d, 10)
	require.NotEqual(t, img, other)
}

func TestDescriptorErrors(t *testing.T) {
	_, err := (&Descriptor{Stage: "a", Impl: "b", Name: "c=d", Behaviour: "x", Size: 999}).Encode()
	require.ErrorContains(t, err, "holds '='")
	_, err = (&Descriptor{Stage: "a", Impl: "b", Name: "c", Behaviour: "x", Size: 10}).Encode()
	require.ErrorContains(t, err, "smaller than its")
	_, err = (&Descriptor{Stage: "a", Impl: "b", Name: "c", Behaviour: "x", Size: 999, Params: [][2]string{{"size", "1"}}}).Encode()
	require.ErrorContains(t, err, "reserved")

	for in, want := range map[string]error{
		"":                                ErrNoDescriptor,
		"\xff\xff\xff":                    ErrNoDescriptor,
		descriptorMagic + "stage=a\n":     ErrBadDescriptor,
		descriptorMagic + "stage=a\n\x00": ErrBadDescriptor,
		descriptorMagic + "stage=a\nstage=b\n\x00":                                                    ErrBadDescriptor,
		descriptorMagic + "junk\n\x00":                                                                ErrBadDescriptor,
		descriptorMagic + "stage=a\nimpl=b\nname=c\nversion=x\nbehaviour=h\nsize=999\n\x00":           ErrBadDescriptor,
		descriptorMagic + "stage=a\nimpl=b\nname=c\nversion=1\nbehaviour=h\nsize=9\n\x00":             ErrBadDescriptor,
		descriptorMagic + "stage=a\nimpl=b\nname=c\nversion=1\nbehaviour=h\nsize=999\nz=1\na=2\n\x00": ErrBadDescriptor,
		// A blank line, last or in the middle: not the canonical form.
		descriptorMagic + "stage=a\nimpl=b\nname=c\nversion=1\nbehaviour=h\nsize=999\n\n\x00": ErrBadDescriptor,
		descriptorMagic + "stage=a\nimpl=b\nname=c\n\nversion=1\nbehaviour=h\nsize=999\n\x00": ErrBadDescriptor,
	} {
		_, _, err := ParseDescriptor([]byte(in))
		require.ErrorIs(t, err, want, "%q", in)
	}
}

// TestDescriptorTruncation: every proper prefix of a valid descriptor is
// rejected with a typed error.
func TestDescriptorTruncation(t *testing.T) {
	enc, err := (&Descriptor{Stage: "bootloader", Impl: "classic", Name: "bl", Version: 3, Behaviour: "healthy", Size: 2048}).Encode()
	require.NoError(t, err)
	for n := range len(enc) {
		_, _, err := ParseDescriptor(enc[:n])
		require.Error(t, err, "prefix of %d bytes", n)
		require.True(t, errors.Is(err, ErrNoDescriptor) || errors.Is(err, ErrBadDescriptor), "prefix of %d bytes: %v", n, err)
	}
}

func FuzzParseDescriptor(f *testing.F) {
	enc, _ := (&Descriptor{Stage: "application", Impl: "app", Name: "a", Version: 1, Behaviour: "healthy", Size: 512,
		Params: [][2]string{{"k", "v"}}}).Encode()
	f.Add(enc)
	f.Add([]byte(descriptorMagic))
	f.Add([]byte{0xFF, 0xFF})
	f.Fuzz(func(t *testing.T, data []byte) {
		d, n, err := ParseDescriptor(data)
		if err != nil {
			return
		}
		// A descriptor that parses encodes back to exactly the bytes it came from.
		enc, err := d.Encode()
		if err != nil {
			t.Fatalf("parsed %+v does not encode: %v", d, err)
		}
		if n > len(data) || string(enc) != string(data[:n]) {
			t.Fatalf("round trip: %q → %q", data[:n], enc)
		}
	})
}

// FuzzParseBoard: a board file of the user's own either parses into a
// board whose storage can be built, or is refused with an error; it never
// panics and never builds more flash than the bounds allow.
func FuzzParseBoard(f *testing.F) {
	for _, n := range BoardNames() {
		data, _, err := BoardSource(n)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("name: x\ncpu: {hash-rate: 1}\nno-init-ram: 16\nflash: {sectors: [{size: 8, count: 1}], program-unit: 8}\nstorage: {default: internal, internal: {}}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := ParseBoard("fuzz.yaml", data)
		if err != nil {
			return
		}
		if uint64(b.Flash.Size()) > MaxFlashSize {
			t.Fatalf("a board past the bounds parsed: %s flash", b.Flash.Size())
		}
		for _, e := range b.External {
			if uint64(e.Size) > MaxExternalSize {
				t.Fatalf("a board past the bounds parsed: %s external", e.Size)
			}
		}
		_ = b.NewStorage(nil)
		_ = b.HashTime(1 << 20)
	})
}

// TestBoardFiguresSaySource: every figure of a built-in board's hardware
// (everything before its layout keys) carries a comment that names its
// source ([DS], [RM], ...) or says it is an estimate or bootsim's choice.
func TestBoardFiguresSaySource(t *testing.T) {
	for _, name := range BoardNames() {
		data, err := boardFiles.ReadFile("boards/" + name + ".yaml")
		require.NoError(t, err)
		for i, line := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(line, "layout:") {
				break
			}
			code, comment, _ := strings.Cut(line, "#")
			key, _, _ := strings.Cut(strings.TrimSpace(code), ":")
			switch key {
			case "name", "title", "mbed-target", "mcu", "mbed-rom-start", "kind":
				continue // words, not figures
			}
			if !strings.ContainsAny(code, "0123456789") {
				continue
			}
			ok := strings.Contains(comment, "[") || strings.Contains(comment, "estimate") || strings.Contains(comment, "choice") || strings.Contains(comment, "default")
			require.True(t, ok, "%s.yaml:%d: %q gives no source", name, i+1, strings.TrimSpace(line))
		}
	}
}

// TestBoardEraseTimesWithinPublishedMaxima checks the typical erase times
// the board files take from the datasheets against the maxima that Zephyr's
// devicetree publishes for the same parts (a public, citable copy of the
// datasheet's maximum column): a typical value must not exceed the maximum,
// and a typical value below a quarter of it would be a misread unit or row.
// Zephyr has no such figure for the K64F's FTFE, so that board is not here.
func TestBoardEraseTimesWithinPublishedMaxima(t *testing.T) {
	for _, c := range []struct {
		board  string
		sector uint64
		max    time.Duration
		source string
	}{
		// zephyr dts/arm/st/f4/stm32f4.dtsi@0071cd3e, flash0:
		// "maximum erase time (ms) for a 128K sector", max-erase-time = <4000>.
		{"nucleo-f429zi", 128 << 10, 4000 * time.Millisecond, "stm32f4.dtsi"},
		// zephyr dts/arm/st/l4/stm32l4.dtsi@0071cd3e, flash0:
		// "maximum erase time(ms) for a 2K sector", max-erase-time = <25>.
		{"disco-l475vg", 2 << 10, 25 * time.Millisecond, "stm32l4.dtsi"},
	} {
		b, err := LoadBoard(c.board)
		require.NoError(t, err)
		found := false
		for _, s := range b.Flash.Sectors {
			if uint64(s.Size) != c.sector {
				continue
			}
			found = true
			typ := time.Duration(s.EraseTime)
			require.LessOrEqual(t, typ, c.max, "%s: a %d KiB sector's erase-time is above %s's maximum", c.board, c.sector>>10, c.source)
			require.GreaterOrEqual(t, typ, c.max/4, "%s: a %d KiB sector's erase-time is implausibly far below %s's maximum", c.board, c.sector>>10, c.source)
		}
		require.True(t, found, "%s has no %d KiB sectors", c.board, c.sector>>10)
	}
}
