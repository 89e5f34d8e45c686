package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// TestOneReadingBinary sends the real binary what two JSON readers read
// differently, on AuthZEN (issue 28 row 5) and on ext_authz (issue 27 row 4,
// the number rule; issue 28 row 9, a request sent as a notification), and
// requires a refusal where the engine used to decide, most often allow.
func TestOneReadingBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	resource := "http://" + httpAddr + "/mcp"
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q}
bundles: [{path: %q}]
resource: {uri: %q, authorization_servers: ["http://127.0.0.1:1/issuer"], scopes_supported: ["mcp:tools"]}
tokens: {dev: true}
api: {unauthenticated: true}
log: {level: debug, format: text}
`, grpcAddr, httpAddr, "../../examples/bundles/parameter-rules", resource)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	tok := mintToken(t, bin, env, "--config", cfgPath, "--sub", "alice", "--scope", "mcp:tools")
	srv := startBinary(t, bin, env, "serve", "--config", cfgPath)
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)

	t.Run("authzen", func(t *testing.T) {
		subject := `{"type": "user", "id": "alice", "properties": {"token": "` + tok + `"}}`
		eval := func(resource, context string) string {
			return `{"subject": ` + subject + `, "action": {"name": "tools/call"}, "resource": ` + resource + `, "context": ` + context + `}`
		}
		readFile := `{"type": "tool", "id": "read_file", "properties": {"mcp_server": "files"}}`
		tests := map[string]struct {
			body   string
			status int
			want   string // in the answer
		}{
			"allowed_control": {eval(readFile, `{"path": "/data/reports/q3.csv"}`), 200, `"decision":true`},
			"denied_control":  {eval(readFile, `{"path": "/etc/passwd"}`), 200, `"decision":false`},
			"duplicate_path": {eval(readFile, `{"path": "/etc/passwd", "path": "/data/reports/q3.csv"}`), 400,
				`two members named "path"`},
			"resource_id_case_fold": {eval(`{"type": "tool", "id": "delete_all", "ID": "read_file", "properties": {"mcp_server": "files"}}`, `{"path": "/data/reports/q3.csv"}`), 400,
				`two members named "id"`},
			"invalid_utf8": {eval(readFile, "{\"path\": \"/data/\xff\"}"), 400, "invalid UTF-8"},
			"duplicated_token": {`{"subject": {"type": "user", "id": "alice", "properties": {"token": "x", "token": "` + tok + `"}}, "action": {"name": "tools/call"}, "resource": ` + readFile + `, "context": {"path": "/data/reports/q3.csv"}}`, 400,
				`two members named "token"`},
			"number_rule": {eval(readFile, `{"path": "/data/reports/q3.csv", "limit": 99.99999999999999999999}`), 400,
				"not exactly a double"},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				resp, err := http.Post("http://"+httpAddr+"/access/v1/evaluation", "application/json", strings.NewReader(tc.body))
				if err != nil {
					t.Fatal(err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
					t.Fatalf("status %d %s, want %d with %q", resp.StatusCode, b, tc.status, tc.want)
				}
			})
		}
	})

	t.Run("ext_authz", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		client := authv3.NewAuthorizationClient(grpcConn(t, grpcAddr))
		tests := map[string]struct {
			body   string
			status int32 // of the denied response; 0: allowed
		}{
			"allowed_control":            {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/reports/q3.csv"}}}`, 0},
			"tools_call_as_notification": {`{"jsonrpc":"2.0","method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/reports/q3.csv"}}}`, 400},
			"number_not_a_double":        {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/reports/q3.csv","limit":99.99999999999999999999}}}`, 400},
			"id_not_a_double":            {`{"jsonrpc":"2.0","id":7.00000000000000000001,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/reports/q3.csv"}}}`, 400},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				headers := map[string]string{
					":method": "POST", ":path": "/mcp", ":authority": httpAddr, "authorization": "Bearer " + tok,
					"content-type": "application/json", "mcp-protocol-version": "2025-06-18",
					"content-length": fmt.Sprint(len(tc.body)),
				}
				resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
					Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
						Method: "POST", Path: "/mcp", Host: httpAddr, Headers: headers, RawBody: []byte(tc.body),
					}},
					ContextExtensions: map[string]string{"mcp_server": "files"},
				}})
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if tc.status == 0 {
					if resp.GetOkResponse() == nil {
						t.Fatalf("want OK, got %v", resp)
					}
					return
				}
				d := resp.GetDeniedResponse()
				if d == nil || int32(d.GetStatus().GetCode()) != tc.status || !strings.Contains(d.GetBody(), "-32600") {
					t.Fatalf("want a %d denial with -32600, got %v", tc.status, resp)
				}
			})
		}
	})
}
