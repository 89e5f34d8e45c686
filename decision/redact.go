package decision

import (
	"net/url"
	"strings"

	"github.com/mcpauthz/mcpauthz/decision/token"
)

// Redacted replaces the value of every credential in the policy input:
// query parameters and headers that carry one keep their name, so a policy
// can still see that a credential was sent there, but never its value.
// Because the input is erased when it is built, nothing that reads it
// (decision logs, evaluation errors, the eval command) can leak a secret.
const Redacted = "REDACTED"

// credentialWords are the words whose presence anywhere in a lowercased
// header or query parameter name marks it as carrying a credential:
// authorization and proxy-authorization, cookie, x-api-key, x-auth-token,
// access_token, client_secret, x-amz-security-token and the like. Names are
// matched in both their '-' and '_' spellings.
var credentialWords = []string{
	"authorization", "cookie", "token", "secret", "password", "passwd",
	"credential", "signature", "assertion",
	"apikey", "api_key", "api-key",
	"access_key", "access-key", "private_key", "private-key",
	"subscription_key", "subscription-key",
}

// credentialExact reports whether n is one of the short names that carry a
// credential only when they are the whole name (?key= is Google's API key;
// "key" inside a longer name such as idempotency-key is not a secret).
func credentialExact(n string) bool {
	switch n {
	case "key", "auth", "sig", "jwt", "pwd":
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

// credentialName reports whether a header or query parameter of this name
// carries a credential. Case does not matter.
func credentialName(name string) bool {
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

// credentialValue reports whether v holds a credential whatever its name:
// an mcpauthz API key (recognisable by its prefix) or a JWT (a JWS compact
// serialization, which always starts with "eyJ", the encoding of `{"`).
// This catches a token sent under a name no list foresaw.
func credentialValue(v string) bool {
	return strings.Contains(v, token.APIKeyPrefix) || containsJWS(v)
}

// containsJWS reports whether s contains three base64url segments joined by
// dots, the first starting with "eyJ".
func containsJWS(s string) bool {
	for {
		i := strings.Index(s, "eyJ")
		if i < 0 {
			return false
		}
		s = s[i:]
		j := base64urlRun(s)
		if j < len(s) && s[j] == '.' {
			k := j + 1 + base64urlRun(s[j+1:])
			if k > j+1 && k < len(s) && s[k] == '.' {
				return true
			}
		}
		s = s[3:]
	}
}

// base64urlRun returns the length of the run of base64url characters that
// starts s.
func base64urlRun(s string) int {
	i := 0
	for i < len(s) {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			break
		}
		i++
	}
	return i
}

// redactHeader returns the value a header has in the policy input: Redacted
// for a credential; a URL (referer, x-envoy-original-path) with the
// credentials of its query erased; else the value as sent.
func redactHeader(name, value string) string {
	if value == "" {
		return value
	}
	if credentialName(name) || credentialValue(value) {
		return Redacted
	}
	if i := strings.IndexByte(value, '?'); i >= 0 {
		if q := redactQuery(value[i+1:]); q != value[i+1:] {
			return value[:i+1] + q
		}
	}
	return value
}

// redactQuery returns the raw query string with the value of every
// credential parameter replaced by Redacted, and q itself when it holds
// none. Parameters are split at '&' and at ';' (which some upstreams still
// accept as a separator), and names and values are percent-decoded before
// they are judged, as the upstream would decode them; everything else stays
// byte for byte as sent, so the policy still sees what the upstream sees.
func redactQuery(q string) string {
	var b strings.Builder
	done := 0 // q[:done] has been judged and copied to b
	for start := 0; start <= len(q); {
		end := start + strings.IndexAny(q[start:], "&;")
		if end < start {
			end = len(q)
		}
		if seg := q[start:end]; seg != "" {
			if keep, ok := redactParam(seg); !ok {
				if b.Len() == 0 {
					b.Grow(len(q))
				}
				b.WriteString(q[done:start])
				b.WriteString(keep)
				done = end
			}
		}
		start = end + 1
	}
	if done == 0 {
		return q
	}
	b.WriteString(q[done:])
	return b.String()
}

// redactParam judges one name=value segment of a query. It returns ok when
// the segment carries no credential; otherwise it returns what replaces it:
// the name with Redacted as its value, or Redacted alone when the name
// itself is a credential (a bare "?mcpk_..." or "?eyJ...").
func redactParam(seg string) (string, bool) {
	rawName, rawValue, hasValue := strings.Cut(seg, "=")
	name := unescapeQuery(rawName)
	if credentialValue(name) {
		return Redacted, false
	}
	if !hasValue || rawValue == "" {
		return "", true
	}
	if credentialName(name) || credentialValue(unescapeQuery(rawValue)) {
		return rawName + "=" + Redacted, false
	}
	return "", true
}

// unescapeQuery decodes s as the form parser does, or returns it as is when
// it is not valid percent-encoding (the form parser then drops it).
func unescapeQuery(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
