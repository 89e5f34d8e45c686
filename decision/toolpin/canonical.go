package toolpin

import (
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mcpauthz/mcpauthz/internal/jsonenc"
)

// This file is the JSON Canonicalization Scheme (RFC 8785, JCS) that tool
// digests are computed over: objects with their members sorted by the
// UTF-16 code units of their names, no whitespace, strings with the
// fewest escapes (only '"', '\\' and control characters), and numbers
// written as ECMAScript writes an IEEE 754 double. Two readers that agree
// on a JSON value therefore agree on its bytes, whatever spacing, member
// order, escapes or number spelling ("1.0", "1e0") the server chose.
//
// One strict reader (scanner) serves both ways in: Parse builds values
// (for `mcpauthz pin`), and DigestJSON writes the canonical bytes
// straight from the input (for the list filter, which digests every
// pinned tool of every answer). It refuses what JCS cannot keep apart:
// invalid UTF-8, lone surrogate escapes, duplicate member names.

// maxDepth bounds the nesting of a value: tool definitions are shallow,
// and a deeper one is refused rather than recursed into.
const maxDepth = 128

// Parse reads one JSON value strictly: valid UTF-8, no lone surrogate
// escape, no duplicate member names, nothing after the value, at most
// maxDepth levels. Objects are map[string]any, arrays []any, numbers
// json.Number (as spelled).
func Parse(data []byte) (any, error) {
	sc, err := newScanner(data)
	if err != nil {
		return nil, err
	}
	v, err := sc.tree(0)
	if err != nil {
		return nil, err
	}
	return v, sc.end()
}

// Canonical appends the JCS form of v, a JSON value as Parse returns it
// (float64 and the other Go numbers are accepted too), to dst.
func Canonical(dst []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(dst, "null"...), nil
	case bool:
		return strconv.AppendBool(dst, x), nil
	case string:
		return jsonenc.AppendString(dst, x), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return jsonenc.AppendNumber(dst, f)
	case float64:
		return jsonenc.AppendNumber(dst, x)
	case int:
		return jsonenc.AppendNumber(dst, float64(x))
	case int64:
		return jsonenc.AppendNumber(dst, float64(x))
	case []any:
		dst = append(dst, '[')
		for i, e := range x {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			if dst, err = Canonical(dst, e); err != nil {
				return nil, err
			}
		}
		return append(dst, ']'), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.SortFunc(keys, compareUTF16)
		dst = append(dst, '{')
		for i, k := range keys {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = jsonenc.AppendString(dst, k)
			dst = append(dst, ':')
			var err error
			if dst, err = Canonical(dst, x[k]); err != nil {
				return nil, err
			}
		}
		return append(dst, '}'), nil
	}
	return nil, fmt.Errorf("%T is not a JSON value", v)
}

// scanner reads one JSON value from s.
type scanner struct {
	s []byte
	i int
}

func newScanner(data []byte) (*scanner, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("JSON is not valid UTF-8")
	}
	return &scanner{s: data}, nil
}

func (sc *scanner) ws() {
	for sc.i < len(sc.s) {
		switch sc.s[sc.i] {
		case ' ', '\t', '\n', '\r':
			sc.i++
		default:
			return
		}
	}
}

// end checks that nothing but whitespace follows the value.
func (sc *scanner) end() error {
	sc.ws()
	if sc.i != len(sc.s) {
		return fmt.Errorf("JSON has data after its value, at byte %d", sc.i)
	}
	return nil
}

func (sc *scanner) errorf(format string, args ...any) error {
	return fmt.Errorf("reading JSON at byte %d: %s", sc.i, fmt.Sprintf(format, args...))
}

// next skips whitespace and returns the next byte, or 0 at the end.
func (sc *scanner) next() byte {
	sc.ws()
	if sc.i >= len(sc.s) {
		return 0
	}
	return sc.s[sc.i]
}

// literal reads true, false or null.
func (sc *scanner) literal() (string, error) {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(sc.s)-sc.i >= len(lit) && string(sc.s[sc.i:sc.i+len(lit)]) == lit {
			sc.i += len(lit)
			return lit, nil
		}
	}
	return "", sc.errorf("unexpected %q", sc.s[sc.i])
}

// str reads a string at sc.i (its opening quote), appending its decoded
// bytes to buf; raw is set when it had no escape (buf then holds the
// bytes as sent, which are also their canonical form).
func (sc *scanner) str(buf []byte) (_ []byte, raw bool, _ error) {
	sc.i++ // "
	raw = true
	for sc.i < len(sc.s) {
		c := sc.s[sc.i]
		switch {
		case c == '"':
			sc.i++
			return buf, raw, nil
		case c < 0x20:
			return nil, false, sc.errorf("control character in a string")
		case c != '\\':
			buf = append(buf, c)
			sc.i++
			continue
		}
		raw = false
		if sc.i+1 >= len(sc.s) {
			break
		}
		e := sc.s[sc.i+1]
		sc.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := sc.hex4()
			if !ok {
				return nil, false, sc.errorf(`bad \u escape`)
			}
			if utf16.IsSurrogate(r) {
				r2, ok := rune(-1), false
				if r < 0xdc00 && sc.i+1 < len(sc.s) && sc.s[sc.i] == '\\' && sc.s[sc.i+1] == 'u' {
					sc.i += 2
					r2, ok = sc.hex4()
				}
				if r = utf16.DecodeRune(r, r2); !ok || r == utf8.RuneError {
					return nil, false, sc.errorf("lone surrogate escape in a string")
				}
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return nil, false, sc.errorf("bad escape \\%c", e)
		}
	}
	return nil, false, sc.errorf("unterminated string")
}

// hex4 reads four hex digits.
func (sc *scanner) hex4() (rune, bool) {
	if sc.i+4 > len(sc.s) {
		return 0, false
	}
	n, err := strconv.ParseUint(string(sc.s[sc.i:sc.i+4]), 16, 16)
	sc.i += 4
	return rune(n), err == nil
}

// number reads a number as JSON spells it and returns its spelling.
func (sc *scanner) number() ([]byte, error) {
	start := sc.i
	digits := func() int {
		n := 0
		for sc.i < len(sc.s) && sc.s[sc.i] >= '0' && sc.s[sc.i] <= '9' {
			sc.i++
			n++
		}
		return n
	}
	if sc.i < len(sc.s) && sc.s[sc.i] == '-' {
		sc.i++
	}
	if sc.i < len(sc.s) && sc.s[sc.i] == '0' {
		sc.i++
	} else if digits() == 0 {
		return nil, sc.errorf("not a JSON value")
	}
	if sc.i < len(sc.s) && sc.s[sc.i] == '.' {
		sc.i++
		if digits() == 0 {
			return nil, sc.errorf("no digits after the decimal point")
		}
	}
	if sc.i < len(sc.s) && (sc.s[sc.i] == 'e' || sc.s[sc.i] == 'E') {
		sc.i++
		if sc.i < len(sc.s) && (sc.s[sc.i] == '+' || sc.s[sc.i] == '-') {
			sc.i++
		}
		if digits() == 0 {
			return nil, sc.errorf("no digits in the exponent")
		}
	}
	return sc.s[start:sc.i], nil
}

// members reads the members of an object at sc.i (its opening brace),
// calling member with each name after reading the name and its colon.
func (sc *scanner) members(depth int, member func(name []byte) error) error {
	if depth >= maxDepth {
		return fmt.Errorf("JSON is nested deeper than %d levels", maxDepth)
	}
	sc.i++ // {
	if sc.next() == '}' {
		sc.i++
		return nil
	}
	var name []byte
	for {
		if sc.next() != '"' {
			return sc.errorf("expected a member name")
		}
		var err error
		if name, _, err = sc.str(name[:0]); err != nil {
			return err
		}
		if sc.next() != ':' {
			return sc.errorf("expected ':'")
		}
		sc.i++
		if err := member(name); err != nil {
			return err
		}
		switch sc.next() {
		case ',':
			sc.i++
		case '}':
			sc.i++
			return nil
		default:
			return sc.errorf("expected ',' or '}'")
		}
	}
}

// elements reads the elements of an array at sc.i (its opening bracket).
func (sc *scanner) elements(depth int, elem func(i int) error) error {
	if depth >= maxDepth {
		return fmt.Errorf("JSON is nested deeper than %d levels", maxDepth)
	}
	sc.i++ // [
	if sc.next() == ']' {
		sc.i++
		return nil
	}
	for i := 0; ; i++ {
		if err := elem(i); err != nil {
			return err
		}
		switch sc.next() {
		case ',':
			sc.i++
		case ']':
			sc.i++
			return nil
		default:
			return sc.errorf("expected ',' or ']'")
		}
	}
}

// tree reads the value at sc.i as Parse returns it.
func (sc *scanner) tree(depth int) (any, error) {
	switch c := sc.next(); c {
	case 0:
		return nil, sc.errorf("unexpected end of JSON")
	case '{':
		obj := map[string]any{}
		err := sc.members(depth, func(name []byte) error {
			k := string(name)
			if _, dup := obj[k]; dup {
				return fmt.Errorf("JSON object has two members named %q", k)
			}
			v, err := sc.tree(depth + 1)
			obj[k] = v
			return err
		})
		return obj, err
	case '[':
		arr := []any{}
		err := sc.elements(depth, func(int) error {
			v, err := sc.tree(depth + 1)
			arr = append(arr, v)
			return err
		})
		return arr, err
	case '"':
		b, _, err := sc.str(nil)
		return string(b), err
	case 't', 'f', 'n':
		lit, err := sc.literal()
		switch lit {
		case "true":
			return true, err
		case "false":
			return false, err
		}
		return nil, err
	default:
		n, err := sc.number()
		return json.Number(n), err
	}
}

// skip reads the value at sc.i, as strictly as tree, and writes nothing.
func (sc *scanner) skip(depth int) error {
	switch c := sc.next(); c {
	case 0:
		return sc.errorf("unexpected end of JSON")
	case '{':
		var names []string
		return sc.members(depth, func(name []byte) error {
			for _, n := range names {
				if n == string(name) {
					return fmt.Errorf("JSON object has two members named %q", n)
				}
			}
			names = append(names, string(name))
			return sc.skip(depth + 1)
		})
	case '[':
		return sc.elements(depth, func(int) error { return sc.skip(depth + 1) })
	case '"':
		_, _, err := sc.str(nil)
		return err
	case 't', 'f', 'n':
		_, err := sc.literal()
		return err
	default:
		_, err := sc.number()
		return err
	}
}

// member is one object member in canonical form: its name, and its value
// at val[start:end] of the object's buffer.
type member struct {
	name       string
	start, end int
}

// canonical appends the canonical form of the value at sc.i to dst.
func (sc *scanner) canonical(dst []byte, depth int) ([]byte, error) {
	switch c := sc.next(); c {
	case 0:
		return nil, sc.errorf("unexpected end of JSON")
	case '{':
		// The values are written to their own buffer, then copied out
		// in the order of their names.
		var (
			ms  []member
			val []byte
		)
		err := sc.members(depth, func(name []byte) error {
			start := len(val)
			var err error
			if val, err = sc.canonical(val, depth+1); err != nil {
				return err
			}
			ms = append(ms, member{name: string(name), start: start, end: len(val)})
			return nil
		})
		if err != nil {
			return nil, err
		}
		slices.SortFunc(ms, func(a, b member) int { return compareUTF16(a.name, b.name) })
		dst = append(dst, '{')
		for i, m := range ms {
			if i > 0 {
				if ms[i-1].name == m.name {
					return nil, fmt.Errorf("JSON object has two members named %q", m.name)
				}
				dst = append(dst, ',')
			}
			dst = jsonenc.AppendString(dst, m.name)
			dst = append(dst, ':')
			dst = append(dst, val[m.start:m.end]...)
		}
		return append(dst, '}'), nil
	case '[':
		dst = append(dst, '[')
		err := sc.elements(depth, func(i int) error {
			if i > 0 {
				dst = append(dst, ',')
			}
			var err error
			dst, err = sc.canonical(dst, depth+1)
			return err
		})
		if err != nil {
			return nil, err
		}
		return append(dst, ']'), nil
	case '"':
		mark := len(dst)
		dst = append(dst, '"')
		out, raw, err := sc.str(dst)
		if err != nil {
			return nil, err
		}
		if raw {
			// No escape: the bytes as sent hold no quote, backslash or
			// control character, so they are their canonical form.
			return append(out, '"'), nil
		}
		s := string(out[mark+1:])
		return jsonenc.AppendString(out[:mark], s), nil
	case 't', 'f', 'n':
		lit, err := sc.literal()
		return append(dst, lit...), err
	default:
		n, err := sc.number()
		if err != nil {
			return nil, err
		}
		f, err := parseNumber(n)
		if err != nil {
			return nil, err
		}
		return jsonenc.AppendNumber(dst, f)
	}
}

// parseNumber is the double nearest to a JSON number. Integers of up to
// 15 digits, the usual case in schemas, are read without an allocation.
func parseNumber(n []byte) (float64, error) {
	neg := len(n) > 0 && n[0] == '-'
	d := n
	if neg {
		d = n[1:]
	}
	if len(d) <= 15 {
		v, ok := 0.0, true
		for _, c := range d {
			if c < '0' || c > '9' {
				ok = false
				break
			}
			v = v*10 + float64(c-'0')
		}
		if ok {
			if neg {
				v = -v
			}
			return v, nil
		}
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil {
		return 0, fmt.Errorf("number %s: %w", n, err)
	}
	return f, nil
}

// compareUTF16 orders member names by their UTF-16 code units, as JCS
// does (it differs from byte order only past U+FFFF).
func compareUTF16(a, b string) int {
	for a != "" && b != "" {
		ra, na := utf8.DecodeRuneInString(a)
		rb, nb := utf8.DecodeRuneInString(b)
		if ra == rb {
			a, b = a[na:], b[nb:]
			continue
		}
		return cmp.Compare(utf16First(ra), utf16First(rb))
	}
	return cmp.Compare(len(a), len(b))
}

// utf16First is the first UTF-16 code unit of r. Two different runes
// with the same first unit are both past U+FFFF and differ in their
// first unit or their second; the second orders them as the rune does.
func utf16First(r rune) int {
	if r < 0x10000 {
		return int(r) << 10
	}
	hi, lo := utf16.EncodeRune(r)
	return int(hi)<<10 | int(lo-0xdc00)
}
