// Package redact erases credentials from everything mcpauthz shows: the
// policy input's headers and query (decision), decision log events
// (internal/decisionlog), service log lines (LogAttr), and the bundle
// URLs of status, metrics and logs (bundles). One set of rules serves them
// all, so a credential erased in one place is erased in every other.
//
// Two kinds of rule apply. By name: a header or query parameter whose name
// says it carries a credential (authorization, cookie, *token*, *secret*,
// *pass*, code, sig, ...) loses its value. By shape: a value that looks
// like a credential whatever its name (a JWT, an mcpauthz API key, an
// HTTP authorization scheme with its credentials, a URL's user info) is
// erased wherever it appears, in a header, a reason, a session id or free
// text. It lives apart from decision because bundles, which may not
// import decision, erases its URLs with it.
package redact

import (
	"strings"

	"github.com/mcpauthz/mcpauthz/internal/querystr"
)

// Redacted replaces every erased credential. A name keeps its place (a
// query parameter keeps its name, a header its name), so a reader still
// sees that a credential was sent there, but never its value.
const Redacted = "REDACTED"

// APIKeyPrefix starts every mcpauthz API key (decision/token): a value
// holding it is a credential whatever it is called.
const APIKeyPrefix = "mcpk_"

// credentialWords are the words whose presence anywhere in a lowercased
// header or query parameter name marks it as carrying a credential:
// authorization and proxy-authorization, cookie, x-api-key, x-auth-token,
// access_token, client_secret, x-amz-security-token, X-Amz-Signature,
// X-Goog-Credential and the like. Names are matched in both their '-' and
// '_' spellings.
var credentialWords = []string{
	"authorization", "cookie", "token", "secret", "password", "passwd",
	"passphrase", "credential", "signature", "assertion",
	"apikey", "api_key", "api-key",
	"access_key", "access-key", "private_key", "private-key",
	"subscription_key", "subscription-key",
}

// headerWords are words that mark a header name only: "x-auth",
// "x-upstream-auth" and "x-passphrase" carry credentials, while query
// parameters such as "author" or "bypass" are ordinary data a policy may
// read.
var headerWords = []string{"auth", "pass"}

// credentialExact reports whether n is one of the short names that carry a
// credential only when they are the whole name: ?key= is Google's API key,
// ?sig= an Azure SAS signature, ?code= an OAuth authorization code, ?pw=
// a password; "key" inside a longer name such as idempotency-key is not a
// secret.
func credentialExact(n string) bool {
	switch n {
	case "key", "auth", "sig", "jwt", "pwd", "pw", "pass", "code":
		return true
	}
	return false
}

// credentialByFirst indexes credentialWords by their first byte, so that a
// name is scanned once and most of its bytes start no comparison at all:
// this runs for every header of every logged request. credentialMinLen is
// the length of the shortest word: none starts closer to a name's end.
var credentialByFirst, credentialMinLen = func() (t [256][]string, minLen int) {
	minLen = len(credentialWords[0])
	for _, w := range credentialWords {
		t[w[0]] = append(t[w[0]], w)
		minLen = min(minLen, len(w))
	}
	return t, minLen
}()

// Name reports whether a query parameter (or header) of this name carries
// a credential. Case does not matter.
func Name(name string) bool {
	// ToLower returns its argument unchanged, without allocating, when it
	// is already lowercase, as header names are.
	n := strings.ToLower(name)
	if credentialExact(n) {
		return true
	}
	for i := 0; i+credentialMinLen <= len(n); i++ {
		for _, w := range credentialByFirst[n[i]] {
			if strings.HasPrefix(n[i:], w) {
				return true
			}
		}
	}
	return false
}

// HeaderName reports whether a header of this name carries a credential:
// Name's rules, and any name holding "auth" or "pass" except Envoy's own
// x-envoy-auth-* flags (x-envoy-auth-partial-body: true), which a policy
// reads.
func HeaderName(name string) bool {
	if Name(name) {
		return true
	}
	n := strings.ToLower(name)
	if strings.HasPrefix(n, "x-envoy-auth-") {
		return false
	}
	for _, w := range headerWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}

// Value reports whether v holds a credential whatever its name: an
// mcpauthz API key (recognisable by its prefix), a JWT (a JWS compact
// serialization, which always starts with "eyJ", the encoding of `{"`), or
// an HTTP authorization scheme followed by its credentials ("Basic …",
// "Bearer …"). This catches a credential sent under a name no list
// foresaw.
func Value(v string) bool {
	return strings.Contains(v, APIKeyPrefix) || containsJWS(v) || schemeValue(v)
}

// authSchemes are the HTTP authentication schemes (IANA's registry) whose
// credentials follow the scheme's name in a header value, lowercase.
var authSchemes = []string{
	"basic", "bearer", "digest", "dpop", "negotiate", "ntlm", "hoba",
	"mutual", "scram-sha-1", "scram-sha-256", "vapid", "aws4-hmac-sha256", "gnap",
}

// schemeValue reports whether a header value is an authentication scheme's
// name followed by a space and something else: the credentials of an
// Authorization header, under whatever name it was sent.
func schemeValue(v string) bool {
	scheme, rest, ok := strings.Cut(v, " ")
	if !ok || strings.TrimSpace(rest) == "" {
		return false
	}
	for _, s := range authSchemes {
		if strings.EqualFold(scheme, s) {
			return true
		}
	}
	return false
}

// containsJWS reports whether s contains a JWS: JWSAt finds one.
func containsJWS(s string) bool {
	_, _, ok := jwsAt(s)
	return ok
}

// jwsAt returns where the first JWS of s starts and ends: three base64url
// segments joined by dots, the first starting with "eyJ" (the third may be
// empty, as in an unsecured JWT).
func jwsAt(s string) (start, end int, ok bool) {
	off := 0
	for {
		i := strings.Index(s[off:], "eyJ")
		if i < 0 {
			return 0, 0, false
		}
		i += off
		t := s[i:]
		j := base64urlRun(t)
		if j < len(t) && t[j] == '.' {
			k := j + 1 + base64urlRun(t[j+1:])
			if k > j+1 && k < len(t) && t[k] == '.' {
				return i, i + k + 1 + base64urlRun(t[k+1:]), true
			}
		}
		off = i + 3
	}
}

// base64urlRun returns the length of the run of base64url characters that
// starts s.
func base64urlRun(s string) int {
	i := 0
	for i < len(s) && isBase64URL(s[i]) {
		i++
	}
	return i
}

func isBase64URL(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}

// Header returns the value a header may be shown with: Redacted for a
// credential (by name or by value); a URL (referer, x-envoy-original-path)
// with the credentials of its query and its user info erased; else the
// value as sent.
func Header(name, value string) string {
	if value == "" {
		return value
	}
	if HeaderName(name) || Value(value) {
		return Redacted
	}
	if strings.Contains(value, "://") {
		return URL(value)
	}
	if i := strings.IndexByte(value, '?'); i >= 0 {
		if q := Query(value[i+1:]); q != value[i+1:] {
			return value[:i+1] + q
		}
	}
	return value
}

// Query returns the raw query string with the value of every credential
// parameter replaced by Redacted, and q itself when it holds none.
// Parameters are split at '&' and at ';' (which some upstreams still
// accept as a separator), and names and values are percent-decoded before
// they are judged, as the upstream would decode them; everything else stays
// byte for byte as sent, so a reader still sees what the upstream sees.
func Query(q string) string {
	var b strings.Builder
	done := 0 // q[:done] has been judged and copied to b
	querystr.Each(q, func(p querystr.Param) bool {
		if keep, ok := param(p); !ok {
			if b.Len() == 0 {
				b.Grow(len(q))
			}
			b.WriteString(q[done:p.Start])
			b.WriteString(keep)
			done = p.End
		}
		return true
	})
	if done == 0 {
		return q
	}
	b.WriteString(q[done:])
	return b.String()
}

// param judges one parameter of a query. It returns ok when it carries no
// credential; otherwise it returns what replaces it: the name with
// Redacted as its value, or Redacted alone when the name itself is a
// credential (a bare "?mcpk_..." or "?eyJ...").
func param(p querystr.Param) (string, bool) {
	_, rawValue, hasValue := strings.Cut(p.Raw, "=")
	if Value(p.Name) {
		return Redacted, false
	}
	if !hasValue || rawValue == "" {
		return "", true
	}
	if Name(p.Name) || Value(querystr.Unescape(rawValue)) {
		return p.RawName + "=" + Redacted, false
	}
	return "", true
}

// URL returns u as it may be shown (a bundle server's URL in /v1/status,
// a metric label, a log line): its user info replaced by Redacted, and the
// values of credential parameters of its query and fragment (signed URLs'
// X-Amz-Signature, X-Goog-Signature, sig, token, ...) erased. The rest
// stays byte for byte, so the URL is still recognisable.
func URL(u string) string {
	out := u
	if i := strings.Index(out, "://"); i >= 0 {
		host := i + 3
		end := len(out)
		if j := strings.IndexAny(out[host:], "/?#"); j >= 0 {
			end = host + j
		}
		if at := strings.LastIndexByte(out[host:end], '@'); at >= 0 {
			out = out[:host] + Redacted + out[host+at:]
		}
	}
	if q := strings.IndexByte(out, '?'); q >= 0 {
		rest, frag := out[q+1:], ""
		if f := strings.IndexByte(rest, '#'); f >= 0 {
			rest, frag = rest[:f], rest[f:]
		}
		if r := Query(rest); r != rest {
			out = out[:q+1] + r + frag
		}
	}
	if f := strings.IndexByte(out, '#'); f >= 0 {
		if r := Query(out[f+1:]); r != out[f+1:] {
			out = out[:f+1] + r
		}
	}
	if containsJWS(out) || strings.Contains(out, APIKeyPrefix) {
		out = shapes(out)
	}
	return out
}
