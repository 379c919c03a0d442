// Package mbedapp reads an mbed_app.json as the Mbed OS build tools
// resolve it for one target: the configuration parameters of the update
// stack's libraries (mbed-bootloader, update-client) with their defaults,
// the application's own parameters (config), the target_overrides for
// every target ("*") and then for the one named, and the macros; and it
// evaluates the parameters' values, which are C expressions over macros
// (MBED_ROM_START, MBED_CONF_UPDATE_CLIENT_APPLICATION_DETAILS, a macros
// entry, a parameter's macro_name), to numbers.
//
// It knows nothing of boards or layouts: the caller gives the ROM's start
// and size and reads the parameters it needs.
package mbedapp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// ErrSyntax wraps a file that is not JSON, or not the shape of an
// mbed_app.json.
var ErrSyntax = errors.New("not an mbed_app.json")

// App is a parsed mbed_app.json.
type App struct {
	file      string
	config    map[string]json.RawMessage
	macros    []string
	overrides map[string]map[string]json.RawMessage
	targets   []string // the targets target_overrides names, in file order
}

// Param is one configuration parameter: its value as written (a C
// expression; "" when unset) and the macro it defines besides its
// MBED_CONF_ name.
type Param struct {
	Name      string // namespace.key: mbed-bootloader.bootloader-size, app.kvstore-size
	Value     string
	MacroName string
	// Source says where the value comes from: "default", "config",
	// "target_overrides *", "target_overrides K64F".
	Source string
}

// Parse reads an mbed_app.json. Errors name the file, with a line and
// column for a JSON syntax error.
func Parse(file string, data []byte) (*App, error) {
	var raw struct {
		Config          map[string]json.RawMessage            `json:"config"`
		Macros          []string                              `json:"macros"`
		TargetOverrides map[string]map[string]json.RawMessage `json:"target_overrides"`
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		var se *json.SyntaxError
		var te *json.UnmarshalTypeError
		switch {
		case errors.Is(err, io.ErrUnexpectedEOF):
			line, col := lineCol(data, int64(len(data))+1)
			return nil, fmt.Errorf("%s:%d:%d: %w: the file ends too soon", file, line, col, ErrSyntax)
		case errors.As(err, &se):
			line, col := lineCol(data, se.Offset)
			return nil, fmt.Errorf("%s:%d:%d: %w: %v", file, line, col, ErrSyntax, err)
		case errors.As(err, &te):
			line, col := lineCol(data, te.Offset)
			what := map[reflect.Kind]string{reflect.Map: "an object", reflect.Struct: "an object", reflect.Slice: "a list", reflect.String: "a string"}[te.Type.Kind()]
			field := te.Field
			if field == "" {
				field = "the file"
			}
			return nil, fmt.Errorf("%s:%d:%d: %w: %s must be %s, not %s", file, line, col, ErrSyntax, field, what, te.Value)
		}
		return nil, fmt.Errorf("%s: %w: %v", file, ErrSyntax, err)
	}
	a := &App{file: file, config: raw.Config, macros: raw.Macros, overrides: raw.TargetOverrides}
	for t := range raw.TargetOverrides {
		a.targets = append(a.targets, t)
	}
	sort.Strings(a.targets)
	return a, nil
}

// lineCol gives the line and column, from 1, of the last byte the decoder
// read (its errors' offsets count the bytes read, the bad one included).
func lineCol(data []byte, off int64) (int, int) {
	off = min(max(off-1, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return line, col
}

// Targets returns the targets the file has overrides for, besides "*".
func (a *App) Targets() []string {
	var out []string
	for _, t := range a.targets {
		if t != "*" {
			out = append(out, t)
		}
	}
	return out
}

// ROM is the target's internal flash as the tools know it: its start
// address (0x08000000 on STM32) and its size, unless the target overrides
// them (target.mbed_rom_start, target.mbed_rom_size).
type ROM struct{ Start, Size uint64 }

// Resolved is the configuration of one target.
type Resolved struct {
	Target string
	params map[string]*Param
	macros map[string]string // NAME → value as written ("" for a bare name)
	target map[string]string // target.* attributes the overrides set
	rom    ROM
	// referenced holds the parameters an evaluated expression named.
	referenced map[string]bool
	// Ignored lists the keys of target_overrides that name no parameter
	// bootsim knows or models (a pin, a feature, a baud rate), sorted.
	Ignored []string
}

// Resolve resolves the file for a target: library defaults, the file's
// config, its overrides for "*" and then for target. A key that sets an
// unknown parameter of a known library is an error, as in the tools;
// keys of other libraries and of the target are kept (other parameters
// may refer to them) and listed in Ignored unless a caller reads them.
func (a *App) Resolve(target string, rom ROM) (*Resolved, error) {
	r := &Resolved{Target: target, params: map[string]*Param{}, macros: map[string]string{}, target: map[string]string{}, rom: rom,
		referenced: map[string]bool{}}
	for _, lib := range libraries {
		for _, p := range lib.params {
			p := p
			p.Name = lib.name + "." + p.Name
			p.Source = "default"
			r.params[p.Name] = &p
		}
		for _, m := range lib.macros {
			r.addMacro(m)
		}
	}
	for _, m := range a.macros {
		r.addMacro(m)
	}
	names := make([]string, 0, len(a.config))
	for k := range a.config {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		p := &Param{Name: "app." + k, Source: "config"}
		var spec struct {
			Value     json.RawMessage `json:"value"`
			MacroName string          `json:"macro_name"`
		}
		raw := a.config[k]
		if len(raw) > 0 && raw[0] == '{' {
			if err := json.Unmarshal(raw, &spec); err != nil {
				return nil, fmt.Errorf("%s: config %q: %w: %v", a.file, k, ErrSyntax, err)
			}
			raw = spec.Value
			p.MacroName = spec.MacroName
		}
		v, err := valueText(raw)
		if err != nil {
			return nil, fmt.Errorf("%s: config %q: %v", a.file, k, err)
		}
		p.Value = v
		r.params[p.Name] = p
	}
	for _, scope := range []string{"*", target} {
		over, ok := a.overrides[scope]
		if !ok {
			continue
		}
		keys := make([]string, 0, len(over))
		for k := range over {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v, err := valueText(over[k])
			if err != nil {
				// Lists and objects (target.features_add, target.sectors)
				// are nothing bootsim evaluates.
				r.Ignored = append(r.Ignored, k)
				continue
			}
			ns, key, dotted := strings.Cut(k, ".")
			if !dotted {
				ns, key = "app", k
			}
			switch {
			case ns == "target":
				r.target[key] = v
			case ns == "app" && r.params["app."+key] == nil:
				return nil, fmt.Errorf("%s: target_overrides %q: %q is not a parameter of the application's config", a.file, scope, k)
			case isLibrary(ns) && r.params[ns+"."+key] == nil:
				return nil, fmt.Errorf("%s: target_overrides %q: %q is not a parameter of %s (it has: %s)", a.file, scope, k, ns, strings.Join(libraryParams(ns), ", "))
			}
			if ns == "target" {
				continue
			}
			p := r.params[ns+"."+key]
			if p == nil {
				p = &Param{Name: ns + "." + key}
				r.params[p.Name] = p
			}
			p.Value, p.Source = v, "target_overrides "+scope
		}
	}
	for k, v := range r.target {
		switch k {
		case "mbed_rom_start", "mbed_rom_size":
			n, err := r.Eval(v)
			if err != nil {
				return nil, fmt.Errorf("%s: target.%s: %v", a.file, k, err)
			}
			if k == "mbed_rom_start" {
				r.rom.Start = n
			} else {
				r.rom.Size = n
			}
		}
	}
	for k := range r.target {
		switch k {
		case "restrict_size", "mbed_rom_start", "mbed_rom_size":
		default:
			r.Ignored = append(r.Ignored, "target."+k)
		}
	}
	slices.Sort(r.Ignored)
	r.Ignored = slices.Compact(r.Ignored)
	return r, nil
}

// valueText is a JSON value as a C expression: a number or a string as
// written, true and false as 1 and 0, null as "" (unset).
func valueText(raw json.RawMessage) (string, error) {
	t := strings.TrimSpace(string(raw))
	switch {
	case t == "" || t == "null":
		return "", nil
	case t == "true":
		return "1", nil
	case t == "false":
		return "0", nil
	case t[0] == '"':
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", err
		}
		return s, nil
	case t[0] == '[' || t[0] == '{':
		return "", fmt.Errorf("a list or an object, not a value")
	}
	return t, nil
}

func (r *Resolved) addMacro(m string) {
	name, v, _ := strings.Cut(m, "=")
	r.macros[strings.TrimSpace(name)] = strings.TrimSpace(v)
}

// ROM returns the ROM the configuration resolved against.
func (r *Resolved) ROM() ROM { return r.rom }

// Param returns a parameter by namespace.key (app.key for the
// application's own), or nil.
func (r *Resolved) Param(name string) *Param { return r.params[name] }

// Macro returns a macros entry's value as written, and whether it is set.
func (r *Resolved) Macro(name string) (string, bool) {
	v, ok := r.macros[name]
	return v, ok
}

// Value evaluates a parameter. It reports false for a parameter that is
// unknown or unset (null).
func (r *Resolved) Value(name string) (uint64, bool, error) {
	p := r.params[name]
	if p == nil || p.Value == "" {
		return 0, false, nil
	}
	v, err := r.Eval(p.Value)
	if err != nil {
		return 0, true, fmt.Errorf("%s = %q (%s): %v", name, p.Value, p.Source, err)
	}
	return v, true, nil
}

// ConfMacro is the macro the tools define for a parameter:
// MBED_CONF_UPDATE_CLIENT_STORAGE_ADDRESS for update-client.storage-address.
func ConfMacro(name string) string {
	return "MBED_CONF_" + strings.ToUpper(strings.NewReplacer("-", "_", ".", "_").Replace(name))
}

// lookup resolves a macro name: the ROM's, a parameter's MBED_CONF_ name
// or macro_name, a macros entry, or what a bootloader build defines
// (APPLICATION_SIZE: the restricted size of the bootloader's image).
func (r *Resolved) lookup(name string) (string, bool) {
	switch name {
	case "MBED_ROM_START", "MBED_APP_START":
		return strconv.FormatUint(r.rom.Start, 10), true
	case "MBED_ROM_SIZE":
		return strconv.FormatUint(r.rom.Size, 10), true
	case "APPLICATION_SIZE", "MBED_APP_SIZE":
		if v, ok := r.target["restrict_size"]; ok {
			return v, true
		}
		return strconv.FormatUint(r.rom.Size, 10), true
	}
	if v, ok := r.macros[name]; ok {
		return v, true
	}
	// Sorted, so that two parameters defining one macro resolve the same
	// way on every run.
	names := make([]string, 0, len(r.params))
	for n := range r.params {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := r.params[n]
		if ConfMacro(p.Name) == name || (p.MacroName != "" && p.MacroName == name) {
			r.referenced[n] = true
			return p.Value, true
		}
	}
	return "", false
}

// Unreferenced lists the parameters the file's config and target
// overrides set (not the library defaults) that no expression evaluated
// so far named, by namespace.key, sorted: what a caller that read some of
// them reports the rest of as ignored.
func (r *Resolved) Unreferenced() []string {
	var out []string
	for n, p := range r.params {
		if p.Source != "default" && !r.referenced[n] {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}
