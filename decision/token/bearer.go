package token

import "strings"

// BearerToken extracts the credential from an Authorization header value
// (RFC 6750 §2.1). present reports whether the header carried anything at
// all; ok reports whether it was a well-formed Bearer credential. A header
// with another scheme, no credential, several credentials or characters
// outside the token68 set is present but not ok: the caller reports it as
// ErrMalformed rather than as a missing token.
func BearerToken(header string) (raw string, present, ok bool) {
	if strings.TrimSpace(header) == "" {
		return "", false, false
	}
	scheme, rest, found := strings.Cut(header, " ")
	if !found || !strings.EqualFold(scheme, "Bearer") {
		return "", true, false
	}
	// RFC 7235 allows one or more spaces after the scheme.
	rest = strings.TrimLeft(rest, " ")
	if !isToken68(rest) {
		return "", true, false
	}
	return rest, true, true
}

// isToken68 reports whether s matches RFC 7235's token68:
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
// A JWT is some 800 characters and every request carries one, so the
// character test is a table lookup.
func isToken68(s string) bool {
	i := 0
	for i < len(s) && token68Chars[s[i]] {
		i++
	}
	if i == 0 {
		return false
	}
	for ; i < len(s); i++ {
		if s[i] != '=' {
			return false
		}
	}
	return true
}

// token68Chars marks the characters of token68 before its padding.
var token68Chars = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "-._~+/" {
		t[c] = true
	}
	return t
}()
