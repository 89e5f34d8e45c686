package extauthz_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/dpop/dpoptest"
	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/internal/envoytest"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// TestDPoPURIFromCheck: the URI a DPoP proof must name comes from the
// CheckRequest Envoy sends (its scheme, :authority and :path, never
// x-forwarded-proto), or from tokens.dpop.htu when TLS ended before Envoy
// and Envoy sees http where the client used https (issue 23 item 2).
func TestDPoPURIFromCheck(t *testing.T) {
	const public = "https://mcp.example.com/mcp"
	client, err := dpoptest.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	claims := map[string]any{"iss": "https://auth.example.com", "aud": decisiontest.Resource, "sub": "agent",
		"exp": float64(4102444800), "cnf": map[string]any{"jkt": client.JKT}}
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte("package mcp.authz\n\ndecision := {\"allow\": input.token.valid}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		scheme, authority, htu, proofURI string
		xfp                              string // x-forwarded-proto the client sent
		allow                            bool
	}{
		"same_scheme":                  {scheme: "https", authority: "mcp.example.com", proofURI: public, allow: true},
		"authority_with_default_port":  {scheme: "https", authority: "mcp.example.com:443", proofURI: public, allow: true},
		"internal_http_refused":        {scheme: "http", authority: "mcp.example.com", proofURI: public},
		"internal_http_htu_set":        {scheme: "http", authority: "10.0.0.7:8080", htu: public, proofURI: public, allow: true},
		"htu_set_internal_uri_refused": {scheme: "http", authority: "10.0.0.7:8080", htu: public, proofURI: "http://10.0.0.7:8080/mcp"},
		"forwarded_proto_not_trusted":  {scheme: "http", authority: "mcp.example.com", xfp: "https", proofURI: public},
		"other_authority":              {scheme: "https", authority: "evil.example.com", proofURI: public},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c, err := dpop.New(dpop.Options{Replay: state.NewMemory(10, nil), HTU: tc.htu})
			if err != nil {
				t.Fatal(err)
			}
			e := decisiontest.NewEngine(t, dir, func(o *decision.Options) {
				o.Tokens, o.DPoP = decisiontest.Tokens{"bound": claims}, c
			})
			hs := envoytest.H("Authorization", "DPoP bound", "DPoP", client.Proof("POST", tc.proofURI, "bound"), "Content-Type", "application/json")
			if tc.xfp != "" {
				hs = append(hs, envoytest.Header{Name: "X-Forwarded-Proto", Value: tc.xfp})
			}
			req := envoytest.Request{Scheme: tc.scheme, Authority: tc.authority, Headers: hs,
				Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)}.CheckRequest()
			d := e.Decide(context.Background(), extauthz.RequestFromCheck(req, nil))
			if d.Allow != tc.allow || (!tc.allow && d.Code != decision.CodeInvalidDPoPProof) {
				t.Fatalf("allow %v, %d %s (%s); want allow %v", d.Allow, d.Status, d.Code, d.Reason, tc.allow)
			}
		})
	}
}
