// Package strictyaml decodes YAML into Go structs strictly: an unknown or
// repeated key, or a value of the wrong type, is an error that names the file,
// line and column of the offending node, as "file:line:col: message".
//
// It walks the yaml.Node tree itself instead of relying on yaml.v3's
// KnownFields, whose errors carry a line but no column and stop at the first
// problem in a form users cannot act on ("cannot unmarshal !!str into int").
package strictyaml

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"
)

// Error is a decoding error at a position in a YAML file.
type Error struct {
	File string
	Line int // from 1; 0 if unknown
	Col  int // from 1; 0 if unknown
	Msg  string
}

func (e *Error) Error() string {
	switch {
	case e.Line == 0:
		return fmt.Sprintf("%s: %s", e.File, e.Msg)
	case e.Col == 0:
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d:%d: %s", e.File, e.Line, e.Col, e.Msg)
}

// ErrEmpty is wrapped by the error for a document with no content.
var ErrEmpty = errors.New("empty document")

var (
	lineRE   = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
	anchorRE = regexp.MustCompile(`^unknown anchor '([^']*)' referenced$`)
)

// badByte finds the first byte YAML does not allow in a document: invalid
// UTF-8, or a control character other than tab, newline and carriage
// return. It returns its line and column (from 1) and what it is.
func badByte(data []byte) (line, col int, what string) {
	line, col = 1, 1
	for i := 0; i < len(data); {
		r, size := utf8.DecodeRune(data[i:])
		switch {
		case r == utf8.RuneError && size <= 1:
			return line, col, fmt.Sprintf("invalid UTF-8 (byte 0x%02x)", data[i])
		case r < 0x20 && r != '\t' && r != '\n' && r != '\r', r == 0x7f:
			return line, col, fmt.Sprintf("control character 0x%02x is not allowed", r)
		}
		if r == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
		i += size
	}
	return 0, 0, ""
}

// firstColumn is the column of the first character of a line that is not
// a space: where a syntax error YAML reports by line alone is shown.
func firstColumn(data []byte, line int) int {
	lines := bytes.Split(data, []byte("\n"))
	if line < 1 || line > len(lines) {
		return 1
	}
	return len(lines[line-1]) - len(bytes.TrimLeft(lines[line-1], " ")) + 1
}

// find returns the line and column of the first occurrence of s, or 1:1.
func find(data []byte, s string) (int, int) {
	i := bytes.Index(data, []byte(s))
	if i < 0 {
		return 1, 1
	}
	before := data[:i]
	line := bytes.Count(before, []byte("\n")) + 1
	return line, i - (bytes.LastIndexByte(before, '\n') + 1) + 1
}

// Parse parses one YAML document into a node tree. Syntax errors are *Error.
func Parse(file string, data []byte) (*yaml.Node, error) {
	// Bytes YAML refuses, found here so that the error has a position
	// (the parser reports them with none).
	if line, col, what := badByte(data); what != "" {
		return nil, &Error{File: file, Line: line, Col: col, Msg: what}
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, &Error{File: file, Line: 1, Col: 1, Msg: ErrEmpty.Error()}
		}
		msg := err.Error()
		if m := lineRE.FindStringSubmatch(msg); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, &Error{File: file, Line: line, Col: firstColumn(data, line), Msg: m[2]}
		}
		msg = strings.TrimPrefix(msg, "yaml: ")
		if m := anchorRE.FindStringSubmatch(msg); m != nil {
			line, col := find(data, "*"+m[1])
			return nil, &Error{File: file, Line: line, Col: col, Msg: msg}
		}
		return nil, &Error{File: file, Line: 1, Col: 1, Msg: msg}
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Error{File: file, Line: extra.Line, Col: extra.Column, Msg: "more than one YAML document"}
	}
	if doc.Kind == yaml.DocumentNode && len(doc.Content) == 1 {
		return doc.Content[0], nil
	}
	return &doc, nil
}

// Decode parses data and decodes it into v, which must be a pointer.
func Decode(file string, data []byte, v any) error {
	n, err := Parse(file, data)
	if err != nil {
		return err
	}
	return DecodeNode(file, n, v)
}

// DecodeNode decodes a node into v, which must be a pointer.
func DecodeNode(file string, n *yaml.Node, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("strictyaml: DecodeNode needs a non-nil pointer")
	}
	d := &decoder{file: file}
	return d.value(n, rv.Elem())
}

type decoder struct{ file string }

func (d *decoder) errAt(n *yaml.Node, format string, args ...any) error {
	return &Error{File: d.file, Line: n.Line, Col: n.Column, Msg: fmt.Sprintf(format, args...)}
}

// Decoder is what a StrictUnmarshaler gets: strict decoding of sub-nodes and
// errors at node positions.
type Decoder struct{ d *decoder }

// Decode decodes a node into v (a pointer) with the same strictness.
func (d Decoder) Decode(n *yaml.Node, v any) error {
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		panic("strictyaml: Decoder.Decode needs a non-nil pointer")
	}
	return d.d.value(n, rv.Elem())
}

// Errorf returns an error at the node's position.
func (d Decoder) Errorf(n *yaml.Node, format string, args ...any) error {
	return d.d.errAt(n, format, args...)
}

// File returns the name of the file being decoded.
func (d Decoder) File() string { return d.d.file }

// StrictUnmarshaler is implemented by types that decode themselves from a
// node (a value that may be a word or a mapping, say) while keeping the
// decoder's strictness and positions.
type StrictUnmarshaler interface {
	UnmarshalStrictYAML(d Decoder, n *yaml.Node) error
}

// Pos is a position in a YAML file, for errors found after decoding.
type Pos struct {
	File      string
	Line, Col int
}

// At returns the position of a node in the file being decoded.
func (d Decoder) At(n *yaml.Node) Pos { return Pos{File: d.d.file, Line: n.Line, Col: n.Column} }

// Errorf returns an error at the position.
func (p Pos) Errorf(format string, args ...any) error {
	return &Error{File: p.File, Line: p.Line, Col: p.Col, Msg: fmt.Sprintf(format, args...)}
}

var (
	unmarshalerType       = reflect.TypeFor[yaml.Unmarshaler]()
	strictUnmarshalerType = reflect.TypeFor[StrictUnmarshaler]()
	nodeType              = reflect.TypeFor[yaml.Node]()
)

func (d *decoder) value(n *yaml.Node, v reflect.Value) error {
	if n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	if v.Type() == nodeType {
		v.Set(reflect.ValueOf(*n))
		return nil
	}
	if reflect.PointerTo(v.Type()).Implements(strictUnmarshalerType) {
		return v.Addr().Interface().(StrictUnmarshaler).UnmarshalStrictYAML(Decoder{d}, n)
	}
	if reflect.PointerTo(v.Type()).Implements(unmarshalerType) {
		if err := n.Decode(v.Addr().Interface()); err != nil {
			return d.errAt(n, "%s", cleanMsg(err))
		}
		return nil
	}
	switch v.Kind() {
	case reflect.Pointer:
		if n.Tag == "!!null" {
			v.SetZero()
			return nil
		}
		if v.IsNil() {
			v.Set(reflect.New(v.Type().Elem()))
		}
		return d.value(n, v.Elem())
	case reflect.Struct:
		return d.structValue(n, v)
	case reflect.Slice:
		if n.Tag == "!!null" {
			v.SetZero()
			return nil
		}
		if n.Kind != yaml.SequenceNode {
			return d.errAt(n, "want a list, got %s", describe(n))
		}
		s := reflect.MakeSlice(v.Type(), len(n.Content), len(n.Content))
		for i, c := range n.Content {
			if err := d.value(c, s.Index(i)); err != nil {
				return err
			}
		}
		v.Set(s)
		return nil
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			return d.errAt(n, "want a mapping, got %s", describe(n))
		}
		m := reflect.MakeMapWithSize(v.Type(), len(n.Content)/2)
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			kn, vn := n.Content[i], n.Content[i+1]
			if seen[kn.Value] {
				return d.errAt(kn, "%q is given twice", kn.Value)
			}
			seen[kn.Value] = true
			k := reflect.New(v.Type().Key()).Elem()
			if err := d.value(kn, k); err != nil {
				return err
			}
			e := reflect.New(v.Type().Elem()).Elem()
			if err := d.value(vn, e); err != nil {
				return err
			}
			m.SetMapIndex(k, e)
		}
		v.Set(m)
		return nil
	case reflect.Interface:
		var x any
		if err := n.Decode(&x); err != nil {
			return d.errAt(n, "%s", cleanMsg(err))
		}
		if x != nil {
			v.Set(reflect.ValueOf(x))
		}
		return nil
	}
	return d.scalar(n, v)
}

func (d *decoder) scalar(n *yaml.Node, v reflect.Value) error {
	if n.Kind != yaml.ScalarNode {
		return d.errAt(n, "want %s, got %s", kindName(v.Type()), describe(n))
	}
	// Integers are exact: YAML would read 1.5 as 1, 1e3 as 1000, and a
	// number past the type's range as whatever the float rounds to.
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		x, err := strconv.ParseInt(n.Value, 0, v.Type().Bits())
		if err != nil || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			return d.errAt(n, "want %s, got %s", kindName(v.Type()), describe(n))
		}
		v.SetInt(x)
		return nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		x, err := strconv.ParseUint(n.Value, 0, v.Type().Bits())
		if err != nil || n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0 {
			return d.errAt(n, "want %s, got %s", kindName(v.Type()), describe(n))
		}
		v.SetUint(x)
		return nil
	}
	if err := n.Decode(v.Addr().Interface()); err != nil {
		return d.errAt(n, "want %s, got %s", kindName(v.Type()), describe(n))
	}
	return nil
}

// fieldInfo is a struct field and its YAML key.
type fieldInfo struct {
	key   string
	index []int
}

func fields(t reflect.Type) []fieldInfo {
	var out []fieldInfo
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("yaml")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") && f.Type.Kind() == reflect.Struct {
			for _, sub := range fields(f.Type) {
				out = append(out, fieldInfo{key: sub.key, index: append([]int{i}, sub.index...)})
			}
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		out = append(out, fieldInfo{key: name, index: []int{i}})
	}
	return out
}

func (d *decoder) structValue(n *yaml.Node, v reflect.Value) error {
	if n.Tag == "!!null" {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		return d.errAt(n, "want a mapping, got %s", describe(n))
	}
	fs := fields(v.Type())
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind != yaml.ScalarNode {
			return d.errAt(kn, "a key must be a plain word")
		}
		idx := slices.IndexFunc(fs, func(f fieldInfo) bool { return f.key == kn.Value })
		if idx < 0 {
			return d.errAt(kn, "unknown field %q%s", kn.Value, suggest(kn.Value, fs))
		}
		if seen[kn.Value] {
			return d.errAt(kn, "%q is given twice", kn.Value)
		}
		seen[kn.Value] = true
		if err := d.value(vn, v.FieldByIndex(fs[idx].index)); err != nil {
			return err
		}
	}
	return nil
}

// suggest names the closest known key, or lists the keys when few.
func suggest(key string, fs []fieldInfo) string {
	best, bestD := "", 3
	var keys []string
	for _, f := range fs {
		keys = append(keys, f.key)
		if dist := editDistance(key, f.key); dist < bestD {
			best, bestD = f.key, dist
		}
	}
	if best != "" {
		return fmt.Sprintf(" (did you mean %q?)", best)
	}
	slices.Sort(keys)
	if len(keys) <= 12 {
		return " (want one of: " + strings.Join(keys, ", ") + ")"
	}
	return ""
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

func kindName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a non-negative integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	}
	return t.String()
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	if n.Tag == "!!null" {
		return "nothing"
	}
	v := n.Value
	if len(v) > 40 {
		v = v[:40] + "…"
	}
	return strconv.Quote(v)
}

// cleanMsg strips yaml.v3's prefixes from an error message.
func cleanMsg(err error) string {
	msg := err.Error()
	msg = strings.TrimPrefix(msg, "yaml: ")
	msg = strings.TrimPrefix(msg, "unmarshal errors:\n  ")
	if m := regexp.MustCompile(`^line \d+: `).FindStringIndex(msg); m != nil {
		msg = msg[m[1]:]
	}
	return msg
}

// Closest returns the word of among nearest to word (at most two edits
// away), or "" if none is: the "did you mean" of an error.
func Closest(word string, among []string) string {
	best, bestD := "", 3
	for _, w := range among {
		if dist := editDistance(word, w); dist < bestD {
			best, bestD = w, dist
		}
	}
	return best
}
