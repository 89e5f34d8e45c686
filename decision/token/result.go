// Package token verifies the credentials an MCP client presents (JWT access
// tokens, opaque tokens by introspection, API keys) and turns them into the
// input.token value that policies read.
package token

import (
	"encoding/json"
	"math"
	"strconv"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
)

// Error reasons, as policies see them in input.token.error.
const (
	ErrMissing       = "missing"
	ErrMalformed     = "malformed"
	ErrExpired       = "expired"
	ErrNotYetValid   = "not_yet_valid"
	ErrBadSignature  = "bad_signature"
	ErrUnknownKey    = "unknown_key"
	ErrWrongIssuer   = "wrong_issuer"
	ErrWrongAudience = "wrong_audience"
	ErrAlgNotAllowed = "alg_not_allowed"
	ErrInactive      = "inactive"    // introspection said active=false
	ErrUnavailable   = "unavailable" // keys or introspection could not be had
)

// Token types, as policies see them in input.token.type.
const (
	TypeJWT           = "jwt"
	TypeAPIKey        = "api_key"
	TypeIntrospection = "introspection"
	TypeEnvoy         = "envoy_metadata"
)

// Result is the outcome of verifying one credential. A Result is immutable
// once returned: caches hand the same *Result to many requests.
type Result struct {
	Present bool
	Valid   bool
	Error   string // one of the Err* reasons when !Valid
	// Detail says, for the logs and eval (never the caller), what Error
	// means for this credential and what to do: for wrong_audience, the
	// token's audience and the resource it should name. "" when there is
	// nothing to add.
	Detail string
	// Resource, for wrong_audience, is the resource (audience) the token
	// should have named: public, it is in the resource's metadata, so the
	// caller's error_description may say it.
	Resource string
	Type     string
	// Issuer is the configured issuer whose entry verified a JWT, so a
	// policy can tell several issuers apart; "" for other credentials and
	// for the entry that accepts any issuer.
	Issuer   string
	Subject  string
	ClientID string
	Scopes   []string
	Claims   map[string]any // only from a verified credential
	Expiry   time.Time      // zero when the credential has none

	// Value is input.token as a policy value: {present, valid, error?,
	// type?, issuer?, claims?, subject?, scopes, client_id?, binding?,
	// expires_at?}.
	// Built once per Result so a cached token costs no conversion per request.
	Value ast.Value
}

// HasScopes reports whether every scope in need is granted.
func (r *Result) HasScopes(need []string) bool {
	for _, n := range need {
		found := false
		for _, s := range r.Scopes {
			if s == n {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// Finish fills r.Value from the other fields and returns r. Every verifier
// calls it once, before the Result is returned or cached.
func (r *Result) Finish() *Result {
	items := make([][2]*ast.Term, 0, 10)
	items = append(items,
		ast.Item(ast.InternedTerm("present"), ast.InternedTerm(r.Present)),
		ast.Item(ast.InternedTerm("valid"), ast.InternedTerm(r.Valid)),
	)
	if r.Error != "" {
		items = append(items, ast.Item(ast.InternedTerm("error"), ast.StringTerm(r.Error)))
	}
	if r.Type != "" {
		items = append(items, ast.Item(ast.InternedTerm("type"), ast.StringTerm(r.Type)))
	}
	if r.Issuer != "" {
		items = append(items, ast.Item(ast.InternedTerm("issuer"), ast.StringTerm(r.Issuer)))
	}
	if r.Subject != "" {
		items = append(items, ast.Item(ast.InternedTerm("subject"), ast.StringTerm(r.Subject)))
	}
	if r.ClientID != "" {
		items = append(items, ast.Item(ast.InternedTerm("client_id"), ast.StringTerm(r.ClientID)))
	}
	scopes := make([]*ast.Term, len(r.Scopes))
	for i, s := range r.Scopes {
		scopes[i] = ast.StringTerm(s)
	}
	items = append(items, ast.Item(ast.InternedTerm("scopes"), ast.ArrayTerm(scopes...)))
	if r.Claims != nil {
		if v, err := ast.InterfaceToValue(integralNumbers(r.Claims)); err == nil {
			items = append(items, ast.Item(ast.InternedTerm("claims"), ast.NewTerm(v)))
		}
	}
	if r.Valid {
		if b := bindingTerm(r); b != nil {
			items = append(items, ast.Item(ast.InternedTerm("binding"), b))
		}
	}
	if !r.Expiry.IsZero() {
		items = append(items, ast.Item(ast.InternedTerm("expires_at"), ast.IntNumberTerm(int(r.Expiry.Unix()))))
	}
	r.Value = ast.NewObject(items...)
	return r
}

// integralNumbers returns v with whole float64 numbers turned into integer
// json.Numbers, so claims decoded as float64 (protobuf Struct, encoding/json
// without UseNumber) read as 1700000000 rather than 1.7e+09 in policies.
func integralNumbers(v any) any {
	switch x := v.(type) {
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return json.Number(strconv.FormatInt(int64(x), 10))
		}
		return x
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = integralNumbers(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = integralNumbers(e)
		}
		return out
	}
	return v
}
