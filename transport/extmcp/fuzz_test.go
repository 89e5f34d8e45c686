package extmcp

import (
	"context"
	"encoding/json"
	"testing"
	"unicode/utf8"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/internal/jsonenc"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
)

// FuzzEnvelope wraps any method and params as CheckRequest does and
// requires that what the strict parser accepts is exactly the params sent:
// the same message parses to the same values with params placed first in
// the envelope, so no params can reach out of its member.
func FuzzEnvelope(f *testing.F) {
	f.Add("tools/call", []byte(`{"name":"search","arguments":{"q":1}}`), true)
	f.Add("tools/call", []byte(`{"name":"search"},"method":"ping"`), true)
	f.Add("tools/list", []byte(`{},"x":{"y":1}`), true)
	f.Add("tools/list", []byte(nil), false)
	f.Add("a\"b\\c\x01", []byte(` {"name":"x"} `), true)
	f.Add("tools/call", []byte(`{"name":"a","name":"b"}`), true)
	f.Fuzz(func(t *testing.T, method string, params []byte, present bool) {
		if !present {
			params = nil
		} else if params == nil {
			params = []byte{}
		}
		if !utf8.ValidString(method) {
			return // RequestFrom refuses it before building an envelope
		}
		env, err := envelope(method, params)
		if err != nil {
			if params == nil || json.Valid(params) {
				t.Fatalf("refused %q: %v", params, err)
			}
			return
		}
		body, perr := mcp.Parse(env)
		if perr != nil {
			return
		}
		m := body.Messages[0]
		if body.Batch || m.Kind != mcp.KindRequest || m.Method != method {
			t.Fatalf("envelope %q read as %+v", env, body)
		}
		if params == nil {
			if m.Params != nil {
				t.Fatalf("params appeared from nowhere: %q", env)
			}
			return
		}
		first := append(append([]byte(`{"params":`), params...), `,"method":`...)
		first = jsonenc.AppendString(first, method)
		first = append(first, `,"id":0,"jsonrpc":"2.0"}`...)
		again, err := mcp.Parse(first)
		if err != nil {
			t.Fatalf("%q parses but %q does not: %v", env, first, err)
		}
		if m.Params.Compare(again.Messages[0].Params) != 0 {
			t.Fatalf("params read two ways: %v and %v", m.Params, again.Messages[0].Params)
		}
	})
}

// FuzzCheck drives both RPCs with any method, params or result, headers
// and metadata_context values: every answer is a result (never a gRPC
// error), that protobuf can encode, whose error (if any) carries a JSON
// mcp_error; and a mutated list result is valid JSON.
func FuzzCheck(f *testing.F) {
	e := decisiontest.NewEngine(f, "testdata/policy", nil)
	s := NewServer(e, decision.NewItemFilter(e), Options{})
	f.Add("tools/call", []byte(`{"name":"search"}`), "Bearer x", "Bearer x", "2026-07-28", true)
	f.Add("tools/list", []byte(`{"tools":[{"name":"a"},{"name":"b"}]}`), "", "Bearer y", "", false)
	f.Add("resources/templates/list", []byte(`{"resourceTemplates":[{"uriTemplate":"x://{a}"}]}`), "Bearer \xff", "", "2025-06-18", true)
	f.Add("prompts/list", []byte(`{"prompts":[{"name":"a","name":"b"}]}`), "", "\x00", "2026-07-28", true)
	f.Fuzz(func(t *testing.T, method string, payload []byte, header, metaAuth, version string, withMeta bool) {
		var md *structpb.Struct
		if withMeta && utf8.ValidString(metaAuth) && utf8.ValidString(version) {
			md = &structpb.Struct{Fields: map[string]*structpb.Value{
				DefaultMetadataKey: structpb.NewStringValue(metaAuth),
				ProtocolVersionKey: structpb.NewStringValue(version),
			}}
		}
		req := &pb.McpRequest{Method: method, McpRequest: payload, MetadataContext: md,
			Headers: []*pb.McpHeader{{Key: "Authorization", Value: []byte(header)}}}
		res, err := s.CheckRequest(context.Background(), req)
		if err != nil || (res.GetPass() == nil && res.GetError() == nil) {
			t.Fatalf("CheckRequest: %v %v", res, err)
		}
		checkResult(t, res, res.GetError())
		resp, err := s.CheckResponse(context.Background(), &pb.McpResponse{Method: method, McpResponse: payload, MetadataContext: md})
		if err != nil || (resp.GetPass() == nil && resp.GetError() == nil && resp.GetMutated() == nil) {
			t.Fatalf("CheckResponse: %v %v", resp, err)
		}
		checkResult(t, resp, resp.GetError())
		if m := resp.GetMutated(); m != nil && !json.Valid(m) {
			t.Fatalf("mutated result is not JSON: %q", m)
		}
	})
}

func checkResult(t *testing.T, m proto.Message, e *pb.AuthorizationError) {
	t.Helper()
	if _, err := proto.Marshal(m); err != nil {
		t.Fatalf("result cannot be sent: %v", err)
	}
	if e != nil && !json.Valid(e.GetMcpError()) {
		t.Fatalf("mcp_error is not JSON: %q", e.GetMcpError())
	}
}
