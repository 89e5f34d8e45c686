package decision_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// TestDecideInputAgreesWithDecide: deciding again on the input a request
// was evaluated with (what the decision log records) gives the decision
// Decide gave the request: allow, code, status, reason, scopes, body and
// challenge, for every kind of outcome the policy reaches, hidden tools
// included.
func TestDecideInputAgreesWithDecide(t *testing.T) {
	policy := decisiontest.NewEngine(t, "testdata/policy", nil)
	hidden := decisiontest.NewEngine(t, "testdata/hidden", nil)
	pinned := decisiontest.NewEngine(t, pinsBundle(t), nil)
	call := func(id int, tool string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, id, tool)
	}
	caller := claims("alice", "mcp:tools files:read")
	get := post("", caller)
	get.Method = "GET"
	tests := map[string]struct {
		e   *decision.Engine
		req *decision.Request
	}{
		"allowed_call":    {policy, post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.csv"}}}`, caller)},
		"argument_denied": {policy, post(`{"jsonrpc":"2.0","id":"r-7","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}`, caller)},
		"no_token_401":    {policy, post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)},
		"scope_403":       {policy, post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a"}}}`, claims("alice", "mcp:tools"))},
		"rpc_error":       {policy, post(`{"jsonrpc":"2.0","id":9,"method":"sampling/secret"}`, caller)},
		"custom_status":   {policy, post(`{"jsonrpc":"2.0","id":9,"method":"custom/status"}`, caller)},
		"custom_rpcerror": {policy, post(`{"jsonrpc":"2.0","id":9,"method":"custom/rpcerror"}`, caller)},
		"eval_error":      {policy, post(`{"jsonrpc":"2.0","id":9,"method":"custom/error","params":{"n":"x"}}`, caller)},
		"notification":    {policy, post(`{"jsonrpc":"2.0","method":"notifications/blocked"}`, caller)},
		"get":             {policy, get},
		"hidden_tool":     {hidden, post(call(2, "debug"), map[string]any{"sub": "alice", "scope": "mcp:tools"})},
		"visible_tool":    {hidden, post(call(1, "search"), map[string]any{"sub": "alice", "scope": "mcp:tools"})},
		"schema_valid":    {pinned, post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{"service":"api"}}}`, caller)},
		"schema_invalid":  {pinned, post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{"replicas":"x"}}}`, caller)},
	}
	ctx := context.Background()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.req.Headers["mcp-protocol-version"] = "2025-03-26"
			want := tc.e.Decide(ctx, tc.req)
			inputs, stopped := tc.e.Inputs(ctx, tc.req)
			if stopped != nil || len(inputs) != 1 {
				t.Fatalf("inputs %d, stopped %+v", len(inputs), stopped)
			}
			got, err := tc.e.DecideInput(ctx, inputs[0])
			if err != nil {
				t.Fatal(err)
			}
			type outcome struct {
				Allow                bool
				Code, Reason, Method string
				Tool, Subject        string
				Status               int
				Scopes               []string
				Body                 string
				Challenge            string
			}
			of := func(d *decision.Decision) outcome {
				o := outcome{d.Allow, d.Code, d.Reason, d.Method, d.Tool, d.Subject, d.Status, d.Scopes, string(d.Body), ""}
				for _, h := range d.ResponseHeaders {
					if h.Name == "www-authenticate" {
						o.Challenge = h.Value
					}
				}
				return o
			}
			if g, w := of(got), of(want); !reflect.DeepEqual(g, w) {
				t.Errorf("replayed %+v\nDecide   %+v", g, w)
			}
		})
	}
}

// TestDecideInputRefuses: what cannot be decided again is an error, never
// a decision: a batch element's input, an input that is not an object.
func TestDecideInputRefuses(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", nil)
	ctx := context.Background()
	r := post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"ping"}]`, map[string]any{"sub": "a"})
	r.Headers["mcp-protocol-version"] = "2025-03-26"
	inputs, _ := e.Inputs(ctx, r)
	if _, err := e.DecideInput(ctx, inputs[1]); !errors.Is(err, decision.ErrBatchInput) {
		t.Errorf("batch element: %v, want ErrBatchInput", err)
	}
	if _, err := e.DecideInput(ctx, ast.String("x")); err == nil {
		t.Error("a string input was decided")
	}
	if _, err := e.DecideInput(ctx, ast.MustParseTerm(`{"token": "x"}`).Value); err == nil {
		t.Error("an input whose token is a string was decided")
	}
}
