package extmcp_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
	"github.com/mcpauthz/mcpauthz/transport/extmcp"
)

// TestPinsFromTrustedCallersOnly: a CheckResponse from a caller the server
// does not trust (anyone reaching the gRPC port, no credential at all)
// can neither set a pin mismatch (blocking a tool for everyone) nor clear
// one (letting a rug-pulled tool be called again); from a trusted caller
// (agentgateway, authenticated) it does both. Issue 28 row 4, item 3.
func TestPinsFromTrustedCallersOnly(t *testing.T) {
	pinned, pulled := decisiontest.PinnedReadFile, decisiontest.PulledReadFile
	e := decisiontest.NewEngine(t, decisiontest.PinBundle(t, "read_file", pinned), func(o *decision.Options) { o.Tokens = tokens })
	// Two ExtMcp servers on one engine: one trusts no caller (what an
	// anonymous client of the port gets), one trusts its caller (what
	// agentgateway, authenticated, gets).
	serve := func(trust func(context.Context) bool) pb.ExtMcpClient {
		return pb.NewExtMcpClient(decisiontest.Dial(t, func(s *grpc.Server) {
			extmcp.NewServer(e, decision.NewItemFilter(e), extmcp.Options{TrustResponses: trust}).Register(s)
		}))
	}
	anonymous := serve(func(context.Context) bool { return false })
	gateway := serve(func(context.Context) bool { return true })
	list := func(c pb.ExtMcpClient, def string) {
		t.Helper()
		if _, err := c.CheckResponse(context.Background(), &pb.McpResponse{Method: "tools/list", McpResponse: []byte(`{"tools":[` + def + `]}`),
			MetadataContext: meta(t, map[string]any{"authorization": "Bearer alice"})}); err != nil {
			t.Fatal(err)
		}
	}
	callAllowed := func() bool {
		t.Helper()
		res, err := gateway.CheckRequest(context.Background(), &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"),
			McpRequest: params(`{"name":"read_file","arguments":{}}`)})
		if err != nil {
			t.Fatal(err)
		}
		return res.GetPass() != nil
	}
	list(anonymous, pulled) // an anonymous caller claims the server pulled the rug
	if !callAllowed() {
		t.Fatal("an untrusted CheckResponse set a pin mismatch: read_file is blocked for everyone")
	}
	list(gateway, pulled) // agentgateway sees the rug pull
	if callAllowed() {
		t.Fatal("a trusted CheckResponse with a changed definition did not block read_file")
	}
	list(anonymous, pinned) // an anonymous caller replays the pinned definition
	if callAllowed() {
		t.Fatal("an untrusted CheckResponse cleared a pin mismatch")
	}
	list(gateway, pinned)
	if !callAllowed() {
		t.Fatal("a trusted listing of the pinned definition did not clear the mismatch")
	}
}

// TestListAnonymousCaller: under a policy that lets a caller without a
// credential list tools and call search, CheckResponse for such a caller
// (no authorization in metadata_context) shows search, as CheckRequest
// allows its call; a rejected credential still empties the list. Issue 20
// item 4.
func TestListAnonymousCaller(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../decision/testdata/anonymous", func(o *decision.Options) { o.Tokens = tokens })
	c := pb.NewExtMcpClient(decisiontest.Dial(t, func(s *grpc.Server) {
		extmcp.NewServer(e, decision.NewItemFilter(e), extmcp.Options{}).Register(s)
	}))
	for name, tc := range map[string]struct {
		md   map[string]any
		want string
	}{
		"no_credential": {md: map[string]any{extmcp.ProtocolVersionKey: decision.Version20250618}, want: `{"tools":[{"name":"search"}]}`},
		"rejected":      {md: map[string]any{"authorization": "Bearer forged", extmcp.ProtocolVersionKey: decision.Version20250618}, want: `{"tools":[]}`},
	} {
		t.Run(name, func(t *testing.T) {
			res, err := c.CheckResponse(context.Background(), &pb.McpResponse{Method: "tools/list", MetadataContext: meta(t, tc.md),
				McpResponse: []byte(`{"tools":[{"name":"debug"},{"name":"search"}]}`)})
			if err != nil || string(res.GetMutated()) != tc.want {
				t.Fatalf("got %v (%v), want %s", res, err, tc.want)
			}
		})
	}
	call, err := c.CheckRequest(context.Background(), &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders(""), McpRequest: params(`{"name":"search","arguments":{}}`)})
	if err != nil || call.GetPass() == nil {
		t.Fatalf("the call of search the list shows: %v (%v), want it allowed", call, err)
	}
}
