package extproc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
	"github.com/mcpauthz/mcpauthz/transport/extproc"
)

// TestListsAndCallsAgree serves ext_proc and ext_authz on one gRPC server,
// as mcpauthz does, and requires that what a caller's filtered tools/list
// shows is exactly what its tools/call may name: a call to a listed tool is
// not refused as unknown, and a call to a hidden tool is answered 200 with
// JSON-RPC -32602 "Unknown tool", as if it did not exist, even when the
// policy's call rule would allow it ("debug").
func TestListsAndCallsAgree(t *testing.T) {
	e := newEngine(t)
	cc := decisiontest.Dial(t, func(s *grpc.Server) {
		extproc.NewServer(decision.NewItemFilter(e), nil).Register(s)
		extauthz.NewServer(e, extauthz.Options{}, nil).Register(s)
	})
	pc := procClient(cc)
	ac := authv3.NewAuthorizationClient(cc)
	all := []string{"search", "delete_repo", "read_file", "debug", "transfer"}
	for _, caller := range []string{"alice", "admin"} {
		t.Run(caller, func(t *testing.T) {
			x := open(t, pc)
			x.request(caller, listTools)
			x.responseHeaders("application/json")
			listed := names(t, x.chunk(toolsList(all...), true), "tools")
			for _, tool := range all {
				body := fmt.Sprintf(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":%q,"arguments":{}}}`, tool)
				resp, err := ac.Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Request: &authv3.AttributeContext_Request{
					Http: &authv3.AttributeContext_HttpRequest{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
						Headers: map[string]string{"authorization": "Bearer " + caller, "content-type": "application/json"},
						RawBody: []byte(body)},
				}}})
				if err != nil {
					t.Fatal(err)
				}
				unknown := false
				if d := resp.GetDeniedResponse(); d != nil {
					var m struct {
						ID    int `json:"id"`
						Error struct {
							Code    int    `json:"code"`
							Message string `json:"message"`
						} `json:"error"`
					}
					_ = json.Unmarshal([]byte(d.GetBody()), &m)
					unknown = d.GetStatus().GetCode() == 200 && m.ID == 3 && m.Error.Code == -32602 && m.Error.Message == "Unknown tool: "+tool
				}
				if shown := slices.Contains(listed, tool); shown == unknown {
					t.Errorf("%s: tool %q listed %v, call answered as unknown %v (%v)", caller, tool, shown, unknown, resp)
				}
			}
		})
	}
}
