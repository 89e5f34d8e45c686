package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// APIKeyPrefix starts every API key (personal access token), so that a key is
// recognisable at a glance, by secret scanners, and by the verifier's
// dispatch. Its value is internal/redact's, which erases keys wherever
// they appear.
const APIKeyPrefix = redact.APIKeyPrefix

const (
	// apiKeyRandomBytes is the entropy of a key: 256 bits.
	apiKeyRandomBytes = 32
	// apiKeyLen is the exact length of a key: the prefix and 32 bytes in
	// unpadded base64url (43 characters).
	apiKeyLen = len(APIKeyPrefix) + (apiKeyRandomBytes*8+5)/6
)

// apiKeyEntryFields are the fields an entry of the api_keys document may
// carry. Unknown fields are rejected because a misspelt "expires_at" or
// "disabled" would otherwise silently make a key live forever.
var apiKeyEntryFields = map[string]bool{
	"sub": true, "scopes": true, "team": true, "expires_at": true,
	"client_id": true, "disabled": true,
	// Free-form bookkeeping that bundle authors commonly keep beside a key.
	"name": true, "description": true, "created_at": true,
}

// APIKeys is an immutable index of API keys, built once per policy snapshot
// from the bundle document at data.mcpauthz.api_keys. It holds only SHA-256
// hashes of keys, never the keys themselves. A nil *APIKeys is an empty
// index.
type APIKeys struct {
	byHash map[[sha256.Size]byte]*apiKeyEntry
	// equal compares the hash of a presented key with the stored one. It is
	// apiKeyHashEqual; a field so that tests can prove it is the comparison
	// that decides.
	equal func(x, y [sha256.Size]byte) bool
	// expired and disabled are the outcomes of every expired or disabled
	// key: the same for all, so built once per index.
	expired, disabled *Result
}

// apiKeyHashEqual compares two hashes in constant time. The arrays are passed
// by value so that the computed hash stays on the stack.
func apiKeyHashEqual(x, y [sha256.Size]byte) bool {
	return subtle.ConstantTimeCompare(x[:], y[:]) == 1
}

// apiKeyEntry is one key of the index. Its valid outcome (a policy value of
// a few kilobytes) is built on the key's first use and then shared, so
// that a verification allocates nothing after the first and an index of
// many keys, most of them idle, holds only their fields: Results are
// immutable and may be shared.
type apiKeyEntry struct {
	hash     [sha256.Size]byte
	expires  time.Time
	disabled bool
	sub      string
	team     string
	clientID string
	scopes   []string
	valid    atomic.Pointer[Result]
}

// validResult is the entry's valid outcome, built on first use (two
// goroutines racing build equal Results; one is kept).
func (e *apiKeyEntry) validResult() *Result {
	if r := e.valid.Load(); r != nil {
		return r
	}
	claims := map[string]any{
		"sub":   e.sub,
		"scope": strings.Join(e.scopes, " "),
		"team":  e.team,
	}
	if e.clientID != "" {
		claims["client_id"] = e.clientID
	}
	if !e.expires.IsZero() {
		claims["exp"] = e.expires.Unix()
	}
	r := (&Result{
		Present:  true,
		Valid:    true,
		Type:     TypeAPIKey,
		Subject:  e.sub,
		ClientID: e.clientID,
		Scopes:   e.scopes,
		Claims:   claims,
		Expiry:   e.expires,
	}).Finish()
	if e.valid.CompareAndSwap(nil, r) {
		return r
	}
	return e.valid.Load()
}

// Len reports how many keys the index holds.
func (k *APIKeys) Len() int {
	if k == nil {
		return 0
	}
	return len(k.byHash)
}

// ParseAPIKeys builds the index from the api_keys document: an object keyed
// by the lowercase hex SHA-256 of each key, each value
// {"sub", "scopes"?, "team"?, "expires_at"? (RFC 3339), "client_id"?,
// "disabled"?}. doc is decoded JSON (map[string]any) or an OPA ast.Value
// (as an inmem store returns with AST reads on); nil or absent gives an empty
// index. An invalid entry fails the whole document, so a bundle with a bad
// key list is rejected at load rather than half applied.
func ParseAPIKeys(doc any) (*APIKeys, error) {
	keys := &APIKeys{
		byHash:   map[[sha256.Size]byte]*apiKeyEntry{},
		equal:    apiKeyHashEqual,
		expired:  apiKeyFailure(ErrExpired),
		disabled: apiKeyFailure(ErrInactive),
	}
	obj, err := apiKeyDocument(doc)
	if err != nil {
		return nil, err
	}
	// Sorted so that the error for a document with several bad entries is
	// always about the same one.
	names := make([]string, 0, len(obj))
	for h := range obj {
		names = append(names, h)
	}
	sort.Strings(names)
	for _, h := range names {
		e, err := parseAPIKeyEntry(h, obj[h])
		if err != nil {
			return nil, fmt.Errorf("api_keys entry %q: %w", h, err)
		}
		keys.byHash[e.hash] = e
	}
	return keys, nil
}

// apiKeyDocument turns the accepted document forms into a Go object.
func apiKeyDocument(doc any) (map[string]any, error) {
	switch d := doc.(type) {
	case nil:
		return nil, nil
	case map[string]any:
		return d, nil
	case *ast.Term:
		if d == nil {
			return nil, nil
		}
		return apiKeyDocument(d.Value)
	case ast.Null:
		return nil, nil
	case ast.Value:
		// ast.JSON turns objects into map[string]any, arrays into []any and
		// numbers into json.Number: the same shapes the entry parser reads.
		j, err := ast.JSON(d)
		if err != nil {
			return nil, fmt.Errorf("api_keys document: converting policy value: %w", err)
		}
		if j == nil {
			return nil, nil
		}
		m, ok := j.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("api_keys document: want an object keyed by key hash, got %s", ast.ValueName(d))
		}
		return m, nil
	default:
		return nil, fmt.Errorf("api_keys document: want an object keyed by key hash, got %T", doc)
	}
}

// parseAPIKeyEntry validates one entry.
func parseAPIKeyEntry(name string, v any) (*apiKeyEntry, error) {
	if len(name) != 2*sha256.Size || strings.ToLower(name) != name {
		return nil, errors.New("key must be the lowercase hex SHA-256 of the API key (64 characters)")
	}
	e := &apiKeyEntry{}
	if _, err := hex.Decode(e.hash[:], []byte(name)); err != nil {
		return nil, errors.New("key must be the lowercase hex SHA-256 of the API key (64 characters)")
	}
	fields, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("want an object, got %T", v)
	}
	for f := range fields {
		if !apiKeyEntryFields[f] {
			return nil, fmt.Errorf("unknown field %q", f)
		}
	}
	sub, err := apiKeyString(fields, "sub")
	if err != nil {
		return nil, err
	}
	if sub == "" {
		return nil, errors.New(`"sub" is required`)
	}
	team, err := apiKeyString(fields, "team")
	if err != nil {
		return nil, err
	}
	clientID, err := apiKeyString(fields, "client_id")
	if err != nil {
		return nil, err
	}
	scopes, err := apiKeyScopes(fields["scopes"])
	if err != nil {
		return nil, err
	}
	disabled := false
	if d, ok := fields["disabled"]; ok && d != nil {
		b, ok := d.(bool)
		if !ok {
			return nil, fmt.Errorf(`"disabled": want a boolean, got %T`, d)
		}
		disabled = b
	}
	exp, err := apiKeyString(fields, "expires_at")
	if err != nil {
		return nil, err
	}
	if exp != "" {
		t, err := time.Parse(time.RFC3339, exp)
		if err != nil {
			return nil, fmt.Errorf(`"expires_at": want an RFC 3339 time: %w`, err)
		}
		e.expires = t
	}

	e.sub, e.team, e.clientID, e.scopes, e.disabled = sub, team, clientID, scopes, disabled
	return e, nil
}

// apiKeyString reads an optional string field; JSON null counts as absent.
func apiKeyString(fields map[string]any, name string) (string, error) {
	v, ok := fields[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("%q: want a string, got %T", name, v)
	}
	return s, nil
}

// apiKeyScopes reads the scopes list. A scope may not be empty nor contain
// whitespace, since the "scope" claim joins them with spaces.
func apiKeyScopes(v any) ([]string, error) {
	var raw []string
	switch s := v.(type) {
	case nil:
		return []string{}, nil
	case []string:
		raw = s
	case []any:
		raw = make([]string, len(s))
		for i, x := range s {
			str, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf(`"scopes"[%d]: want a string, got %T`, i, x)
			}
			raw[i] = str
		}
	default:
		return nil, fmt.Errorf(`"scopes": want an array of strings, got %T`, v)
	}
	out := make([]string, len(raw))
	for i, s := range raw {
		if err := apiKeyCheckScope(s); err != nil {
			return nil, fmt.Errorf(`"scopes"[%d]: %w`, i, err)
		}
		out[i] = s
	}
	return out, nil
}

// apiKeyCheckScope accepts the scope-token characters of RFC 6749 §3.3.
func apiKeyCheckScope(s string) error {
	if s == "" {
		return errors.New("empty scope")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c == '"' || c == '\\' || c > 0x7e {
			return fmt.Errorf("scope %q: character %q not allowed", s, c)
		}
	}
	return nil
}

// apiKeyFailure builds the invalid Result for a presented key.
func apiKeyFailure(reason string) *Result {
	return (&Result{Present: true, Valid: false, Error: reason, Type: TypeAPIKey}).Finish()
}

// apiKeyWellFormed checks the prefix, the exact length and the base64url
// alphabet, before anything is hashed.
func apiKeyWellFormed(raw string) bool {
	if len(raw) != apiKeyLen || !strings.HasPrefix(raw, APIKeyPrefix) {
		return false
	}
	for i := len(APIKeyPrefix); i < len(raw); i++ {
		c := raw[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_':
		default:
			return false
		}
	}
	return true
}

// Verify checks a presented API key against the index at time now. The
// outcome is a Finished Result of Type "api_key": valid with the entry's
// subject, scopes, client id and claims {"sub", "scope", "team",
// "client_id"?, "exp"?}; or invalid with Error "missing" (empty raw),
// "malformed" (wrong prefix, length or alphabet), "unknown_key" (not in the
// index, including a nil index), "expired" or "inactive" (disabled). The
// key itself never appears in a Result, an error or a log.
func (k *APIKeys) Verify(raw string, now time.Time) *Result {
	if raw == "" {
		return (&Result{Present: false, Valid: false, Error: ErrMissing, Type: TypeAPIKey}).Finish()
	}
	if !apiKeyWellFormed(raw) {
		return apiKeyFailure(ErrMalformed)
	}
	if k == nil {
		return apiKeyFailure(ErrUnknownKey)
	}
	// Copy into a fixed array so that hashing does not allocate.
	var buf [apiKeyLen]byte
	copy(buf[:], raw)
	sum := sha256.Sum256(buf[:])
	e, ok := k.byHash[sum]
	// The map lookup already matched, but its comparison may stop at the
	// first differing byte; the decision rests on a constant-time compare of
	// the whole hash instead, so timing reveals nothing about stored hashes.
	if !ok || !k.equal(sum, e.hash) {
		return apiKeyFailure(ErrUnknownKey)
	}
	switch {
	case e.disabled:
		// A disabled key answers "inactive" whatever its expiry: the
		// operator turned it off, and that is the more useful reason.
		return k.disabled
	case !e.expires.IsZero() && !now.Before(e.expires):
		return k.expired
	}
	return e.validResult()
}

// GenerateAPIKey makes a new random API key for sub and returns the key (show
// it once to its owner, then forget it), its lowercase hex SHA-256 (the name
// of its entry in data.mcpauthz.api_keys) and the entry itself, ready to be
// marshalled into the bundle's data. A zero expires means no expiry.
func GenerateAPIKey(sub string, scopes []string, team string, expires time.Time) (key, hash string, entry map[string]any, err error) {
	if sub == "" {
		return "", "", nil, errors.New("generating API key: subject is required")
	}
	for i, s := range scopes {
		if err := apiKeyCheckScope(s); err != nil {
			return "", "", nil, fmt.Errorf("generating API key: scopes[%d]: %w", i, err)
		}
	}
	var secret [apiKeyRandomBytes]byte
	if _, err := rand.Read(secret[:]); err != nil {
		return "", "", nil, fmt.Errorf("generating API key: reading randomness: %w", err)
	}
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(secret[:])
	sum := sha256.Sum256([]byte(key))
	hash = hex.EncodeToString(sum[:])
	entry = map[string]any{
		"sub":    sub,
		"scopes": append([]string{}, scopes...),
	}
	if team != "" {
		entry["team"] = team
	}
	if !expires.IsZero() {
		entry["expires_at"] = expires.UTC().Format(time.RFC3339)
	}
	return key, hash, entry, nil
}
