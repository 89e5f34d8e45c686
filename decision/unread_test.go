package decision_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// policyDir writes one Rego module to a new bundle directory.
func policyDir(t *testing.T, rego string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestRefuseUnread: a request without a credential is refused before its
// body is read exactly when no request without one can be allowed (issue
// 27 row 9): the policy's allow needs a valid token on every path.
func TestRefuseUnread(t *testing.T) {
	tests := map[string]struct {
		rego    string
		path    string // default /mcp
		refused bool
	}{
		"token_on_every_path": {refused: true, rego: `package mcp.authz
default decision := {"allow": false}
decision := {"allow": true} if { input.token.valid; input.mcp.method == "ping" }
decision := {"allow": true} if { input.token.valid; input.http.method == "GET" }`},
		"allow_rule_only": {refused: true, rego: `package mcp.authz
allow if { input.token.valid == true; input.mcp.method in {"ping", "tools/list"} }`},
		"anonymous_initialize": {refused: false, rego: `package mcp.authz
default decision := {"allow": false}
decision := {"allow": true} if input.mcp.method == "initialize"
decision := {"allow": true} if { input.token.valid; input.mcp.method == "ping" }`},
		"anonymous_by_header": {refused: false, rego: `package mcp.authz
default allow := false
allow if input.http.headers["x-internal"] == "yes"`},
		"whole_input": {refused: false, rego: `package mcp.authz
default allow := false
allow if count(input) > 3`},
		"always": {refused: false, rego: `package mcp.authz
allow := true`},
		"policy_status": {refused: true, path: "/mcp?access_token=x", rego: `package mcp.authz
default decision := {"allow": false}
decision := {"allow": false, "status": 400, "reason": "no tokens in the query"} if input.http.access_token_in_query
decision := {"allow": true} if { input.token.valid; not input.http.access_token_in_query }`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := decisiontest.NewEngine(t, policyDir(t, tc.rego), nil)
			path := tc.path
			if path == "" {
				path = "/mcp"
			}
			r := &decision.Request{Method: "POST", Path: path, Headers: map[string]string{"content-type": "application/json"}}
			d := e.RefuseUnread(context.Background(), r)
			if (d != nil) != tc.refused {
				t.Fatalf("refused %v, want %v", d != nil, tc.refused)
			}
			if d != nil {
				// The answer is the one Decide gives the whole request.
				whole := *r
				whole.Body = []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
				full := e.Decide(context.Background(), &whole)
				if d.Allow || d.Status != full.Status || d.Code != full.Code {
					t.Errorf("refused unread with %d %s (%s), Decide answers %d %s (%s)", d.Status, d.Code, d.Reason, full.Status, full.Code, full.Reason)
				}
			}
			// Anything that could be a credential makes the body needed.
			withToken := &decision.Request{Method: "POST", Path: "/mcp", Headers: map[string]string{"authorization": "Bearer x"}}
			verified := &decision.Request{Method: "POST", Path: "/mcp", Credential: token.Claimed(map[string]any{"sub": "a"})}
			for _, r := range []*decision.Request{withToken, verified} {
				if d := e.RefuseUnread(context.Background(), r); d != nil {
					t.Errorf("a request with a credential was refused unread: %s", d.Reason)
				}
			}
		})
	}
	t.Run("dry_run", func(t *testing.T) {
		e := decisiontest.NewEngine(t, policyDir(t, tests["allow_rule_only"].rego), func(o *decision.Options) { o.DryRun = true })
		if d := e.RefuseUnread(context.Background(), &decision.Request{Method: "POST", Path: "/mcp"}); d != nil {
			t.Errorf("dry run refused a request unread: %s", d.Reason)
		}
	})
}
