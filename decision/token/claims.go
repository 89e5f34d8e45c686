package token

import (
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FromClaims builds the Result for a JWT that Envoy's jwt_authn filter has
// already verified (signature, issuer, audience per its provider config) and
// whose payload arrived in the CheckRequest's metadata_context. Time still
// passes between Envoy's check and ours, and a payload may be replayed from a
// cache, so exp and nbf are checked again against now (no skew: Envoy
// applied its own). A nil payload is a missing token. The Result keeps the
// claims map as given: the caller must not change it afterwards.
func FromClaims(claims map[string]any, now time.Time) *Result {
	if claims == nil {
		return (&Result{Error: ErrMissing}).Finish()
	}
	r := &Result{Present: true, Type: TypeEnvoy}
	exp, hasExp, okExp := numericDate(claims, "exp")
	nbf, hasNbf, okNbf := numericDate(claims, "nbf")
	switch {
	case !okExp || !okNbf:
		r.Error = ErrMalformed
	case hasExp && !now.Before(exp):
		r.Error = ErrExpired
	case hasNbf && now.Before(nbf):
		r.Error = ErrNotYetValid
	default:
		fillIdentity(r, claims)
		r.Valid = true
		r.Claims = claims
		if hasExp {
			r.Expiry = exp
		}
	}
	return r.Finish()
}

// fillIdentity copies the subject, client and scopes of a verified payload
// into r, from the usual claims.
func fillIdentity(r *Result, claims map[string]any) {
	fillMappedIdentity(r, claims, &ClaimsMapping{})
}

// fillMappedIdentity is fillIdentity reading the claims m names.
func fillMappedIdentity(r *Result, claims map[string]any, m *ClaimsMapping) {
	if m.Subject != "" {
		r.Subject, _ = claims[m.Subject].(string)
	} else {
		r.Subject, _ = claims["sub"].(string)
	}
	switch {
	case m.ClientID != "":
		r.ClientID, _ = claims[m.ClientID].(string)
	default:
		if id, ok := claims["client_id"].(string); ok && id != "" {
			r.ClientID = id
		} else {
			r.ClientID, _ = claims["azp"].(string)
		}
	}
	if m.Scopes != "" {
		r.Scopes = scopeList(claims[m.Scopes])
	} else {
		r.Scopes = scopesOf(claims)
	}
}

// scopesOf reads the granted scopes: RFC 8693/9068 "scope" is one
// space-separated string; Microsoft and others send "scp", as an array of
// strings or as a space-separated string. "scope" wins when both exist.
func scopesOf(claims map[string]any) []string {
	if s, ok := claims["scope"].(string); ok {
		return strings.Fields(s)
	}
	return scopeList(claims["scp"])
}

// scopeList reads one scope claim: a space-separated string or an array of
// strings. Entries of the wrong type are skipped: a scope never appears by
// accident.
func scopeList(v any) []string {
	switch scp := v.(type) {
	case string:
		return strings.Fields(scp)
	case []any:
		out := make([]string, 0, len(scp))
		for _, e := range scp {
			if s, ok := e.(string); ok && s != "" && !strings.ContainsAny(s, " \t\r\n") {
				out = append(out, s)
			}
		}
		return out
	case []string:
		return append([]string(nil), scp...)
	}
	return nil
}

// numericDate reads a NumericDate claim (seconds since the epoch, possibly
// fractional). present is false when the claim is absent; ok is false when
// it is there but not a finite number.
func numericDate(claims map[string]any, name string) (t time.Time, present, ok bool) {
	v, present := claims[name]
	if !present {
		return time.Time{}, false, true
	}
	var f float64
	switch n := v.(type) {
	case float64:
		f = n
	case json.Number:
		var err error
		if f, err = n.Float64(); err != nil {
			return time.Time{}, true, false
		}
	case int:
		return time.Unix(int64(n), 0), true, true
	case int64:
		return time.Unix(n, 0), true, true
	default:
		return time.Time{}, true, false
	}
	// Beyond ±2^53 a float has lost whole seconds and time.Unix overflows
	// long before anything meaningful: treat as malformed.
	if math.IsNaN(f) || math.IsInf(f, 0) || math.Abs(f) > 1<<53 {
		return time.Time{}, true, false
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), true, true
}

// audienceMatcher compares token audiences with the configured resource URI
// the way RFC 8707 resource indicators compare: the scheme and host are
// case-insensitive, everything after them is exact, so "https://MCP.example"
// matches "https://mcp.example" but "https://mcp.example/mcp/" does not
// match "https://mcp.example/mcp".
type audienceMatcher struct {
	want string
}

// matches reports whether the aud claim (a string or an array of strings)
// names the configured audience.
func (m audienceMatcher) matches(aud any) bool {
	switch a := aud.(type) {
	case string:
		return sameResource(a, m.want)
	case []any:
		for _, e := range a {
			if s, ok := e.(string); ok && sameResource(s, m.want) {
				return true
			}
		}
	case []string:
		for _, s := range a {
			if sameResource(s, m.want) {
				return true
			}
		}
	}
	return false
}

// WrongAudienceDetail says why a token's aud claim does not do: the
// audience it names and the resource (resource.uri) it should name, and
// how to get a right one, for the logs and eval. dev says the token is a
// development token (mcpauthz token), minted for resource.uri by
// --config or for any audience by --aud.
func WrongAudienceDetail(aud any, want string, dev bool) string {
	got := "no audience"
	switch a := aud.(type) {
	case string:
		got = strconv.Quote(a)
	case []any, []string:
		if b, err := json.Marshal(a); err == nil {
			got = string(b)
		}
	}
	s := fmt.Sprintf("the token's audience (aud) is %s; this resource (resource.uri) is %q", got, want)
	if dev {
		s += fmt.Sprintf("; mint a token for it with mcpauthz token --config FILE (the server's configuration) or --aud %s", want)
	} else {
		s += "; ask the authorization server for a token with resource=" + want + " (RFC 8707), or set resource.uri to the URL clients use"
	}
	return s
}

// sameResource compares two resource identifiers. When both have the shape
// scheme://authority..., scheme and authority compare case-insensitively
// (unless the authority carries userinfo, which is case-sensitive) and the
// rest (path, query, fragment) byte for byte. Anything else compares exactly.
func sameResource(a, b string) bool {
	if a == b {
		return true
	}
	as, aAuth, aRest, aok := splitResource(a)
	bs, bAuth, bRest, bok := splitResource(b)
	if !aok || !bok {
		return false
	}
	if strings.Contains(aAuth, "@") || strings.Contains(bAuth, "@") {
		return false // differed somewhere and userinfo is case-sensitive; treat as distinct
	}
	return strings.EqualFold(as, bs) && strings.EqualFold(aAuth, bAuth) && aRest == bRest
}

// splitResource splits "scheme://authority/rest" into its scheme, authority
// and the rest (starting at the first '/', '?' or '#' after the authority).
func splitResource(s string) (scheme, authority, rest string, ok bool) {
	scheme, after, found := strings.Cut(s, "://")
	if !found || scheme == "" || strings.ContainsAny(scheme, "/?#") {
		return "", "", "", false
	}
	end := strings.IndexAny(after, "/?#")
	if end < 0 {
		end = len(after)
	}
	if end == 0 {
		return "", "", "", false
	}
	return scheme, after[:end], after[end:], true
}
