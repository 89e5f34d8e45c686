// Package querystr is mcpauthz's one reading of a raw query string: the
// erasure of credential parameters (internal/redact), the search for an
// access_token parameter and its removal (decision/credleak) all split and
// decode a query the same way, so what one finds the others find. It
// lives apart from decision because bundles, which may not import
// decision, erases its URLs with redact.
package querystr

import (
	"net/url"
	"strings"
)

// Param is one parameter of a query string.
type Param struct {
	// Raw is the parameter as sent (name=value, or a name alone), q[Start:End].
	Raw        string
	Start, End int
	// RawName is its name as sent; Name the name decoded as a form parser
	// decodes it (Unescape).
	RawName, Name string
	// Semicolon: a ';' separates it from the parameter before it. Go's,
	// Node's and Envoy's parsers split at '&' only; some servers (older
	// Python and Java ones) also split at ';', so both separate here.
	Semicolon bool
}

// Each calls yield with every non-empty parameter of the raw query q, in
// order, split at '&' and at ';', until yield returns false.
func Each(q string, yield func(Param) bool) {
	semicolon := false
	for start := 0; start <= len(q); {
		end := start + strings.IndexAny(q[start:], "&;")
		if end < start {
			end = len(q)
		}
		if seg := q[start:end]; seg != "" {
			rawName, _, _ := strings.Cut(seg, "=")
			p := Param{Raw: seg, Start: start, End: end, RawName: rawName, Name: Unescape(rawName), Semicolon: semicolon}
			if !yield(p) {
				return
			}
		}
		semicolon = end < len(q) && q[end] == ';'
		start = end + 1
	}
}

// Unescape decodes a query component as the form parser does ("+" is a
// space), or returns it as is when it is not valid percent-encoding (the
// form parser then drops it).
func Unescape(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	if u, err := url.QueryUnescape(s); err == nil {
		return u
	}
	return s
}
