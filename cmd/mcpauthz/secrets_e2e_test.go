package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
)

// secretJWT is JWT-shaped and valid nowhere: a credential a client sends
// where none belongs.
const secretJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQifQ.c2VjcmV0LXNpZ25hdHVyZQ"

// TestNoSecretShown starts the real binary with its bundle downloaded from
// a URL holding user info and a signed query, and sends Checks carrying
// credentials where none belongs. Nothing it shows holds one: not
// /v1/status (name, last_error), not /metrics' bundle label, not the
// service log, not the decision log, not the denial's body (issue 28 rows
// 6 and 12, issue 27 row 10).
func TestNoSecretShown(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	files := map[string]string{}
	src := "../../examples/bundles/parameter-rules"
	for _, f := range []string{".manifest", "authz.rego", "parameters.rego", "ratelimit.rego", "data.json"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		files[f] = string(b)
	}
	tarball := gzipTar(t, files)
	// The bundle server answers once, then drops every connection: the
	// client's error quotes the URL, which the status and log must not.
	var served atomic.Int32
	bundleSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, _ := r.BasicAuth(); user != "deploy" || pass != "hunter2" {
			http.Error(w, "who?", http.StatusUnauthorized)
			return
		}
		if served.Add(1) == 1 {
			_, _ = w.Write(tarball)
			return
		}
		hj, _ := w.(http.Hijacker)
		if c, _, err := hj.Hijack(); err == nil {
			_ = c.Close()
		}
	}))
	defer bundleSrv.Close()
	bundleURL := strings.Replace(bundleSrv.URL, "http://", "http://deploy:hunter2@", 1) +
		"/b.tar.gz?X-Amz-Credential=credsecret&X-Amz-Signature=sigsecret&sig=azuresecret"

	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	resource := "http://" + httpAddr + "/mcp"
	decisions := filepath.Join(dir, "decisions.jsonl")
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q}
bundles: [{url: %q, min_delay: 100ms, max_delay: 200ms}]
resource: {uri: %q, authorization_servers: ["http://127.0.0.1:1/issuer"], scopes_supported: ["mcp:tools"]}
tokens: {dev: true}
log: {level: debug, format: json}
decision_logs: {file: %q}
`, grpcAddr, httpAddr, bundleURL, resource, decisions)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	srv := startBinary(t, bin, env, "serve", "--config", cfgPath)
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)
	waitFor(t, 20*time.Second, func() bool {
		return strings.Contains(httpGet(t, "http://"+httpAddr+"/v1/status"), "last_error")
	})

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := authv3.NewAuthorizationClient(grpcConn(t, grpcAddr))
	var bodies []string
	for name, extra := range map[string]map[string]string{
		"origin":           {"origin": secretJWT},
		"protocol_version": {"mcp-protocol-version": secretJWT},
		"session_id":       {"mcp-session-id": secretJWT},
		"named_headers": {"x-upstream-auth": "Basic ZGVwbG95Omh1bnRlcjI=", "x-auth": "xauthsecret",
			"x-passphrase": "passphrasesecret", ":path": "/mcp?code=codesecret&pw=pwsecret"},
	} {
		body := `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
		headers := map[string]string{
			":method": "POST", ":path": "/mcp", ":authority": httpAddr,
			"content-type": "application/json", "mcp-protocol-version": "2025-06-18",
		}
		for k, v := range extra {
			headers[k] = v
		}
		resp, err := client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: headers[":path"], Host: httpAddr, Headers: headers, RawBody: []byte(body),
			}},
		}})
		if err != nil {
			t.Fatalf("%s: Check: %v", name, err)
		}
		bodies = append(bodies, resp.String())
	}

	secrets := []string{"hunter2", "ZGVwbG95Omh1bnRlcjI=", "credsecret", "sigsecret", "azuresecret", secretJWT,
		"xauthsecret", "passphrasesecret", "codesecret", "pwsecret"}
	status := httpGet(t, "http://"+httpAddr+"/v1/status")
	metrics := httpGet(t, "http://"+httpAddr+"/metrics")
	if !strings.Contains(status, "REDACTED@127.0.0.1") || !strings.Contains(metrics, `bundle="http://REDACTED@127.0.0.1`) {
		t.Errorf("the bundle is not named by its erased URL:\nstatus %s\nmetrics %s", status, grepLines(metrics, "mcpauthz_bundle_downloads_total"))
	}
	waitFor(t, 10*time.Second, func() bool {
		b, _ := os.ReadFile(decisions)
		return strings.Count(string(b), "\n") >= 4
	})
	logged, err := os.ReadFile(decisions)
	if err != nil {
		t.Fatal(err)
	}
	for what, text := range map[string]string{
		"status": status, "metrics": metrics, "service log": srv.logs.String(),
		"decision log": string(logged), "check responses": strings.Join(bodies, "\n"),
	} {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s holds %q:\n%s", what, s, text)
			}
		}
	}
	if !strings.Contains(string(logged), `"session_id":"REDACTED"`) || !strings.Contains(string(logged), `origin \"REDACTED\" is not allowed`) {
		t.Errorf("decision log does not show the erased values:\n%s", logged)
	}
}

// grepLines returns the lines of s holding sub.
func grepLines(s, sub string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// TestAPIBoundedAndAuthenticated starts the real binary with an API token
// and decision logs on. The Decision API and AuthZEN refuse a caller
// without the token (issue 28 item 4); AuthZEN bounds its body by
// limits.max_body_bytes, its evaluations by limits.max_evaluations, and
// the work of one call: a top-level context that 1,000 evaluations would
// each inherit is refused before anything is decided or logged (row 7).
func TestAPIBoundedAndAuthenticated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	decisions := filepath.Join(dir, "decisions.jsonl")
	tokenFile := filepath.Join(dir, "api-token")
	if err := os.WriteFile(tokenFile, []byte("api-secret-1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q}
bundles: [{path: ../../examples/bundles/parameter-rules}]
resource: {uri: "http://%s/mcp", authorization_servers: ["http://127.0.0.1:1/issuer"]}
tokens: {dev: true}
log: {level: info, format: json}
decision_logs: {file: %q}
api: {bearer_token_file: %q}
limits: {max_body_bytes: 65536, max_evaluations: 50}
`, grpcAddr, httpAddr, httpAddr, decisions, tokenFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	srv := startBinary(t, bin, env, "serve", "--config", cfgPath)
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)

	post := func(t *testing.T, path, authz, body string) int {
		t.Helper()
		req, _ := http.NewRequest("POST", "http://"+httpAddr+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if authz != "" {
			req.Header.Set("Authorization", authz)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	one := `"subject":{"type":"user","id":"alice"},"action":{"name":"tools/call"},"resource":{"type":"tool","id":"echo"}`
	evals := func(n int) string {
		return "[" + strings.TrimSuffix(strings.Repeat("{},", n), ",") + "]"
	}
	keys := make([]string, 4000)
	for i := range keys {
		keys[i] = fmt.Sprintf(`"k%d":%d`, i, i)
	}
	wideContext := "{" + strings.Join(keys, ",") + "}" // about 40 KB
	tests := map[string]struct {
		path, authz, body string
		status            int
	}{
		"no_token":             {"/access/v1/evaluation", "", "{" + one + "}", 401},
		"wrong_token":          {"/access/v1/evaluation", "Bearer api-secret-2", "{" + one + "}", 401},
		"token":                {"/access/v1/evaluation", "Bearer api-secret-1", "{" + one + "}", 200},
		"body_over_limit":      {"/access/v1/evaluation", "Bearer api-secret-1", `{` + one + `,"context":{"pad":"` + strings.Repeat("x", 70000) + `"}}`, 413},
		"too_many_evaluations": {"/access/v1/evaluations", "Bearer api-secret-1", `{` + one + `,"evaluations":` + evals(51) + `}`, 400},
		"work_amplified":       {"/access/v1/evaluations", "Bearer api-secret-1", `{` + one + `,"context":` + wideContext + `,"evaluations":` + evals(50) + `}`, 413},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := post(t, tc.path, tc.authz, tc.body); got != tc.status {
				t.Errorf("status %d, want %d", got, tc.status)
			}
		})
	}
	// Only the one authenticated, bounded evaluation was decided and
	// logged.
	time.Sleep(500 * time.Millisecond)
	if b, _ := os.ReadFile(decisions); strings.Count(string(b), "\n") != 1 || len(b) > 64<<10 {
		t.Errorf("decision log has %d events, %d bytes; want the one decided evaluation", strings.Count(string(b), "\n"), len(b))
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn := grpcConn(t, grpcAddr)
	api := pb.NewDecisionServiceClient(conn)
	if _, err := api.Status(ctx, &pb.StatusRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Status without a token: %v, want Unauthenticated", err)
	}
	if _, err := api.Decide(ctx, &pb.DecideRequest{}); status.Code(err) != codes.Unauthenticated {
		t.Errorf("Decide without a token: %v, want Unauthenticated", err)
	}
	// An anonymous caller is refused when its headers arrive, before its
	// message is read: a 128 MiB Decide does not raise the server's peak
	// memory (row 8: two such calls took it from 160 MB to 1.65 GB).
	before := peakRSS(t, srv.cmd.Process.Pid)
	huge128 := &pb.DecideRequest{Message: &pb.Message{Kind: &pb.Message_Raw{Raw: make([]byte, 128<<20)}}}
	if _, err := api.Decide(ctx, huge128, grpc.MaxCallSendMsgSize(256<<20)); status.Code(err) != codes.Unauthenticated {
		t.Errorf("anonymous Decide of 128 MiB: %v, want Unauthenticated", err)
	}
	if after := peakRSS(t, srv.cmd.Process.Pid); after-before > 64<<20 {
		t.Errorf("peak RSS grew from %d to %d bytes on an anonymous 128 MiB Decide", before, after)
	}
	authed := metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer api-secret-1")
	if st, err := api.Status(authed, &pb.StatusRequest{}); err != nil || !st.GetReady() {
		t.Errorf("Status with the token: %v, %v", st, err)
	}
	// Only ext_authz reads a message of any size (row 8): an authenticated
	// Decide past the Decision API's bound (max(max_body_bytes, 8 MiB) +
	// 1 MiB) fails before it is decoded; one within it is a 413 decision.
	huge := &pb.DecideRequest{Message: &pb.Message{Kind: &pb.Message_Raw{Raw: make([]byte, 10<<20)}}}
	if _, err := api.Decide(authed, huge, grpc.MaxCallSendMsgSize(64<<20)); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("Decide of 10 MiB: %v, want refused for its size", err)
	}
	if d, err := api.Decide(authed, &pb.DecideRequest{Message: &pb.Message{Kind: &pb.Message_Raw{Raw: make([]byte, 1<<20)}}}); err != nil || d.GetDecision().GetDeniedResponse().GetStatus() != 413 {
		t.Errorf("Decide of 1 MiB: %v, %v; want a 413 decision", d, err)
	}
	// Metadata is bounded for every service: a held-open ext_proc stream
	// cannot pin 8 MiB of it.
	padded := metadata.AppendToOutgoingContext(ctx, "x-pad", strings.Repeat("p", 1<<20))
	if st, err := procv3.NewExternalProcessorClient(conn).Process(padded); err == nil {
		// A served stream answers its first message; a refused one fails.
		_ = st.Send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_RequestHeaders{RequestHeaders: &procv3.HttpHeaders{}}})
		if _, err = st.Recv(); err == nil {
			t.Error("an ext_proc stream with 1 MiB of metadata was served")
		}
	}
	// ext_authz itself stays open to its caller, Envoy.
	resp, err := authv3.NewAuthorizationClient(conn).Check(ctx, &authv3.CheckRequest{})
	if err != nil || resp.GetDeniedResponse() == nil {
		t.Errorf("Check without a token: %v, %v; want a denial, not an error", resp, err)
	}
}

// peakRSS returns the peak resident set size of process pid (VmHWM), in
// bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			if _, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb); err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc status")
	return 0
}
