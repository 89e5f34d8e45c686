package toolpin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
)

// This file is the JSON Canonicalization Scheme (RFC 8785, JCS) that tool
// digests are computed over: objects with their members sorted by the
// UTF-16 code units of their names, no whitespace, strings with the
// fewest escapes (only '"', '\\' and control characters), and numbers
// written as ECMAScript writes an IEEE 754 double. Two readers that agree
// on a JSON value therefore agree on its bytes, whatever spacing, member
// order, escapes or number spelling ("1.0", "1e0") the server chose.

// maxDepth bounds the nesting of a value read by Parse: tool definitions
// are shallow, and a deeper one is refused rather than recursed into.
const maxDepth = 128

// Parse reads one JSON value strictly: valid UTF-8, no duplicate member
// names, nothing after the value, at most maxDepth levels. Objects are
// map[string]any, arrays []any, numbers json.Number (as spelled).
func Parse(data []byte) (any, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("JSON is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseValue(dec, 0)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("JSON has data after its value")
	}
	return v, nil
}

func parseValue(dec *json.Decoder, depth int) (any, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, fmt.Errorf("reading JSON: %w", err)
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return tok, nil // string, json.Number, bool or nil
	}
	if depth >= maxDepth {
		return nil, fmt.Errorf("JSON is nested deeper than %d levels", maxDepth)
	}
	switch d {
	case '{':
		obj := map[string]any{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, fmt.Errorf("reading JSON: %w", err)
			}
			k := kt.(string) // the decoder yields only strings as names
			if _, dup := obj[k]; dup {
				return nil, fmt.Errorf("JSON object has two members named %q", k)
			}
			if obj[k], err = parseValue(dec, depth+1); err != nil {
				return nil, err
			}
		}
		_, err = dec.Token() // '}'
		return obj, err
	case '[':
		arr := []any{}
		for dec.More() {
			v, err := parseValue(dec, depth+1)
			if err != nil {
				return nil, err
			}
			arr = append(arr, v)
		}
		_, err = dec.Token() // ']'
		return arr, err
	}
	return nil, fmt.Errorf("reading JSON: unexpected %v", d)
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
		return appendString(dst, x), nil
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", x, err)
		}
		return appendNumber(dst, f)
	case float64:
		return appendNumber(dst, x)
	case int:
		return appendNumber(dst, float64(x))
	case int64:
		return appendNumber(dst, float64(x))
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
			dst = appendString(dst, k)
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

// compareUTF16 orders member names by their UTF-16 code units, as JCS
// does (it differs from byte order only past U+FFFF).
func compareUTF16(a, b string) int {
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

// appendString writes s as a JSON string with JCS's escapes.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
		case c >= 0x20:
			dst = append(dst, c)
		case c == '\b':
			dst = append(dst, `\b`...)
		case c == '\f':
			dst = append(dst, `\f`...)
		case c == '\n':
			dst = append(dst, `\n`...)
		case c == '\r':
			dst = append(dst, `\r`...)
		case c == '\t':
			dst = append(dst, `\t`...)
		default:
			dst = append(dst, `\u00`...)
			dst = append(dst, "0123456789abcdef"[c>>4], "0123456789abcdef"[c&0xf])
		}
	}
	return append(dst, '"')
}

// appendNumber writes f as ECMAScript's Number.prototype.toString does
// (RFC 8785 section 3.2.2.3): integers and decimals without exponent from
// 1e-6 up to 1e21, the shortest round-tripping digits, and otherwise an
// exponent with its sign and no leading zeros ("1e+21", "1.5e-7").
func appendNumber(dst []byte, f float64) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("number %v has no JSON form", f)
	}
	if f == 0 {
		return append(dst, '0'), nil // -0 too
	}
	if a := math.Abs(f); a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64), nil
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // 1.5e-07
	mant, exp, _ := strings.Cut(s, "e")
	sign := exp[:1]
	exp = strings.TrimLeft(exp[1:], "0")
	return append(append(append(append(dst, mant...), 'e'), sign...), exp...), nil
}
