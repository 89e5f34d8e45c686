package main

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// TestConfigIssuersErrorsNameTheKey: tokens.issuers excludes the
// single-issuer keys, and each entry's mistakes name the entry.
func TestConfigIssuersErrorsNameTheKey(t *testing.T) {
	tests := map[string]configErrorCase{
		"with_issuer":          {"tokens: {issuer: 'https://a', issuers: [{issuer: 'https://b'}]}", "tokens.issuer"},
		"with_jwks_file":       {"tokens: {jwks_file: a.json, issuers: [{issuer: 'https://b'}]}", "tokens.jwks_file"},
		"with_jwks_url":        {"tokens: {jwks_url: 'https://a/jwks', issuers: [{issuer: 'https://b'}]}", "tokens.jwks_url"},
		"entry_without_issuer": {"tokens: {issuers: [{jwks_file: a.json}]}", "tokens.issuers[0].issuer"},
		"issuer_twice":         {"tokens: {issuers: [{issuer: 'https://a'}, {issuer: 'https://a'}]}", "tokens.issuers[1].issuer"},
		"development_issuer":   {"tokens: {issuers: [{issuer: mcpauthz-dev}]}", "tokens.issuers[0].issuer"},
		"two_key_places":       {"tokens: {issuers: [{issuer: 'https://a', jwks_file: a.json, discovery: true}]}", "tokens.issuers[0]"},
		"jwks_url_not_http":    {"tokens: {issuers: [{issuer: 'https://a', jwks_url: 'ftp://a'}]}", "tokens.issuers[0].jwks_url"},
		"hmac_algorithm":       {"tokens: {issuers: [{issuer: 'https://a', algorithms: [HS256]}]}", "tokens.issuers[0].algorithms"},
		"huge_skew":            {"tokens: {issuers: [{issuer: 'https://a', clock_skew: 1h}]}", "tokens.issuers[0].clock_skew"},
		"bad_skew":             {"tokens: {issuers: [{issuer: 'https://a', clock_skew: soon}]}", "tokens.issuers[0].clock_skew"},
		"unknown_mapping_key":  {"tokens: {issuers: [{issuer: 'https://a', claims_mapping: {subjekt: x}}]}", "subjekt"},
	}
	checkConfigErrors(t, tests)
}

// issuersTestKey is an RSA signing key and the JWKS file publishing it.
type issuersTestKey struct {
	kid  string
	priv *rsa.PrivateKey
	jwks string
}

func newIssuersTestKey(t *testing.T, kid string) issuersTestKey {
	t.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	set := jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: kid, Algorithm: "RS256", Use: "sig"}}}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), kid+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return issuersTestKey{kid: kid, priv: priv, jwks: path}
}

func (k issuersTestKey) sign(t *testing.T, claims jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = k.kid
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestConfigSeveralIssuers follows tokens.issuers from the YAML file to
// the policy input: each issuer's tokens verify with its own keys, the
// second maps its subject and scopes from other claims, and
// input.token.issuer says which issuer it was.
func TestConfigSeveralIssuers(t *testing.T) {
	a, b := newIssuersTestKey(t, "key-a"), newIssuersTestKey(t, "key-b")
	const issA, issB = "https://a.example.com", "https://b.example.com"
	yaml := fmt.Sprintf(`resource: {uri: 'https://mcp.example.com/mcp'}
tokens:
  issuers:
  - {issuer: %q, jwks_file: %q}
  - issuer: %q
    jwks_file: %q
    audience: 'https://mcp.example.com/b'
    claims_mapping: {subject: client_id, scopes: roles}
`, issA, a.jwks, issB, b.jwks)
	cfg, err := LoadConfig(writeConfig(t, yaml))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	app, err := buildApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer app.close()
	if err := app.bundles.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()

	tests := map[string]struct {
		raw         string
		wantError   string
		wantIssuer  string
		wantSubject string
	}{
		"issuer_a": {
			raw:        a.sign(t, jwt.MapClaims{"iss": issA, "aud": cfg.Resource.URI, "sub": "alice", "exp": exp}),
			wantIssuer: issA, wantSubject: "alice",
		},
		"issuer_b_mapped": {
			raw: b.sign(t, jwt.MapClaims{"iss": issB, "aud": "https://mcp.example.com/b", "sub": "x-1",
				"client_id": "svc-b", "roles": []string{"files:read"}, "exp": exp}),
			wantIssuer: issB, wantSubject: "svc-b",
		},
		"issuer_a_signed_by_b": {
			raw:       b.sign(t, jwt.MapClaims{"iss": issA, "aud": cfg.Resource.URI, "sub": "alice", "exp": exp}),
			wantError: token.ErrUnknownKey,
		},
		"unknown_issuer": {
			raw:       a.sign(t, jwt.MapClaims{"iss": "https://c.example.com", "aud": cfg.Resource.URI, "sub": "alice", "exp": exp}),
			wantError: token.ErrWrongIssuer,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
				Headers: map[string]string{"content-type": "application/json", "authorization": "Bearer " + tc.raw},
				Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)}
			inputs, stopped := app.engine.Inputs(ctx, r)
			if stopped != nil {
				t.Fatalf("stopped before the policy: %s", stopped.Reason)
			}
			tok, ok := inputs[0].(ast.Object).Get(ast.StringTerm("token")).Value.(ast.Object)
			if !ok {
				t.Fatal("input.token is not an object")
			}
			str := func(name string) string {
				if v := tok.Get(ast.StringTerm(name)); v != nil {
					if s, ok := v.Value.(ast.String); ok {
						return string(s)
					}
				}
				return ""
			}
			if got := str("error"); got != tc.wantError {
				t.Fatalf("input.token.error %q, want %q", got, tc.wantError)
			}
			if str("issuer") != tc.wantIssuer || str("subject") != tc.wantSubject {
				t.Errorf("input.token.issuer %q subject %q, want %q %q", str("issuer"), str("subject"), tc.wantIssuer, tc.wantSubject)
			}
		})
	}
}
