package extmcp_test

import (
	"context"
	"strings"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
	"github.com/mcpauthz/mcpauthz/transport/extmcp"
)

// rawBytes is a request sent as it is, whatever it holds.
type rawBytes []byte

// rawCodec sends rawBytes as they are and reads answers as protobuf: a
// client that is not agentgateway.
type rawCodec struct{}

func (rawCodec) Name() string { return "proto" }

func (rawCodec) Marshal(v any) (mem.BufferSlice, error) {
	return mem.BufferSlice{mem.SliceBuffer(v.(rawBytes))}, nil
}

func (rawCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return proto.Unmarshal(data.Materialize(), v.(proto.Message))
}

// TestNotProtobufAnswered: on the gRPC port as mcpauthz serves it (its
// server options, ServerCodec included), bytes that are not protobuf at
// all get an ExtMcp answer that refuses them, on both RPCs, never a gRPC
// error that agentgateway's failure mode would decide; a good request
// after them is answered as usual.
func TestNotProtobufAnswered(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) { o.Tokens = tokens })
	cc := decisiontest.Dial(t, func(s *grpc.Server) {
		extmcp.NewServer(e, decision.NewItemFilter(e), extmcp.Options{}).Register(s)
	}, extauthz.ServerOptions(100)...)
	for name, b := range map[string][]byte{
		"bad_tag":          {0x80},
		"truncated_length": {0x12, 0x7f, 0x01},
		"bad_varint":       {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff},
	} {
		t.Run(name, func(t *testing.T) {
			out := &pb.McpRequestResult{}
			if err := cc.Invoke(context.Background(), pb.ExtMcp_CheckRequest_FullMethodName, rawBytes(b), out, grpc.ForceCodecV2(rawCodec{})); err != nil {
				t.Fatalf("CheckRequest failed: %v", err)
			}
			if e := out.GetError(); e == nil || e.GetCode() != pb.AuthorizationError_INVALID || !strings.Contains(e.GetReason(), "decoding McpRequest") {
				t.Fatalf("CheckRequest answered %v, want an INVALID refusal", out)
			}
			resp := &pb.McpResponseResult{}
			if err := cc.Invoke(context.Background(), pb.ExtMcp_CheckResponse_FullMethodName, rawBytes(b), resp, grpc.ForceCodecV2(rawCodec{})); err != nil {
				t.Fatalf("CheckResponse failed: %v", err)
			}
			if e := resp.GetError(); e == nil || e.GetCode() != pb.AuthorizationError_UNKNOWN {
				t.Fatalf("CheckResponse answered %v, want a refusal", resp)
			}
		})
	}
	out, err := pb.NewExtMcpClient(cc).CheckRequest(context.Background(), &pb.McpRequest{Method: "ping", Headers: gatewayHeaders("alice")})
	if err != nil || out.GetResult() == nil {
		t.Fatalf("a good request after the bad ones: %v, %v", out, err)
	}
}

// TestOversizedAnswered: a message past Options.MaxMessageBytes is refused
// before it is decoded, with an ExtMcp answer on both RPCs, never a gRPC
// error (issue 28 row 8).
func TestOversizedAnswered(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) { o.Tokens = tokens })
	cc := decisiontest.Dial(t, func(s *grpc.Server) {
		extmcp.NewServer(e, decision.NewItemFilter(e), extmcp.Options{MaxMessageBytes: 1 << 10}).Register(s)
	}, extauthz.ServerOptions(100)...)
	big := &pb.McpRequest{Method: "ping", Headers: gatewayHeaders("alice"), McpRequest: []byte(strings.Repeat("x", 2<<10))}
	out, err := pb.NewExtMcpClient(cc).CheckRequest(context.Background(), big)
	if err != nil {
		t.Fatalf("CheckRequest failed: %v", err)
	}
	if e := out.GetError(); e == nil || !strings.Contains(e.GetReason(), "more than the 1024 accepted") {
		t.Fatalf("CheckRequest answered %v, want a refusal", out)
	}
	resp, err := pb.NewExtMcpClient(cc).CheckResponse(context.Background(), &pb.McpResponse{McpResponse: []byte(strings.Repeat("x", 2<<10))})
	if err != nil || resp.GetError() == nil {
		t.Fatalf("CheckResponse answered %v, %v; want a refusal", resp, err)
	}
	if out, err := pb.NewExtMcpClient(cc).CheckRequest(context.Background(), &pb.McpRequest{Method: "ping", Headers: gatewayHeaders("alice")}); err != nil || out.GetResult() == nil {
		t.Fatalf("a small request: %v, %v", out, err)
	}
}
