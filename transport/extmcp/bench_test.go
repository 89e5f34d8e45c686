package extmcp_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
	"github.com/mcpauthz/mcpauthz/transport/extmcp"
)

func benchServer(b *testing.B) *extmcp.Server {
	e := decisiontest.NewEngine(b, "testdata/policy", func(o *decision.Options) { o.Tokens = tokens })
	return extmcp.NewServer(e, decision.NewItemFilter(e), extmcp.Options{})
}

// BenchmarkCheckRequestAllowed is one allowed tools/call with arguments,
// handled as the gRPC handler does once the message is decoded: the
// request rebuilt, decided and rendered as Pass with its header changes
// and metadata. BenchmarkCheckRequestArgumentDenied is the same call
// denied by the argument rule (the cold path: the error is encoded).
func BenchmarkCheckRequestAllowed(b *testing.B) {
	benchCheckRequest(b, "/home/a", true)
}

func BenchmarkCheckRequestArgumentDenied(b *testing.B) {
	benchCheckRequest(b, "/etc/passwd", false)
}

func benchCheckRequest(b *testing.B, path string, allowed bool) {
	s := benchServer(b)
	in := &pb.McpRequest{ServiceNames: []string{"files"}, Method: "tools/call", Headers: gatewayHeaders("alice"),
		McpRequest: []byte(`{"name":"read_file","arguments":{"path":"` + path + `"}}`)}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		res, _ := s.CheckRequest(ctx, in)
		if (res.GetPass() != nil) != allowed {
			b.Fatalf("got %v", res)
		}
	}
}

// BenchmarkCheckResponseToolsList50 filters a tools/list result of 50
// tools, of which the caller (alice) sees 2: 50 evaluations of the
// visible rule and the rewrite.
func BenchmarkCheckResponseToolsList50(b *testing.B) {
	s := benchServer(b)
	items := make([]string, 50)
	for i := range items {
		items[i] = fmt.Sprintf(`{"name":"tool_%02d","description":"d","inputSchema":{"type":"object"}}`, i)
	}
	items[10], items[40] = `{"name":"search"}`, `{"name":"read_file"}`
	md, err := structpb.NewStruct(map[string]any{"authorization": "Bearer alice", extmcp.ProtocolVersionKey: decision.Version20260728})
	if err != nil {
		b.Fatal(err)
	}
	in := &pb.McpResponse{Method: "tools/list", MetadataContext: md,
		McpResponse: []byte(`{"tools":[` + strings.Join(items, ",") + `]}`)}
	ctx := context.Background()
	b.SetBytes(int64(len(in.McpResponse)))
	b.ReportAllocs()
	for b.Loop() {
		res, _ := s.CheckResponse(ctx, in)
		if strings.Contains(string(res.GetMutated()), "tool_00") || res.GetMutated() == nil {
			b.Fatalf("not filtered: %v", res)
		}
	}
}

// BenchmarkDecideAlone is BenchmarkCheckRequestAllowed's decision without
// the adapter (the request rebuilt once): the difference between the two is
// what ExtMcp adds.
func BenchmarkDecideAlone(b *testing.B) {
	e := decisiontest.NewEngine(b, "testdata/policy", func(o *decision.Options) { o.Tokens = tokens })
	in := &pb.McpRequest{ServiceNames: []string{"files"}, Method: "tools/call", Headers: gatewayHeaders("alice"),
		McpRequest: []byte(`{"name":"read_file","arguments":{"path":"/home/a"}}`)}
	r := extmcp.RequestFrom(in, extmcp.DefaultMetadataKey)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d := e.Decide(ctx, r); !d.Allow {
			b.Fatalf("got %+v", d)
		}
	}
}
