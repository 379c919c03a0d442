package sim

import (
	"embed"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/bootsim/bootsim/storage"
	"github.com/bootsim/bootsim/strictyaml"
	"github.com/bootsim/bootsim/units"
	"go.yaml.in/yaml/v3"
)

//go:embed boards/*.yaml
var boardFiles embed.FS

// Names of the devices a board's storage system holds.
const (
	DeviceInternal = "internal" // the MCU's internal flash
	DeviceSD       = "sd"       // an SD card
	DeviceSPI      = "spi"      // an external SPI or QSPI NOR flash
)

// Board is a board profile: the MCU's flash, RAM and CPU figures and its
// external storage, each figure taken from a datasheet the profile names.
type Board struct {
	Name  string `yaml:"name"`
	Title string `yaml:"title"`
	// MbedTarget is the board's Mbed OS target name (K64F), which
	// LoadBoard accepts for the board's name.
	MbedTarget string `yaml:"mbed-target,omitempty"`
	// MbedROMStart is where the Mbed tools place the internal flash
	// (MBED_ROM_START: 0x08000000 on STM32). The simulator addresses the
	// flash from 0; an mbed_app.json's addresses are taken relative to it.
	MbedROMStart units.Size `yaml:"mbed-rom-start,omitempty"`
	MCU          string     `yaml:"mcu"`
	CPU          struct {
		ClockHz uint64 `yaml:"clock-hz"`
		// HashRate is SHA-256 throughput in bytes per second.
		HashRate uint64 `yaml:"hash-rate"`
		// VerifyCycles is the CPU cycles of one ECDSA P-256 signature
		// verification (default DefaultVerifyCycles).
		VerifyCycles uint64 `yaml:"ecdsa-verify-cycles,omitempty"`
	} `yaml:"cpu"`
	RAM units.Size `yaml:"ram"`
	// NoInitRAM is the size of the RAM that no start-up code initialises:
	// it survives warm resets and holds noise after power-on.
	NoInitRAM units.Size `yaml:"no-init-ram"`
	// ResetTime is the time from a reset to the first instruction of the
	// image at address 0.
	ResetTime units.Duration `yaml:"reset-time"`
	// LockupResets says whether a core lockup resets the chip (Kinetis RCM)
	// or leaves it stopped until a watchdog or pin reset (STM32).
	LockupResets bool `yaml:"lockup-resets"`
	// ResetFlags is how the chip records why it reset: "latest" (the
	// default; Kinetis RCM_SRS holds the last reset's source only) or
	// "sticky" (STM32 RCC_CSR: each reset adds its flag, and the flags stay
	// set until software clears them or power is removed, so Mbed's
	// hal_reset_reason_get reports the highest-priority flag ever set).
	ResetFlags string `yaml:"reset-flags,omitempty"`
	// WatchdogSurvives lists the resets across which a running watchdog
	// keeps counting (software, pin, lockup). Mbed's HAL leaves it to the
	// platform (hal/watchdog_api.h: "A software reset may not stop the
	// watchdog timer"); empty means every reset stops it.
	WatchdogSurvives []string `yaml:"watchdog-survives-reset,omitempty"`
	// MbedOS is the platform configuration Mbed OS builds for this target
	// with: what an application does after a fatal error.
	MbedOS MbedOSPlatform `yaml:"mbed-os,omitempty"`
	Flash  FlashSpec      `yaml:"flash"`
	// External is the storage beside the MCU: an SD card, a SPI NOR part,
	// or both (one of each kind), written as one mapping or a list.
	External   ExtList    `yaml:"external"`
	LayoutKeys yaml.Node  `yaml:"layout"`
	Storage    StorageMap `yaml:"storage"`

	file string // where the profile was read from, for error positions
}

// MbedOSPlatform holds the Mbed OS platform.* settings that decide what an
// application does after a fatal error (platform/mbed_lib.json, with the
// target's overrides). Absent keys take Mbed OS's library defaults.
type MbedOSPlatform struct {
	// CrashCapture is platform.crash-capture-enabled: the error context,
	// with a reboot count, is kept in RAM that survives a warm reset.
	CrashCapture bool `yaml:"crash-capture-enabled,omitempty"`
	// AutoReboot is platform.fatal-error-auto-reboot-enabled: with crash
	// capture, a fatal error ends in a software reset, not in mbed_die.
	AutoReboot bool `yaml:"fatal-error-auto-reboot-enabled,omitempty"`
	// RebootMax is platform.error-reboot-max (default 1): the reboot count
	// at which the next start halts.
	RebootMax *int `yaml:"error-reboot-max,omitempty"`
}

// ErrorRebootMax returns platform.error-reboot-max, 1 if not given.
func (p MbedOSPlatform) ErrorRebootMax() int {
	if p.RebootMax == nil {
		return 1
	}
	return *p.RebootMax
}

// Reset flag models (Board.ResetFlags).
const (
	ResetFlagsLatest = "latest"
	ResetFlagsSticky = "sticky"
)

// WatchdogSurvivesReset says whether a running watchdog keeps counting
// across a reset of this kind.
func (b *Board) WatchdogSurvivesReset(r ResetReason) bool {
	return slices.Contains(b.WatchdogSurvives, r.String())
}

// FlashSpec describes the internal flash.
type FlashSpec struct {
	Sectors []struct {
		Size      units.Size     `yaml:"size"`
		Count     int            `yaml:"count"`
		EraseTime units.Duration `yaml:"erase-time"`
	} `yaml:"sectors"`
	ProgramUnit   units.Size     `yaml:"program-unit"`
	ProgramTime   units.Duration `yaml:"program-time"`
	ReadBandwidth uint64         `yaml:"read-bandwidth"`
}

// Size returns the flash size.
func (f FlashSpec) Size() units.Size {
	var n units.Size
	for _, s := range f.Sectors {
		n += s.Size * units.Size(s.Count)
	}
	return n
}

// ExtSpec describes the external storage: an SD card or a SPI NOR flash.
type ExtSpec struct {
	Kind string     `yaml:"kind"` // "sd" or "spi-nor"
	Size units.Size `yaml:"size"`
	// SD card figures.
	ReadLatency    units.Duration `yaml:"read-latency"`
	WriteLatency   units.Duration `yaml:"write-latency"`
	ReadBandwidth  uint64         `yaml:"read-bandwidth"`
	WriteBandwidth uint64         `yaml:"write-bandwidth"`
	// SPI NOR figures.
	SectorSize  units.Size     `yaml:"sector-size"`
	EraseTime   units.Duration `yaml:"erase-time"`
	ProgramUnit units.Size     `yaml:"program-unit"`
	ProgramPage units.Size     `yaml:"program-page"`
	ProgramTime units.Duration `yaml:"program-time"`
}

// ExtList is a board's external devices, at most one of each kind.
type ExtList []ExtSpec

// UnmarshalStrictYAML takes one device as a mapping or several as a list.
func (l *ExtList) UnmarshalStrictYAML(d strictyaml.Decoder, n *yaml.Node) error {
	if n.Kind == yaml.MappingNode {
		var one ExtSpec
		if err := d.Decode(n, &one); err != nil {
			return err
		}
		*l = ExtList{one}
		return nil
	}
	var many []ExtSpec
	if err := d.Decode(n, &many); err != nil {
		return err
	}
	*l = many
	return nil
}

// Get returns the external device with a device name (sd, spi), or nil.
func (l ExtList) Get(device string) *ExtSpec {
	for i := range l {
		if l[i].Device() == device {
			return &l[i]
		}
	}
	return nil
}

// Devices returns the external devices' names, in the board file's order.
func (l ExtList) Devices() []string {
	var out []string
	for _, e := range l {
		out = append(out, e.Device())
	}
	return out
}

// DeviceSize returns the size of a device of the board (internal or
// external), 0 for one it does not have.
func (b *Board) DeviceSize(device string) uint64 {
	if device == DeviceInternal {
		return uint64(b.Flash.Size())
	}
	if e := b.External.Get(device); e != nil {
		return uint64(e.Size)
	}
	return 0
}

// Device returns the name of the external device.
func (e ExtSpec) Device() string {
	if e.Kind == "spi-nor" {
		return DeviceSPI
	}
	return DeviceSD
}

// StorageMap holds, per candidate storage ("sd", "spi", "internal"), the
// update-client.storage-* keys, and which one the board uses by default.
type StorageMap struct {
	Default  string    `yaml:"default"`
	SD       yaml.Node `yaml:"sd"`
	SPI      yaml.Node `yaml:"spi"`
	Internal yaml.Node `yaml:"internal"`
}

// Node returns the configuration node of a candidate storage kind (nil for
// an unknown kind; a zero node if the board has none).
func (m *StorageMap) Node(kind string) *yaml.Node {
	switch kind {
	case DeviceSD:
		return &m.SD
	case DeviceSPI:
		return &m.SPI
	case DeviceInternal:
		return &m.Internal
	}
	return nil
}

// File is where the board profile was read from, for error positions.
func (b *Board) File() string { return b.file }

// Storages returns the candidate storages the board has a configuration for.
func (b *Board) Storages() []string {
	var out []string
	for _, k := range []string{DeviceSD, DeviceSPI, DeviceInternal} {
		if b.Storage.Node(k).Kind != 0 {
			out = append(out, k)
		}
	}
	return out
}

// ErrUnknownBoard is returned by LoadBoard for a name that is not built in.
var ErrUnknownBoard = errors.New("unknown board")

// BoardNames returns the names of the built-in boards, sorted.
func BoardNames() []string {
	entries, err := boardFiles.ReadDir("boards")
	if err != nil {
		panic(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, strings.TrimSuffix(e.Name(), ".yaml"))
	}
	slices.Sort(names)
	return names
}

// LoadBoard returns a built-in board by its name (k64f) or its Mbed
// target name (K64F, any case).
func LoadBoard(name string) (*Board, error) {
	data, file, err := BoardSource(name)
	if err != nil {
		return nil, err
	}
	return ParseBoard(file, data)
}

// BoardSource returns the YAML of a built-in board, by its name or its Mbed
// target name, with the file name it has: a starting point for a board of
// one's own.
func BoardSource(name string) ([]byte, string, error) {
	if !strings.ContainsAny(name, "/\\") && name != "" {
		if data, err := boardFiles.ReadFile(path.Join("boards", name+".yaml")); err == nil {
			return data, name + ".yaml", nil
		}
		for _, n := range BoardNames() {
			data, _ := boardFiles.ReadFile(path.Join("boards", n+".yaml"))
			if t := mbedTargetOf(data); t != "" && strings.EqualFold(t, name) {
				return data, n + ".yaml", nil
			}
		}
	}
	return nil, "", fmt.Errorf("%w %q (known boards: %s; or their Mbed target names: %s; or the path of a board file)",
		ErrUnknownBoard, name, strings.Join(BoardNames(), ", "), strings.Join(MbedTargets(), ", "))
}

// MbedTargets returns the Mbed target names of the built-in boards, in
// the order of BoardNames.
func MbedTargets() []string {
	var out []string
	for _, n := range BoardNames() {
		data, _ := boardFiles.ReadFile(path.Join("boards", n+".yaml"))
		if t := mbedTargetOf(data); t != "" {
			out = append(out, t)
		}
	}
	return out
}

// mbedTargetOf reads the mbed-target line of a built-in board's YAML
// without parsing the rest (the built-in files are checked by tests).
func mbedTargetOf(data []byte) string {
	for line := range strings.Lines(string(data)) {
		if v, ok := strings.CutPrefix(line, "mbed-target:"); ok {
			v, _, _ = strings.Cut(v, "#")
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// IsBoardFile says whether a board: value names a file rather than a
// built-in board: it has a path separator or a YAML extension.
func IsBoardFile(name string) bool {
	return strings.ContainsAny(name, "/\\") || strings.HasSuffix(name, ".yaml") || strings.HasSuffix(name, ".yml")
}

// Boards returns every built-in board, sorted by name.
func Boards() []*Board {
	var out []*Board
	for _, n := range BoardNames() {
		b, err := LoadBoard(n)
		if err != nil {
			panic(fmt.Sprintf("sim: built-in board %s: %v", n, err))
		}
		out = append(out, b)
	}
	return out
}

// ParseBoard parses and validates a board profile. YAML errors are
// "file:line:col: message"; validation errors name the file.
func ParseBoard(file string, data []byte) (*Board, error) {
	b := Board{file: file}
	if err := strictyaml.Decode(file, data, &b); err != nil {
		return nil, err
	}
	if err := b.validate(); err != nil {
		return nil, fmt.Errorf("%s: %v", file, err)
	}
	return &b, nil
}

// Bounds of a board file: the largest internal flash of a
// microcontroller is a few MiB, and the simulator keeps one entry per
// sector; no external device here is larger than 1 TiB.
const (
	MaxFlashSectors  = 1 << 14
	MaxFlashSize     = 64 << 20
	MaxExternalSize  = 1 << 40
	maxBoardNameSize = 64
)

func (b *Board) validate() error {
	sectors := 0
	for _, s := range b.Flash.Sectors {
		if s.Count > 0 {
			sectors += s.Count
		}
	}
	switch {
	case b.Name == "":
		return fmt.Errorf("name is missing")
	case len(b.Name) > maxBoardNameSize || strings.ContainsAny(b.Name, " \t\n/\\"):
		return fmt.Errorf("name %q: a short word (letters, digits, dashes)", b.Name)
	case b.CPU.HashRate == 0:
		return fmt.Errorf("cpu.hash-rate is missing")
	case b.NoInitRAM < 16:
		return fmt.Errorf("no-init-ram must be at least 16 bytes")
	case len(b.Flash.Sectors) == 0:
		return fmt.Errorf("flash.sectors is missing")
	case b.Flash.ProgramUnit == 0:
		return fmt.Errorf("flash.program-unit is missing")
	case b.ResetFlags != "" && b.ResetFlags != ResetFlagsLatest && b.ResetFlags != ResetFlagsSticky:
		return fmt.Errorf("reset-flags %q: want latest (the last reset's source only) or sticky (flags add up until cleared, as STM32's RCC_CSR)", b.ResetFlags)
	case b.MbedOS.RebootMax != nil && (*b.MbedOS.RebootMax < 0 || *b.MbedOS.RebootMax > 255):
		return fmt.Errorf("mbed-os.error-reboot-max %d: want 0 to 255", *b.MbedOS.RebootMax)
	}
	for _, r := range b.WatchdogSurvives {
		if r != ResetSoftware.String() && r != ResetPin.String() && r != ResetLockup.String() {
			return fmt.Errorf("watchdog-survives-reset: %q: want software, pin or lockup (power-on, brown-out and the watchdog's own reset always restart it)", r)
		}
	}
	for i, s := range b.Flash.Sectors {
		if s.Size == 0 || s.Count <= 0 || s.Size%b.Flash.ProgramUnit != 0 {
			return fmt.Errorf("flash.sectors[%d]: want a size that is a multiple of the program unit and a count > 0", i)
		}
		if s.Count > MaxFlashSectors || uint64(s.Size) > MaxFlashSize {
			return fmt.Errorf("flash.sectors[%d]: %d sectors of %s: past any microcontroller's flash", i, s.Count, s.Size)
		}
	}
	if sectors > MaxFlashSectors || uint64(b.Flash.Size()) > MaxFlashSize {
		return fmt.Errorf("flash: %d sectors, %s: at most %d sectors and %d MiB", sectors, b.Flash.Size(), MaxFlashSectors, MaxFlashSize>>20)
	}
	seen := map[string]bool{}
	for i, e := range b.External {
		if uint64(e.Size) > MaxExternalSize {
			return fmt.Errorf("external.size %s: at most 1 TiB", e.Size)
		}
		switch e.Kind {
		case "sd":
			if e.Size == 0 || e.Size%storage.SDBlockSize != 0 {
				return fmt.Errorf("external.size must be a positive multiple of 512")
			}
		case "spi-nor":
			if e.SectorSize == 0 || e.ProgramUnit == 0 || e.Size == 0 || e.Size%e.SectorSize != 0 || e.SectorSize%e.ProgramUnit != 0 {
				return fmt.Errorf("external: a spi-nor needs size, sector-size and program-unit that divide one another")
			}
		default:
			return fmt.Errorf("external[%d].kind %q: want sd or spi-nor", i, e.Kind)
		}
		if seen[e.Device()] {
			return fmt.Errorf("external: two %s devices (at most one SD card and one SPI NOR part)", e.Kind)
		}
		seen[e.Device()] = true
	}
	for _, k := range []string{DeviceSD, DeviceSPI} {
		if n := b.Storage.Node(k); n.Kind != 0 && !seen[k] {
			return fmt.Errorf("storage.%s: the board has no %s device under external", k, k)
		}
	}
	if b.Storage.Node(b.Storage.Default) == nil || b.Storage.Node(b.Storage.Default).Kind == 0 {
		return fmt.Errorf("storage.default %q has no configuration", b.Storage.Default)
	}
	// Whether the layout keys make a valid classic layout is for the
	// profile to say (mbedlayout.For), when a scenario uses them.
	return nil
}

// NewStorage builds the board's storage system on the given clock: the
// internal flash and the external device, all blank.
func (b *Board) NewStorage(clock storage.Clock) *storage.System {
	s := storage.NewSystem(clock)
	cfg := storage.NORConfig{
		Name:          DeviceInternal,
		ProgramUnit:   uint64(b.Flash.ProgramUnit),
		ProgramTime:   b.Flash.ProgramTime.D(),
		ReadBandwidth: b.Flash.ReadBandwidth,
	}
	for _, r := range b.Flash.Sectors {
		cfg.Sectors = append(cfg.Sectors, storage.SectorRun{Size: uint64(r.Size), Count: r.Count, EraseTime: r.EraseTime.D()})
	}
	s.NewNORFlash(cfg)
	for _, e := range b.External {
		b.newExternal(s, e)
	}
	return s
}

// newExternal adds an external device to a storage system.
func (b *Board) newExternal(s *storage.System, e ExtSpec) {
	switch e.Kind {
	case "sd":
		s.NewSDCard(storage.SDConfig{
			Name: DeviceSD, Size: uint64(e.Size), Blank: 0xFF,
			ReadLatency: e.ReadLatency.D(), WriteLatency: e.WriteLatency.D(),
			ReadBandwidth: e.ReadBandwidth, WriteBandwidth: e.WriteBandwidth,
		})
	case "spi-nor":
		s.NewNORFlash(storage.NORConfig{
			Name:          DeviceSPI,
			Sectors:       []storage.SectorRun{{Size: uint64(e.SectorSize), Count: int(e.Size / e.SectorSize), EraseTime: e.EraseTime.D()}},
			ProgramUnit:   uint64(e.ProgramUnit),
			ProgramPage:   uint64(e.ProgramPage),
			ProgramTime:   e.ProgramTime.D(),
			ReadBandwidth: e.ReadBandwidth,
		})
	}
}

// DefaultVerifyCycles is the cost of one ECDSA P-256 verification on a
// Cortex-M4 without a crypto accelerator, in cycles: an estimate of the
// order of magnitude of software implementations of the class of TinyCrypt
// and mbed TLS (ten to twenty million cycles; Shamir's trick and a fixed
// base table put an implementation at the low end). It is not a
// measurement; a board file may give its own (cpu.ecdsa-verify-cycles).
const DefaultVerifyCycles = 12_000_000

// VerifyTime is the CPU time of one ECDSA P-256 verification on this board.
func (b *Board) VerifyTime() time.Duration {
	c := b.CPU.VerifyCycles
	if c == 0 {
		c = DefaultVerifyCycles
	}
	if b.CPU.ClockHz == 0 {
		return time.Duration(c) * time.Nanosecond * 10 // 100 MHz when no clock is given
	}
	return time.Duration(c * uint64(time.Second) / b.CPU.ClockHz)
}

// AESCyclesPerByte is the cost of AES-CTR in software on a Cortex-M4, in
// cycles per byte: an estimate of the order of mbed TLS's table-based AES
// (a few tens of cycles per byte), not a measurement.
const AESCyclesPerByte = 40

// AESTime is the CPU time to encrypt or decrypt n bytes with AES-CTR.
func (b *Board) AESTime(n uint64) time.Duration {
	hz := b.CPU.ClockHz
	if hz == 0 {
		hz = 100_000_000
	}
	return time.Duration(n * AESCyclesPerByte * uint64(time.Second) / hz)
}

// HashTime is the CPU time to SHA-256 n bytes on this board.
func (b *Board) HashTime(n uint64) time.Duration {
	return time.Duration(n * uint64(time.Second) / b.CPU.HashRate)
}
