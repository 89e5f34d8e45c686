// Package jsonenc writes JSON strings the one way the project needs in
// more than one place: with the escapes RFC 8785 (JCS) prescribes, the
// quote, the backslash, \b \f \n \r \t and \u00xx for the other control
// characters, everything else as it is. decision/toolpin's canonical JSON
// requires exactly that; transport/extmcp's envelope only needs valid
// JSON. (internal/decisionlog writes strings as encoding/json does instead,
// U+2028, U+2029 and invalid UTF-8 escaped, since its output must read
// byte for byte as before.)
package jsonenc

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
