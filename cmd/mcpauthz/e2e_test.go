package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	extmcppb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
)

// syncBuffer collects the server's log while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// built is the real binary, built once for every test of the package
// that runs it (a dozen tests did link it each on their own, seconds each
// on two cores); TestMain removes its directory.
var built struct {
	once sync.Once
	dir  string
	bin  string
	err  error
}

// buildBinary returns the real mcpauthz binary, built on first use. Tests
// run it, never change it.
func buildBinary(t testing.TB) string {
	t.Helper()
	built.once.Do(func() {
		if built.dir, built.err = os.MkdirTemp("", "mcpauthz-test-bin-"); built.err != nil {
			return
		}
		built.bin = filepath.Join(built.dir, "mcpauthz")
		cmd := exec.Command("go", "build", "-o", built.bin, ".")
		cmd.Stderr = os.Stderr
		built.err = cmd.Run()
	})
	if built.err != nil {
		t.Fatalf("building mcpauthz: %v", built.err)
	}
	return built.bin
}

// binary is the real binary running one command, its output collected.
type binary struct {
	cmd    *exec.Cmd
	logs   syncBuffer
	exited chan error    // receives its end once
	done   chan struct{} // closed at its end, for the cleanup (a test may have taken exited's value)
	// stopped is set by a test that saw it end (from exited).
	stopped bool
}

// startBinary starts bin with args and env; when the test ends it is
// killed unless stopped, and its output is logged if the test failed.
func startBinary(t *testing.T, bin string, env []string, args ...string) *binary {
	t.Helper()
	b := &binary{cmd: exec.Command(bin, args...), exited: make(chan error, 1), done: make(chan struct{})}
	b.cmd.Env = env
	b.cmd.Stdout, b.cmd.Stderr = &b.logs, &b.logs
	// A child of the program (node's) may hold its output open after it
	// ends: Wait stops copying it after this long instead of hanging.
	b.cmd.WaitDelay = 5 * time.Second
	if err := b.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		b.exited <- b.cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		if !b.stopped {
			_ = b.cmd.Process.Kill()
			<-b.done
		}
		if t.Failed() {
			t.Logf("%s log:\n%s", args[0], b.logs.String())
		}
	})
	return b
}

// TestEndToEnd starts the real binary and talks to it as Envoy and as an MCP
// client would: gRPC health, ext_authz Check allowed and denied by an
// argument rule, the 401 challenge, and the MCP Go SDK discovering the
// Protected Resource Metadata from that challenge.
func TestEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	resource := "http://" + httpAddr + "/mcp"
	// A copy of the example bundle, so the test can edit it while serving.
	bundle := filepath.Join(dir, "bundle")
	if err := os.CopyFS(bundle, os.DirFS("../../examples/bundles/parameter-rules")); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q}
bundles: [{path: %q}]
resource: {uri: %q, authorization_servers: ["http://127.0.0.1:1/issuer"], scopes_supported: ["mcp:tools"]}
tokens: {dev: true}
sessions: {bind_subject: true}
log: {level: debug, format: text}
decision_logs: {file: %q}
api: {unauthenticated: true}
`, grpcAddr, httpAddr, bundle, resource, filepath.Join(dir, "decisions.jsonl"))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))

	tok := mintToken(t, bin, env, "--config", cfgPath, "--sub", "alice", "--scope", "mcp:tools")

	srv := startBinary(t, bin, env, "serve", "--config", cfgPath)
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	hr, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health = %v, %v; want SERVING", hr.GetStatus(), err)
	}
	// The Decision API shares the port and goes through gRPC's protobuf
	// codec behind ext_authz's own (extauthz.ServerCodec).
	if st, err := pb.NewDecisionServiceClient(conn).Status(ctx, &pb.StatusRequest{}); err != nil || !st.GetReady() || st.GetRevision() == "" {
		t.Fatalf("Decision API status = %v, %v; want ready with a revision", st, err)
	}

	client := authv3.NewAuthorizationClient(conn)
	check := func(t *testing.T, authz, path string) *authv3.CheckResponse {
		t.Helper()
		body := `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"` + path + `"}}}`
		headers := map[string]string{
			":method": "POST", ":path": "/mcp", ":authority": httpAddr,
			"content-type": "application/json", "mcp-protocol-version": "2025-06-18",
			"content-length": fmt.Sprint(len(body)),
		}
		if authz != "" {
			headers["authorization"] = authz
		}
		req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: "/mcp", Host: httpAddr, Headers: headers, RawBody: []byte(body),
			}},
			ContextExtensions: map[string]string{"mcp_server": "files"},
		}}
		resp, err := client.Check(ctx, req)
		if err != nil {
			t.Fatalf("Check: %v", err)
		}
		return resp
	}

	t.Run("allowed_by_argument_rule", func(t *testing.T) {
		resp := check(t, "Bearer "+tok, "/data/reports/q3.csv")
		ok := resp.GetOkResponse()
		if ok == nil {
			t.Fatalf("want OK, got %v", resp)
		}
		if h := ok.GetHeaders(); len(h) == 0 || h[0].GetHeader().GetValue() != "alice" {
			t.Errorf("upstream headers = %v, want x-mcp-subject alice", h)
		}
		if r := ok.GetHeadersToRemove(); len(r) != 1 || r[0] != "authorization" {
			t.Errorf("headers to remove = %v, want [authorization]", r)
		}
	})
	t.Run("denied_by_argument_rule", func(t *testing.T) {
		resp := check(t, "Bearer "+tok, "/etc/passwd")
		d := resp.GetDeniedResponse()
		if d == nil || d.GetStatus().GetCode() != 200 {
			t.Fatalf("want a 200 denial, got %v", resp)
		}
		if !strings.Contains(d.GetBody(), `"id":17`) || !strings.Contains(d.GetBody(), `"isError":true`) {
			t.Errorf("body = %s, want a tool error result for id 17", d.GetBody())
		}
	})
	t.Run("agentgateway_ext_mcp", func(t *testing.T) {
		// The same decisions through agentgateway's ExtMcp, on the same
		// port and behind ext_authz's codec.
		c := extmcppb.NewExtMcpClient(conn)
		call := func(path string) *extmcppb.McpRequestResult {
			res, err := c.CheckRequest(ctx, &extmcppb.McpRequest{ServiceNames: []string{"files"}, Method: "tools/call",
				McpRequest: []byte(`{"name":"read_file","arguments":{"path":"` + path + `"}}`),
				Headers:    []*extmcppb.McpHeader{{Key: "authorization", Value: []byte("Bearer " + tok)}}})
			if err != nil {
				t.Fatalf("CheckRequest: %v", err)
			}
			return res
		}
		if res := call("/data/reports/q3.csv"); res.GetPass() == nil || res.GetMetadata().GetFields()["subject"].GetStringValue() != "alice" {
			t.Errorf("allowed call: %v", res)
		}
		if res := call("/etc/passwd"); res.GetError().GetCode() != extmcppb.AuthorizationError_PERMISSION_DENIED {
			t.Errorf("denied call: %v", res)
		}
	})
	t.Run("no_token_401_discovered_by_go_sdk", func(t *testing.T) {
		resp := check(t, "", "/data/a")
		d := resp.GetDeniedResponse()
		if d == nil || d.GetStatus().GetCode() != 401 {
			t.Fatalf("want 401, got %v", resp)
		}
		var challenge string
		for _, h := range d.GetHeaders() {
			if h.GetHeader().GetKey() == "www-authenticate" {
				challenge = h.GetHeader().GetValue()
			}
		}
		want := `Bearer resource_metadata="http://` + httpAddr + `/.well-known/oauth-protected-resource/mcp"`
		if challenge != want {
			t.Fatalf("WWW-Authenticate = %q, want %q", challenge, want)
		}
		cs, err := oauthex.ParseWWWAuthenticate([]string{challenge})
		if err != nil || len(cs) != 1 {
			t.Fatalf("SDK cannot parse the challenge: %v", err)
		}
		prm, err := oauthex.GetProtectedResourceMetadata(ctx, cs[0].Params["resource_metadata"], resource, http.DefaultClient)
		if err != nil {
			t.Fatalf("SDK cannot fetch the metadata: %v", err)
		}
		if prm.Resource != resource || len(prm.AuthorizationServers) != 1 {
			t.Errorf("metadata = %+v", prm)
		}
	})
	t.Run("status_and_metrics", func(t *testing.T) {
		for _, path := range []string{"/v1/status", "/metrics", "/healthz"} {
			resp, err := http.Get("http://" + httpAddr + path)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s = %d %s", path, resp.StatusCode, b)
			}
			if path == "/metrics" && !strings.Contains(string(b), `mcpauthz_decisions_total{code="allowed"}`) {
				t.Errorf("metrics lack the decision counter")
			}
		}
	})

	// Credentials sent every way a client may send them, allowed and
	// refused: once the server has stopped, none may be in its log or its
	// decision log.
	secrets := map[string]string{
		"bearer_token": tok, "api_key": "mcpk_E2eApiKey5ecret" + strings.Repeat("A", 28),
		"query_access_token": "E2eQueryToken5ecret1", "cookie": "E2eCookie5ecret2",
		"proxy_authorization": "E2eProxy5ecret3", "x_api_key": "E2eXApiKey5ecret4",
	}
	t.Run("credentials_sent", func(t *testing.T) {
		body := `{"jsonrpc":"2.0","id":5,"method":"tools/list"}`
		tests := map[string]struct {
			path, authz, body string
			allow             bool
		}{
			"allowed":                {path: "/mcp", authz: "Bearer " + tok, body: body, allow: true},
			"token_in_query_refused": {path: "/mcp?access_token=" + secrets["query_access_token"], authz: "Bearer " + tok, body: body},
			"unknown_api_key_401":    {path: "/mcp", authz: "Bearer " + secrets["api_key"], body: body},
			"no_token_401":           {path: "/mcp?access_token=" + secrets["query_access_token"], body: body},
			"malformed_body":         {path: "/mcp", authz: "Bearer " + tok, body: `{"jsonrpc":`},
		}
		for name, tc := range tests {
			t.Run(name, func(t *testing.T) {
				headers := map[string]string{
					":method": "POST", ":path": tc.path, ":authority": httpAddr,
					"content-type": "application/json", "mcp-protocol-version": "2025-06-18",
					"cookie": "sid=" + secrets["cookie"], "proxy-authorization": "Basic " + secrets["proxy_authorization"],
					"x-api-key": secrets["x_api_key"],
				}
				if tc.authz != "" {
					headers["authorization"] = tc.authz
				}
				resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
					Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
						Method: "POST", Path: tc.path, Host: httpAddr, Headers: headers, RawBody: []byte(tc.body),
					}},
					ContextExtensions: map[string]string{"mcp_server": "files"},
				}})
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				if got := resp.GetOkResponse() != nil; got != tc.allow {
					t.Errorf("allowed = %v, want %v: %v", got, tc.allow, resp)
				}
			})
		}
	})

	// Hot reload: a broken change keeps the last good policy; a good change
	// is served without a restart.
	t.Run("hot_reload", func(t *testing.T) {
		broken := filepath.Join(bundle, "broken.rego")
		if err := os.WriteFile(broken, []byte("package mcp.authz\n\nallow if {\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, func() bool {
			return strings.Contains(httpGet(t, "http://"+httpAddr+"/v1/status"), "broken.rego")
		})
		if resp := check(t, "Bearer "+tok, "/data/reports/q3.csv"); resp.GetOkResponse() == nil {
			t.Fatalf("after a broken change the last good policy must still allow: %v", resp)
		}
		if err := os.Remove(broken); err != nil {
			t.Fatal(err)
		}
		data := filepath.Join(bundle, "data.json")
		b, err := os.ReadFile(data)
		if err != nil {
			t.Fatal(err)
		}
		b = bytes.Replace(b, []byte(`"read_file_root": "/data/"`), []byte(`"read_file_root": "/etc/"`), 1)
		if err := os.WriteFile(data, b, 0o600); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, func() bool {
			return check(t, "Bearer "+tok, "/etc/passwd").GetOkResponse() != nil
		})
	})

	// Graceful stop on SIGTERM: exit code 0.
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-srv.exited:
		srv.stopped = true
		if err != nil {
			t.Errorf("exit after SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Errorf("server did not stop within 20s of SIGTERM")
	}

	decisions, err := os.ReadFile(filepath.Join(dir, "decisions.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(decisions), `"access_token":["REDACTED"]`) {
		t.Errorf("the decision log lacks the refused request with its token erased")
	}
	for sink, text := range map[string]string{"server log": srv.logs.String(), "decision log": string(decisions)} {
		for i, line := range strings.Split(text, "\n") {
			for what, s := range secrets {
				if strings.Contains(line, s) {
					t.Errorf("%s line %d holds the %s: %s", sink, i+1, what, line)
				}
			}
		}
	}
}

// mintToken mints a development token with the real binary (mcpauthz
// token args...), its key named by env's MCPAUTHZ_DEV_KEY.
func mintToken(t *testing.T, bin string, env []string, args ...string) string {
	t.Helper()
	cmd := exec.Command(bin, append([]string{"token"}, args...)...)
	cmd.Env = env
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("mcpauthz token: %v", err)
	}
	return strings.TrimSpace(string(out))
}

// waitReady polls the readiness endpoint until the first policy load.
func waitReady(t *testing.T, url string, exited <-chan error) {
	t.Helper()
	waitUp(t, url, exited, func() bool {
		resp, err := http.Get(url)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// waitUp polls up until it holds, for 60s at most, failing if the program
// whose end exited receives stops first; what names the wait.
func waitUp(t *testing.T, what string, exited <-chan error, up func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("exited before %s was up: %v", what, err)
		default:
		}
		if up() {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s not up within 60s", what)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond until it holds or the time is up.
func waitFor(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
