package extmcp_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
	"github.com/mcpauthz/mcpauthz/transport/extmcp"
)

var tokens = decisiontest.Tokens{
	// alice sees (and may call) the tools read_file and search, the prompt
	// summarize and the resources file:///a and file:///{path}.
	"alice": {"sub": "alice", "scope": "tool:read_file tool:search prompt:summarize resource:file:///a resource:file:///{path}"},
	"admin": {"sub": "root", "scope": "admin"},
}

// client serves the ExtMcp service on a fresh engine over gRPC (bufconn)
// and returns a client of it.
func client(t testing.TB, opts extmcp.Options) pb.ExtMcpClient {
	t.Helper()
	cc := conn(t, opts)
	return pb.NewExtMcpClient(cc)
}

func conn(t testing.TB, opts extmcp.Options) *grpc.ClientConn {
	t.Helper()
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) { o.Tokens = tokens })
	return decisiontest.Dial(t, func(s *grpc.Server) {
		extmcp.NewServer(e, decision.NewItemFilter(e), opts).Register(s)
	})
}

// hdrs builds agentgateway's header list from key, value pairs.
func hdrs(kv ...string) []*pb.McpHeader {
	var out []*pb.McpHeader
	for i := 0; i < len(kv); i += 2 {
		out = append(out, &pb.McpHeader{Key: kv[i], Value: []byte(kv[i+1])})
	}
	return out
}

// meta builds a metadata_context.
func meta(t testing.TB, kv map[string]any) *structpb.Struct {
	t.Helper()
	s, err := structpb.NewStruct(kv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// gatewayHeaders are the headers agentgateway forwards by default: the
// pseudo-headers and the request's own, the bearer token of tok ("" for
// none).
func gatewayHeaders(tok string) []*pb.McpHeader {
	kv := []string{":method", "POST", ":path", "/mcp", ":authority", "mcp.example.com", "content-type", "application/json"}
	if tok != "" {
		kv = append(kv, "Authorization", "Bearer "+tok)
	}
	return hdrs(kv...)
}

func params(s string) []byte { return []byte(s) }

// errorOf describes a denial for comparison: its code, the JSON-RPC code
// and message of mcp_error, and the reason.
type denial struct {
	code    pb.AuthorizationError_Code
	rpc     int
	message string // a prefix of mcp_error's message, which the reason equals
}

func TestCheckRequest(t *testing.T) {
	c := client(t, extmcp.Options{})
	cases := []struct {
		name string
		in   *pb.McpRequest
		deny *denial // nil: Pass
		// data is a substring of mcp_error's data, when it has one.
		data string
	}{
		{name: "allowed call",
			in: &pb.McpRequest{ServiceNames: []string{"docs"}, Method: "tools/call", Headers: gatewayHeaders("alice"),
				McpRequest: params(`{"name":"search","arguments":{"q":"mcp"}}`)}},
		{name: "allowed call, argument rule passes",
			in: &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"),
				McpRequest: params(`{"name":"read_file","arguments":{"path":"/home/a"}}`)}},
		{name: "argument rule denies",
			in: &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"),
				McpRequest: params(`{"name":"read_file","arguments":{"path":"/etc/passwd"}}`)},
			deny: &denial{pb.AuthorizationError_PERMISSION_DENIED, decision.CodeJSONRPCDenied, "read_file may not read under /etc"}},
		{name: "hidden tool is unknown",
			in: &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"),
				McpRequest: params(`{"name":"debug"}`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32602, "Unknown tool: debug"}},
		{name: "tool shown on its backend",
			in: &pb.McpRequest{ServiceNames: []string{"files"}, Method: "tools/call", Headers: gatewayHeaders("alice"),
				McpRequest: params(`{"name":"list_dir"}`)}},
		{name: "tool hidden on another backend",
			in: &pb.McpRequest{ServiceNames: []string{"docs"}, Method: "tools/call", Headers: gatewayHeaders("alice"),
				McpRequest: params(`{"name":"list_dir"}`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32602, "Unknown tool: list_dir"}},
		{name: "list request without params",
			in: &pb.McpRequest{ServiceNames: []string{"a", "b"}, Method: "tools/list", Headers: gatewayHeaders("alice")}},
		{name: "no token",
			in: &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders(""),
				McpRequest: params(`{"name":"search"}`)},
			deny: &denial{pb.AuthorizationError_PERMISSION_DENIED, decision.CodeJSONRPCDenied, "authentication required: no bearer token"},
			data: `"status":401,"www_authenticate":"Bearer resource_metadata=`},
		{name: "invalid token",
			in: &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("mallory"),
				McpRequest: params(`{"name":"search"}`)},
			deny: &denial{pb.AuthorizationError_PERMISSION_DENIED, decision.CodeJSONRPCDenied, "authentication required: token"},
			data: `error=\"invalid_token\"`},
		{name: "token from metadata_context",
			in: &pb.McpRequest{Method: "tools/call", Headers: hdrs(":path", "/mcp"),
				MetadataContext: meta(t, map[string]any{"authorization": "Bearer alice"}),
				McpRequest:      params(`{"name":"search"}`)}},
		{name: "metadata_context agrees with the header",
			in: &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"),
				MetadataContext: meta(t, map[string]any{"authorization": "Bearer alice"}),
				McpRequest:      params(`{"name":"search"}`)}},
		{name: "metadata_context disagrees with the header",
			in: &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"),
				MetadataContext: meta(t, map[string]any{"authorization": "Bearer admin"}),
				McpRequest:      params(`{"name":"search"}`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32700, "the request could not be read: the authorization header and metadata_context"}},
		{name: "metadata_context value not a string",
			in: &pb.McpRequest{Method: "tools/call", MetadataContext: meta(t, map[string]any{"authorization": []any{"Bearer alice"}}),
				McpRequest: params(`{"name":"search"}`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32700, `the request could not be read: metadata_context "authorization" is not a string`}},
		{name: "malformed params",
			in:   &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: params(`{"name":"search"`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32700, "the request could not be read: mcp_request is not one JSON value"}},
		{name: "params reaching out of the envelope",
			in:   &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: params(`{"name":"search"},"x":1`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32700, "the request could not be read: mcp_request is not one JSON value"}},
		{name: "params overriding the method",
			in:   &pb.McpRequest{Method: "tools/list", Headers: gatewayHeaders("alice"), McpRequest: params(`{},"method":"tools/call"`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32700, "the request could not be read: mcp_request is not one JSON value"}},
		{name: "duplicate keys in params",
			in:   &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: params(`{"name":"search","name":"debug"}`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32600, ""}},
		{name: "duplicate keys in arguments",
			in: &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"),
				McpRequest: params(`{"name":"read_file","arguments":{"path":"/home/a","path":"/etc/passwd"}}`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32600, ""}},
		{name: "keys equal under case folding",
			in:   &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: params(`{"name":"search","Name":"debug"}`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32600, ""}},
		{name: "params not UTF-8",
			in:   &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: []byte("{\"name\":\"se\xffrch\"}")},
			deny: &denial{pb.AuthorizationError_INVALID, -32700, ""}},
		{name: "params not an object",
			in:   &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: params(`["search"]`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32600, ""}},
		{name: "params present but empty",
			in:   &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: []byte{}},
			deny: &denial{pb.AuthorizationError_INVALID, -32700, "the request could not be read: mcp_request is not one JSON value"}},
		{name: "tools/call without a name",
			in:   &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: params(`{"arguments":{}}`)},
			deny: &denial{pb.AuthorizationError_INVALID, -32602, ""}},
		{name: "2026-07-28 with its standard headers",
			in: &pb.McpRequest{Method: "tools/call", Headers: append(gatewayHeaders("alice"),
				hdrs("mcp-protocol-version", "2026-07-28", "mcp-method", "tools/call", "mcp-name", "search")...),
				McpRequest: params(`{"name":"search"}`)}},
		{name: "2026-07-28 without Mcp-Name",
			in: &pb.McpRequest{Method: "tools/call", Headers: append(gatewayHeaders("alice"),
				hdrs("mcp-protocol-version", "2026-07-28", "mcp-method", "tools/call")...),
				McpRequest: params(`{"name":"search"}`)},
			deny: &denial{pb.AuthorizationError_INVALID, decision.CodeHeaderMismatch, "the Mcp-Name header is required"}},
		{name: "Mcp-Name disagreeing with the params",
			in: &pb.McpRequest{Method: "tools/call", Headers: append(gatewayHeaders("alice"),
				hdrs("mcp-protocol-version", "2026-07-28", "mcp-method", "tools/call", "mcp-name", "docs_search")...),
				McpRequest: params(`{"name":"search"}`)},
			deny: &denial{pb.AuthorizationError_INVALID, decision.CodeHeaderMismatch, ""}},
		{name: "empty method",
			in:   &pb.McpRequest{Headers: gatewayHeaders("alice")},
			deny: &denial{pb.AuthorizationError_INVALID, -32700, "the request could not be read: the method is empty"}},
		{name: "method needing escapes",
			in:   &pb.McpRequest{Method: "tools/\"call\n", Headers: gatewayHeaders("alice"), McpRequest: params(`{"name":"search"}`)},
			deny: &denial{pb.AuthorizationError_PERMISSION_DENIED, decision.CodeJSONRPCDenied, "denied by the test policy"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			res, err := c.CheckRequest(context.Background(), tc.in)
			if err != nil {
				t.Fatalf("CheckRequest failed: %v", err)
			}
			if tc.deny == nil {
				if res.GetPass() == nil {
					t.Fatalf("want pass, got %v", res)
				}
				checkAllowed(t, res)
				return
			}
			e := res.GetError()
			if e == nil {
				t.Fatalf("want an error, got %v", res)
			}
			var rpc struct {
				Code    int             `json:"code"`
				Message string          `json:"message"`
				Data    json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(e.GetMcpError(), &rpc); err != nil {
				t.Fatalf("mcp_error %q: %v", e.GetMcpError(), err)
			}
			if e.GetCode() != tc.deny.code || rpc.Code != tc.deny.rpc || !strings.HasPrefix(rpc.Message, tc.deny.message) {
				t.Errorf("got %v %d %q, want %v %d %q…", e.GetCode(), rpc.Code, rpc.Message, tc.deny.code, tc.deny.rpc, tc.deny.message)
			}
			if e.GetReason() != rpc.Message {
				t.Errorf("reason %q is not mcp_error's message %q", e.GetReason(), rpc.Message)
			}
			if strings.Contains(e.GetReason(), "visible") {
				t.Errorf("reason %q tells the caller about the visible rule", e.GetReason())
			}
			if !strings.Contains(string(rpc.Data), tc.data) {
				t.Errorf("data %s lacks %s", rpc.Data, tc.data)
			}
			if res.GetHeaderMutation() != nil || res.GetMetadata() != nil {
				t.Errorf("a denial carries header changes or metadata: %v", res)
			}
		})
	}
}

// checkAllowed checks what an allowed result carries: the decision id set
// upstream, the client's token removed, and the metadata for CEL.
func checkAllowed(t *testing.T, res *pb.McpRequestResult) {
	t.Helper()
	hm := res.GetHeaderMutation()
	var id string
	for _, h := range hm.GetSet() {
		if h.GetKey() == decision.DecisionIDHeader {
			id = string(h.GetValue())
		}
	}
	md := res.GetMetadata().GetFields()
	if id == "" || md["decision_id"].GetStringValue() != id {
		t.Errorf("decision id header %q, metadata %v", id, md["decision_id"])
	}
	if md["code"].GetStringValue() != decision.CodeAllowed {
		t.Errorf("metadata code %v", md["code"])
	}
	if strings.Join(hm.GetRemove(), ",") != "authorization" {
		t.Errorf("remove %v, want [authorization]", hm.GetRemove())
	}
}

// TestCheckRequestUndecodable sends bytes that are not an McpRequest
// (field 2, the method, not UTF-8): the answer is a refusal, not a gRPC
// error agentgateway's failure mode would decide.
func TestCheckRequestUndecodable(t *testing.T) {
	cc := conn(t, extmcp.Options{})
	// McpHeader's field 2 is bytes, McpRequest's a string.
	in := &pb.McpHeader{Key: "x", Value: []byte("tools/\xffcall")}
	out := &pb.McpRequestResult{}
	if err := cc.Invoke(context.Background(), pb.ExtMcp_CheckRequest_FullMethodName, in, out); err != nil {
		t.Fatalf("CheckRequest failed: %v", err)
	}
	if e := out.GetError(); e == nil || e.GetCode() != pb.AuthorizationError_INVALID || !strings.Contains(e.GetReason(), "decoding McpRequest") {
		t.Fatalf("got %v", out)
	}
	resp := &pb.McpResponseResult{}
	if err := cc.Invoke(context.Background(), pb.ExtMcp_CheckResponse_FullMethodName, in, resp); err != nil {
		t.Fatalf("CheckResponse failed: %v", err)
	}
	if e := resp.GetError(); e == nil || e.GetCode() != pb.AuthorizationError_UNKNOWN {
		t.Fatalf("got %v", resp)
	}
}

// TestMetadataKey: the caller's key in metadata_context is configurable,
// on both RPCs.
func TestMetadataKey(t *testing.T) {
	c := client(t, extmcp.Options{MetadataKey: "caller"})
	md := meta(t, map[string]any{"caller": "Bearer alice", "authorization": "Bearer admin"})
	res, err := c.CheckRequest(context.Background(), &pb.McpRequest{Method: "tools/call", MetadataContext: md, McpRequest: params(`{"name":"search"}`)})
	if err != nil || res.GetPass() == nil {
		t.Fatalf("CheckRequest: %v %v", res, err)
	}
	resp, err := c.CheckResponse(context.Background(), &pb.McpResponse{Method: "tools/list", MetadataContext: md,
		McpResponse: []byte(`{"tools":[{"name":"search"},{"name":"debug"}]}`)})
	if err != nil {
		t.Fatal(err)
	}
	if got := string(resp.GetMutated()); got != `{"cacheScope":"private","tools":[{"name":"search"}]}` {
		t.Fatalf("filtered for %q: %s (%v)", "caller", got, resp)
	}
}

func TestCheckResponse(t *testing.T) {
	c := client(t, extmcp.Options{})
	alice := map[string]any{"authorization": "Bearer alice", extmcp.ProtocolVersionKey: decision.Version20250618}
	alice2026 := map[string]any{"authorization": "Bearer alice", extmcp.ProtocolVersionKey: decision.Version20260728}
	tools := `{"tools":[{"name":"search","description":"finds"},{"name":"debug"},{"name":"list_dir"},{"name":"read_file","inputSchema":{"type":"object"}},{"name":"secret"}],"nextCursor":"c2"}`
	cases := []struct {
		name     string
		method   string
		services []string
		md       map[string]any
		result   string
		// want is the mutated result; "" wants Pass. errPrefix, when set,
		// wants an error whose reason starts with it.
		want      string
		errPrefix string
	}{
		{name: "tools/list filtered in order", method: "tools/list", md: alice, result: tools,
			want: `{"nextCursor":"c2","tools":[{"name":"search","description":"finds"},{"name":"read_file","inputSchema":{"type":"object"}}]}`},
		{name: "tools/list filtered per backend", method: "tools/list", services: []string{"files"}, md: alice, result: tools,
			want: `{"nextCursor":"c2","tools":[{"name":"search","description":"finds"},{"name":"list_dir"},{"name":"read_file","inputSchema":{"type":"object"}}]}`},
		{name: "2026-07-28: cacheScope private", method: "tools/list", md: alice2026, result: tools,
			want: `{"cacheScope":"private","nextCursor":"c2","tools":[{"name":"search","description":"finds"},{"name":"read_file","inputSchema":{"type":"object"}}]}`},
		{name: "revision unknown: cacheScope private", method: "tools/list", md: map[string]any{"authorization": "Bearer alice"},
			result: `{"tools":[{"name":"debug"},{"name":"search"}]}`,
			want:   `{"cacheScope":"private","tools":[{"name":"search"}]}`},
		{name: "nothing hidden: pass", method: "tools/list", md: map[string]any{"authorization": "Bearer admin"}, result: tools},
		{name: "prompts/list", method: "prompts/list", md: alice,
			result: `{"prompts":[{"name":"leak"},{"name":"summarize","arguments":[{"name":"text"}]}]}`,
			want:   `{"prompts":[{"name":"summarize","arguments":[{"name":"text"}]}]}`},
		{name: "resources/list", method: "resources/list", md: alice,
			result: `{"resources":[{"uri":"file:///b","name":"b"},{"uri":"file:///a","name":"a"}]}`,
			want:   `{"resources":[{"uri":"file:///a","name":"a"}]}`},
		{name: "resources/templates/list", method: "resources/templates/list", md: alice,
			result: `{"resourceTemplates":[{"uriTemplate":"file:///{path}","name":"f"},{"uriTemplate":"db://{table}","name":"t"}]}`,
			want:   `{"resourceTemplates":[{"uriTemplate":"file:///{path}","name":"f"}]}`},
		{name: "no caller: emptied", method: "tools/list", md: nil, result: tools,
			want: `{"cacheScope":"private","nextCursor":"c2","tools":[]}`},
		{name: "invalid caller: emptied", method: "prompts/list", md: map[string]any{"authorization": "Bearer mallory", extmcp.ProtocolVersionKey: decision.Version20251125},
			result: `{"prompts":[{"name":"summarize"}]}`, want: `{"prompts":[]}`},
		{name: "empty list: pass", method: "tools/list", md: alice, result: `{"tools":[]}`},
		{name: "other method: pass", method: "tools/call", md: alice, result: `{"content":[]}`},
		{name: "caller not a string", method: "tools/list", md: map[string]any{"authorization": 7.0}, result: tools,
			errPrefix: `metadata_context "authorization" is not a string`},
		{name: "unreadable result", method: "tools/list", md: alice, result: `{"tools":[`,
			errPrefix: "the list answer could not be read: mcp_response is not one JSON value"},
		{name: "empty result", method: "tools/list", md: alice, result: ``,
			errPrefix: "the list answer could not be read"},
		{name: "duplicate list member", method: "tools/list", md: alice, result: `{"tools":[{"name":"search"}],"tools":[{"name":"secret"}]}`,
			errPrefix: "the list answer could not be read"},
		{name: "duplicate item name", method: "tools/list", md: alice, result: `{"tools":[{"name":"secret","name":"search"}]}`,
			errPrefix: "the list answer could not be read"},
		{name: "list not an array", method: "tools/list", md: alice, result: `{"tools":{"name":"secret"}}`,
			errPrefix: "the list answer could not be read"},
		{name: "result not an object", method: "tools/list", md: alice, result: `[]`,
			errPrefix: "the list answer could not be read"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := &pb.McpResponse{ServiceNames: tc.services, Method: tc.method, McpResponse: []byte(tc.result)}
			if tc.md != nil {
				in.MetadataContext = meta(t, tc.md)
			}
			res, err := c.CheckResponse(context.Background(), in)
			if err != nil {
				t.Fatalf("CheckResponse failed: %v", err)
			}
			switch {
			case tc.errPrefix != "":
				e := res.GetError()
				if e == nil || e.GetCode() != pb.AuthorizationError_UNKNOWN || !strings.HasPrefix(e.GetReason(), tc.errPrefix) {
					t.Fatalf("got %v, want an error %q…", res, tc.errPrefix)
				}
				var rpc struct{ Code int }
				if err := json.Unmarshal(e.GetMcpError(), &rpc); err != nil || rpc.Code != decision.CodeListUnfilterable {
					t.Errorf("mcp_error %s (%v)", e.GetMcpError(), err)
				}
			case tc.want == "":
				if res.GetPass() == nil {
					t.Fatalf("got %v, want pass", res)
				}
			default:
				if got := string(res.GetMutated()); got != tc.want {
					t.Fatalf("got  %s\nwant %s (%v)", got, tc.want, res)
				}
			}
		})
	}
}

// TestListsAndCallsAgree: every tool CheckResponse hides from a caller's
// list, CheckRequest refuses as unknown, and every tool it shows may be
// called, on the same backend.
func TestListsAndCallsAgree(t *testing.T) {
	c := client(t, extmcp.Options{})
	names := []string{"search", "debug", "list_dir", "read_file", "secret"}
	var list []string
	for _, n := range names {
		list = append(list, `{"name":"`+n+`"}`)
	}
	for _, backend := range []string{"files", "docs"} {
		md := meta(t, map[string]any{"authorization": "Bearer alice"})
		res, err := c.CheckResponse(context.Background(), &pb.McpResponse{ServiceNames: []string{backend}, Method: "tools/list",
			MetadataContext: md, McpResponse: []byte(`{"tools":[` + strings.Join(list, ",") + `]}`)})
		if err != nil {
			t.Fatal(err)
		}
		shown := string(res.GetMutated())
		for _, n := range names {
			call, err := c.CheckRequest(context.Background(), &pb.McpRequest{ServiceNames: []string{backend}, Method: "tools/call",
				Headers: gatewayHeaders("alice"), McpRequest: params(`{"name":"` + n + `"}`)})
			if err != nil {
				t.Fatal(err)
			}
			visible := strings.Contains(shown, `"`+n+`"`)
			unknown := strings.HasPrefix(call.GetError().GetReason(), "Unknown tool")
			if visible == unknown || visible != (call.GetPass() != nil) {
				t.Errorf("%s on %s: listed %v, call %v", n, backend, visible, call)
			}
		}
	}
}
