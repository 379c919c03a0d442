package mbedapp

import (
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
)

// maxDepth bounds how deep macros may refer to macros: the tools' own
// configurations go three or four deep; a cycle goes on for ever.
const maxDepth = 32

// maxExpr bounds an expression's length: a value is a line of C.
const maxExpr = 4096

// Eval evaluates a C integer expression as the preprocessor would after
// expanding the configuration's macros: decimal and hex integers (with U
// and L suffixes), + - * / % << >>, parentheses, and macro names. The
// value must stay in 0..2^64-1 at every step: an address below zero is a
// configuration error, not a wrap-around.
func (r *Resolved) Eval(expr string) (uint64, error) {
	return r.eval(expr, 0, nil)
}

func (r *Resolved) eval(expr string, depth int, stack []string) (uint64, error) {
	if depth > maxDepth {
		return 0, fmt.Errorf("macros nest deeper than %d (%s)", maxDepth, strings.Join(stack, " → "))
	}
	if len(expr) > maxExpr {
		return 0, fmt.Errorf("an expression of %d characters (at most %d)", len(expr), maxExpr)
	}
	p := &parser{s: expr, r: r, depth: depth, stack: stack}
	v, err := p.shift()
	if err != nil {
		return 0, err
	}
	p.space()
	if p.i < len(p.s) {
		return 0, fmt.Errorf("%q: unexpected %q", expr, p.s[p.i:])
	}
	return v, nil
}

type parser struct {
	s     string
	i     int
	r     *Resolved
	depth int
	stack []string
}

func (p *parser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

// sum is terms joined by + and -.
func (p *parser) sum() (uint64, error) {
	v, err := p.product()
	if err != nil {
		return 0, err
	}
	for {
		p.space()
		if p.i >= len(p.s) || (p.s[p.i] != '+' && p.s[p.i] != '-') {
			return v, nil
		}
		op := p.s[p.i]
		p.i++
		w, err := p.product()
		if err != nil {
			return 0, err
		}
		if op == '+' {
			s, carry := bits.Add64(v, w, 0)
			if carry != 0 {
				return 0, fmt.Errorf("%q overflows", p.s)
			}
			v = s
		} else {
			if w > v {
				return 0, fmt.Errorf("%q: %d - %d is below zero", p.s, v, w)
			}
			v -= w
		}
	}
}

// shift is sums joined by << and >>, which bind looser than + and - in C.
func (p *parser) shift() (uint64, error) {
	v, err := p.sum()
	if err != nil {
		return 0, err
	}
	for {
		p.space()
		if !strings.HasPrefix(p.s[p.i:], "<<") && !strings.HasPrefix(p.s[p.i:], ">>") {
			return v, nil
		}
		op := p.s[p.i : p.i+2]
		p.i += 2
		w, err := p.sum()
		if err != nil {
			return 0, err
		}
		if op == "<<" {
			if w >= 64 || v > math.MaxUint64>>w {
				return 0, fmt.Errorf("%q overflows", p.s)
			}
			v <<= w
		} else if w >= 64 {
			v = 0
		} else {
			v >>= w
		}
	}
}

// product is factors joined by *, / and %.
func (p *parser) product() (uint64, error) {
	v, err := p.factor()
	if err != nil {
		return 0, err
	}
	for {
		p.space()
		if p.i >= len(p.s) || !strings.ContainsRune("*/%", rune(p.s[p.i])) {
			return v, nil
		}
		op := p.s[p.i]
		p.i++
		w, err := p.factor()
		if err != nil {
			return 0, err
		}
		switch op {
		case '*':
			hi, lo := bits.Mul64(v, w)
			if hi != 0 {
				return 0, fmt.Errorf("%q overflows", p.s)
			}
			v = lo
		default:
			if w == 0 {
				return 0, fmt.Errorf("%q divides by zero", p.s)
			}
			if op == '/' {
				v /= w
			} else {
				v %= w
			}
		}
	}
}

// factor is a number, a macro, a parenthesised sum, or a unary + of one.
func (p *parser) factor() (uint64, error) {
	p.space()
	if p.i >= len(p.s) {
		return 0, fmt.Errorf("%q ends too soon", p.s)
	}
	c := p.s[p.i]
	switch {
	case c == '(':
		p.i++
		v, err := p.shift()
		if err != nil {
			return 0, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return 0, fmt.Errorf("%q: a ( without its )", p.s)
		}
		p.i++
		return v, nil
	case c == '+':
		p.i++
		return p.factor()
	case c >= '0' && c <= '9':
		j := p.i
		for j < len(p.s) && isIdent(p.s[j]) {
			j++
		}
		lit := strings.TrimRight(strings.ToUpper(p.s[p.i:j]), "UL")
		p.i = j
		v, err := strconv.ParseUint(lit, 0, 64)
		if err != nil {
			return 0, fmt.Errorf("%q: %q is not a number", p.s, lit)
		}
		return v, nil
	case isIdent(c):
		j := p.i
		for j < len(p.s) && isIdent(p.s[j]) {
			j++
		}
		name := p.s[p.i:j]
		p.i = j
		for _, s := range p.stack {
			if s == name {
				return 0, fmt.Errorf("macro %s refers to itself (%s → %s)", name, strings.Join(p.stack, " → "), name)
			}
		}
		def, ok := p.r.lookup(name)
		if !ok {
			return 0, fmt.Errorf("unknown macro %s", name)
		}
		if def == "" {
			return 0, fmt.Errorf("macro %s has no value", name)
		}
		return p.r.eval(def, p.depth+1, append(p.stack[:len(p.stack):len(p.stack)], name))
	}
	return 0, fmt.Errorf("%q: unexpected %q", p.s, p.s[p.i:])
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}
