// Package jsonenc writes JSON strings and numbers the one way the project
// needs in more than one place. Numbers are written as ECMAScript's
// Number.prototype.toString writes them (the tool pins' canonical JSON, and
// how the parser says which double a refused literal reads as). Strings are
// written with the escapes RFC 8785 (JCS) prescribes, the
// quote, the backslash, \b \f \n \r \t and \u00xx for the other control
// characters, everything else as it is. decision/toolpin's canonical JSON
// requires exactly that; transport/extmcp's envelope only needs valid
// JSON. (internal/decisionlog writes strings as encoding/json does instead,
// U+2028, U+2029 and invalid UTF-8 escaped, since its output must read
// byte for byte as before.)
package jsonenc

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

const hexDigits = "0123456789abcdef"

// AppendString appends s, which must be valid UTF-8 (the callers check),
// as a JSON string with JCS's escapes.
func AppendString(dst []byte, s string) []byte {
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
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
		}
	}
	return append(dst, '"')
}

// AppendNumber appends f as ECMAScript's Number.prototype.toString does
// (RFC 8785 section 3.2.2.3): integers and decimals without exponent from
// 1e-6 up to 1e21, the shortest round-tripping digits, and otherwise an
// exponent with its sign and no leading zeros ("1e+21", "1.5e-7").
func AppendNumber(dst []byte, f float64) ([]byte, error) {
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
