package units

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// evalExpr evaluates the integer expressions Mbed configuration values use:
// numbers (decimal or 0x hex, optionally with a KiB/MiB unit), + - * /, and
// parentheses. Anything else, including macro names, is an error.
func evalExpr(s string) (uint64, error) {
	p := &exprParser{s: s}
	v, err := p.sum()
	if err != nil {
		return 0, err
	}
	p.space()
	if p.i != len(p.s) {
		return 0, fmt.Errorf("unexpected %q at column %d", p.s[p.i:], p.i+1)
	}
	if v < 0 {
		return 0, fmt.Errorf("negative value")
	}
	return uint64(v), nil
}

type exprParser struct {
	s     string
	i     int
	depth int
}

func (p *exprParser) space() {
	for p.i < len(p.s) && p.s[p.i] == ' ' {
		p.i++
	}
}

func (p *exprParser) sum() (int64, error) {
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
		// Checked both ways: an intermediate value out of range is an
		// error, not a wrap-around that lands on a plausible size.
		if op == '+' {
			if (w > 0 && v > math.MaxInt64-w) || (w < 0 && v < math.MinInt64-w) {
				return 0, fmt.Errorf("overflow")
			}
			v += w
		} else {
			if (w > 0 && v < math.MinInt64+w) || (w < 0 && v > math.MaxInt64+w) {
				return 0, fmt.Errorf("overflow")
			}
			v -= w
		}
	}
}

func (p *exprParser) product() (int64, error) {
	v, err := p.term()
	if err != nil {
		return 0, err
	}
	for {
		p.space()
		if p.i >= len(p.s) || (p.s[p.i] != '*' && p.s[p.i] != '/') {
			return v, nil
		}
		op := p.s[p.i]
		p.i++
		w, err := p.term()
		if err != nil {
			return 0, err
		}
		if op == '*' {
			if w != 0 && (v > math.MaxInt64/w || v < math.MinInt64/w) {
				return 0, fmt.Errorf("overflow")
			}
			v *= w
		} else {
			if w == 0 {
				return 0, fmt.Errorf("division by zero")
			}
			v /= w
		}
	}
}

func (p *exprParser) term() (int64, error) {
	p.space()
	if p.i >= len(p.s) {
		return 0, fmt.Errorf("expression ends early")
	}
	if p.s[p.i] == '(' {
		p.depth++
		if p.depth > 32 {
			return 0, fmt.Errorf("too deeply nested")
		}
		p.i++
		v, err := p.sum()
		if err != nil {
			return 0, err
		}
		p.space()
		if p.i >= len(p.s) || p.s[p.i] != ')' {
			return 0, fmt.Errorf("missing )")
		}
		p.i++
		p.depth--
		return v, nil
	}
	start := p.i
	for p.i < len(p.s) && (unicode.IsLetter(rune(p.s[p.i])) || unicode.IsDigit(rune(p.s[p.i])) || p.s[p.i] == '_') {
		p.i++
	}
	tok := p.s[start:p.i]
	if tok == "" {
		return 0, fmt.Errorf("unexpected %q at column %d", p.s[p.i:], p.i+1)
	}
	if strings.ContainsFunc(tok[:1], unicode.IsLetter) || strings.ContainsRune(tok, '_') {
		return 0, fmt.Errorf("%q is not a number (macros are not expanded)", tok)
	}
	var (
		v   uint64
		err error
	)
	if strings.HasPrefix(tok, "0x") || strings.HasPrefix(tok, "0X") {
		v, err = strconv.ParseUint(tok[2:], 16, 63)
	} else if sz, e := ParseSize(tok); e == nil && !strings.ContainsAny(tok, "()") {
		v, err = uint64(sz), nil
		if v > math.MaxInt64 {
			err = fmt.Errorf("overflow")
		}
	} else {
		err = e
	}
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", tok)
	}
	return int64(v), nil
}
