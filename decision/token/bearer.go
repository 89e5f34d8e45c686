package token

import "strings"

// BearerToken extracts the credential from an Authorization header value
// (RFC 6750 §2.1). present reports whether the header carried anything at
// all; ok reports whether it was a well-formed Bearer credential. A header
// with another scheme, no credential, several credentials or characters
// outside the token68 set is present but not ok: the caller reports it as
// ErrMalformed rather than as a missing token.
func BearerToken(header string) (raw string, present, ok bool) {
	raw, scheme, present, ok := AccessToken(header)
	if ok && scheme != SchemeBearer {
		return "", true, false
	}
	return raw, present, ok
}

// The schemes an access token comes with in the Authorization header.
const (
	// SchemeBearer is RFC 6750's Bearer.
	SchemeBearer = "bearer"
	// SchemeDPoP is RFC 9449 §7.1's DPoP: a DPoP-bound token, with its
	// proof in the DPoP header.
	SchemeDPoP = "dpop"
)

// AccessToken is BearerToken for both schemes an access token comes
// with: Bearer and DPoP (RFC 9449 §7.1), names compared without case.
// scheme is SchemeBearer or SchemeDPoP when ok.
func AccessToken(header string) (raw, scheme string, present, ok bool) {
	if strings.TrimSpace(header) == "" {
		return "", "", false, false
	}
	name, rest, found := strings.Cut(header, " ")
	switch {
	case !found:
		return "", "", true, false
	case strings.EqualFold(name, "Bearer"):
		scheme = SchemeBearer
	case strings.EqualFold(name, "DPoP"):
		scheme = SchemeDPoP
	default:
		return "", "", true, false
	}
	// RFC 7235 allows one or more spaces after the scheme.
	rest = strings.TrimLeft(rest, " ")
	if !isToken68(rest) {
		return "", "", true, false
	}
	return rest, scheme, true, true
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
