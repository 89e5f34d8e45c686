package token

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// Checks on a JWS that github.com/golang-jwt/jwt does not make: member names
// that two JSON parsers could read differently, critical extensions we do
// not understand, and the media type in typ.

// Errors of the structural checks; every one makes the token malformed.
var (
	errDuplicateMember = errors.New("duplicate member name")
	errFoldedMember    = errors.New("member names equal under case folding")
	errNotOneObject    = errors.New("not exactly one JSON object")
	errNotOneReading   = errors.New("JSON that readers read differently")
	errCrit            = errors.New("crit header: no extension is understood")
	errTyp             = errors.New("typ header is not the required media type")
)

// checkSegments checks the JOSE header and the claims of raw, a JWS compact
// serialization, with checkMembers, as the Verifier's JWT source does.
func (v *Verifier) checkSegments(raw string) error { return checkSegments(v.parser, raw) }

// checkSegments checks the JOSE header and the claims of raw, a JWS compact
// serialization, with checkMembers. It decodes the segments as parser (the
// one jwt verifies with) will, so both read the same bytes. It runs on a
// cache miss only: a cached token's bytes passed it before.
func checkSegments(parser *jwt.Parser, raw string) error {
	header, rest, _ := strings.Cut(raw, ".")
	payload, _, _ := strings.Cut(rest, ".")
	for _, seg := range [...]struct{ name, text string }{{"header", header}, {"claims", payload}} {
		data, err := parser.DecodeSegment(seg.text)
		if err != nil {
			return fmt.Errorf("decoding the %s: %w", seg.name, err)
		}
		if err := checkMembers(data); err != nil {
			return fmt.Errorf("the %s: %w", seg.name, err)
		}
	}
	return nil
}

// memberFrame is one open object or array in checkMembers.
type memberFrame struct {
	object  bool
	wantKey bool              // in an object: the next token is a member name
	names   map[string]string // in an object: seen names (folded at the top level) to the name as written
}

// checkMembers refuses data unless it is exactly one JSON object in which
// no object, at any depth, names a member twice, and no two top-level
// member names are equal under Unicode simple case folding ("sub" and
// "Sub"), and unless mcp.ReadJSON reads it (no invalid UTF-8, no lone
// surrogate, no fold-equal names at any depth, the number rule). Duplicates are ambiguous: encoding/json keeps the last, other
// parsers the first, and Go structs match names without regard to case,
// so a policy, a proxy and an audit tool could each see a different token.
func checkMembers(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	// As jwt decodes claims: a number too large for a float64 is not an
	// error here either.
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return err
	}
	if tok != json.Delim('{') {
		return errNotOneObject
	}
	stack := []memberFrame{{object: true, wantKey: true, names: map[string]string{}}}
	for len(stack) > 0 {
		if tok, err = dec.Token(); err != nil {
			return err
		}
		top := &stack[len(stack)-1]
		if top.object && top.wantKey {
			if tok == json.Delim('}') {
				stack = valueDone(stack[:len(stack)-1])
				continue
			}
			name := tok.(string) // the decoder allows nothing else here
			key := name
			if len(stack) == 1 {
				key = foldName(name)
			}
			if first, ok := top.names[key]; ok {
				if first == name {
					return fmt.Errorf("%w %q", errDuplicateMember, name)
				}
				return fmt.Errorf("%w: %q and %q", errFoldedMember, first, name)
			}
			top.names[key] = name
			top.wantKey = false
			continue
		}
		switch tok {
		case json.Delim('{'):
			stack = append(stack, memberFrame{object: true, wantKey: true, names: map[string]string{}})
		case json.Delim('['):
			stack = append(stack, memberFrame{})
		case json.Delim(']'):
			stack = valueDone(stack[:len(stack)-1])
		default:
			stack = valueDone(stack)
		}
	}
	// Trailing data would be ignored by a streaming decoder, as jwt's is
	// for the claims; refuse it.
	if _, err := dec.Token(); err != io.EOF {
		return errNotOneObject
	}
	// Then the rules every MCP body is read with (docs/security.md, "One
	// reading of every message"), which the token decoder cannot see: a
	// string with invalid UTF-8 or a lone surrogate escape (encoding/json,
	// and so jwt, turns it into U+FFFD: a subject "alice\xff" would be
	// "alice\ufffd" to the policy and something else to the next reader),
	// names equal under case folding in nested objects, control characters
	// in names, and numbers that are not exactly the double a reader gets.
	if _, err := mcp.ReadJSON(data); err != nil {
		return fmt.Errorf("%w: %v", errNotOneReading, err)
	}
	return nil
}

// valueDone records that a member value ended in the innermost open object,
// if that is what stack ends with, and returns stack.
func valueDone(stack []memberFrame) []memberFrame {
	if n := len(stack); n > 0 && stack[n-1].object {
		stack[n-1].wantKey = true
	}
	return stack
}

// foldName maps s to one representative of its class under Unicode simple
// case folding (the folding strings.EqualFold uses): each rune becomes the
// least rune of its folding orbit, so "sub", "SUB" and "ſub" (long s) all
// map to "SUB".
func foldName(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

// checkHeader applies the header rules jwt leaves to us: no crit, and the
// required typ when there is one. Duplicate names were refused before jwt
// decoded the header, so h holds every member as written.
func (j *jwtIssuer) checkHeader(h map[string]any) error {
	// RFC 7515 §4.1.11: a recipient must refuse a JWS whose crit names an
	// extension it does not understand; we understand none, so any crit
	// (even an empty or invalid one) is refused.
	if _, ok := h["crit"]; ok {
		return errCrit
	}
	if j.requiredTyp == "" {
		return nil
	}
	typ, ok := h["typ"].(string)
	if !ok || !typMatches(typ, j.requiredTyp) {
		return fmt.Errorf("%w %q", errTyp, j.requiredTyp)
	}
	return nil
}

// mediaTypePrefix is the part of a media type RFC 7515 §4.1.9 lets typ omit.
const mediaTypePrefix = "application/"

// typMatches reports whether the typ header got names the media type want
// (a full type/subtype, as fullTyp returns). Media types compare without
// regard to case, and a typ without "/" means "application/" + typ.
func typMatches(got, want string) bool {
	if strings.Contains(got, "/") {
		return strings.EqualFold(got, want)
	}
	return len(want) > len(mediaTypePrefix) &&
		strings.EqualFold(want[:len(mediaTypePrefix)], mediaTypePrefix) &&
		strings.EqualFold(got, want[len(mediaTypePrefix):])
}

// fullTyp returns typ with the "application/" prefix RFC 7515 §4.1.9 lets
// it omit.
func fullTyp(typ string) string {
	if strings.Contains(typ, "/") {
		return typ
	}
	return mediaTypePrefix + typ
}

// CheckRequiredTyp reports whether typ may be Options.RequiredTyp: a media
// type such as "at+jwt" or "application/at+jwt" (RFC 6838 names, no
// parameters). "" (no requirement) is valid.
func CheckRequiredTyp(typ string) error {
	if typ == "" {
		return nil
	}
	parts := strings.Split(typ, "/")
	if len(parts) > 2 {
		return fmt.Errorf("media type %q has more than one %q", typ, "/")
	}
	for _, p := range parts {
		if !restrictedName(p) {
			return fmt.Errorf("%q is not a media type (RFC 6838 names, no parameters)", typ)
		}
	}
	return nil
}

// restrictedName reports whether s is an RFC 6838 restricted-name: 1 to
// 127 characters, a letter or digit first, then letters, digits and
// !#$&-^_.+ only.
func restrictedName(s string) bool {
	if s == "" || len(s) > 127 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case i > 0 && strings.IndexByte("!#$&-^_.+", c) >= 0:
		default:
			return false
		}
	}
	return true
}
