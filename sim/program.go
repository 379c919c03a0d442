package sim

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// Program descriptors.
//
// A firmware image the simulator builds starts with a descriptor that says
// which registered stage implementation runs it and how it behaves, followed
// by seeded filler up to the image's declared size. The descriptor is plain
// text so that a hex dump of simulated flash reads naturally:
//
//	BOOTSIM-PROGRAM 1\n
//	stage=application\n
//	impl=app\n
//	name=app-v2\n
//	version=1561520000\n
//	behaviour=healthy\n
//	size=215040\n
//	\x00
//
// The descriptor alone never makes an image run: the machine runs an image
// only if every byte of it equals an image the scenario registered (see
// Machine.Jump), so a torn or bit-flipped copy faults instead.

const descriptorMagic = "BOOTSIM-PROGRAM 1\n"

// maxDescriptor bounds a descriptor's length, terminator included.
const maxDescriptor = 1024

// Errors returned by ParseDescriptor.
var (
	ErrNoDescriptor  = errors.New("sim: no program descriptor")
	ErrBadDescriptor = errors.New("sim: malformed program descriptor")
)

// Descriptor describes the program an image holds.
type Descriptor struct {
	// Stage is the boot stage the image is: bootsel, bootloader or application.
	Stage Stage
	// Impl names the registered implementation that runs it (for example
	// "classic" for the Mbed bootloader).
	Impl string
	// Name is the firmware's name in the scenario (for example "app-v2").
	Name    string
	Version uint64
	// Behaviour selects how the implementation behaves: healthy, crash, hang, …
	Behaviour string
	// Params are behaviour parameters (for example crash-after=2s), sorted by key.
	Params [][2]string
	// Size is the whole image's size, descriptor included.
	Size uint64
}

// Param returns the value of a behaviour parameter.
func (d *Descriptor) Param(key string) (string, bool) {
	for _, p := range d.Params {
		if p[0] == key {
			return p[1], true
		}
	}
	return "", false
}

// Key identifies the image among those a machine knows.
func (d *Descriptor) Key() string {
	return string(d.Stage) + "/" + d.Name + "@" + strconv.FormatUint(d.Version, 10)
}

// reservedKeys are the descriptor's fixed fields, in their canonical order.
var reservedKeys = []string{"stage", "impl", "name", "version", "behaviour", "size"}

func validToken(s string) bool {
	// A byte loop: every boot parses the descriptors of the images it
	// jumps to, and strings.ContainsAny was half of that parse.
	for i := 0; i < len(s); i++ {
		if c := s[i]; c == '=' || c == '\n' || c == 0 {
			return false
		}
	}
	return s != ""
}

// Encode returns the descriptor's bytes, terminator included.
func (d *Descriptor) Encode() ([]byte, error) {
	var b bytes.Buffer
	b.WriteString(descriptorMagic)
	kv := [][2]string{
		{"stage", string(d.Stage)}, {"impl", d.Impl}, {"name", d.Name},
		{"version", strconv.FormatUint(d.Version, 10)}, {"behaviour", d.Behaviour},
		{"size", strconv.FormatUint(d.Size, 10)},
	}
	params := slices.Clone(d.Params)
	slices.SortFunc(params, func(a, b [2]string) int { return strings.Compare(a[0], b[0]) })
	for i, p := range params {
		if slices.Contains(reservedKeys, p[0]) || (i > 0 && params[i-1][0] == p[0]) {
			return nil, fmt.Errorf("descriptor: parameter %q is reserved or repeated", p[0])
		}
	}
	for _, p := range append(kv, params...) {
		if !validToken(p[0]) || !validToken(p[1]) {
			return nil, fmt.Errorf("descriptor: %s=%q is empty or holds '=', a newline or NUL", p[0], p[1])
		}
		fmt.Fprintf(&b, "%s=%s\n", p[0], p[1])
	}
	b.WriteByte(0)
	if b.Len() > maxDescriptor {
		return nil, fmt.Errorf("descriptor: %d bytes, more than %d", b.Len(), maxDescriptor)
	}
	if uint64(b.Len()) > d.Size {
		return nil, fmt.Errorf("descriptor: image size %d is smaller than its %d-byte descriptor", d.Size, b.Len())
	}
	return b.Bytes(), nil
}

// ParseDescriptor reads a descriptor at the start of data and returns it and
// its encoded length. Data may extend past the descriptor.
func ParseDescriptor(data []byte) (*Descriptor, int, error) {
	if !bytes.HasPrefix(data, []byte(descriptorMagic)) {
		return nil, 0, ErrNoDescriptor
	}
	end := bytes.IndexByte(data[:min(len(data), maxDescriptor)], 0)
	if end < 0 {
		return nil, 0, fmt.Errorf("%w: no terminator in the first %d bytes", ErrBadDescriptor, maxDescriptor)
	}
	body := string(data[len(descriptorMagic):end])
	// Only the canonical form is accepted (every line ends in a newline, no
	// blank lines, numbers without leading zeros), so an image has one
	// descriptor encoding and one set of bytes.
	if !strings.HasSuffix(body, "\n") {
		return nil, 0, fmt.Errorf("%w: last line does not end in a newline", ErrBadDescriptor)
	}
	d := &Descriptor{}
	rest := strings.TrimSuffix(body, "\n")
	if n := strings.Count(rest, "\n") + 1; n < len(reservedKeys) {
		return nil, 0, fmt.Errorf("%w: %d lines, want at least %d", ErrBadDescriptor, n, len(reservedKeys))
	}
	// The lines are read in place (every image that runs is parsed at
	// its jump, so this is on every boot's path).
	for i, more := 0, true; more; i++ {
		var line string
		line, rest, more = strings.Cut(rest, "\n")
		k, v, ok := strings.Cut(line, "=")
		if !ok || !validToken(k) || !validToken(v) {
			return nil, 0, fmt.Errorf("%w: line %q", ErrBadDescriptor, line)
		}
		if i < len(reservedKeys) {
			if k != reservedKeys[i] {
				return nil, 0, fmt.Errorf("%w: line %d is %q, want %s", ErrBadDescriptor, i+1, k, reservedKeys[i])
			}
		} else if slices.Contains(reservedKeys, k) {
			return nil, 0, fmt.Errorf("%w: %s repeated", ErrBadDescriptor, k)
		}
		var err error
		switch {
		case k == "stage" && i == 0:
			d.Stage = Stage(v)
		case k == "impl" && i == 1:
			d.Impl = v
		case k == "name" && i == 2:
			d.Name = v
		case k == "version" && i == 3:
			d.Version, err = strconv.ParseUint(v, 10, 64)
		case k == "behaviour" && i == 4:
			d.Behaviour = v
		case k == "size" && i == 5:
			d.Size, err = strconv.ParseUint(v, 10, 64)
		default:
			if n := len(d.Params); n > 0 && d.Params[n-1][0] >= k {
				return nil, 0, fmt.Errorf("%w: parameter %s out of order or repeated", ErrBadDescriptor, k)
			}
			d.Params = append(d.Params, [2]string{k, v})
		}
		if err != nil || (k == "version" || k == "size") && v != strconv.FormatUint(d.number(k), 10) {
			return nil, 0, fmt.Errorf("%w: %s=%q is not a number in canonical form", ErrBadDescriptor, k, v)
		}
	}
	if d.Size < uint64(end+1) {
		return nil, 0, fmt.Errorf("%w: size %d is smaller than the descriptor", ErrBadDescriptor, d.Size)
	}
	return d, end + 1, nil
}

func (d *Descriptor) number(k string) uint64 {
	if k == "version" {
		return d.Version
	}
	return d.Size
}

// BuildImage returns the bytes of an image: the descriptor, then filler drawn
// from a generator seeded by the seed and the descriptor, up to d.Size. The
// same descriptor and seed always give the same bytes.
func BuildImage(d *Descriptor, seed uint64) ([]byte, error) {
	desc, err := d.Encode()
	if err != nil {
		return nil, err
	}
	img := make([]byte, d.Size)
	copy(img, desc)
	var h uint64 = 14695981039346656037 // FNV-1a of the descriptor: images with the same seed differ
	for _, c := range desc {
		h = (h ^ uint64(c)) * 1099511628211
	}
	r := rand.New(rand.NewPCG(seed, h))
	for i := len(desc); i < len(img); i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < len(img); j++ {
			img[i+j] = byte(v >> (8 * j))
		}
	}
	return img, nil
}

// Image is a program the machine may run: the exact bytes and what they are.
type Image struct {
	Desc  *Descriptor
	Bytes []byte

	sumOnce sync.Once
	sum     [32]byte
	tagOnce sync.Once
	tag     string
	keyOnce sync.Once
	key     string
	// head is the descriptor's encoding, terminator included: bytes that
	// begin with it parse to this image's descriptor (one encoding per
	// descriptor), so a jump can recognise the image without parsing.
	head []byte
}

// ident returns the image's key and its descriptor's encoding, computed
// once (images are shared read-only by every machine of a run).
func (img *Image) ident() (string, []byte) {
	img.keyOnce.Do(func() {
		img.key = img.Desc.Key()
		if _, n, err := ParseDescriptor(img.Bytes); err == nil {
			img.head = img.Bytes[:n]
		}
	})
	return img.key, img.head
}

// cacheTag is the tag under which a machine's cache remembers that the
// image's bytes are at a place, computed once.
func (img *Image) cacheTag() string {
	img.tagOnce.Do(func() { img.tag = "image " + img.Desc.Key() })
	return img.tag
}

// Sum returns the SHA-256 of the image's bytes, computed once.
func (img *Image) Sum() [32]byte {
	img.sumOnce.Do(func() { img.sum = sha256.Sum256(img.Bytes) })
	return img.sum
}

// Program is the code of a stage. Run starts the image at its entry point and
// runs straight-line until the stage either jumps on (Machine.Jump), halts,
// resets, faults, or returns: returning means the CPU idles and the stage
// lives on in the timers it set (Machine.After). Power loss, resets and jumps
// unwind Run through the machine; Run must not recover them.
type Program interface {
	Run(m *Machine, img *Image)
}

// ProgramFunc adapts a function to Program.
type ProgramFunc func(m *Machine, img *Image)

// Run implements Program.
func (f ProgramFunc) Run(m *Machine, img *Image) { f(m, img) }
