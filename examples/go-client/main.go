// Command go-client shows how a Go MCP gateway asks mcpauthz for decisions
// over the Decision API: may this caller make this tools/call, and which
// tools of a tools/list answer may it see?
//
//	go run ./cmd/mcpauthz serve --config examples/config/dev.yaml &
//	go run ./examples/go-client --token "$(go run ./cmd/mcpauthz token --sub alice --scope mcp:tools)"
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/protobuf/types/known/structpb"

	mcpauthzv1 "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9191", "mcpauthz gRPC `address`")
	token := flag.String("token", "", "the MCP client's bearer `token`")
	server := flag.String("server", "files", "the route's mcp_server (context extension)")
	flag.Parse()

	// Plaintext for the local demo; use credentials.NewTLS with a client
	// certificate when listen.tls is on.
	conn, err := grpc.NewClient(*addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := run(ctx, mcpauthzv1.NewDecisionServiceClient(conn), *token, *server, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run asks for one decision and one tool list filter and prints both.
func run(ctx context.Context, c mcpauthzv1.DecisionServiceClient, token, server string, out io.Writer) error {
	creds := &mcpauthzv1.Credentials{Credential: &mcpauthzv1.Credentials_BearerToken{BearerToken: token}}
	route := map[string]string{"mcp_server": server}

	params, err := structpb.NewStruct(map[string]any{"name": "read_file", "arguments": map[string]any{"path": "/etc/passwd"}})
	if err != nil {
		return err
	}
	resp, err := c.Decide(ctx, &mcpauthzv1.DecideRequest{
		Message:           &mcpauthzv1.Message{Kind: &mcpauthzv1.Message_Call{Call: &mcpauthzv1.Call{Method: "tools/call", Params: params}}},
		Credentials:       creds,
		Http:              &mcpauthzv1.HttpContext{Method: "POST", Path: "/mcp", Host: "mcp.example.com"},
		ContextExtensions: route,
	})
	if err != nil {
		return fmt.Errorf("Decide: %w", err)
	}
	d := resp.GetDecision()
	fmt.Fprintf(out, "read_file /etc/passwd: allow=%v code=%s reason=%q\n", d.GetAllow(), d.GetCode(), d.GetReason())
	if !d.GetAllow() {
		// A gateway answers the MCP client with exactly this response.
		dr := d.GetDeniedResponse()
		fmt.Fprintf(out, "  answer the client: HTTP %d %s\n", dr.GetStatus(), dr.GetBody())
	}

	tools, err := c.AllowedTools(ctx, &mcpauthzv1.AllowedToolsRequest{
		Caller: &mcpauthzv1.Caller{Credentials: creds, ContextExtensions: route},
		Tools:  []*mcpauthzv1.Tool{{Name: "read_file"}, {Name: "list_dir"}, {Name: "transfer"}},
	})
	if err != nil {
		return fmt.Errorf("AllowedTools: %w", err)
	}
	fmt.Fprint(out, "visible tools:")
	for _, t := range tools.GetTools() {
		fmt.Fprint(out, " ", t.GetName())
	}
	fmt.Fprintln(out)
	return nil
}
