package decision_test

import (
	"context"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// TestListPlanTellsTheTruth: what ListPlan states at load is what the
// list filter then does. Where it says the derivation is not exact (an
// else chain reading the arguments), a caller who may call nothing is
// shown a tool it cannot call; where it says exact, that caller is not.
func TestListPlanTellsTheTruth(t *testing.T) {
	nobody := token.Claimed(map[string]any{"sub": "mallory", "scope": "mcp:tools"})
	tests := map[string]struct {
		dir       string
		exact     bool
		shownTool bool
	}{
		"else_chain":  {dir: "testdata/lists-else", exact: false, shownTool: true},
		"split_rules": {dir: "testdata/lists-split", exact: true, shownTool: false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rules, err := decision.RulesIn("")
			if err != nil {
				t.Fatal(err)
			}
			pol := decisiontest.Compile(t, tc.dir, "")
			plan := rules.ListPlan(context.Background(), pol.Snapshot)
			if plan.Err != nil || plan.Exact != tc.exact {
				t.Fatalf("plan exact %v (%v), want %v: %q", plan.Exact, plan.Err, tc.exact, plan.Lines())
			}
			e := decisiontest.NewEngine(t, tc.dir, nil)
			call := decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Credential: nobody,
				Headers: map[string]string{"content-type": "application/json"},
				Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{"sql":"SELECT 1"}}}`)}
			if d := e.Decide(context.Background(), &call); d.Allow {
				t.Fatalf("the caller may call query: %s", d.Reason)
			}
			list := call
			list.Body = []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
			res, err := decision.NewItemFilter(e).Visible(context.Background(), &list, []decision.Item{{Kind: decision.ItemTool, Name: "query"}})
			if err != nil {
				t.Fatal(err)
			}
			if got := res.Items[0].Visible; got != tc.shownTool {
				t.Errorf("query shown to a caller who cannot call it: %v, want %v", got, tc.shownTool)
			}
		})
	}
}
