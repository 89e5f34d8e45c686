package oauth

import (
	"slices"
	"strings"
)

// Challenge401 is the WWW-Authenticate value for a request without a usable
// token: `Bearer resource_metadata="<metadataURL>"`, and when a token was
// presented (RFC 6750 §3.1) also `error="invalid_token"` and, if description
// is not empty, `error_description`. With no token at all the challenge
// carries no error, as RFC 6750 §3.1 asks. The Bearer challenge is the whole
// value, so clients that only read a value starting with "Bearer " find it.
func Challenge401(metadataURL string, tokenPresented bool, description string) string {
	var c challenge
	c.b.Grow(64 + len(metadataURL) + len(description))
	c.param("resource_metadata", metadataURL)
	if tokenPresented {
		c.param("error", "invalid_token")
		c.param("error_description", description)
	}
	return c.String()
}

// Challenge403 is the WWW-Authenticate value for a valid token that lacks
// scopes (step-up): `Bearer error="insufficient_scope", scope="a b c",
// resource_metadata="...", error_description="..."`. scopes should list every
// scope the operation needs, not only the missing ones, since clients ask
// for exactly what the challenge names; duplicates are dropped.
func Challenge403(metadataURL string, scopes []string, description string) string {
	var c challenge
	n := 96 + len(metadataURL) + len(description)
	for _, s := range scopes {
		n += len(s) + 1
	}
	c.b.Grow(n)
	c.param("error", "insufficient_scope")
	c.scopes(scopes)
	c.param("resource_metadata", metadataURL)
	c.param("error_description", description)
	return c.String()
}

// ChallengeDPoP is the WWW-Authenticate challenge of the DPoP scheme
// (RFC 9449 §7.1): `DPoP error="<code>", error_description="...",
// algs="ES256 ...", resource_metadata="..."`, parameters with empty values
// left out. code is invalid_dpop_proof for a proof that is missing or
// refused, use_dpop_nonce for one without a valid server nonce (§8),
// invalid_token for a token that cannot be used as it came
// (a DPoP-bound token sent as Bearer), "" when no token was presented.
func ChallengeDPoP(metadataURL, algs, code, description string) string {
	c := challenge{scheme: "DPoP"}
	c.b.Grow(96 + len(metadataURL) + len(algs) + len(description))
	c.param("error", code)
	c.param("error_description", description)
	c.param("algs", algs)
	c.param("resource_metadata", metadataURL)
	return c.String()
}

// challenge builds one challenge, of scheme (Bearer when ""); parameters
// with empty values are left out.
type challenge struct {
	b      strings.Builder
	n      int
	scheme string
}

func (c *challenge) schemeName() string {
	if c.scheme == "" {
		return "Bearer"
	}
	return c.scheme
}

func (c *challenge) param(name, value string) {
	if !printable(value) {
		// Nothing would be left once control characters are dropped, and an
		// empty quoted value trips some parsers.
		return
	}
	c.open(name)
	writeQuoted(&c.b, value)
	c.b.WriteByte('"')
}

// open writes the separator and `name="`.
func (c *challenge) open(name string) {
	if c.n == 0 {
		c.b.WriteString(c.schemeName())
		c.b.WriteByte(' ')
	} else {
		c.b.WriteString(", ")
	}
	c.n++
	c.b.WriteString(name)
	c.b.WriteString(`="`)
}

// scopes writes the scope parameter: scopes joined by single spaces, empty
// (or all-control) and repeated ones dropped, first order kept. It is
// written in place, as this runs on every step-up denial.
func (c *challenge) scopes(scopes []string) {
	written := 0
	for i, s := range scopes {
		if !printable(s) || slices.Contains(scopes[:i], s) {
			continue
		}
		if written == 0 {
			c.open("scope")
		} else {
			c.b.WriteByte(' ')
		}
		written++
		writeQuoted(&c.b, s)
	}
	if written > 0 {
		c.b.WriteByte('"')
	}
}

// printable reports whether s has a character writeQuoted keeps.
func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 0x20 && c != 0x7f {
			return true
		}
	}
	return false
}

func (c *challenge) String() string {
	if c.n == 0 {
		return c.schemeName()
	}
	return c.b.String()
}

// writeQuoted writes s as the inside of an RFC 7235 quoted-string: '"' and
// '\' are escaped, and control characters, which a header value cannot carry
// and which could split a header, are dropped.
func writeQuoted(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			// dropped
		default:
			b.WriteByte(c)
		}
	}
}
