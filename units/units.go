// Package units parses and prints the sizes, addresses and durations that
// board profiles, layouts and scenarios are written in.
//
// Sizes accept a plain number (decimal, or hex with 0x), or a number with a
// binary unit: "4KiB", "1MiB", "200KiB", "1.5MiB" (K, M and G are taken as
// KiB, MiB and GiB, as embedded engineers write them). A size may also be the
// expression form Mbed configuration files use: "(41*1024)", "(32*1024)+0x400".
// Durations are Go durations ("7.5us", "14ms", "60s").
package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Size is a byte count or a byte address.
type Size uint64

var sizeUnits = []struct {
	suffix string
	mult   uint64
}{
	{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10},
	{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10},
	{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10},
	{"B", 1},
}

// ParseSize parses a size as described in the package comment.
func ParseSize(s string) (Size, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	if strings.ContainsAny(t, "()*+") {
		v, err := evalExpr(t)
		if err != nil {
			return 0, fmt.Errorf("size %q: %v", s, err)
		}
		return Size(v), nil
	}
	if strings.HasPrefix(t, "0x") || strings.HasPrefix(t, "0X") {
		v, err := strconv.ParseUint(t[2:], 16, 64)
		if err != nil {
			return 0, fmt.Errorf("size %q: not a hex number", s)
		}
		return Size(v), nil
	}
	for _, u := range sizeUnits {
		if num, ok := strings.CutSuffix(t, u.suffix); ok {
			num = strings.TrimSpace(num)
			if v, err := strconv.ParseUint(num, 10, 64); err == nil {
				if v > math.MaxUint64/u.mult {
					return 0, fmt.Errorf("size %q overflows", s)
				}
				return Size(v * u.mult), nil
			}
			f, err := strconv.ParseFloat(num, 64)
			if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
				return 0, fmt.Errorf("size %q: %q is not a number", s, num)
			}
			v := f * float64(u.mult)
			if v >= math.MaxUint64 {
				return 0, fmt.Errorf("size %q overflows", s)
			}
			if v != math.Trunc(v) {
				return 0, fmt.Errorf("size %q is not a whole number of bytes", s)
			}
			return Size(v), nil
		}
	}
	v, err := strconv.ParseUint(t, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: want a number of bytes, optionally with KiB, MiB or GiB", s)
	}
	return Size(v), nil
}

// String prints the size with the largest binary unit that divides it.
func (s Size) String() string {
	switch {
	case s == 0:
		return "0"
	case s%(1<<30) == 0:
		return fmt.Sprintf("%dGiB", s>>30)
	case s%(1<<20) == 0:
		return fmt.Sprintf("%dMiB", s>>20)
	case s%(1<<10) == 0:
		return fmt.Sprintf("%dKiB", s>>10)
	}
	return fmt.Sprintf("%dB", uint64(s))
}

// Human prints the size rounded to one decimal in the largest unit that fits,
// for tables ("983 KiB", "1.5 MiB").
func (s Size) Human() string {
	f := float64(s)
	for _, u := range []struct {
		name string
		v    float64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if f >= u.v {
			x := f / u.v
			if x == math.Trunc(x) {
				return fmt.Sprintf("%d %s", int64(x), u.name)
			}
			return fmt.Sprintf("%.1f %s", x, u.name)
		}
	}
	return fmt.Sprintf("%d B", uint64(s))
}

// UnmarshalYAML accepts a number or a size string.
func (s *Size) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a size like 4KiB or 0x8000")
	}
	v, err := ParseSize(n.Value)
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// MarshalYAML prints the size as String does.
func (s Size) MarshalYAML() (any, error) { return s.String(), nil }

// Duration is a virtual-time duration read from YAML as a Go duration string.
type Duration time.Duration

// ParseDuration parses a Go duration; "0" is accepted, negatives are not.
func ParseDuration(s string) (Duration, error) {
	d, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return 0, fmt.Errorf("duration %q: want a number with a unit, like 7.5us, 14ms or 60s", s)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q is negative", s)
	}
	return Duration(d), nil
}

// UnmarshalYAML accepts a duration string.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration like 14ms")
	}
	v, err := ParseDuration(n.Value)
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// MarshalYAML prints the duration as Go does.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// D returns the duration as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

func (d Duration) String() string { return time.Duration(d).String() }
