package decision_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// A tools/call of MCP 2026-07-28 as the spec's examples (and the Go SDK
// v1.8.0) send it: the revision, client and capabilities in params._meta.
const call2026 = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.csv"},` +
	`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"ci-bot","version":"1.2.0","title":"CI bot","extra":1},` +
	`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}}}}`

// req2026 is call2026 (or body) with the standard headers a 2026-07-28
// client sends, edited by set (a value "" removes the header).
func req2026(body string, set map[string]string) *decision.Request {
	if body == "" {
		body = call2026
	}
	r := post(body, claims("alice", "mcp:tools files:read"))
	r.Headers["mcp-protocol-version"] = "2026-07-28"
	r.Headers["mcp-method"] = "tools/call"
	r.Headers["mcp-name"] = "read_file"
	for k, v := range set {
		if v == "" {
			delete(r.Headers, k)
		} else {
			r.Headers[k] = v
		}
	}
	return r
}

// meta2026 is params._meta of a 2026-07-28 request.
const meta2026 = `{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`

// removed2026 is a 2026-07-28 request for method with id and params, with
// the standard headers the conformance suite sends.
func removed2026(method string, id any, params string) *decision.Request {
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%v,"method":%q,"params":%s}`, id, method, params)
	return req2026(body, map[string]string{"mcp-method": method, "mcp-name": ""})
}

// TestProtocolRules holds every rule of protocol.go to its exact answer:
// status, code and body.
func TestProtocolRules(t *testing.T) {
	type want struct {
		allow  bool
		code   string
		status int
		body   string // exact; "" with a denial: no body
	}
	const supported = `"supported":["2024-11-05","2025-03-26","2025-06-18","2025-11-25","2026-07-28"]`
	batch := `[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"tools/list"}]`
	// notFound2026 is the answer to a 2026-07-28 request for a method that
	// revision does not have (SEP-2575): 404, -32601, the request's id.
	notFound2026 := func(id, method string) want {
		return want{code: decision.CodeParseError, status: 404,
			body: `{"jsonrpc":"2.0","id":` + id + `,"error":{"code":-32601,"message":"method \"` + method + `\" is not part of MCP 2026-07-28"}}`}
	}
	tests := map[string]struct {
		opts func(*decision.Options)
		req  *decision.Request
		want want
	}{
		"v2026_all_headers_allowed": {req: req2026("", nil), want: want{allow: true, code: decision.CodeAllowed}},
		"v2026_meta_and_header_disagree": {
			req: req2026("", map[string]string{"mcp-protocol-version": "2025-11-25"}),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"MCP-Protocol-Version header \"2025-11-25\" disagrees with params._meta protocolVersion \"2026-07-28\""}}`},
		},
		"meta_version_unsupported": {
			req: post(`{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2099-01-01"}}}`, claims("alice", "")),
			want: want{code: decision.CodeUnsupportedProtocolVersion, status: 400,
				body: `{"jsonrpc":"2.0","id":"a","error":{"code":-32022,"message":"unsupported protocol version \"2099-01-01\"","data":{` + supported + `,"requested":"2099-01-01"}}}`},
		},
		"header_version_unsupported": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = "1.0"
				return r
			}(),
			want: want{code: decision.CodeUnsupportedProtocolVersion, status: 400,
				body: `{"jsonrpc":"2.0","id":2,"error":{"code":-32022,"message":"unsupported protocol version \"1.0\"","data":{` + supported + `,"requested":"1.0"}}}`},
		},
		"get_header_version_unsupported": {
			req: func() *decision.Request {
				r := &decision.Request{Method: "GET", Path: "/mcp", Headers: map[string]string{"mcp-protocol-version": "2030-01-01"}}
				return r
			}(),
			want: want{code: decision.CodeUnsupportedProtocolVersion, status: 400,
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32022,"message":"unsupported protocol version \"2030-01-01\"","data":{` + supported + `,"requested":"2030-01-01"}}}`},
		},
		"protocol_versions_configured": {
			opts: func(o *decision.Options) {
				o.MCP.ProtocolVersions = []string{"2025-11-25"}
				o.MCP.DefaultProtocolVersion = "2025-11-25"
			},
			req: req2026("", nil),
			want: want{code: decision.CodeUnsupportedProtocolVersion, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"unsupported protocol version \"2026-07-28\"","data":{"supported":["2025-11-25"],"requested":"2026-07-28"}}}`},
		},
		"v2026_missing_mcp_method": {
			req: req2026("", map[string]string{"mcp-method": ""}),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"the Mcp-Method header is required"}}`},
		},
		"v2026_missing_mcp_name": {
			req: req2026("", map[string]string{"mcp-name": ""}),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"the Mcp-Name header is required for tools/call"}}`},
		},
		"v2026_meta_only_missing_version_header": {
			req: req2026("", map[string]string{"mcp-protocol-version": ""}),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"the MCP-Protocol-Version header is required"}}`},
		},
		"v2026_header_only_missing_mcp_method": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = "2026-07-28"
				return r
			}(),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":3,"error":{"code":-32020,"message":"the Mcp-Method header is required"}}`},
		},
		"mcp_name_base64_decoded": {
			req:  req2026("", map[string]string{"mcp-name": "=?base64?cmVhZF9maWxl?="}),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"mcp_name_base64_disagrees": {
			req: req2026("", map[string]string{"mcp-name": "=?base64?d3JpdGVfZmlsZQ==?="}),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"Mcp-Name header \"write_file\" disagrees with body name \"read_file\""}}`},
		},
		"mcp_method_base64_malformed": {
			req: req2026("", map[string]string{"mcp-method": "=?base64?!!!?="}),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"Mcp-Method header \"=?base64?!!!?=\" is not valid base64"}}`},
		},
		"require_standard_headers_never": {
			opts: func(o *decision.Options) { o.MCP.StandardHeaders = decision.Never },
			req:  req2026("", map[string]string{"mcp-method": "", "mcp-name": ""}),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"require_standard_headers_always": {
			opts: func(o *decision.Options) { o.MCP.StandardHeaders = decision.Always },
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":4,"method":"tools/list"}`, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = "2025-11-25"
				return r
			}(),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":4,"error":{"code":-32020,"message":"the Mcp-Method header is required"}}`},
		},
		"v2025_11_no_standard_headers_allowed": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":4,"method":"tools/list"}`, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = "2025-11-25"
				return r
			}(),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"batch_2025_06_18_refused": {
			req: func() *decision.Request {
				r := post(batch, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = "2025-06-18"
				return r
			}(),
			want: want{code: decision.CodeParseError, status: 400,
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"JSON-RPC batches are not part of MCP 2025-06-18"}}`},
		},
		"batch_2025_03_26_allowed": {
			req:  post(batch, claims("alice", "")),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"batches_always": {
			opts: func(o *decision.Options) { o.MCP.Batches = decision.Always },
			req: func() *decision.Request {
				r := post(batch, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = "2025-11-25"
				return r
			}(),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"batches_never": {
			opts: func(o *decision.Options) { o.MCP.Batches = decision.Never },
			req:  post(batch, claims("alice", "")),
			want: want{code: decision.CodeParseError, status: 400,
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"JSON-RPC batches are not part of MCP 2025-03-26"}}`},
		},
		"envoy_hint_id_disagrees": {
			req: func() *decision.Request {
				r := req2026("", nil)
				r.Hint = &decision.Hint{Method: "tools/call", Name: "read_file", ID: float64(2)}
				return r
			}(),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"proxy metadata id 2 disagrees with body id 1"}}`},
		},
		"envoy_hint_id_agrees": {
			req: func() *decision.Request {
				r := req2026("", nil)
				r.Hint = &decision.Hint{Method: "tools/call", Name: "read_file", ID: float64(1)}
				return r
			}(),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"envoy_hint_string_id_for_number": {
			req: func() *decision.Request {
				r := req2026("", nil)
				r.Hint = &decision.Hint{Method: "tools/call", ID: "1"}
				return r
			}(),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32020,"message":"proxy metadata id 1 disagrees with body id 1"}}`},
		},
		"envoy_hint_response": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":5,"result":{}}`, claims("alice", ""))
				r.Hint = &decision.Hint{Method: "tools/call"}
				return r
			}(),
			want: want{code: decision.CodeHintMismatch, status: 400,
				body: `{"jsonrpc":"2.0","id":5,"error":{"code":-32020,"message":"proxy metadata method \"tools/call\" disagrees with body method \"__jsonrpc_response\""}}`},
		},
		"v2026_removed_subscribe_before_params": {
			req:  removed2026("resources/subscribe", 500, `{"_meta":`+meta2026+`}`),
			want: notFound2026(`500`, "resources/subscribe"),
		},
		"v2026_removed_unsubscribe_before_params": {
			req:  removed2026("resources/unsubscribe", 501, `{"_meta":`+meta2026+`}`),
			want: notFound2026(`501`, "resources/unsubscribe"),
		},
		"v2026_removed_initialize": {
			req:  removed2026("initialize", 502, `{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"c","version":"1"},"_meta":`+meta2026+`}`),
			want: notFound2026(`502`, "initialize"),
		},
		"v2026_removed_ping": {
			req:  removed2026("ping", "\"p\"", `{"_meta":`+meta2026+`}`),
			want: notFound2026(`"p"`, "ping"),
		},
		"v2026_removed_logging_set_level": {
			req:  removed2026("logging/setLevel", 503, `{"level":"info","_meta":`+meta2026+`}`),
			want: notFound2026(`503`, "logging/setLevel"),
		},
		"v2026_removed_with_malformed_meta": {
			req:  removed2026("resources/subscribe", 504, `{"_meta":"not an object"}`),
			want: notFound2026(`504`, "resources/subscribe"),
		},
		"v2026_unknown_method": {
			req:  removed2026("unknown/method", 601, `{"_meta":`+meta2026+`}`),
			want: notFound2026(`601`, "unknown/method"),
		},
		"v2025_subscribe_bad_params_stays_invalid_params": {
			req: post(`{"jsonrpc":"2.0","id":7,"method":"resources/subscribe","params":{}}`, claims("alice", "")),
			want: want{code: decision.CodeParseError, status: 400,
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32602,"message":"invalid params: resources/subscribe: params.uri must be a non-empty string"}}`},
		},
		"origin_of_resource_allowed": {
			opts: withOrigins,
			req:  req2026("", map[string]string{"origin": "https://mcp.example.com"}),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"origin_listed_allowed": {
			opts: withOrigins,
			req:  req2026("", map[string]string{"origin": "https://app.example.com"}),
			want: want{allow: true, code: decision.CodeAllowed},
		},
		"origin_foreign_refused": {
			opts: withOrigins,
			req:  req2026("", map[string]string{"origin": "https://evil.example"}),
			want: want{code: decision.CodeOriginNotAllowed, status: 403,
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"origin \"https://evil.example\" is not allowed"}}`},
		},
		// Issue 27 row 10: a JWT sent as Origin or as the protocol version
		// is erased from the reason the client, Envoy and the logs see.
		"origin_jwt_erased": {
			opts: withOrigins,
			req:  req2026("", map[string]string{"origin": jwtShaped}),
			want: want{code: decision.CodeOriginNotAllowed, status: 403,
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"origin \"REDACTED\" is not allowed"}}`},
		},
		"version_jwt_erased": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = jwtShaped
				return r
			}(),
			want: want{code: decision.CodeUnsupportedProtocolVersion, status: 400,
				body: `{"jsonrpc":"2.0","id":1,"error":{"code":-32022,"message":"unsupported protocol version \"REDACTED\"","data":{"supported":["2024-11-05","2025-03-26","2025-06-18","2025-11-25","2026-07-28"],"requested":"REDACTED"}}}`},
		},
		"origin_preflight_refused": {
			opts: withOrigins,
			req: &decision.Request{Method: "OPTIONS", Path: "/mcp", Headers: map[string]string{
				"origin": "http://localhost:8000", "access-control-request-method": "POST",
				"access-control-request-headers": "authorization,content-type,mcp-method,mcp-name,mcp-protocol-version",
			}},
			want: want{code: decision.CodeOriginNotAllowed, status: 403,
				body: `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"origin \"http://localhost:8000\" is not allowed"}}`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := decisiontest.NewEngine(t, "testdata/policy", tc.opts)
			d := e.Decide(context.Background(), tc.req)
			if d.Allow != tc.want.allow || d.Code != tc.want.code {
				t.Fatalf("allow=%v code=%s reason=%q errors=%v; want allow=%v code=%s", d.Allow, d.Code, d.Reason, d.Errors, tc.want.allow, tc.want.code)
			}
			if d.Allow {
				return
			}
			if d.Status != tc.want.status || string(d.Body) != tc.want.body {
				t.Errorf("status %d, body %s\nwant %d, %s", d.Status, d.Body, tc.want.status, tc.want.body)
			}
		})
	}
}

// jwtShaped is a JWT sent where no credential belongs; valid nowhere.
const jwtShaped = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

func withOrigins(o *decision.Options) {
	o.MCP.Origins = []string{"https://mcp.example.com", "https://app.example.com"}
}

// TestProtocolInput: the policy sees the agreed revision (or the default),
// _meta as sent, the client and its capabilities, and the session and its
// owner's subject, whatever the revision (a 2026-07-28 request's session
// is checked too: issue 28 row 1).
func TestProtocolInput(t *testing.T) {
	binder := fixedBinder{"s-2": "21:https://a.example/iss:alice", jwtShaped: "21:https://a.example/iss:alice"}
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) { o.Sessions = binder })
	tests := map[string]struct {
		req  *decision.Request
		want string // input.mcp, minus what other tests cover
	}{
		"v2026_meta": {
			req: req2026("", map[string]string{"mcp-session-id": "s-1"}),
			want: `{"protocol_version":"2026-07-28","client":{"name":"ci-bot","version":"1.2.0","title":"CI bot"},` +
				`"client_capabilities":{"elicitation":{}},"meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28",` +
				`"io.modelcontextprotocol/clientInfo":{"name":"ci-bot","version":"1.2.0","title":"CI bot","extra":1},` +
				`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{}}},"session_id":"s-1"}`,
		},
		"no_version_default": {
			req:  post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, claims("alice", "")),
			want: `{"protocol_version":"2025-03-26"}`,
		},
		"v2025_11_jwt_session_erased": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = "2025-11-25"
				r.Headers["mcp-session-id"] = jwtShaped
				return r
			}(),
			want: `{"protocol_version":"2025-11-25","session_id":"REDACTED","session_owner":"alice"}`,
		},
		"v2025_11_session": {
			req: func() *decision.Request {
				r := post(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"progressToken":7}}}`, claims("alice", ""))
				r.Headers["mcp-protocol-version"] = "2025-11-25"
				r.Headers["mcp-session-id"] = "s-2"
				return r
			}(),
			want: `{"protocol_version":"2025-11-25","session_id":"s-2","session_owner":"alice","meta":{"progressToken":7}}`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			inputs, stopped := e.Inputs(context.Background(), tc.req)
			if stopped != nil {
				t.Fatalf("stopped: %s %s", stopped.Code, stopped.Reason)
			}
			mcpIn, _ := inputs[0].(ast.Object).Get(ast.StringTerm("mcp")).Value.(ast.Object)
			got := map[string]any{}
			for _, k := range []string{"protocol_version", "client", "client_capabilities", "meta", "session_id", "session_owner"} {
				if v := mcpIn.Get(ast.StringTerm(k)); v != nil {
					got[k], _ = ast.JSON(v.Value)
				}
			}
			var want map[string]any
			if err := json.Unmarshal([]byte(tc.want), &want); err != nil {
				t.Fatal(err)
			}
			gb, _ := json.Marshal(got)
			wb, _ := json.Marshal(want)
			if string(gb) != string(wb) {
				t.Errorf("input.mcp = %s\nwant %s", gb, wb)
			}
		})
	}
}

// fixedBinder is a session table the test fills: session id to owner.
type fixedBinder map[string]string

func (b fixedBinder) Owner(_ context.Context, id string) (string, error) { return b[id], nil }

func (b fixedBinder) Bind(_ context.Context, id, owner string) (string, error) {
	if cur := b[id]; cur != "" {
		return cur, nil
	}
	b[id] = owner
	return owner, nil
}
