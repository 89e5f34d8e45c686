package extauthz_test

import (
	"context"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

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
