package envoytest_test

import (
	"context"
	"net"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/proto"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/internal/envoytest"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// TestReadAsEnvoySent checks that transport/extauthz reads each
// CheckRequest as the request the client sent, repeated headers joined
// as Envoy joins them, by both of its decoders (the generated types and
// the wire codec).
func TestReadAsEnvoySent(t *testing.T) {
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)
	tests := map[string]struct {
		req   envoytest.Request
		check func(t *testing.T, r *decision.Request)
	}{
		"repeated_header_joined_with_comma": {
			req: envoytest.Request{Headers: envoytest.H("Mcp-Session-Id", "S", "mcp-session-id", "x"), Body: body},
			check: func(t *testing.T, r *decision.Request) {
				if got := r.Headers["mcp-session-id"]; got != "S,x" {
					t.Errorf("mcp-session-id = %q, want S,x", got)
				}
			},
		},
		"pseudo_headers_and_fields": {
			req: envoytest.Request{Method: "GET", Path: "/mcp?a=1", Authority: "h:8080"},
			check: func(t *testing.T, r *decision.Request) {
				if r.Method != "GET" || r.Path != "/mcp?a=1" || r.Host != "h:8080" || r.Headers[":path"] != "/mcp?a=1" {
					t.Errorf("method, path, host = %q %q %q; headers %v", r.Method, r.Path, r.Host, r.Headers)
				}
				if len(r.Body) != 0 || r.Truncated {
					t.Errorf("body = %q, truncated %v", r.Body, r.Truncated)
				}
			},
		},
		"body_in_raw_body_with_length": {
			req: envoytest.Request{Body: body, ContextExtensions: map[string]string{"mcp_server": "files"}},
			check: func(t *testing.T, r *decision.Request) {
				if string(r.Body) != string(body) || r.Truncated || r.Context["mcp_server"] != "files" {
					t.Errorf("body %q truncated %v context %v", r.Body, r.Truncated, r.Context)
				}
			},
		},
		"partial_body_marked": {
			req: envoytest.Request{Body: body, MaxRequestBytes: 10, AllowPartial: true},
			check: func(t *testing.T, r *decision.Request) {
				if len(r.Body) != 10 || !r.Truncated {
					t.Errorf("body %q truncated %v, want 10 bytes, truncated", r.Body, r.Truncated)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cr := tc.req.CheckRequest()
			tc.check(t, extauthz.RequestFromCheck(cr, nil))
			// The server reads the wire bytes, not the generated types.
			b, err := proto.Marshal(cr)
			if err != nil {
				t.Fatal(err)
			}
			var back authv3.CheckRequest
			if err := proto.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			tc.check(t, extauthz.RequestFromCheck(&back, nil))
		})
	}
}

// echoServer answers every Check with a denial whose body is the
// session header it saw, and allows a request without one.
type echoServer struct {
	authv3.UnimplementedAuthorizationServer
}

func (echoServer) Check(_ context.Context, req *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	h := req.GetAttributes().GetRequest().GetHttp().GetHeaders()
	if s, ok := h["mcp-session-id"]; ok {
		return &authv3.CheckResponse{Status: &rpcstatus.Status{Code: 7}, HttpResponse: &authv3.CheckResponse_DeniedResponse{
			DeniedResponse: &authv3.DeniedHttpResponse{Body: s}}}, nil
	}
	return &authv3.CheckResponse{Status: &rpcstatus.Status{}, HttpResponse: &authv3.CheckResponse_OkResponse{
		OkResponse: &authv3.OkHttpResponse{HeadersToRemove: []string{"authorization"}}}}, nil
}

// TestCheck sends requests through a real gRPC connection and reads the
// answers as Envoy acts on them.
func TestCheck(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := grpc.NewServer()
	authv3.RegisterAuthorizationServer(srv, echoServer{})
	go func() { _ = srv.Serve(l) }()
	defer srv.Stop()
	conn, err := grpc.NewClient(l.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := authv3.NewAuthorizationClient(conn)

	a, err := envoytest.Check(context.Background(), c, envoytest.Request{Headers: envoytest.H("MCP-Session-Id", "a", "Mcp-Session-Id", "b")})
	if err != nil || a.Allowed || a.Body != "a,b" {
		t.Errorf("repeated session header: %+v, %v; want denied with body a,b", a, err)
	}
	a, err = envoytest.Check(context.Background(), c, envoytest.Request{Headers: []envoytest.Header{envoytest.Bearer("t")}})
	if err != nil || !a.Allowed || len(a.HeadersToRemove) != 1 {
		t.Errorf("no session header: %+v, %v; want allowed, authorization removed", a, err)
	}
}
