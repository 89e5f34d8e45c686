package decision_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/mcptest"
)

// TestUpstreamHeaderNames: the headers a policy can set upstream are read
// from its text and data when it loads, so the proxy can strip them from
// every client request, even one the policy sets none for (issue 27 row
// 11).
func TestUpstreamHeaderNames(t *testing.T) {
	shipped := filepath.Join("..", "policies")
	tests := map[string]struct {
		dir  string
		rego string
		want []string
	}{
		"shipped_policy_data_default": {dir: shipped, want: []string{"x-mcp-subject"}},
		"mcptest_literal":             {dir: mcptest.PolicyDir(), want: []string{"x-mcp-subject"}},
		"partial_object_rule": {rego: `package mcp.authz
decision := {"allow": true, "headers": hs}
hs["X-Tenant"] := "a"
hs[name] := "b" if name := role_header
role_header := "x-role"`, want: []string{"x-role", "x-tenant"}},
		"else_and_union": {rego: `package mcp.authz
decision := {"allow": true, "headers": {"x-a": "1"}} if input.x else := {"allow": true, "headers": {"x-b": "2"}}
response := {"headers": object.union({"x-c": "1"}, {})}`, want: []string{"x-a", "x-b", "x-c"}},
		"from_input": {rego: `package mcp.authz
decision := {"allow": true, "headers": {input.h: "1"}}`, want: []string{}},
		"none": {rego: `package mcp.authz
allow := true`, want: []string{}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := tc.dir
			if dir == "" {
				dir = t.TempDir()
				if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(tc.rego), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got := decisiontest.NewEngine(t, dir, nil).UpstreamHeaderNames()
			if !slices.Equal(got, tc.want) {
				t.Fatalf("UpstreamHeaderNames() = %q, want %q", got, tc.want)
			}
		})
	}
}
