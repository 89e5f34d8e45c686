package listplan_test

import (
	"context"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage/inmem"

	"github.com/mcpauthz/mcpauthz/decision/listplan"
)

// TestAnalyze: the load-time statement of how lists are filtered, for a
// policy with a visible rule, with one without a default, and without
// one, where partial evaluation splits the decision and where it cannot
// (an else chain that reads the arguments: a caller who may call nothing
// would be shown every tool).
func TestAnalyze(t *testing.T) {
	const elseChain = `package mcp.authz

decision := {"allow": false, "reason": "no token"} if {
	not input.token.valid
} else := {"allow": false, "reason": "bad sql"} if {
	contains(input.mcp.tool.arguments.sql, "DROP")
} else := {"allow": true} if {
	"reader" in input.token.claims.roles
} else := {"allow": false, "reason": "default"}
`
	tests := map[string]struct {
		policy    string
		mode      string
		exact     bool
		unsplit   string // in Unsplit[0]
		wantLines []string
	}{
		"visible_with_default": {
			policy: "package mcp.authz\n\ndefault allow := false\n\nallow if input.token.valid\n\ndefault visible := false\n\nvisible if input.item.name == \"search\"\n",
			mode:   listplan.ByVisible, exact: true,
			wantLines: []string{"lists: filtered by the visible rule (p.rego:7), which judges every tool, prompt and resource"},
		},
		"visible_without_default": {
			policy: "package mcp.authz\n\ndefault allow := false\n\nallow if input.token.valid\n\nvisible if input.item.name == \"search\"\n",
			mode:   listplan.ByVisible, exact: true,
			wantLines: []string{"which has no default: an item it leaves undefined is derived from the decision by partial evaluation, exact for this policy"},
		},
		"allow_split": {
			policy: "package mcp.authz\n\ndefault allow := false\n\nallow if {\n\t\"reader\" in input.token.claims.roles\n\tnot contains(input.mcp.tool.arguments.sql, \"DROP\")\n}\n",
			mode:   listplan.Derived, exact: true,
			wantLines: []string{"lists: no visible rule: derived from the decision by partial evaluation (an item is listed when some arguments could make its call allowed), exact for this policy"},
		},
		"else_without_arguments": {
			policy: "package mcp.authz\n\ndecision := {\"allow\": false} if {\n\tnot input.token.valid\n} else := {\"allow\": true} if {\n\t\"reader\" in input.token.claims.roles\n} else := {\"allow\": false}\n",
			mode:   listplan.Derived, exact: true,
			wantLines: []string{"exact for this policy"},
		},
		"no_rule": {
			policy: "package mcp.authz\n\nother := true\n", mode: listplan.NoRule, exact: true,
			wantLines: []string{"lists: the policy defines neither visible nor decision nor allow: every item is hidden"},
		},
		"else_chain_reading_arguments": {
			policy: elseChain, mode: listplan.Derived, unsplit: "data.mcp.authz.decision (p.rego:3)",
			wantLines: []string{
				"NOT exact for this policy: partial evaluation cannot split data.mcp.authz.decision (p.rego:3)",
				"a caller who may call nothing is shown all of them",
				"lists: to list exactly, write a visible rule beside the decision (default visible := false",
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			m, err := ast.ParseModuleWithOpts("p.rego", tc.policy, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatal(err)
			}
			c := ast.NewCompiler()
			if c.Compile(map[string]*ast.Module{"p.rego": m}); c.Failed() {
				t.Fatal(c.Errors)
			}
			rep := listplan.Analyze(context.Background(), c, inmem.New(), listplan.Rules{
				Decision: "data.mcp.authz.decision", Allow: "data.mcp.authz.allow", Visible: "data.mcp.authz.visible"})
			if rep.Err != nil {
				t.Fatal(rep.Err)
			}
			if rep.Mode != tc.mode || rep.Exact != tc.exact {
				t.Errorf("mode %s exact %v, want %s %v (unsplit %v)", rep.Mode, rep.Exact, tc.mode, tc.exact, rep.Unsplit)
			}
			if tc.unsplit != "" && (len(rep.Unsplit) == 0 || rep.Unsplit[0] != tc.unsplit) {
				t.Errorf("unsplit %v, want %s", rep.Unsplit, tc.unsplit)
			}
			text := strings.Join(rep.Lines(), "\n")
			for _, w := range tc.wantLines {
				if !strings.Contains(text, w) {
					t.Errorf("lines lack %q:\n%s", w, text)
				}
			}
		})
	}
}
