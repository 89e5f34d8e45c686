package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// TestConfirmThroughProxy runs the real binary as `mcpauthz proxy` with
// confirm.keys and decision/testdata/confirm's policy (deleting outside
// /tmp/ needs confirmation): the first call is answered with
// input_required and never reaches the server; the accepted retry passes
// once; the same retry again is refused; a declined one is denied.
func TestConfirmThroughProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	bin := buildBinary(t)
	var mu sync.Mutex
	var seen []string
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, string(b))
		mu.Unlock()
		var msg struct {
			ID json.RawMessage `json:"id"`
		}
		_ = json.Unmarshal(b, &msg)
		w.Header().Set("content-type", "application/json")
		fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"content":[{"type":"text","text":"deleted"}]}}`, msg.ID)
	}))
	defer up.Close()

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "confirm.key")
	if err := os.WriteFile(keyFile, bytes.Repeat([]byte{5}, 32), 0o600); err != nil {
		t.Fatal(err)
	}
	policy, err := filepath.Abs("../../decision/testdata/confirm")
	if err != nil {
		t.Fatal(err)
	}
	grpcAddr, httpAddr, proxyAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	resource := "http://" + proxyAddr + "/mcp"
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q, proxy: %q}
bundles: [{path: %q}]
resource: {uri: %q, authorization_servers: ["http://127.0.0.1:1/issuer"]}
tokens: {dev: true}
confirm: {keys: [{id: k1, secret_file: %q}], ttl: 1m}
log: {level: debug, format: text}
`, grpcAddr, httpAddr, proxyAddr, policy, resource, keyFile)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	tok := mintToken(t, bin, env, "--config", cfgPath, "--sub", "alice", "--scope", "mcp:tools")
	srv := startBinary(t, bin, env, "proxy", "--config", cfgPath, "--upstream", up.URL+"/mcp")
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)

	call := func(id int, extra string) (int, map[string]any) {
		t.Helper()
		body := fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":"/etc/passwd"}%s,`+
			`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientInfo":{"name":"t","version":"1"},`+
			`"io.modelcontextprotocol/clientCapabilities":{"elicitation":{"form":{}}}}}}`, id, extra)
		req, _ := http.NewRequest("POST", resource, strings.NewReader(body))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("accept", "application/json, text/event-stream")
		req.Header.Set("authorization", "Bearer "+tok)
		req.Header.Set("mcp-protocol-version", "2026-07-28")
		req.Header.Set("mcp-method", "tools/call")
		req.Header.Set("mcp-name", "delete_file")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		var out map[string]any
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("call %d: status %d, body %s: %v", id, resp.StatusCode, raw, err)
		}
		return resp.StatusCode, out
	}
	result := func(out map[string]any) map[string]any {
		r, _ := out["result"].(map[string]any)
		return r
	}
	ask := func(id int) string {
		t.Helper()
		status, out := call(id, "")
		r := result(out)
		state, _ := r["requestState"].(string)
		if status != 200 || r["resultType"] != "input_required" || state == "" {
			t.Fatalf("call %d: want input_required, got %d %v", id, status, out)
		}
		return state
	}
	retry := func(id int, state, answer string) (int, map[string]any) {
		return call(id, fmt.Sprintf(`,"inputResponses":{"io.mcpauthz/confirm":%s},"requestState":%q`, answer, state))
	}
	const accept = `{"action":"accept","content":{"confirm":true}}`

	state := ask(1)
	if n := len(seen); n != 0 {
		t.Fatalf("the held call reached the server: %v", seen)
	}
	if status, out := retry(2, state, accept); status != 200 || result(out)["content"] == nil || result(out)["isError"] == true {
		t.Fatalf("accepted retry: %d %v", status, out)
	}
	mu.Lock()
	if len(seen) != 1 || !strings.Contains(seen[0], `"id":2`) {
		t.Fatalf("upstream saw %v, want the accepted retry once", seen)
	}
	mu.Unlock()
	status, out := retry(3, state, accept)
	if text := fmt.Sprint(result(out)["content"]); status != 200 || result(out)["isError"] != true || !strings.Contains(text, "already used") {
		t.Fatalf("replayed retry: %d %v", status, out)
	}
	declined := ask(4)
	status, out = retry(5, declined, `{"action":"decline"}`)
	if text := fmt.Sprint(result(out)["content"]); status != 200 || result(out)["isError"] != true || !strings.Contains(text, "the user declined") {
		t.Fatalf("declined retry: %d %v", status, out)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 {
		t.Fatalf("upstream saw %d calls, want only the accepted one: %v", len(seen), seen)
	}
}
