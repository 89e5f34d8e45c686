package jsonenc

import "testing"

// TestAppendString: JCS's escapes exactly: the quote and backslash, the
// five short forms, \u00xx for other control characters, and nothing else
// (not <, >, &, U+2028, non-ASCII).
func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":                 `""`,
		`a"b\c`:            `"a\"b\\c"`,
		"\b\f\n\r\t":       `"\b\f\n\r\t"`,
		"\x00\x01\x1f\x7f": "\"\\u0000\\u0001\\u001f\x7f\"",
		"<>&\u2028é🙂":      "\"<>&\u2028é🙂\"",
	} {
		if got := string(AppendString([]byte("x"), in)); got != "x"+want {
			t.Errorf("AppendString(%q) = %s, want x%s", in, got, want)
		}
	}
}
