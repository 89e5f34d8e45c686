package decision_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
)

// resultBundle writes a bundle of the modules given (name: source).
func resultBundle(t *testing.T, modules map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range modules {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const allowAll = "package mcp.authz\n\nallow := true\n"

// TestResultRuleLoad: the result rule's patterns are compiled when the
// bundle loads, so a bad one (in a literal, in data, or in a library
// override) fails the load; the secrets library is there unless the
// bundle defines it.
func TestResultRuleLoad(t *testing.T) {
	tests := map[string]struct {
		modules map[string]string
		err     string // "" loads
	}{
		"literal_ok": {modules: map[string]string{"a.rego": allowAll, "r.rego": "package mcp.authz\n\nresult := {\"redact\": [{\"pattern\": \"a+\", \"name\": \"a\"}]}\n"}},
		"literal_bad": {modules: map[string]string{"a.rego": allowAll, "r.rego": "package mcp.authz\n\nresult := {\"redact\": [{\"pattern\": \"(a\", \"name\": \"a\"}]}\n"},
			err: "not valid RE2"},
		"library_used": {modules: map[string]string{"a.rego": allowAll, "r.rego": "package mcp.authz\n\nresult := {\"redact\": data.mcpauthz.lib.secrets.redact}\n"}},
		"library_overridden_bad": {modules: map[string]string{"a.rego": allowAll,
			"r.rego":   "package mcp.authz\n\nresult := {\"redact\": data.mcpauthz.lib.secrets.redact}\n",
			"lib.rego": "package mcpauthz.lib.secrets\n\nredact := [{\"pattern\": \"x{2,1}\", \"name\": \"x\"}]\n"},
			err: "not valid RE2"},
		"data_bad": {modules: map[string]string{"a.rego": allowAll, "r.rego": "package mcp.authz\n\nresult := {\"redact\": data.mcpauthz.mine}\n",
			"data.json": `{"mcpauthz": {"mine": [{"pattern": "[z-a]", "with": "-"}]}}`}, err: "not valid RE2"},
		"no_result_rule_bad_pattern_ignored": {modules: map[string]string{"a.rego": allowAll, "r.rego": "package mcp.authz\n\nx := {\"pattern\": \"(a\", \"name\": \"a\"}\n"}},
	}
	rules, err := decision.RulesIn("")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := bundles.CompileWith(context.Background(), bundles.Options{
				Sources: []bundles.Source{bundles.DirSource(resultBundle(t, tc.modules))},
				Queries: rules.Queries(),
			}, rules.Activate)
			switch {
			case tc.err == "" && err != nil:
				t.Fatalf("load failed: %v", err)
			case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
				t.Fatalf("load error %v, want %q", err, tc.err)
			}
		})
	}
}
