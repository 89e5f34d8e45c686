package extauthz_test

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// TestBodyLimitOverGRPC: on the server options mcpauthz serves with, a
// body of exactly the engine's limit is decided, and bodies past it, even
// far past it (Envoy's max_request_bytes set higher than
// limits.max_body_bytes), get a 413 CheckResponse, never a failed call
// that failure_mode_allow would decide.
func TestBodyLimitOverGRPC(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/echo", func(o *decision.Options) { o.Tokens = anyToken{} })
	conn := decisiontest.Dial(t, func(s *grpc.Server) {
		extauthz.NewServer(e, extauthz.Options{}, nil).Register(s)
	}, extauthz.ServerOptions(100)...)
	client := authv3.NewAuthorizationClient(conn)
	const head, tail = `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"`, `"}}`
	tests := map[string]struct {
		size   int
		status int32 // of the denial: the echo policy refuses every POST it decides with 200 and a JSON-RPC error
	}{
		"at_limit":       {decision.DefaultMaxBodyBytes, 200},
		"one_past_limit": {decision.DefaultMaxBodyBytes + 1, 413},
		"eight_times":    {8 * decision.DefaultMaxBodyBytes, 413},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := head + strings.Repeat("x", tc.size-len(head)-len(tail)) + tail
			req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
				Http: &authv3.AttributeContext_HttpRequest{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
					Headers: map[string]string{"authorization": "Bearer t", "content-type": "application/json"},
					RawBody: []byte(body)}}}}
			resp, err := client.Check(context.Background(), req, grpc.MaxCallSendMsgSize(16*decision.DefaultMaxBodyBytes))
			if err != nil {
				t.Fatalf("Check failed instead of answering: %v", err)
			}
			if got := resp.GetDeniedResponse().GetStatus().GetCode(); int32(got) != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
		})
	}
}

// TestMessageLimits: on the port's server options with a MessageLimit,
// ext_authz still reads a Check of any size (a 413 answer), while a
// message of a bounded service past its limit fails before it is decoded;
// and a call whose metadata is past 64 KiB is refused whatever its
// service (issue 28 row 8: 8 MiB of metadata per held-open ext_proc
// stream).
func TestMessageLimits(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/echo", func(o *decision.Options) { o.Tokens = anyToken{} })
	conn := decisiontest.Dial(t, func(s *grpc.Server) {
		extauthz.NewServer(e, extauthz.Options{}, nil).Register(s)
		healthpb.RegisterHealthServer(s, health.NewServer())
	}, extauthz.ServerOptions(100, extauthz.MessageLimit{Prefix: "grpc.health.v1.", MaxBytes: 1 << 10})...)
	ctx := context.Background()
	hc := healthpb.NewHealthClient(conn)
	// gRPC reports a codec's refusal as INTERNAL, with its words.
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{Service: strings.Repeat("s", 2<<10)}); status.Code(err) != codes.Internal || !strings.Contains(err.Error(), "larger than the 1024 bytes accepted") {
		t.Errorf("health Check past the limit: %v, want refused for its size", err)
	}
	if _, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Errorf("health Check within the limit: %v", err)
	}
	body := strings.Repeat("x", 2*decision.DefaultMaxBodyBytes)
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
		Http: &authv3.AttributeContext_HttpRequest{Method: "POST", Path: "/mcp", Headers: map[string]string{"content-type": "application/json"}, RawBody: []byte(body)}}}},
		grpc.MaxCallSendMsgSize(16*decision.DefaultMaxBodyBytes))
	if err != nil || resp.GetDeniedResponse().GetStatus().GetCode() != 413 {
		t.Errorf("a large Check: %v, %v; want a 413 answer", resp, err)
	}
	big := metadata.AppendToOutgoingContext(ctx, "x-pad", strings.Repeat("p", 128<<10))
	if _, err := hc.Check(big, &healthpb.HealthCheckRequest{}); err == nil {
		t.Error("a call with 128 KiB of metadata was served")
	}
}
