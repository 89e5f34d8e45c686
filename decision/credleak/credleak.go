// Package credleak finds a caller's credential where it must not be: MCP
// forbids passing the caller's token to the upstream server, and mcpauthz
// removes the Authorization header, but a client (or an agent steered by
// what it read) can put the same token in another header, a cookie, the
// Referer, the path or the query, in any encoding. The engine refuses such
// a request rather than guess every place an upstream might read it from.
//
// It also holds the one reading of a query string that mcpauthz uses to
// find an access_token parameter and to remove one: the engine (which
// tells Envoy's ext_authz which parameters to remove) and the proxy
// (which removes them itself) read a query the same way.
package credleak

import (
	"strings"
	"unsafe"

	"github.com/mcpauthz/mcpauthz/internal/querystr"
)

// AccessTokenParam is the query parameter RFC 6750 §2.3 defines for a
// bearer token: never a credential for mcpauthz, never forwarded.
const AccessTokenParam = "access_token"

// MinSearched is the shortest credential Find looks for: a shorter value
// would be found in ordinary header values, and no credential an issuer
// mints is that short.
const MinSearched = 16

// AccessToken reports whether the raw query q has an access_token
// parameter under any spelling a server may decode to it (percent-encoded
// bytes of the name, ';' before it), and whether every such parameter can
// be removed by its name as sent: a literal "access_token" after '&' or at
// the start, which Envoy's query_parameters_to_remove (it splits at '&'
// and matches names) and Without both remove. A parameter found but not
// removable must be refused: removing it would rest on one reading of the
// query among several.
func AccessToken(q string) (found, removable bool) {
	if !strings.Contains(q, AccessTokenParam) && strings.IndexByte(q, '%') < 0 {
		return false, false // no spelling of the name is possible
	}
	removable = true
	querystr.Each(q, func(p querystr.Param) bool {
		if p.Name != AccessTokenParam {
			return true
		}
		found = true
		if p.Semicolon || p.RawName != AccessTokenParam {
			removable = false
			return false
		}
		return true
	})
	return found, found && removable
}

// Without returns the raw query q without the parameters whose decoded
// name is one of names; the others stay byte for byte, with the separator
// that came before each.
func Without(q string, names []string) string {
	if len(names) == 0 || q == "" {
		return q
	}
	var b strings.Builder
	removed := false
	querystr.Each(q, func(p querystr.Param) bool {
		for _, n := range names {
			if p.Name == n {
				removed = true
				return true
			}
		}
		if b.Len() > 0 {
			b.WriteByte(sep(p.Semicolon))
		}
		b.WriteString(p.Raw)
		return true
	})
	if !removed {
		return q
	}
	return b.String()
}

func sep(semicolon bool) byte {
	if semicolon {
		return ';'
	}
	return '&'
}

// Find reports where the credential cred appears in a request other than
// its Authorization header: in the request target (path and query), the
// host, a header's name or value, or the body; as sent, or
// percent-decoded (repeatedly: a value decoded twice by two layers is
// still the credential). It returns "" when it appears nowhere, and
// never for a credential shorter than MinSearched. headers are lowercase
// names to values; "authorization" is skipped.
func Find(cred, target, host string, headers map[string]string, body []byte) string {
	if len(cred) < MinSearched {
		return ""
	}
	if holds(target, cred) {
		if i := strings.IndexByte(target, '?'); i >= 0 && holds(target[i+1:], cred) {
			return "the query string"
		}
		return "the path"
	}
	if holds(host, cred) {
		return "the host"
	}
	for name, v := range headers {
		if name == "authorization" {
			continue
		}
		if holds(name, cred) {
			return "a header name" // the name is the credential: not shown
		}
		if holds(v, cred) {
			return "header " + name
		}
	}
	// The body is read in place, not copied: unsafe.String of a slice that
	// is not written while the string lives.
	if len(body) > 0 && strings.Contains(unsafe.String(unsafe.SliceData(body), len(body)), cred) {
		return "the body"
	}
	return ""
}

// maxDecodes bounds how many times a value is percent-decoded.
const maxDecodes = 4

// holds reports whether s holds cred as sent or once percent-decoded up to
// maxDecodes times. Invalid escapes are left as they are, as lenient
// servers do.
func holds(s, cred string) bool {
	for range maxDecodes + 1 {
		if strings.Contains(s, cred) {
			return true
		}
		if !strings.ContainsAny(s, "%+") {
			return false
		}
		d := lenientUnescape(s)
		if d == s {
			return false
		}
		s = d
	}
	return false
}

// lenientUnescape decodes every valid %XX of s and '+' to a space,
// leaving invalid escapes as they are.
func lenientUnescape(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '%' && i+2 < len(s) && ishex(s[i+1]) && ishex(s[i+2]):
			b.WriteByte(unhex(s[i+1])<<4 | unhex(s[i+2]))
			i += 2
		case c == '+':
			b.WriteByte(' ')
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

func ishex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	default:
		return c - 'A' + 10
	}
}
