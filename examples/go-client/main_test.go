package main

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
	mcpauthzv1 "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
	"github.com/mcpauthz/mcpauthz/transport/decisionapi"
)

type oneToken struct{}

func (oneToken) Verify(_ context.Context, raw string, _ *token.APIKeys) *token.Result {
	if raw == "alice" {
		return token.FromClaims(map[string]any{"sub": "alice", "scope": "mcp:tools"}, time.Now())
	}
	return (&token.Result{Present: true, Error: token.ErrBadSignature}).Finish()
}

// TestRun runs the example against a real server on loopback with the
// parameter-rules bundle.
func TestRun(t *testing.T) {
	e := decisiontest.NewEngine(t, "../bundles/parameter-rules", func(o *decision.Options) { o.Tokens = oneToken{} })
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer()
	mcpauthzv1.RegisterDecisionServiceServer(s, decisionapi.NewServer(e, decision.NewItemFilter(e), decisionapi.Options{}))
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })

	var out bytes.Buffer
	if err := run(context.Background(), mcpauthzv1.NewDecisionServiceClient(conn), "alice", "files", &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"allow=false code=policy_denied", "HTTP 200", `"isError":true`, "visible tools: read_file list_dir\n"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
}
