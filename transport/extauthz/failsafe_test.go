package extauthz_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// rawCheck encodes a CheckRequest field by field, as Envoy's C++ encoder
// does: unlike Go's generated code it does not refuse strings that are not
// UTF-8 (header values, the path).
func rawCheck(method, path string, headers map[string]string, body []byte) []byte {
	var http []byte
	http = protowire.AppendTag(http, 2, protowire.BytesType)
	http = protowire.AppendString(http, method)
	for k, v := range headers {
		var entry []byte
		entry = protowire.AppendTag(entry, 1, protowire.BytesType)
		entry = protowire.AppendString(entry, k)
		entry = protowire.AppendTag(entry, 2, protowire.BytesType)
		entry = protowire.AppendString(entry, v)
		http = protowire.AppendTag(http, 3, protowire.BytesType)
		http = protowire.AppendBytes(http, entry)
	}
	http = protowire.AppendTag(http, 4, protowire.BytesType)
	http = protowire.AppendString(http, path)
	http = protowire.AppendTag(http, 5, protowire.BytesType)
	http = protowire.AppendString(http, "mcp.example.com")
	if body != nil {
		http = protowire.AppendTag(http, 12, protowire.BytesType)
		http = protowire.AppendBytes(http, body)
	}
	var req []byte
	req = protowire.AppendTag(req, 2, protowire.BytesType)
	req = protowire.AppendBytes(req, http)
	var attrs []byte
	attrs = protowire.AppendTag(attrs, 4, protowire.BytesType)
	attrs = protowire.AppendBytes(attrs, req)
	var out []byte
	out = protowire.AppendTag(out, 1, protowire.BytesType)
	return protowire.AppendBytes(out, attrs)
}

// checkRaw sends b as a CheckRequest and decodes the answer with the
// generated types, which check UTF-8 as Envoy's decoder does.
func checkRaw(t *testing.T, conn *grpc.ClientConn, b []byte) *authv3.CheckResponse {
	t.Helper()
	var out []byte
	if err := conn.Invoke(context.Background(), "/envoy.service.auth.v3.Authorization/Check", &b, &out,
		grpc.ForceCodecV2(rawCodec{})); err != nil {
		t.Fatalf("Check failed instead of answering: %v", err)
	}
	var resp authv3.CheckResponse
	if err := proto.Unmarshal(out, &resp); err != nil {
		t.Fatalf("the CheckResponse does not decode with the generated types: %v", err)
	}
	return &resp
}

// TestCheckAlwaysAnswers sends hostile CheckRequests to the real gRPC
// server, both with ServerCodec and with gRPC's own codec where the
// request can be encoded by Go: each must get a CheckResponse that decodes
// with the generated types (so Envoy can read it) with the expected
// status, never an error that failure_mode_allow could turn into an allow.
func TestCheckAlwaysAnswers(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/echo", func(o *decision.Options) { o.Tokens = anyToken{} })
	conn := decisiontest.Dial(t, func(s *grpc.Server) {
		extauthz.NewServer(e, extauthz.Options{}, nil).Register(s)
	}, grpc.ForceServerCodecV2(extauthz.ServerCodec()))
	ok := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	json := map[string]string{"content-type": "application/json", "authorization": "Bearer t"}
	const longTok = "tok-0123456789-abcdefghij"
	withToken := map[string]string{"content-type": "application/json", "authorization": "Bearer " + longTok}
	tests := map[string]struct {
		b      []byte
		status int // HTTP status of the denial; 0: allowed
	}{
		"invalid_utf8_header_echoed": {rawCheck("POST", "/mcp", map[string]string{"x-echo": "\xff\xfe", "authorization": "Bearer t"}, ok), 200},
		"invalid_utf8_path_echoed":   {rawCheck("POST", "/mcp/\xc0\xaf", json, ok), 200},
		"invalid_utf8_allowed":       {rawCheck("GET", "/mcp/\xff", map[string]string{"x-echo": "a\xffb"}, nil), 0},
		"invalid_utf8_header_name":   {rawCheck("POST", "/mcp", map[string]string{"x-\xff": "v", "authorization": "Bearer t"}, ok), 200},
		"invalid_utf8_in_body_id":    {rawCheck("POST", "/mcp", json, []byte("{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"ping\"}")), 400},
		"lone_surrogate_id":          {rawCheck("POST", "/mcp", json, []byte(`{"jsonrpc":"2.0","id":"\ud800","method":"ping"}`)), 400},
		"duplicate_name":             {rawCheck("POST", "/mcp", json, []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"a","Name":"b"}}`)), 400},
		"not_protobuf_truncated":     {[]byte{0x0a, 0x7f, 0x01}, 400},
		"not_protobuf_bad_tag":       {[]byte{0x80}, 400},
		"not_protobuf_nested":        {[]byte{0x0a, 0x02, 0x22, 0x05}, 400},
		"empty_request":              {nil, 400},
		// Issue 27 rows 7 and 8: the caller's token anywhere but its
		// Authorization header would reach the upstream (Envoy removes
		// only that header, and only literal access_token parameters).
		"token_after_semicolon": {rawCheck("POST", "/mcp?x=1;access_token="+longTok, withToken, ok), 400},
		"token_name_escaped":    {rawCheck("POST", "/mcp?access%5Ftoken="+longTok, withToken, ok), 400},
		"token_name_first_byte": {rawCheck("POST", "/mcp?%61ccess_token=x", json, ok), 400},
		"token_in_cookie":       {rawCheck("POST", "/mcp", map[string]string{"authorization": "Bearer " + longTok, "cookie": "t=" + longTok}, ok), 400},
		"token_in_referer":      {rawCheck("POST", "/mcp", map[string]string{"authorization": "Bearer " + longTok, "referer": "https://a/?t=" + longTok}, ok), 400},
		"literal_access_token":  {rawCheck("POST", "/mcp?access_token=other-value", withToken, ok), 200},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			resp := checkRaw(t, conn, tc.b)
			if tc.status == 0 {
				if resp.GetOkResponse() == nil || resp.GetStatus().GetCode() != int32(code.Code_OK) {
					t.Fatalf("want an allow, got %v", resp)
				}
				return
			}
			if got := int(resp.GetDeniedResponse().GetStatus().GetCode()); got != tc.status {
				t.Fatalf("status %d, want %d: %v", got, tc.status, resp)
			}
			if resp.GetStatus().GetCode() == int32(code.Code_OK) {
				t.Fatalf("a denial with gRPC status OK: %v", resp)
			}
		})
	}
}

// anyToken verifies every token, as alice.
type anyToken struct{}

func (anyToken) Verify(context.Context, string, *token.APIKeys) *token.Result {
	return (&token.Result{Present: true, Valid: true, Subject: "alice", Claims: map[string]any{"sub": "alice"}}).Finish()
}

// panicker is an engine that panics.
type panicker struct{}

func (panicker) Decide(context.Context, *decision.Request) *decision.Decision { panic("boom") }

// recordingPanicker panics when asked to decide, and records the failure
// the adapter reports instead, as decision.Engine.Failed does.
type recordingPanicker struct{ failed atomic.Int32 }

func (*recordingPanicker) Decide(context.Context, *decision.Request) *decision.Decision {
	panic("boom")
}

func (p *recordingPanicker) Failed(_ context.Context, _ *decision.Request, why any) *decision.Decision {
	p.failed.Add(1)
	return &decision.Decision{ID: "f", Code: decision.CodeInternalError, Status: 500, Reason: fmt.Sprint(why)}
}

// TestCheckRecordsAdapterPanics: a panic the adapter recovers is handed to
// an engine that records failures, so it is logged and counted like any
// decision, on both registrations.
func TestCheckRecordsAdapterPanics(t *testing.T) {
	for name, opts := range map[string][]grpc.ServerOption{
		"server_codec":   {grpc.ForceServerCodecV2(extauthz.ServerCodec())},
		"generated_code": nil,
	} {
		t.Run(name, func(t *testing.T) {
			eng := &recordingPanicker{}
			conn := decisiontest.Dial(t, func(s *grpc.Server) {
				extauthz.NewServer(eng, adapterOpts, nil).Register(s)
			}, opts...)
			resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), readCheck(t, "testdata/checks/string_body.json"))
			if err != nil {
				t.Fatalf("Check: %v", err)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 500 {
				t.Fatalf("status %d, want 500", got)
			}
			if got := resp.GetDynamicMetadata().GetFields()["code"].GetStringValue(); got != decision.CodeInternalError {
				t.Errorf("code %q, want %q", got, decision.CodeInternalError)
			}
			if n := eng.failed.Load(); n != 1 {
				t.Errorf("Failed called %d times, want 1", n)
			}
		})
	}
}

// TestCheckRecoversPanics: a panic on the Check path (here the whole
// engine) is a 500 denial on both registrations, and the server lives on.
func TestCheckRecoversPanics(t *testing.T) {
	for name, opts := range map[string][]grpc.ServerOption{
		"server_codec":   {grpc.ForceServerCodecV2(extauthz.ServerCodec())},
		"generated_code": nil,
	} {
		t.Run(name, func(t *testing.T) {
			conn := decisiontest.Dial(t, func(s *grpc.Server) {
				extauthz.NewServer(panicker{}, adapterOpts, nil).Register(s)
			}, opts...)
			for range 2 {
				resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), readCheck(t, "testdata/checks/string_body.json"))
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if got := resp.GetDeniedResponse().GetStatus().GetCode(); got != 500 {
					t.Fatalf("status %d, want 500: %v", got, resp)
				}
			}
		})
	}
}

// FuzzCheckAnswer: for any method, path, header and body, and for any
// bytes at all in place of a CheckRequest, the server answers with a
// CheckResponse that the generated types decode; a denial never carries
// gRPC status OK.
func FuzzCheckAnswer(f *testing.F) {
	f.Add("POST", "/mcp", "x", []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), false)
	f.Add("POST", "/mcp?access_token=\xff", "\xff", []byte("{\"jsonrpc\":\"2.0\",\"id\":\"\xff\",\"method\":\"ping\"}"), false)
	f.Add("GET", "/\xc0", "a\x00b", []byte(nil), false)
	f.Add("", "", "", []byte{0x0a, 0x7f, 0x01}, true)
	e := decisiontest.NewEngine(f, "testdata/echo", func(o *decision.Options) { o.Tokens = anyToken{} })
	conn := decisiontest.Dial(f, func(s *grpc.Server) {
		extauthz.NewServer(e, extauthz.Options{}, nil).Register(s)
	}, grpc.ForceServerCodecV2(extauthz.ServerCodec()))
	f.Fuzz(func(t *testing.T, method, path, echo string, body []byte, raw bool) {
		b := body
		if !raw {
			b = rawCheck(method, path, map[string]string{"x-echo": echo, "authorization": "Bearer t",
				"content-type": "application/json"}, body)
		}
		resp := checkRaw(t, conn, b)
		if resp.GetDeniedResponse() != nil && resp.GetStatus().GetCode() == int32(code.Code_OK) {
			t.Fatalf("a denial with gRPC status OK: %v", resp)
		}
		if resp.GetDeniedResponse() == nil && resp.GetOkResponse() == nil {
			t.Fatalf("neither allowed nor denied: %v", resp)
		}
	})
}
