package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// TestAPIKeysFromBundleData builds the whole app on a bundle whose data holds
// an API key hash, and shows that the key authenticates and hot-reloads
// with the policy (an invalid api_keys document fails that load).
func TestAPIKeysFromBundleData(t *testing.T) {
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.CopyFS(bundle, os.DirFS("../../examples/bundles/parameter-rules")); err != nil {
		t.Fatal(err)
	}
	key, hash, entry, err := token.GenerateAPIKey("ci-bot", []string{"mcp:tools"}, "platform", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// OPA loads a data.json at the path of its directory: this one becomes
	// data.mcpauthz.api_keys, beside the example's own data.
	keysDir := filepath.Join(bundle, "mcpauthz", "api_keys")
	if err := os.MkdirAll(keysDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(keysDir, "data.json"), mustJSON(t, map[string]any{hash: entry}), 0o600); err != nil {
		t.Fatal(err)
	}

	cfg := DefaultConfig()
	cfg.Bundles = []BundleConfig{{Path: bundle}}
	ctx := context.Background()
	a, err := buildApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.bundles.Reload(ctx); err != nil {
		t.Fatalf("loading: %v", err)
	}
	req := func(authz string) *decision.Request {
		return &decision.Request{
			Method: "POST", Path: "/mcp", Host: "mcp.example.com",
			Headers: map[string]string{"authorization": authz, "content-type": "application/json"},
			Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/x"}}}`),
			Context: map[string]string{"mcp_server": "files"},
		}
	}
	d := a.engine.Decide(ctx, req("Bearer "+key))
	if !d.Allow || d.Token.Type != token.TypeAPIKey || d.Token.Subject != "ci-bot" {
		t.Fatalf("API key: allow=%v code=%s reason=%q token=%+v", d.Allow, d.Code, d.Reason, d.Token)
	}
	wrong := key[:len(key)-1] + "A"
	if wrong == key {
		wrong = key[:len(key)-1] + "B"
	}
	if d := a.engine.Decide(ctx, req("Bearer "+wrong)); d.Allow || d.Status != 401 {
		t.Fatalf("wrong key: allow=%v status=%d", d.Allow, d.Status)
	}

	// A broken api_keys document fails the load and keeps the old snapshot.
	if err := os.WriteFile(filepath.Join(keysDir, "data.json"), []byte(`{"not-a-hash": {"sub": 1}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := a.bundles.Reload(ctx); err == nil {
		t.Fatal("a bad api_keys document must fail the load")
	}
	if d := a.engine.Decide(ctx, req("Bearer "+key)); !d.Allow {
		t.Fatalf("last good snapshot must still accept the key: %s %s", d.Code, d.Reason)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
