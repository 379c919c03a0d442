package sim

import (
	"errors"
	"slices"
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

// mx25r6435fBFPT is the MX25R6435F's JESD216 Basic Flash Parameter Table,
// the 16 DWORDs the part itself serves to an SFDP read, as Zephyr's board
// files copy it from a real part: boards/nordic/nrf52840dk/
// nrf52840dk_nrf52840.dts (zephyr commit 07d5b2e3), node
// mx25r64: mx25r6435f@0, property sfdp-bfp.
var mx25r6435fBFPT = [64]byte{
	0xe5, 0x20, 0xf1, 0xff, 0xff, 0xff, 0xff, 0x03, 0x44, 0xeb, 0x08, 0x6b, 0x08, 0x3b, 0x04, 0xbb,
	0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0x00, 0xff, 0xff, 0xff, 0x00, 0xff, 0x0c, 0x20, 0x0f, 0x52,
	0x10, 0xd8, 0x00, 0xff, 0x23, 0x72, 0xf5, 0x00, 0x82, 0xed, 0x04, 0xcc, 0x44, 0x83, 0x68, 0x44,
	0x30, 0xb0, 0x30, 0xb0, 0xf7, 0xc4, 0xd5, 0x5c, 0x00, 0xbe, 0x29, 0xff, 0xf0, 0xd0, 0xff, 0xff,
}

// sfdpTiming is what a BFPT says of a part's size, erase types and page
// program: typical times with the unit they are counted in (the table's
// resolution) and the maximum its multiplier gives.
type sfdpTiming struct {
	size                    uint64
	eraseSize               [4]uint64 // 0: no such erase type
	eraseTyp, eraseUnit     [4]time.Duration
	eraseMax                [4]time.Duration
	page                    uint64
	programTyp, programUnit time.Duration
	programMax              time.Duration
}

// decodeBFPT decodes DWORDs 2 and 8 to 11 of a JESD216A-or-later BFPT as
// Zephyr's drivers/flash/jesd216.c (commit 029ae6ee) does: density
// (DW2), erase types (jesd216_bfp_erase, DW8-9), their typical times and
// the typical-to-maximum factor (jesd216_bfp_erase_type_times, DW10), the
// page size and page program time (jesd216_bfp_decode_dw11, DW11).
func decodeBFPT(t *testing.T, b [64]byte) sfdpTiming {
	t.Helper()
	dw := func(n int) uint32 { // DWORDs count from 1
		return uint32(b[4*(n-1)]) | uint32(b[4*(n-1)+1])<<8 | uint32(b[4*(n-1)+2])<<16 | uint32(b[4*(n-1)+3])<<24
	}
	var s sfdpTiming
	d2 := dw(2)
	require.Zero(t, d2>>31, "a density of 2^N bits is not used by any part here")
	s.size = (uint64(d2) + 1) / 8
	d10 := dw(10)
	eraseFactor := time.Duration(2 * (1 + d10&0x0f))
	for i := range 4 {
		half := dw(8 + i/2)
		if i%2 == 1 {
			half >>= 16
		}
		if exp := half & 0xff; exp != 0 {
			s.eraseSize[i] = 1 << exp
		}
		field := d10 >> (4 + 7*i)
		count := time.Duration(1 + field&0x1f)
		s.eraseUnit[i] = [4]time.Duration{time.Millisecond, 16 * time.Millisecond, 128 * time.Millisecond, time.Second}[field>>5&0x03]
		s.eraseTyp[i] = count * s.eraseUnit[i]
		s.eraseMax[i] = eraseFactor * s.eraseTyp[i]
	}
	d11 := dw(11)
	s.page = 1 << (d11 >> 4 & 0x0f)
	s.programUnit = 8 * time.Microsecond
	if d11&(1<<13) != 0 {
		s.programUnit = 64 * time.Microsecond
	}
	s.programTyp = time.Duration(1+d11>>8&0x1f) * s.programUnit
	s.programMax = time.Duration(2*(1+d11&0x0f)) * s.programTyp
	return s
}

func TestDecodeBFPTAsZephyrDoes(t *testing.T) {
	// What Zephyr's own decoder prints for the same DW8-10 and the same
	// low three bytes of DW11 (the sample output of an MX25R8035F in
	// samples/drivers/jesd216/README.rst, zephyr commit 656e66ce): ET1
	// 4 KiB typ 48 ms, max 384 ms; ET2 32 KiB 240 / 1920 ms; ET3 64 KiB
	// 480 / 3840 ms; page program typ 896 us, max 5376 us; 256-byte pages.
	s := decodeBFPT(t, mx25r6435fBFPT)
	require.Equal(t, uint64(8<<20), s.size)
	require.Equal(t, [4]uint64{4 << 10, 32 << 10, 64 << 10, 0}, s.eraseSize)
	require.Equal(t, [3]time.Duration{48 * time.Millisecond, 240 * time.Millisecond, 480 * time.Millisecond}, [3]time.Duration(s.eraseTyp[:3]))
	require.Equal(t, [3]time.Duration{384 * time.Millisecond, 1920 * time.Millisecond, 3840 * time.Millisecond}, [3]time.Duration(s.eraseMax[:3]))
	require.Equal(t, uint64(256), s.page)
	require.Equal(t, 896*time.Microsecond, s.programTyp)
	require.Equal(t, 5376*time.Microsecond, s.programMax)
}

// TestBoardSPINORAgreesWithItsSFDPTable holds disco-l475vg's MX25R6435F to
// the part's own parameter table: the size, the 4 KiB erase unit and the
// page are the table's, and the typical erase and page program times (the
// datasheet's, recalled) are within one of the table's units of its
// typical and under its maximum. The table counts typical times in units of
// 16 ms (erase) and 64 us (program), so this checks the recalled figures to
// that resolution, not to the datasheet's.
func TestBoardSPINORAgreesWithItsSFDPTable(t *testing.T) {
	b, err := LoadBoard("disco-l475vg")
	require.NoError(t, err)
	e := b.External.Get(DeviceSPI)
	require.NotNil(t, e, "disco-l475vg has no SPI NOR part")
	s := decodeBFPT(t, mx25r6435fBFPT)
	require.Equal(t, s.size, uint64(e.Size), "size")
	require.Equal(t, s.page, uint64(e.ProgramPage), "program page")
	et := slices.Index(s.eraseSize[:], uint64(e.SectorSize))
	require.GreaterOrEqual(t, et, 0, "the table has no erase type of %d bytes", uint64(e.SectorSize))
	within := func(what string, got, typ, unit, max time.Duration) {
		t.Helper()
		require.LessOrEqual(t, got, max, "%s %s is over the table's maximum %s", what, got, max)
		require.LessOrEqual(t, abs(got-typ), unit, "%s %s is more than one table unit (%s) from the table's typical %s", what, got, unit, typ)
	}
	within("erase-time", e.EraseTime.D(), s.eraseTyp[et], s.eraseUnit[et], s.eraseMax[et])
	within("program-time", e.ProgramTime.D(), s.programTyp, s.programUnit, s.programMax)
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// TestBoardFiguresAgreeWithTranscriptions holds board figures to the
// datasheet values that other projects quote in their sources, where no
// copy of the datasheet itself was reachable: a second reading of the same
// table, not a measurement.
func TestBoardFiguresAgreeWithTranscriptions(t *testing.T) {
	f4, err := LoadBoard("nucleo-f429zi")
	require.NoError(t, err)
	// makapuf/bitboy lib/eeprom.h (commit a324d159), an STM32F4 project:
	// "tERASE16KB = 250ms typ si 32bits", "16us / word". The F405's and
	// the F429's datasheets share the flash table.
	found := false
	for _, s := range f4.Flash.Sectors {
		if s.Size == 16<<10 {
			found = true
			require.Equal(t, 250*time.Millisecond, s.EraseTime.D(), "16 KiB sector erase, x32, typ")
		}
	}
	require.True(t, found, "nucleo-f429zi has no 16 KiB sectors")
	require.Equal(t, 16*time.Microsecond, f4.Flash.ProgramTime.D(), "word program, typ")
	require.Equal(t, uint64(4), uint64(f4.Flash.ProgramUnit), "a word at x32")
}
