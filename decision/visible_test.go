package decision_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

const parameterRules = "../examples/bundles/parameter-rules"

// visibleCase is one caller asking about one item.
type visibleCase struct {
	claims  map[string]any // nil: no token
	route   string         // context_extensions.mcp_server; "" for none
	item    decision.Item
	visible bool
	basis   string
}

func tool(name string) decision.Item { return decision.Item{Kind: decision.ItemTool, Name: name} }

func runVisible(t *testing.T, f *decision.ItemFilter, tests map[string]visibleCase) {
	t.Helper()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Headers: map[string]string{}, Credential: token.Claimed(tc.claims)}
			if tc.route != "" {
				r.Context = map[string]string{"mcp_server": tc.route}
			}
			res, err := f.Visible(context.Background(), r, []decision.Item{tc.item})
			if err != nil {
				t.Fatal(err)
			}
			got := res.Items[0]
			if got.Err != nil {
				t.Fatalf("evaluation failed: %v", got.Err)
			}
			if got.Visible != tc.visible || got.Basis != tc.basis {
				t.Errorf("got visible=%v basis=%s, want visible=%v basis=%s", got.Visible, got.Basis, tc.visible, tc.basis)
			}
		})
	}
}

var (
	toolsCaller    = map[string]any{"sub": "alice", "scope": "mcp:tools"}
	paymentsCaller = map[string]any{"sub": "bob", "scope": "mcp:tools payments:write", "team": "support"}
)

// TestVisibleRule uses the parameter-rules bundle, whose visible rule shows
// a tool only on its route and to callers with the scopes using it needs.
func TestVisibleRule(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, parameterRules, nil))
	runVisible(t, f, map[string]visibleCase{
		"read_file_on_its_route":         {claims: toolsCaller, route: "files", item: tool("read_file"), visible: true, basis: decision.BasisRule},
		"read_file_on_another_route":     {claims: toolsCaller, route: "db", item: tool("read_file"), basis: decision.BasisRule},
		"read_file_without_token":        {route: "files", item: tool("read_file"), basis: decision.BasisRule},
		"transfer_without_payment_scope": {claims: toolsCaller, route: "payments", item: tool("transfer"), basis: decision.BasisRule},
		"transfer_with_payment_scope":    {claims: paymentsCaller, route: "payments", item: tool("transfer"), visible: true, basis: decision.BasisRule},
		"prompt_without_prompt_scope": {
			claims: toolsCaller, item: decision.Item{Kind: decision.ItemPrompt, Name: "summarize"}, basis: decision.BasisRule,
		},
		"resource_with_scope": {
			claims: map[string]any{"sub": "alice", "scope": "mcp:resources"},
			item:   decision.Item{Kind: decision.ItemResource, URI: "file:///data/a.txt"}, visible: true, basis: decision.BasisRule,
		},
	})
}

// allowPolicy has argument-level rules and no visible rule, written as
// partial evaluation handles best: a boolean allow with a false default and
// no else chains.
const allowPolicy = `package mcp.authz

default allow := false

allow if {
	input.token.valid == true
	input.mcp.method == "tools/call"
	input.mcp.tool.name in object.get(data.mcpauthz.routes, input.context.mcp_server, [])
	"mcp:tools" in input.token.scopes
	arguments_ok
}

arguments_ok if {
	input.mcp.tool.name == "read_file"
	startswith(input.mcp.tool.arguments.path, "/data/")
	not contains(input.mcp.tool.arguments.path, "..")
}

arguments_ok if {
	input.mcp.tool.name == "transfer"
	"payments:write" in input.token.scopes
	input.mcp.tool.arguments.amount > 0
	input.mcp.tool.arguments.amount <= 500
}

arguments_ok if input.mcp.tool.name == "list_dir"

allow if {
	input.token.valid == true
	input.mcp.method == "prompts/get"
	"mcp:prompts" in input.token.scopes
}
`

func writeBundle(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestVisiblePartialEval checks the fallback: with no visible rule, a tool
// is visible when some arguments could make a call to it allowed, and
// hidden when no arguments can.
func TestVisiblePartialEval(t *testing.T) {
	dir := writeBundle(t, map[string]string{
		"authz.rego": allowPolicy,
		"data.json":  `{"mcpauthz": {"routes": {"files": ["read_file", "list_dir"], "payments": ["transfer"]}}}`,
	})
	f := decision.NewItemFilter(decisiontest.NewEngine(t, dir, nil))
	pe := decision.BasisPartialEval
	runVisible(t, f, map[string]visibleCase{
		// read_file is allowed for paths under /data/: some call passes.
		"argument_rule_can_pass": {claims: toolsCaller, route: "files", item: tool("read_file"), visible: true, basis: pe},
		// list_dir has no argument rule: allowed outright.
		"no_argument_rule": {claims: toolsCaller, route: "files", item: tool("list_dir"), visible: true, basis: pe},
		// The route allowlist does not depend on arguments: no call passes.
		"other_route":   {claims: toolsCaller, route: "payments", item: tool("read_file"), basis: pe},
		"no_route":      {claims: toolsCaller, item: tool("read_file"), basis: pe},
		"no_token":      {route: "files", item: tool("read_file"), basis: pe},
		"unknown_tool":  {claims: toolsCaller, route: "files", item: tool("rm_rf"), basis: pe},
		"missing_scope": {claims: map[string]any{"sub": "alice", "scope": "other"}, route: "files", item: tool("read_file"), basis: pe},
		// transfer needs payments:write whatever the amount.
		"argument_rule_needs_scope": {claims: toolsCaller, route: "payments", item: tool("transfer"), basis: pe},
		"argument_rule_with_scope":  {claims: paymentsCaller, route: "payments", item: tool("transfer"), visible: true, basis: pe},
		"prompt_with_scope": {
			claims: map[string]any{"sub": "alice", "scope": "mcp:prompts"},
			item:   decision.Item{Kind: decision.ItemPrompt, Name: "summarize"}, visible: true, basis: pe,
		},
		"resource_never_allowed": {
			claims: toolsCaller, item: decision.Item{Kind: decision.ItemResource, URI: "file:///data/a.txt"}, basis: pe,
		},
	})
}

// TestVisibleItemErrors covers items that cannot be evaluated and the
// absence of a policy.
func TestVisibleItemErrors(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, parameterRules, nil))
	r := &decision.Request{Method: "POST", Path: "/mcp", Headers: map[string]string{}, Credential: token.Claimed(toolsCaller)}
	res, err := f.Visible(context.Background(), r, []decision.Item{
		{Kind: "widget", Name: "x"},
		{Kind: decision.ItemTool, Name: "read_file", Annotations: map[string]any{"bad": make(chan int)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range res.Items {
		if v.Visible || v.Basis != decision.BasisError || v.Err == nil {
			t.Errorf("item %d: got %+v, want hidden with an error", i, v)
		}
	}

	empty := decision.NewItemFilter(mustEngine(t, &decisiontest.Snapshots{}))
	if _, err := empty.Visible(context.Background(), r, []decision.Item{tool("x")}); !errors.Is(err, decision.ErrNoPolicy) {
		t.Errorf("no policy: got %v, want ErrNoPolicy", err)
	}
}

func mustEngine(t *testing.T, s decision.Snapshots) *decision.Engine {
	t.Helper()
	e, err := decision.New(decision.Options{Snapshots: s})
	if err != nil {
		t.Fatal(err)
	}
	return e
}
