package decision

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/bundles"
)

// TestActivate builds the engine's state of a snapshot before any request
// sees it: the query to evaluate, the input the policy reads and the API
// keys of its data. Bad API keys fail the activation (and so the load); a
// policy without decision or allow rules activates, and evaluation says why
// it cannot decide.
func TestActivate(t *testing.T) {
	tests := map[string]struct {
		files        map[string]string
		wantErr      string // the activation fails with this
		wantDecision bool   // the decision rule is queried (else allow)
		wantEvalErr  string // every evaluation fails with this
		wantKeys     bool
	}{
		"decision_rule": {
			files:        map[string]string{"p.rego": "package mcp.authz\n\ndecision := {\"allow\": input.mcp.method == \"ping\"}\n"},
			wantDecision: true,
		},
		"allow_only": {
			files: map[string]string{"p.rego": "package mcp.authz\n\nallow if input.mcp.method == \"ping\"\n"},
		},
		"neither_rule": {
			files:       map[string]string{"p.rego": "package mcp.authz\n\nother := 1\n"},
			wantEvalErr: "policy defines neither data.mcp.authz.decision nor data.mcp.authz.allow",
		},
		"api_keys": {
			files: map[string]string{
				"p.rego":                      "package mcp.authz\n\nallow := true\n",
				"mcpauthz/api_keys/data.json": `{"` + strings.Repeat("ab", 32) + `": {"sub": "ci-bot"}}`,
			},
			wantKeys: true,
		},
		"api_keys_malformed": {
			files: map[string]string{
				"p.rego":                      "package mcp.authz\n\nallow := true\n",
				"mcpauthz/api_keys/data.json": `{"not-a-hash": {"sub": "ci-bot"}}`,
			},
			wantErr: "data.mcpauthz.api_keys",
		},
	}
	rules, err := RulesIn("")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			for p, body := range tc.files {
				p = filepath.Join(dir, filepath.FromSlash(p))
				if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			snap, err := bundles.Compile(context.Background(), bundles.Options{Sources: []bundles.Source{bundles.DirSource(dir)}, Queries: rules.Queries()})
			if err != nil {
				t.Fatalf("compiling: %v", err)
			}
			pol, err := rules.Activate(snap)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Activate: %v, want an error saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Activate: %v", err)
			}
			if pol.Snapshot != snap || pol.needs == nil {
				t.Errorf("policy %+v does not hold its snapshot and input needs", pol)
			}
			if tc.wantEvalErr != "" {
				if pol.evalErr == nil || pol.evalErr.Error() != tc.wantEvalErr {
					t.Errorf("evaluation error %v, want %q", pol.evalErr, tc.wantEvalErr)
				}
				return
			}
			if pol.evalErr != nil || pol.tmpl == nil || pol.txn == nil {
				t.Fatalf("policy cannot evaluate: %v", pol.evalErr)
			}
			if pol.isDecision != tc.wantDecision {
				t.Errorf("decision rule queried: %v, want %v", pol.isDecision, tc.wantDecision)
			}
			if (pol.keys != nil) != tc.wantKeys {
				t.Errorf("API keys indexed: %v, want %v", pol.keys != nil, tc.wantKeys)
			}
		})
	}
}
