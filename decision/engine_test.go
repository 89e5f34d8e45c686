package decision_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

func claims(sub string, scopes string) map[string]any {
	return map[string]any{
		"iss": "https://auth.example.com", "aud": decisiontest.Resource, "sub": sub,
		"scope": scopes, "exp": float64(time.Now().Add(time.Hour).Unix()),
	}
}

func post(body string, c map[string]any) *decision.Request {
	r := &decision.Request{
		Method:  "POST",
		Path:    "/mcp",
		Host:    "mcp.example.com",
		Headers: map[string]string{"content-type": "application/json"},
		Body:    []byte(body),
	}
	if c != nil {
		r.Credential = token.Claimed(c)
	}
	return r
}

const prmURL = `https://mcp.example.com/.well-known/oauth-protected-resource/mcp`

// TestDenyShapes checks the exact response of every kind of denial.
func TestDenyShapes(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", nil)
	expired := claims("alice", "mcp:tools files:read")
	expired["exp"] = float64(time.Now().Add(-time.Hour).Unix())

	type want struct {
		allow   bool
		code    string
		status  int
		headers map[string]string
		body    string // JSON, compared semantically; "" means no body
	}
	tests := map[string]struct {
		req  *decision.Request
		want want
	}{
		"allowed_tools_call": {
			req:  post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.csv"}}}`, claims("alice", "mcp:tools files:read")),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"no_token_401": {
			req: post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil),
			want: want{code: decision.CodeUnauthenticated, status: 401, headers: map[string]string{
				"www-authenticate": `Bearer resource_metadata="` + prmURL + `"`,
			}},
		},
		"bad_token_401_invalid_token": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
				r.Headers["authorization"] = "Basic Zm9vOmJhcg=="
				return r
			}(),
			want: want{code: decision.CodeUnauthenticated, status: 401, headers: map[string]string{
				"www-authenticate": `Bearer resource_metadata="` + prmURL + `", error="invalid_token", error_description="the access token is malformed"`,
			}},
		},
		"expired_token_401": {
			req: post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, expired),
			want: want{code: decision.CodeUnauthenticated, status: 401, headers: map[string]string{
				"www-authenticate": `Bearer resource_metadata="` + prmURL + `", error="invalid_token", error_description="the access token expired"`,
			}},
		},
		"missing_scope_403_step_up": {
			req: post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a"}}}`, claims("alice", "mcp:tools")),
			want: want{code: decision.CodeInsufficientScope, status: 403, headers: map[string]string{
				"www-authenticate": `Bearer error="insufficient_scope", scope="files:read mcp:tools", resource_metadata="` + prmURL + `", error_description="this operation needs scope files:read mcp:tools"`,
			}},
		},
		"argument_rule_tool_error_result": {
			req: post(`{"jsonrpc":"2.0","id":"req-7","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}`, claims("alice", "mcp:tools files:read")),
			want: want{code: decision.CodePolicyDenied, status: 200, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":"req-7","result":{"content":[{"type":"text","text":"read_file may only read under /data/"}],"isError":true}}`},
		},
		"other_method_jsonrpc_error": {
			req: post(`{"jsonrpc":"2.0","id":9,"method":"sampling/secret"}`, claims("alice", "mcp:tools")),
			want: want{code: decision.CodePolicyDenied, status: 200, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":9,"error":{"code":-31001,"message":"method sampling/secret is not allowed"}}`},
		},
		"notification_denied_403_no_body": {
			req:  post(`{"jsonrpc":"2.0","method":"notifications/blocked"}`, claims("alice", "")),
			want: want{code: decision.CodePolicyDenied, status: 403},
		},
		"notification_allowed": {
			req:  post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, claims("alice", "")),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"batch_one_denied_denies_all": {
			req: post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"},{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/x"}}}]`, claims("alice", "mcp:tools files:read")),
			want: want{code: decision.CodePolicyDenied, status: 200, headers: map[string]string{"content-type": "application/json"},
				body: `[{"jsonrpc":"2.0","id":1,"error":{"code":-31001,"message":"batch element 2 denied: read_file may only read under /data/"}},{"jsonrpc":"2.0","id":2,"result":{"content":[{"type":"text","text":"read_file may only read under /data/"}],"isError":true}}]`},
		},
		"batch_all_allowed": {
			req:  post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`, claims("alice", "")),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"malformed_json_400": {
			req: post(`{"jsonrpc":"2.0","id":1,`, claims("alice", "")),
			want: want{code: decision.CodeParseError, status: 400, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32700}}`},
		},
		"wrong_jsonrpc_version_400": {
			req: post(`{"jsonrpc":"1.0","id":1,"method":"ping"}`, claims("alice", "")),
			want: want{code: decision.CodeParseError, status: 400, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600}}`},
		},
		"null_id_400": {
			req: post(`{"jsonrpc":"2.0","id":null,"method":"ping"}`, claims("alice", "")),
			want: want{code: decision.CodeParseError, status: 400, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600}}`},
		},
		"non_object_params_400": {
			req: post(`{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}`, claims("alice", "")),
			want: want{code: decision.CodeParseError, status: 400, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600}}`},
		},
		"truncated_body_413": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, claims("alice", ""))
				r.Truncated = true
				return r
			}(),
			want: want{code: decision.CodeBodyTooLarge, status: 413, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600}}`},
		},
		"oversized_body_413": {
			req: post(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"`+strings.Repeat("x", decision.DefaultMaxBodyBytes)+`"}}`, claims("alice", "")),
			want: want{code: decision.CodeBodyTooLarge, status: 413, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600}}`},
		},
		"get_stream_without_token_401": {
			req: &decision.Request{Method: "GET", Path: "/mcp", Headers: map[string]string{"accept": "text/event-stream"}},
			want: want{code: decision.CodeUnauthenticated, status: 401, headers: map[string]string{
				"www-authenticate": `Bearer resource_metadata="` + prmURL + `"`,
			}},
		},
		"get_stream_with_token_allowed": {
			req:  &decision.Request{Method: "GET", Path: "/mcp", Headers: map[string]string{"accept": "text/event-stream"}, Credential: token.Claimed(claims("alice", ""))},
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"delete_with_token_in_query_403": {
			req:  &decision.Request{Method: "DELETE", Path: "/mcp?access_token=abc", Headers: map[string]string{}, Credential: token.Claimed(claims("alice", ""))},
			want: want{code: decision.CodePolicyDenied, status: 403},
		},
		"policy_status_override": {
			req: post(`{"jsonrpc":"2.0","id":3,"method":"custom/status"}`, claims("alice", "")),
			want: want{code: decision.CodePolicyDenied, status: 429, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":3,"error":{"code":-31001,"message":"slow down"}}`},
		},
		"policy_jsonrpc_error_override": {
			req: post(`{"jsonrpc":"2.0","id":4,"method":"custom/rpcerror"}`, claims("alice", "")),
			want: want{code: decision.CodePolicyDenied, status: 200, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":4,"error":{"code":-31999,"message":"custom refusal"}}`},
		},
		"eval_error_fails_closed": {
			req: post(`{"jsonrpc":"2.0","id":5,"method":"custom/error","params":{"n":"not a number"}}`, claims("alice", "")),
			want: want{code: decision.CodeEvalError, status: 200, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":5,"error":{"code":-31001,"message":"policy evaluation failed"}}`},
		},
		"hint_mismatch_400": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a"}}}`, claims("alice", "mcp:tools files:read"))
				r.Hint = &decision.Hint{Method: "tools/call", Name: "harmless_tool"}
				return r
			}(),
			want: want{code: decision.CodeHintMismatch, status: 400, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":6,"error":{"code":-32020}}`},
		},
		"mcp_method_header_mismatch_400": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a"}}}`, claims("alice", "mcp:tools files:read"))
				r.Headers["mcp-method"] = "tools/list"
				return r
			}(),
			want: want{code: decision.CodeHintMismatch, status: 400, headers: map[string]string{"content-type": "application/json"},
				body: `{"jsonrpc":"2.0","id":6,"error":{"code":-32020}}`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := e.Decide(context.Background(), tc.req)
			if d.Allow != tc.want.allow || d.Code != tc.want.code {
				t.Fatalf("allow=%v code=%s reason=%q errors=%v; want allow=%v code=%s", d.Allow, d.Code, d.Reason, d.Errors, tc.want.allow, tc.want.code)
			}
			if d.Allow {
				return
			}
			if d.Status != tc.want.status {
				t.Errorf("status = %d, want %d", d.Status, tc.want.status)
			}
			got := map[string]string{}
			for _, h := range d.ResponseHeaders {
				got[h.Name] = h.Value
			}
			// Every denial carries its decision id.
			if got[decision.DecisionIDHeader] != d.ID {
				t.Errorf("%s = %q, want the decision id %q", decision.DecisionIDHeader, got[decision.DecisionIDHeader], d.ID)
			}
			delete(got, decision.DecisionIDHeader)
			if tc.want.headers == nil {
				tc.want.headers = map[string]string{}
			}
			if diff := cmp.Diff(tc.want.headers, got); diff != "" {
				t.Errorf("headers (-want +got):\n%s", diff)
			}
			if tc.want.body == "" {
				if len(d.Body) != 0 {
					t.Errorf("body = %s, want none", d.Body)
				}
				return
			}
			assertJSONSubset(t, tc.want.body, d.Body)
		})
	}
}

// assertJSONSubset checks that got holds every member of want (objects may
// have more members in got: error messages of parse errors, for instance).
func assertJSONSubset(t *testing.T, want string, got []byte) {
	t.Helper()
	var w, g any
	if err := json.Unmarshal([]byte(want), &w); err != nil {
		t.Fatalf("bad want JSON: %v", err)
	}
	if err := json.Unmarshal(got, &g); err != nil {
		t.Fatalf("body is not JSON: %v: %s", err, got)
	}
	if !subset(w, g) {
		t.Errorf("body = %s\nwant (subset) %s", got, want)
	}
}

func subset(want, got any) bool {
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return false
		}
		for k, v := range w {
			if !subset(v, g[k]) {
				return false
			}
		}
		return true
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return false
		}
		for i := range w {
			if !subset(w[i], g[i]) {
				return false
			}
		}
		return true
	}
	return cmp.Equal(want, got)
}

func TestAllowedDecisionHeaders(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", nil)
	d := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, claims("alice", "")))
	if !d.Allow {
		t.Fatalf("denied: %s %v", d.Reason, d.Errors)
	}
	want := []decision.Header{{Name: "x-mcp-subject", Value: "alice"}, {Name: decision.DecisionIDHeader, Value: d.ID}}
	if diff := cmp.Diff(want, d.UpstreamHeaders); diff != "" {
		t.Errorf("upstream headers (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"authorization"}, d.RemoveHeaders); diff != "" {
		t.Errorf("removed headers (-want +got):\n%s", diff)
	}
	if d.Revision == "" || d.ID == "" {
		t.Errorf("revision %q and id %q must be set", d.Revision, d.ID)
	}
	if d.Method != "ping" || d.Tool != "" || d.Subject != "alice" {
		t.Errorf("method %q tool %q subject %q, want ping, none, alice", d.Method, d.Tool, d.Subject)
	}
}

func TestNoPolicyFailsClosed(t *testing.T) {
	e, err := decision.New(decision.Options{Snapshots: &decisiontest.Snapshots{}})
	if err != nil {
		t.Fatal(err)
	}
	d := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, claims("alice", "")))
	if d.Allow || d.Code != decision.CodeNoPolicy || d.Status != 503 {
		t.Fatalf("got allow=%v code=%s status=%d, want a 503 no_policy denial", d.Allow, d.Code, d.Status)
	}
}

func TestAllowRuleFallback(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/allow_only", nil)
	tests := map[string]struct {
		method string
		allow  bool
	}{
		"ping_allowed":        {"ping", true},
		"tools_list_denied":   {"tools/list", false},
		"undefined_is_denied": {"resources/list", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":1,"method":"`+tc.method+`"}`, claims("alice", "")))
			if d.Allow != tc.allow {
				t.Fatalf("allow = %v (%s %v), want %v", d.Allow, d.Reason, d.Errors, tc.allow)
			}
		})
	}
}

func TestConflictingRulesDeny(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/conflict", nil)
	d := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, claims("alice", "")))
	if d.Allow || d.Code != decision.CodeEvalError {
		t.Fatalf("got allow=%v code=%s, want an eval_error denial", d.Allow, d.Code)
	}
	if len(d.Errors) == 0 || !strings.Contains(d.Errors[0], "conflict") {
		t.Errorf("errors = %v, want a conflict", d.Errors)
	}
}

func TestAccessTokenInQueryIsNeverForwarded(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/allow_only", nil)
	tests := map[string]struct {
		path string
		want []string
	}{
		"token_in_query_removed": {"/mcp?x=1&access_token=secret", []string{"access_token"}},
		"no_token_in_query":      {"/mcp?x=1", nil},
		"token_word_in_path":     {"/access_token/mcp", nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, claims("alice", ""))
			r.Path = tc.path
			d := e.Decide(context.Background(), r)
			if !d.Allow {
				t.Fatalf("denied: %s", d.Reason)
			}
			if diff := cmp.Diff(tc.want, d.RemoveQueryParams); diff != "" {
				t.Errorf("query params to remove (-want +got):\n%s", diff)
			}
		})
	}
}
