package decision_test

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// TestCredentialElsewhere: the caller's bearer token never goes upstream
// (issue 27 rows 7 and 8, item 4): a request holding it anywhere but the
// Authorization header (which is removed) is refused with 400, whatever
// the policy says, and an access_token parameter is removed when every
// reader of the query finds it by that name, refused otherwise. The
// decision is what ext_authz hands Envoy and what the proxy forwards.
func TestCredentialElsewhere(t *testing.T) {
	const tok = "alice-0123456789-abcdefghij"
	e := decisiontest.NewEngine(t, policyDir(t, `package mcp.authz
default decision := {"allow": false}
decision := {"allow": true} if input.token.valid`), func(o *decision.Options) {
		o.Tokens = decisiontest.Tokens{tok: {"sub": "alice"}}
	})
	ping := `{"jsonrpc":"2.0","id":1,"method":"ping"}`
	tests := map[string]struct {
		path    string
		headers map[string]string
		body    string
		// refused: the reason names this place; "": allowed.
		refused string
		// removed: the query parameters removed upstream, on allow.
		removed []string
	}{
		"header_only":        {path: "/mcp?x=1"},
		"other_token_query":  {path: "/mcp?x=1&access_token=someone-else", removed: []string{"access_token"}},
		"query_literal":      {path: "/mcp?access_token=" + tok, refused: "the query string"},
		"query_semicolon":    {path: "/mcp?x=1;access_token=" + tok, refused: "access_token parameter"},
		"query_escaped_name": {path: "/mcp?access%5Ftoken=" + tok, refused: "access_token parameter"},
		"query_escaped_a":    {path: "/mcp?%61ccess_token=" + tok, refused: "access_token parameter"},
		"other_name":         {path: "/mcp?t=" + url.QueryEscape(tok), refused: "the query string"},
		"path":               {path: "/mcp/" + tok, refused: "the path"},
		"cookie":             {path: "/mcp", headers: map[string]string{"cookie": "a=b; t=" + tok}, refused: "header cookie"},
		"referer":            {path: "/mcp", headers: map[string]string{"referer": "https://app/?access_token=" + tok}, refused: "header referer"},
		"any_header":         {path: "/mcp", headers: map[string]string{"x-forward-me": "Bearer " + tok}, refused: "header x-forward-me"},
		"body":               {path: "/mcp", body: `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + tok + `"}}}`, refused: "the body"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			h := map[string]string{"authorization": "Bearer " + tok, "content-type": "application/json"}
			for k, v := range tc.headers {
				h[k] = v
			}
			body := tc.body
			if body == "" {
				body = ping
			}
			d := e.Decide(context.Background(), &decision.Request{Method: "POST", Path: tc.path, Headers: h, Body: []byte(body)})
			if tc.refused == "" {
				if !d.Allow || !slices.Equal(d.RemoveQueryParams, tc.removed) {
					t.Fatalf("allow %v (%s), query parameters removed %q, want allowed removing %q", d.Allow, d.Reason, d.RemoveQueryParams, tc.removed)
				}
				return
			}
			if d.Allow || d.Status != 400 || !strings.Contains(d.Reason, tc.refused) || !strings.Contains(string(d.Body), "-32600") {
				t.Fatalf("allow %v, status %d, reason %q, body %s; want 400 naming %q", d.Allow, d.Status, d.Reason, d.Body, tc.refused)
			}
			if strings.Contains(d.Reason, tok) || strings.Contains(string(d.Body), tok) {
				t.Errorf("the refusal shows the token: %q %s", d.Reason, d.Body)
			}
		})
	}
}
