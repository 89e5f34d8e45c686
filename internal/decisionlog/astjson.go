package decisionlog

import (
	"unicode/utf8"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// appendJSON appends v as JSON to b, as encoding/json would write the Go
// value ast.JSON makes of it once erased (eraseValue: every string, key or
// value, through redact.String): object members in key order, numbers as
// written, strings escaped as encoding/json escapes them (its Encoder then
// applies HTML escaping). It reports false for what it does not write
// (an object key that is not a string, a set, a reference): the caller
// then takes the general path, ast.JSON and encoding/json.
//
// Why: turning each event's input into Go maps (ast.JSON) for
// encoding/json to reflect over and sort again cost the writer more CPU
// than the decision itself (docs/performance.md, "Decision logs"); the
// input is already sorted and typed.
func appendJSON(b []byte, v ast.Value) ([]byte, bool) {
	switch x := v.(type) {
	case ast.Null:
		return append(b, "null"...), true
	case ast.Boolean:
		if x {
			return append(b, "true"...), true
		}
		return append(b, "false"...), true
	case ast.Number:
		if len(x) == 0 {
			return append(b, '0'), true
		}
		return append(b, x...), true
	case ast.String:
		return appendJSONString(b, redact.String(string(x))), true
	case *ast.Array:
		b = append(b, '[')
		for i := range x.Len() {
			if i > 0 {
				b = append(b, ',')
			}
			var ok bool
			if b, ok = appendJSON(b, x.Elem(i).Value); !ok {
				return b, false
			}
		}
		return append(b, ']'), true
	case ast.Object:
		b = append(b, '{')
		ok := true
		first := true
		x.Foreach(func(k, val *ast.Term) {
			if !ok {
				return
			}
			ks, isString := k.Value.(ast.String)
			if !isString {
				ok = false
				return
			}
			if !first {
				b = append(b, ',')
			}
			first = false
			// A key holding a credential is erased on the general path,
			// where erased keys may merge and sort anew.
			if redact.String(string(ks)) != string(ks) {
				ok = false
				return
			}
			b = appendJSONString(b, string(ks))
			b = append(b, ':')
			b, ok = appendJSON(b, val.Value)
		})
		if !ok {
			return b, false
		}
		return append(b, '}'), true
	}
	return b, false
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string the way encoding/json writes
// one (before HTML escaping): short escapes for \b \f \n \r \t, \u00XX for
// other control characters, \ufffd for invalid UTF-8, \u2028 and \u2029
// escaped.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// eraseValue passes every string of a Go value made by ast.JSON (keys and
// values) through redact.String, as appendJSON does on the direct path:
// a credential-shaped value the input holds (a JWT as a tool argument, in
// metadata, in a header no name rule caught) is not written to the log.
// It edits maps and slices in place and returns the erased value.
func eraseValue(v any) any {
	switch x := v.(type) {
	case string:
		return redact.String(x)
	case []any:
		for i := range x {
			x[i] = eraseValue(x[i])
		}
	case map[string]any:
		for k, val := range x {
			if ek := redact.String(k); ek != k {
				delete(x, k)
				k = ek
			}
			x[k] = eraseValue(val)
		}
	}
	return v
}
