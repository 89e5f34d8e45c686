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
func isToken68(s string) bool {
	i := 0
	for ; i < len(s); i++ {
		c := s[i]
		if ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || ('0' <= c && c <= '9') ||
			c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' {
			continue
		}
		break
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
