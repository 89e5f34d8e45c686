package decisionapi_test

import (
	"bytes"
	"context"
	"math"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/google/go-cmp/cmp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
	"github.com/mcpauthz/mcpauthz/transport/decisionapi"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

var tokens = decisiontest.Tokens{
	"alice-token": {"sub": "alice", "scope": "mcp:tools files:read"},
	"bob-token":   {"sub": "bob", "scope": "mcp:tools payments:write", "team": "support"},
}

// dial serves srv over bufconn and returns a client.
func dial(t *testing.T, srv pb.DecisionServiceServer) pb.DecisionServiceClient {
	t.Helper()
	return pb.NewDecisionServiceClient(decisiontest.Dial(t, func(s *grpc.Server) { pb.RegisterDecisionServiceServer(s, srv) }))
}

func newServer(t *testing.T, dir string, opts decisionapi.Options) pb.DecisionServiceClient {
	t.Helper()
	e := decisiontest.NewEngine(t, dir, func(o *decision.Options) { o.Tokens = tokens })
	return dial(t, decisionapi.NewServer(e, decision.NewItemFilter(e), opts))
}

func raw(body string) *pb.Message { return &pb.Message{Kind: &pb.Message_Raw{Raw: []byte(body)}} }

func bearer(tok string) *pb.Credentials {
	return &pb.Credentials{Credential: &pb.Credentials_BearerToken{BearerToken: tok}}
}

func readFile(path string) *pb.Message {
	return raw(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"` + path + `"}}}`)
}

var mcpHTTP = &pb.HttpContext{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Headers: map[string]string{"Content-Type": "application/json"}}

func TestDecide(t *testing.T) {
	c := newServer(t, "../../decision/testdata/policy", decisionapi.Options{TrustClaims: func(context.Context) bool { return true }})
	params, _ := structpb.NewStruct(map[string]any{"name": "read_file", "arguments": map[string]any{"path": "/data/x"}})
	claims, _ := structpb.NewStruct(map[string]any{"sub": "carol", "scope": "mcp:tools files:read"})
	tests := map[string]struct {
		req      *pb.DecideRequest
		allow    bool
		code     string
		status   int32
		bodyHas  string
		upstream string
	}{
		"allowed": {
			req:   &pb.DecideRequest{Message: readFile("/data/q3.csv"), Credentials: bearer("alice-token"), Http: mcpHTTP},
			allow: true, code: decision.CodeAllowed, upstream: "alice",
		},
		"allowed_call_form": {
			req: &pb.DecideRequest{
				Message:     &pb.Message{Kind: &pb.Message_Call{Call: &pb.Call{Method: "tools/call", Params: params}}},
				Credentials: bearer("alice-token"),
			},
			allow: true, code: decision.CodeAllowed, upstream: "alice",
		},
		"allowed_trusted_claims": {
			req:   &pb.DecideRequest{Message: readFile("/data/q3.csv"), Credentials: &pb.Credentials{Credential: &pb.Credentials_Claims{Claims: claims}}},
			allow: true, code: decision.CodeAllowed, upstream: "carol",
		},
		"allowed_header_token": {
			req: &pb.DecideRequest{Message: readFile("/data/q3.csv"), Http: &pb.HttpContext{
				Method: "POST", Path: "/mcp", Headers: map[string]string{"Authorization": "Bearer alice-token"},
			}},
			allow: true, code: decision.CodeAllowed, upstream: "alice",
		},
		"denied_by_argument_rule": {
			req:  &pb.DecideRequest{Message: readFile("/etc/passwd"), Credentials: bearer("alice-token"), Http: mcpHTTP},
			code: decision.CodePolicyDenied, status: 200, bodyHas: `"isError":true`,
		},
		"denied_missing_scope": {
			req:  &pb.DecideRequest{Message: readFile("/data/x"), Credentials: bearer("bob-token"), Http: mcpHTTP},
			code: decision.CodeInsufficientScope, status: 403,
		},
		"bad_token": {
			req:  &pb.DecideRequest{Message: readFile("/data/x"), Credentials: bearer("forged"), Http: mcpHTTP},
			code: decision.CodeUnauthenticated, status: 401,
		},
		"no_token": {
			req:  &pb.DecideRequest{Message: readFile("/data/x"), Http: mcpHTTP},
			code: decision.CodeUnauthenticated, status: 401,
		},
		"malformed_message": {
			req:  &pb.DecideRequest{Message: raw(`{"jsonrpc":"2.0","id":1,"method":`), Credentials: bearer("alice-token"), Http: mcpHTTP},
			code: decision.CodeParseError, status: 400, bodyHas: `"code":-32700`,
		},
		"empty_jsonrpc_batch": {
			req:  &pb.DecideRequest{Message: raw(`[]`), Credentials: bearer("alice-token"), Http: mcpHTTP},
			code: decision.CodeParseError, status: 400,
		},
		"unknown_method": {
			req:  &pb.DecideRequest{Message: raw(`{"jsonrpc":"2.0","id":3,"method":"admin/shutdown"}`), Credentials: bearer("alice-token"), Http: mcpHTTP},
			code: decision.CodePolicyDenied, status: 200, bodyHas: `"code":-31001`,
		},
		"truncated": {
			req: &pb.DecideRequest{Message: &pb.Message{Kind: &pb.Message_Raw{Raw: []byte(`{"jsonrpc":"2.0"`)}, Truncated: true},
				Credentials: bearer("alice-token")},
			code: decision.CodeBodyTooLarge, status: 413,
		},
		"get_stream_without_message": {
			req:   &pb.DecideRequest{Credentials: bearer("alice-token"), Http: &pb.HttpContext{Method: "GET", Path: "/mcp"}},
			allow: true, code: decision.CodeAllowed, upstream: "alice",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, err := c.Decide(context.Background(), tc.req)
			if err != nil {
				t.Fatal(err)
			}
			d := resp.GetDecision()
			if d.GetAllow() != tc.allow || d.GetCode() != tc.code {
				t.Fatalf("got allow=%v code=%s reason=%q, want allow=%v code=%s", d.GetAllow(), d.GetCode(), d.GetReason(), tc.allow, tc.code)
			}
			if d.GetDecisionId() == "" || d.GetRevision() == "" {
				t.Errorf("decision id %q, revision %q: want both set", d.GetDecisionId(), d.GetRevision())
			}
			if tc.allow {
				if d.GetDeniedResponse() != nil {
					t.Errorf("allowed decision carries a denied response")
				}
				if h := d.GetUpstreamHeaders(); len(h) != 2 || h[0].GetValue() != tc.upstream ||
					h[1].GetName() != decision.DecisionIDHeader || h[1].GetValue() != d.GetDecisionId() {
					t.Errorf("upstream headers = %v, want x-mcp-subject %s and the decision id", h, tc.upstream)
				}
				return
			}
			dr := d.GetDeniedResponse()
			if dr.GetStatus() != tc.status {
				t.Errorf("status = %d, want %d", dr.GetStatus(), tc.status)
			}
			if !bytes.Contains(dr.GetBody(), []byte(tc.bodyHas)) {
				t.Errorf("body = %s, want it to contain %s", dr.GetBody(), tc.bodyHas)
			}
			if dr.GetBodyText() != string(dr.GetBody()) {
				t.Errorf("body_text = %q, want the body as text %q", dr.GetBodyText(), dr.GetBody())
			}
		})
	}
}

func TestDecideRequestErrors(t *testing.T) {
	c := newServer(t, "../../decision/testdata/policy", decisionapi.Options{})
	claims, _ := structpb.NewStruct(map[string]any{"sub": "mallory"})
	tests := map[string]struct {
		req  *pb.DecideRequest
		code codes.Code
	}{
		"untrusted_claims": {
			req:  &pb.DecideRequest{Message: readFile("/data/x"), Credentials: &pb.Credentials{Credential: &pb.Credentials_Claims{Claims: claims}}},
			code: codes.PermissionDenied,
		},
		"no_message_no_method": {req: &pb.DecideRequest{Credentials: bearer("alice-token")}, code: codes.InvalidArgument},
		"call_without_method": {
			req:  &pb.DecideRequest{Message: &pb.Message{Kind: &pb.Message_Call{Call: &pb.Call{}}}},
			code: codes.InvalidArgument,
		},
		"call_with_fractional_id": {
			req:  &pb.DecideRequest{Message: &pb.Message{Kind: &pb.Message_Call{Call: &pb.Call{Method: "ping", Id: structpb.NewNumberValue(1.5)}}}},
			code: codes.InvalidArgument,
		},
		"empty_bearer":         {req: &pb.DecideRequest{Message: readFile("/data/x"), Credentials: bearer("")}, code: codes.InvalidArgument},
		"message_without_kind": {req: &pb.DecideRequest{Message: &pb.Message{}}, code: codes.InvalidArgument},
		// Issue 28 item 2: which of the two a map gives last changes from
		// call to call.
		"header_names_differing_in_case": {
			req: &pb.DecideRequest{Message: readFile("/data/x"), Http: &pb.HttpContext{
				Headers: map[string]string{"Authorization": "Bearer alice-token", "authorization": "Bearer bob-token"}}},
			code: codes.InvalidArgument,
		},
		"session_header_differing_in_case": {
			req: &pb.DecideRequest{Message: readFile("/data/x"), Credentials: bearer("alice-token"), Http: &pb.HttpContext{
				Headers: map[string]string{"Mcp-Session-Id": "S", "mcp-session-id": "x"}}},
			code: codes.InvalidArgument,
		},
		"bearer_and_authorization_header": {
			req: &pb.DecideRequest{Message: readFile("/data/x"), Credentials: bearer("alice-token"), Http: &pb.HttpContext{
				Headers: map[string]string{"authorization": "Bearer bob-token"}}},
			code: codes.InvalidArgument,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.Decide(context.Background(), tc.req)
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
		})
	}
}

func TestDecideBatch(t *testing.T) {
	c := newServer(t, "../../decision/testdata/policy", decisionapi.Options{})
	allowed := &pb.DecideRequest{Message: readFile("/data/a"), Credentials: bearer("alice-token")}
	denied := &pb.DecideRequest{Message: readFile("/etc/shadow"), Credentials: bearer("alice-token")}
	many := make([]*pb.DecideRequest, 1000)
	for i := range many {
		many[i] = allowed
		if i%10 == 9 {
			many[i] = denied
		}
	}
	tests := map[string]struct {
		reqs      []*pb.DecideRequest
		wantAllow []bool // nil: check counts only
		allowed   int
		code      codes.Code
	}{
		"empty_batch":      {reqs: nil, wantAllow: []bool{}},
		"mixed_in_order":   {reqs: []*pb.DecideRequest{denied, allowed, denied}, wantAllow: []bool{false, true, false}},
		"batch_of_1000":    {reqs: many, allowed: 900},
		"over_the_limit":   {reqs: append(many, allowed), code: codes.InvalidArgument},
		"one_bad_request":  {reqs: []*pb.DecideRequest{allowed, {}}, code: codes.InvalidArgument},
		"batch_of_one_get": {reqs: []*pb.DecideRequest{{Http: &pb.HttpContext{Method: "GET"}, Credentials: bearer("alice-token")}}, wantAllow: []bool{true}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp, err := c.DecideBatch(context.Background(), &pb.DecideBatchRequest{Requests: tc.reqs})
			if tc.code != codes.OK {
				if status.Code(err) != tc.code {
					t.Fatalf("got %v, want %v", err, tc.code)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ds := resp.GetDecisions()
			if len(ds) != len(tc.reqs) {
				t.Fatalf("got %d decisions for %d requests", len(ds), len(tc.reqs))
			}
			ids := map[string]bool{}
			n := 0
			for i, d := range ds {
				if tc.wantAllow != nil && d.GetAllow() != tc.wantAllow[i] {
					t.Errorf("decision %d: allow=%v, want %v", i, d.GetAllow(), tc.wantAllow[i])
				}
				if d.GetAllow() {
					n++
				}
				ids[d.GetDecisionId()] = true
			}
			if tc.wantAllow == nil && n != tc.allowed {
				t.Errorf("%d allowed, want %d", n, tc.allowed)
			}
			if len(ids) != len(ds) {
				t.Errorf("decision ids are not unique: %d distinct for %d decisions", len(ids), len(ds))
			}
		})
	}
}

func TestAllowedTools(t *testing.T) {
	c := newServer(t, "../../examples/bundles/parameter-rules", decisionapi.Options{})
	schema, _ := structpb.NewStruct(map[string]any{"type": "object", "properties": map[string]any{"path": map[string]any{"type": "string"}}})
	ann, _ := structpb.NewStruct(map[string]any{"readOnlyHint": true})
	tools := []*pb.Tool{
		{Name: "read_file", Description: "Read a file", InputSchema: schema, Annotations: ann},
		{Name: "list_dir"},
		{Name: "query"},
		{Name: "transfer"},
	}
	tests := map[string]struct {
		token string
		route string
		want  []string
	}{
		"files_route":                  {token: "alice-token", route: "files", want: []string{"read_file", "list_dir"}},
		"db_route":                     {token: "alice-token", route: "db", want: []string{"query"}},
		"payments_without_scope":       {token: "alice-token", route: "payments", want: nil},
		"payments_with_scope":          {token: "bob-token", route: "payments", want: []string{"transfer"}},
		"bad_token_sees_nothing":       {token: "forged", route: "files", want: nil},
		"no_route_context_no_tools":    {token: "alice-token", want: nil},
		"unknown_route_sees_nothing":   {token: "alice-token", route: "nope", want: nil},
		"files_route_keeps_definition": {token: "alice-token", route: "files", want: []string{"read_file", "list_dir"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			caller := &pb.Caller{Credentials: bearer(tc.token), Http: mcpHTTP}
			if tc.route != "" {
				caller.ContextExtensions = map[string]string{"mcp_server": tc.route}
			}
			resp, err := c.AllowedTools(context.Background(), &pb.AllowedToolsRequest{Caller: caller, Tools: tools})
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, tl := range resp.GetTools() {
				got = append(got, tl.GetName())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("visible tools (-want +got):\n%s", diff)
			}
			if len(resp.GetVerdicts()) != len(tools) {
				t.Fatalf("%d verdicts for %d tools", len(resp.GetVerdicts()), len(tools))
			}
			for _, v := range resp.GetVerdicts() {
				if v.GetBasis() != pb.VisibilityBasis_VISIBILITY_BASIS_RULE {
					t.Errorf("%s: basis %v, want the visible rule", v.GetName(), v.GetBasis())
				}
			}
			if len(got) > 0 && got[0] == "read_file" && resp.GetTools()[0].GetInputSchema() == nil {
				t.Errorf("the tool definition lost its input schema")
			}
		})
	}
}

func TestAllowedPromptsAndResources(t *testing.T) {
	c := newServer(t, "../../examples/bundles/parameter-rules", decisionapi.Options{})
	withPrompts := fakeCaller("alice-token")
	pr, err := c.AllowedPrompts(context.Background(), &pb.AllowedPromptsRequest{Caller: withPrompts, Prompts: []*pb.Prompt{{Name: "summarize"}}})
	if err != nil {
		t.Fatal(err)
	}
	// alice lacks mcp:prompts.
	if len(pr.GetPrompts()) != 0 || len(pr.GetVerdicts()) != 1 || pr.GetVerdicts()[0].GetVisible() {
		t.Errorf("prompts: got %v", pr)
	}
	rr, err := c.AllowedResources(context.Background(), &pb.AllowedResourcesRequest{Caller: withPrompts, Resources: []*pb.Resource{{Uri: "file:///data/a", Name: "a"}}})
	if err != nil {
		t.Fatal(err)
	}
	if len(rr.GetResources()) != 0 || rr.GetVerdicts()[0].GetName() != "file:///data/a" {
		t.Errorf("resources: got %v", rr)
	}
}

func fakeCaller(tok string) *pb.Caller {
	return &pb.Caller{Credentials: bearer(tok), Http: mcpHTTP}
}

func TestNoPolicyAndStatus(t *testing.T) {
	e, err := decision.New(decision.Options{Snapshots: &decisiontest.Snapshots{}})
	if err != nil {
		t.Fatal(err)
	}
	loaded := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	c := dial(t, decisionapi.NewServer(e, decision.NewItemFilter(e), decisionapi.Options{Status: func() bundles.Status {
		return bundles.Status{Ready: true, Revision: "r1", LoadedAt: loaded, Bundles: []bundles.BundleStatus{{Name: "b", Revision: "r1", LastError: "x"}}}
	}}))
	resp, err := c.Decide(context.Background(), &pb.DecideRequest{Message: readFile("/data/a")})
	if err != nil {
		t.Fatal(err)
	}
	if d := resp.GetDecision(); d.GetAllow() || d.GetCode() != decision.CodeNoPolicy || d.GetDeniedResponse().GetStatus() != 503 {
		t.Errorf("no policy: got %v", d)
	}
	if _, err := c.AllowedTools(context.Background(), &pb.AllowedToolsRequest{Tools: []*pb.Tool{{Name: "x"}}}); status.Code(err) != codes.Unavailable {
		t.Errorf("AllowedTools without policy: got %v, want Unavailable", err)
	}
	st, err := c.Status(context.Background(), &pb.StatusRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if !st.GetReady() || st.GetRevision() != "r1" || !st.GetLoadedAt().AsTime().Equal(loaded) || st.GetLastErrorAt() != nil ||
		len(st.GetBundles()) != 1 || st.GetBundles()[0].GetLastError() != "x" {
		t.Errorf("status = %v", st)
	}

	bare := dial(t, decisionapi.NewServer(e, decision.NewItemFilter(e), decisionapi.Options{}))
	if _, err := bare.Status(context.Background(), &pb.StatusRequest{}); status.Code(err) != codes.Unimplemented {
		t.Errorf("Status without a source: got %v, want Unimplemented", err)
	}
}

// TestParityWithExtAuthz runs every golden CheckRequest of the Envoy adapter
// through ext_authz Check and through Decide (on one gRPC server, as in
// production) and requires the same decision.
func TestParityWithExtAuthz(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", func(o *decision.Options) { o.Tokens = tokens })
	envoyOpts := extauthz.Options{JWTMetadataNamespace: "envoy.filters.http.jwt_authn", JWTPayloadKey: "payload"}
	// Both services on one server, as serve wires them.
	cc := decisiontest.Dial(t, func(s *grpc.Server) {
		authv3.RegisterAuthorizationServer(s, extauthz.NewServer(e, envoyOpts, nil))
		pb.RegisterDecisionServiceServer(s, decisionapi.NewServer(e, decision.NewItemFilter(e), decisionapi.Options{TrustClaims: func(context.Context) bool { return true }}))
	})
	c := pb.NewDecisionServiceClient(cc)
	files, err := filepath.Glob("../extauthz/testdata/checks/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden checks: %v", err)
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var check authv3.CheckRequest
			if err := protojson.Unmarshal(b, &check); err != nil {
				t.Fatal(err)
			}
			cresp, err := authv3.NewAuthorizationClient(cc).Check(context.Background(), &check)
			if err != nil {
				t.Fatal(err)
			}
			// ext_authz carries no scopes: take them from the same request
			// decided directly by the engine.
			scopes := e.Decide(context.Background(), extauthz.RequestFromCheck(&check, &envoyOpts)).Scopes
			resp, err := c.Decide(context.Background(), decideFromCheck(t, &check))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(summarizeCheck(cresp, scopes), summarizeDecision(resp.GetDecision())); diff != "" {
				t.Errorf("ext_authz and Decide disagree (-ext_authz +Decide):\n%s", diff)
			}
		})
	}
}

// decideFromCheck translates a CheckRequest as a non-Envoy caller would:
// the same HTTP request, with jwt_authn's verified payload as trusted claims
// (and, like the adapter that trusts only jwt_authn, no bearer header).
func decideFromCheck(t *testing.T, check *authv3.CheckRequest) *pb.DecideRequest {
	t.Helper()
	a := check.GetAttributes()
	h := a.GetRequest().GetHttp()
	headers := map[string]string{}
	for k, v := range h.GetHeaders() {
		if k != "authorization" {
			headers[k] = v
		}
	}
	method, path, host := h.GetMethod(), h.GetPath(), h.GetHost()
	if method == "" {
		method = headers[":method"]
	}
	if path == "" {
		path = headers[":path"]
	}
	if host == "" {
		host = headers[":authority"]
	}
	req := &pb.DecideRequest{
		Http:              &pb.HttpContext{Method: method, Path: path, Host: host, Headers: headers},
		ContextExtensions: a.GetContextExtensions(),
	}
	body := h.GetRawBody()
	if len(body) == 0 && h.GetBody() != "" {
		body = []byte(h.GetBody())
	}
	if len(body) > 0 {
		req.Message = raw(string(body))
	}
	if src := a.GetSource(); src != nil {
		sa := src.GetAddress().GetSocketAddress()
		addr := ""
		if sa != nil {
			addr = net.JoinHostPort(sa.GetAddress(), strconv.FormatUint(uint64(sa.GetPortValue()), 10))
		}
		req.Source = &pb.Peer{Address: addr, Principal: src.GetPrincipal()}
	}
	md := a.GetMetadataContext().GetFilterMetadata()
	if p := md["envoy.filters.http.jwt_authn"].GetFields()["payload"].GetStructValue(); p != nil {
		req.Credentials = &pb.Credentials{Credential: &pb.Credentials_Claims{Claims: p}}
	}
	if m := md["envoy.filters.http.mcp"].GetFields(); m != nil {
		hint := &pb.Hint{Method: m["method"].GetStringValue(), Id: m["id"]}
		if pf := m["params"].GetStructValue().GetFields(); pf != nil {
			hint.Name = pf["name"].GetStringValue()
			if hint.Name == "" {
				hint.Name = pf["uri"].GetStringValue()
			}
		}
		req.Hint = hint
	}
	return req
}

// outcome is what parity compares.
type outcome struct {
	Allow           bool
	Scopes          []string
	Status          int32
	Reason          string
	Headers         map[string]string
	Body            string
	UpstreamHeaders map[string]string
	RemoveHeaders   []string
	Code            string
	Revision        string
}

func summarizeCheck(r *authv3.CheckResponse, scopes []string) (o outcome) {
	md := r.GetDynamicMetadata().GetFields()
	o = outcome{Code: md["code"].GetStringValue(), Revision: md["revision"].GetStringValue(), Scopes: scopes}
	defer o.sameID(md["decision_id"].GetStringValue())
	if ok := r.GetOkResponse(); ok != nil {
		o.Allow = true
		o.UpstreamHeaders = map[string]string{}
		for _, h := range ok.GetHeaders() {
			o.UpstreamHeaders[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		o.RemoveHeaders = ok.GetHeadersToRemove()
		o.Headers = map[string]string{}
		for _, h := range ok.GetResponseHeadersToAdd() {
			o.Headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		return o
	}
	d := r.GetDeniedResponse()
	o.Status = int32(d.GetStatus().GetCode())
	o.Reason = r.GetStatus().GetMessage()
	o.Body = d.GetBody()
	o.Headers = map[string]string{}
	for _, h := range d.GetHeaders() {
		o.Headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	return o
}

// sameID replaces the decision id header's value, when it is the
// decision's own id, by a placeholder: two decisions of the same request
// have different ids. A wrong id stays and fails the comparison.
func (o *outcome) sameID(id string) {
	for _, hs := range []map[string]string{o.Headers, o.UpstreamHeaders} {
		if v, ok := hs[decision.DecisionIDHeader]; ok && v == id && id != "" {
			hs[decision.DecisionIDHeader] = "<decision id>"
		}
	}
}

func summarizeDecision(d *pb.Decision) (o outcome) {
	o = outcome{Allow: d.GetAllow(), Code: d.GetCode(), Revision: d.GetRevision(), Scopes: d.GetScopes()}
	defer o.sameID(d.GetDecisionId())
	if d.GetAllow() {
		o.UpstreamHeaders = map[string]string{}
		for _, h := range d.GetUpstreamHeaders() {
			o.UpstreamHeaders[h.GetName()] = h.GetValue()
		}
		o.RemoveHeaders = d.GetRemoveUpstreamHeaders()
		o.Headers = map[string]string{}
		for _, h := range d.GetResponseHeaders() {
			o.Headers[h.GetName()] = h.GetValue()
		}
		return o
	}
	dr := d.GetDeniedResponse()
	o.Status = dr.GetStatus()
	o.Reason = d.GetReason()
	o.Body = string(dr.GetBody())
	o.Headers = map[string]string{}
	for _, h := range dr.GetHeaders() {
		o.Headers[h.GetName()] = h.GetValue()
	}
	return o
}

// TestStructsOneReading: the Decision API's JSON-carrying fields are read
// with the rules of every MCP body (issue 28 item 4): a Struct whose keys
// are equal under case folding, hold a control character, or whose
// numbers are not finite is refused, not handed to the policy.
func TestStructsOneReading(t *testing.T) {
	c := newServer(t, "../../decision/testdata/policy", decisionapi.Options{TrustClaims: func(context.Context) bool { return true }})
	claims := func(m map[string]any) *pb.Credentials {
		s, err := structpb.NewStruct(m)
		if err != nil {
			t.Fatal(err)
		}
		return &pb.Credentials{Credential: &pb.Credentials_Claims{Claims: s}}
	}
	nan := &structpb.Struct{Fields: map[string]*structpb.Value{"sub": structpb.NewStringValue("alice"), "n": structpb.NewNumberValue(math.NaN())}}
	tests := map[string]struct {
		cred *pb.Credentials
		code codes.Code
	}{
		"claims_plain":          {claims(map[string]any{"sub": "alice", "scope": "mcp:tools files:read"}), codes.OK},
		"claims_case_folded":    {claims(map[string]any{"sub": "alice", "SUB": "mallory", "scope": "mcp:tools files:read"}), codes.InvalidArgument},
		"claims_nested_folded":  {claims(map[string]any{"sub": "alice", "ext": map[string]any{"team": "a", "Team": "b"}}), codes.InvalidArgument},
		"claims_nul_in_name":    {claims(map[string]any{"sub": "alice", "scope\x00": "admin"}), codes.InvalidArgument},
		"claims_not_finite":     {&pb.Credentials{Credential: &pb.Credentials_Claims{Claims: nan}}, codes.InvalidArgument},
		"claims_folds_to_ascii": {claims(map[string]any{"sub": "alice", "\u212aid": "x"}), codes.InvalidArgument},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := c.Decide(context.Background(), &pb.DecideRequest{Message: readFile("/data/x"), Http: mcpHTTP, Credentials: tc.cred})
			if status.Code(err) != tc.code {
				t.Fatalf("got %v, want %v", err, tc.code)
			}
		})
	}

	t.Run("tool_annotations_case_folded", func(t *testing.T) {
		ann, _ := structpb.NewStruct(map[string]any{"readOnlyHint": true, "readonlyhint": false})
		_, err := c.AllowedTools(context.Background(), &pb.AllowedToolsRequest{
			Caller: &pb.Caller{Credentials: bearer("alice-token"), Http: mcpHTTP},
			Tools:  []*pb.Tool{{Name: "read_file", Annotations: ann}},
		})
		if status.Code(err) != codes.InvalidArgument || !strings.Contains(err.Error(), "tools[0].annotations") {
			t.Fatalf("got %v, want InvalidArgument naming tools[0].annotations", err)
		}
	})
	t.Run("call_params_case_folded", func(t *testing.T) {
		params, _ := structpb.NewStruct(map[string]any{"name": "read_file", "arguments": map[string]any{"path": "/etc/passwd", "PATH": "/data/x"}})
		d, err := c.Decide(context.Background(), &pb.DecideRequest{
			Message: &pb.Message{Kind: &pb.Message_Call{Call: &pb.Call{Method: "tools/call", Params: params}}},
			Http:    mcpHTTP, Credentials: bearer("alice-token"),
		})
		if err != nil || d.GetDecision().GetAllow() || d.GetDecision().GetCode() != "request_parse_error" {
			t.Fatalf("got %v, %v; want a request_parse_error denial", d, err)
		}
	})
}
