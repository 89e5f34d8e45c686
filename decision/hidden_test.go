package decision_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// TestHiddenToolCall: a tools/call of a tool the visible rule hides is
// answered as if the tool did not exist (-32602), whether the policy
// allowed or denied it; challenges (401, 403 step-up) keep precedence, and
// a visible tool's denial stays a tool error.
func TestHiddenToolCall(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/hidden", nil)
	call := func(id int, tool string) string {
		return fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, id, tool)
	}
	caller := token.Claimed(map[string]any{"sub": "alice", "scope": "mcp:tools"})
	tests := map[string]struct {
		body     string
		cred     token.Credential
		allow    bool
		status   int
		code     string
		wantBody string
		// reason is what the decision's reason must hold: a hidden tool
		// keeps the policy's own reason, for eval and the decision log.
		reason string
	}{
		"visible_allowed":  {body: call(1, "search"), cred: caller, allow: true, code: decision.CodeAllowed},
		"hidden_allowed":   {body: call(2, "debug"), cred: caller, status: 200, code: decision.CodePolicyDenied, wantBody: `{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"Unknown tool: debug"}}`, reason: `tool "debug" is hidden from this caller by the visible rule (the decision allowed the call)`},
		"hidden_denied":    {body: call(3, "secret"), cred: caller, status: 200, code: decision.CodePolicyDenied, wantBody: `{"jsonrpc":"2.0","id":3,"error":{"code":-32602,"message":"Unknown tool: secret"}}`, reason: `tool "secret" is hidden from this caller by the visible rule; the decision denied it: denied by default`},
		"step_up_first":    {body: call(4, "admin_tool"), cred: caller, status: 403, code: decision.CodeInsufficientScope},
		"no_token_first":   {body: call(5, "debug"), cred: token.Credential{Kind: token.NoCredential}, status: 401, code: decision.CodeUnauthenticated},
		"visible_denied":   {body: call(6, "search_limited"), cred: caller, status: 200, code: decision.CodePolicyDenied, wantBody: `"isError":true`},
		"batch":            {body: "[" + call(7, "search") + "," + call(8, "debug") + "]", cred: caller, status: 200, code: decision.CodePolicyDenied, wantBody: `{"jsonrpc":"2.0","id":8,"error":{"code":-32602,"message":"Unknown tool: debug"}}`},
		"not_a_tools_call": {body: `{"jsonrpc":"2.0","id":9,"method":"ping"}`, cred: caller, status: 200, code: decision.CodePolicyDenied, wantBody: `-31001`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Body: []byte(tc.body), Credential: tc.cred,
				Headers: map[string]string{"content-type": "application/json", "mcp-protocol-version": "2025-03-26"}}
			d := e.Decide(context.Background(), r)
			if d.Allow != tc.allow || d.Code != tc.code || (!tc.allow && d.Status != tc.status) {
				t.Fatalf("allow %v code %s status %d (%s), want allow %v code %s status %d", d.Allow, d.Code, d.Status, d.Reason, tc.allow, tc.code, tc.status)
			}
			if !strings.Contains(string(d.Body), tc.wantBody) {
				t.Errorf("body %s, want it to hold %s", d.Body, tc.wantBody)
			}
			if strings.Contains(name, "hidden") && !strings.Contains(d.Reason, "hidden from this caller") {
				t.Errorf("reason %q does not say the tool is hidden", d.Reason)
			}
			if tc.reason != "" && d.Reason != tc.reason {
				t.Errorf("reason %q, want %q", d.Reason, tc.reason)
			}
			if strings.Contains(d.Reason, "basis") {
				t.Errorf("reason %q speaks of a basis, jargon an author does not know", d.Reason)
			}
		})
	}
}

// TestCallInputCarriesItem: under a policy with a visible rule, a
// tools/call's input carries input.item (the tool by kind and name), the
// input on which the visible rule is evaluated after the decision; other
// messages, and policies without a visible rule, have none.
func TestCallInputCarriesItem(t *testing.T) {
	caller := token.Claimed(map[string]any{"sub": "alice", "scope": "mcp:tools"})
	tests := map[string]struct {
		dir, body, want string
	}{
		"call_with_visible":    {"testdata/hidden", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search","arguments":{}}}`, `{"kind": "tool", "name": "search"}`},
		"ping_with_visible":    {"testdata/hidden", `{"jsonrpc":"2.0","id":2,"method":"ping"}`, ""},
		"call_without_visible": {"testdata/bench", `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"search","arguments":{}}}`, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := decisiontest.NewEngine(t, tc.dir, nil)
			r := &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Body: []byte(tc.body), Credential: caller,
				Headers: map[string]string{"content-type": "application/json", "mcp-protocol-version": "2025-03-26"}}
			ins, d := e.Inputs(context.Background(), r)
			if d != nil {
				t.Fatalf("refused: %s", d.Reason)
			}
			got := ""
			if item := ins[0].(ast.Object).Get(ast.InternedTerm("item")); item != nil {
				got = item.String()
			}
			if got != tc.want {
				t.Fatalf("input.item = %q, want %q", got, tc.want)
			}
		})
	}
}
