package extmcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
	"github.com/mcpauthz/mcpauthz/transport/extmcp"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/golden")

// decisionID matches the decision ids of results, which change per run.
var decisionID = regexp.MustCompile(`[0-9a-f]{12}-[0-9a-z]+`)

// TestGoldenResults holds the whole CheckRequest result of one request of
// each kind of answer (pass, hidden tool, argument denial, 401, parse
// error) in testdata/golden/check_request.json, so any change of what
// agentgateway receives shows in review.
func TestGoldenResults(t *testing.T) {
	c := client(t, extmcp.Options{})
	cases := []struct {
		name string
		in   *pb.McpRequest
	}{
		{"allowed", &pb.McpRequest{ServiceNames: []string{"files"}, Method: "tools/call", Headers: gatewayHeaders("alice"),
			McpRequest: params(`{"name":"read_file","arguments":{"path":"/home/a"}}`)}},
		{"hidden_tool", &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: params(`{"name":"debug"}`)}},
		{"argument_rule", &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"),
			McpRequest: params(`{"name":"read_file","arguments":{"path":"/etc/passwd"}}`)}},
		{"no_token", &pb.McpRequest{Method: "tools/call", McpRequest: params(`{"name":"search"}`)}},
		{"duplicate_params", &pb.McpRequest{Method: "tools/call", Headers: gatewayHeaders("alice"), McpRequest: params(`{"name":"a","name":"b"}`)}},
		{"list_denied_without_token", &pb.McpRequest{ServiceNames: []string{"a", "b"}, Method: "tools/list"}},
	}
	var out bytes.Buffer
	out.WriteString("{\n")
	for i, tc := range cases {
		res, err := c.CheckRequest(context.Background(), tc.in)
		if err != nil {
			t.Fatal(err)
		}
		v := view(t, res)
		pretty, _ := json.MarshalIndent(v, "  ", "  ")
		out.WriteString("  " + `"` + tc.name + `": `)
		out.Write(decisionID.ReplaceAll(pretty, []byte("DECISION-ID")))
		if i < len(cases)-1 {
			out.WriteByte(',')
		}
		out.WriteByte('\n')
	}
	out.WriteString("}\n")
	path := filepath.Join("testdata", "golden", "check_request.json")
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, out.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run TestGoldenResults -update writes it)", err)
	}
	if !bytes.Equal(out.Bytes(), want) {
		t.Errorf("results differ from %s (go test -update rewrites it):\n%s", path, out.Bytes())
	}
}

// resultView is a result as people read it: header values as strings,
// mcp_error as the JSON it is.
type resultView struct {
	Pass      bool              `json:"pass,omitempty"`
	Set       map[string]string `json:"set,omitempty"`
	Remove    []string          `json:"remove,omitempty"`
	Metadata  map[string]any    `json:"metadata,omitempty"`
	ErrorCode string            `json:"error_code,omitempty"`
	Reason    string            `json:"reason,omitempty"`
	MCPError  json.RawMessage   `json:"mcp_error,omitempty"`
}

func view(t *testing.T, res *pb.McpRequestResult) resultView {
	t.Helper()
	v := resultView{Pass: res.GetPass() != nil, Remove: res.GetHeaderMutation().GetRemove(), Metadata: res.GetMetadata().AsMap()}
	for _, h := range res.GetHeaderMutation().GetSet() {
		if v.Set == nil {
			v.Set = map[string]string{}
		}
		v.Set[h.GetKey()] = string(h.GetValue())
	}
	if e := res.GetError(); e != nil {
		v.ErrorCode, v.Reason, v.MCPError = e.GetCode().String(), e.GetReason(), e.GetMcpError()
		if !json.Valid(v.MCPError) {
			t.Fatalf("mcp_error is not JSON: %q", v.MCPError)
		}
	}
	return v
}
