package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcpauthz/mcpauthz/internal/mcptest"
)

// TestProxyEndToEnd runs the real binary as `mcpauthz proxy` in front of a
// real MCP server (the Go SDK's, answering in SSE), with development
// tokens minted by the same binary, and drives it with the MCP Go SDK
// client (mcptest.RunClient): 401 and resource metadata discovery on the
// proxy's origin, a filtered tools/list, an allowed call, a call denied by
// an argument rule (isError, the session goes on), a hidden tool refused
// as unknown (-32602), and a 403 step-up to a token with payments:write.
func TestProxyEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	bin := buildBinary(t)
	up := httptest.NewServer(mcptest.Server(false))
	defer up.Close()

	dir := t.TempDir()
	grpcAddr, httpAddr, proxyAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	resource := "http://" + proxyAddr + "/mcp"
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q, proxy: %q}
bundles: [{path: %q}]
resource: {uri: %q, authorization_servers: ["http://127.0.0.1:1/issuer"]}
tokens: {dev: true}
sessions: {bind_subject: true}
log: {level: debug, format: text}
`, grpcAddr, httpAddr, proxyAddr, mcptest.PolicyDir(), resource)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	mint := func(scopes string) string {
		return mintToken(t, bin, env, "--config", cfgPath, "--sub", "alice", "--scope", scopes)
	}
	grants := map[string]string{"": mint(mcptest.Scopes), "payments:write": mint(mcptest.StepUpScopes)}

	srv := startBinary(t, bin, env, "proxy", "--config", cfgPath, "--upstream", up.URL+"/mcp")
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)

	mcptest.RunClient(t, resource, &mcptest.Discovering{Resource: resource, Grants: grants})

	// Health is served where serve serves it; the proxy's origin serves
	// the metadata, not the upstream's paths.
	if got := httpGet(t, "http://"+httpAddr+"/healthz"); got != "ok\n" {
		t.Errorf("healthz: %q", got)
	}
	resp, err := http.Get("http://" + proxyAddr + "/.well-known/oauth-protected-resource/mcp")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("metadata on the proxy: %v %v", resp, err)
	}
	resp.Body.Close()
}
