// Package requests_test checks the sample requests for `mcpauthz eval
// --request`: each reads as the eval command reads it, and each gets the
// decision its name promises from the real engine, on the default policy and
// on the parameter-rules example bundle.
package requests_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/requestfile"
)

// outcome is what a sample should get from one policy.
type outcome struct {
	allow  bool
	reason string   // substring of the deny reason
	scopes []string // nil: not checked
}

func (o outcome) check(d *decision.Decision) error {
	if d.Allow != o.allow {
		return fmt.Errorf("allow = %v (code %s, reason %q, errors %v), want %v", d.Allow, d.Code, d.Reason, d.Errors, o.allow)
	}
	if !o.allow && (d.Reason == "" || !strings.Contains(d.Reason, o.reason)) {
		return fmt.Errorf("reason %q does not contain %q", d.Reason, o.reason)
	}
	if o.scopes != nil && !slices.Equal(d.Scopes, o.scopes) {
		return fmt.Errorf("scopes = %v, want %v", d.Scopes, o.scopes)
	}
	if o.allow && !slices.Contains(d.UpstreamHeaders, decision.Header{Name: "x-mcp-subject", Value: "alice"}) {
		return fmt.Errorf("upstream headers = %v, want x-mcp-subject: alice", d.UpstreamHeaders)
	}
	return nil
}

func TestSamples(t *testing.T) {
	def := decisiontest.NewEngine(t, "../../policies", nil)
	params := decisiontest.NewEngine(t, "../bundles/parameter-rules", nil)

	allow := outcome{allow: true}
	tests := map[string]struct {
		defaultPolicy, parameterRules outcome
	}{
		"initialize":                      {allow, allow},
		"tools-list":                      {allow, allow},
		"notification-initialized":        {allow, allow},
		"raw-body-ping":                   {allow, allow},
		"get-stream":                      {allow, allow},
		"delete-session":                  {allow, allow},
		"tools-call-read-file-allowed":    {outcome{allow: true, scopes: []string{"mcp:tools"}}, allow},
		"tools-call-read-file-denied":     {allow, outcome{reason: `read_file: path "/etc/passwd" is not a plain path under /data/`}},
		"tools-call-query-select-allowed": {allow, allow},
		"tools-call-query-drop-denied":    {allow, outcome{reason: "statements may not be chained"}},
		"tools-call-transfer-over-limit":  {allow, outcome{reason: `amount 750 exceeds the limit of 500 for team "support"`}},
		"tools-call-step-up":              {allow, outcome{reason: "needs scope(s) mcp:tools payments:write", scopes: []string{"mcp:tools", "payments:write"}}},
		"tools-call-no-token":             {outcome{reason: "authentication required", scopes: []string{"mcp:tools"}}, outcome{reason: "authentication required", scopes: []string{"mcp:tools"}}},
		"resources-read-no-scope":         {outcome{reason: "needs scope(s) mcp:resources", scopes: []string{"mcp:resources"}}, outcome{reason: "needs scope(s) mcp:resources"}},
		// MCP 2026-07-28: stateless, the revision and client in params._meta.
		"server-discover-2026":             {allow, allow},
		"tools-call-2026-missing-mcp-name": {outcome{reason: "the Mcp-Name header is required for tools/call"}, outcome{reason: "the Mcp-Name header is required for tools/call"}},
	}

	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tests[strings.TrimSuffix(f, ".json")]; !ok {
			t.Errorf("sample %s has no expected outcome in this test", f)
		}
	}
	for name, tc := range tests {
		t.Run(strings.ReplaceAll(name, "-", "_"), func(t *testing.T) {
			for policy, eng := range map[string]*decision.Engine{"default policy": def, "parameter-rules": params} {
				r, err := requestfile.Read(name + ".json")
				if err != nil {
					t.Fatal(err)
				}
				want := tc.defaultPolicy
				if policy == "parameter-rules" {
					want = tc.parameterRules
				}
				if err := want.check(eng.Decide(context.Background(), r)); err != nil {
					t.Errorf("%s: %v", policy, err)
				}
			}
		})
	}
}
