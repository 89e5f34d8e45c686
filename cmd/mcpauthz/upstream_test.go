package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// TestConfigUpstreamErrorsNameTheKey: each upstream credential has a
// name, once, and one complete way of making the credential.
func TestConfigUpstreamErrorsNameTheKey(t *testing.T) {
	x := "token_exchange: {token_url: 'https://as/token', client_id: c, client_secret_file: s}"
	tests := map[string]configErrorCase{
		"no_name":        {"upstream_credentials: [{" + x + "}]", "upstream_credentials[0].name"},
		"named_none":     {"upstream_credentials: [{name: none, " + x + "}]", "upstream_credentials[0].name"},
		"name_twice":     {"upstream_credentials: [{name: a, " + x + "}, {name: a, " + x + "}]", "upstream_credentials[1].name"},
		"neither":        {"upstream_credentials: [{name: a}]", "upstream_credentials[0]"},
		"token_url":      {"upstream_credentials: [{name: a, token_exchange: {token_url: as, client_id: c, client_secret_file: s}}]", "upstream_credentials[0].token_exchange.token_url"},
		"no_client_id":   {"upstream_credentials: [{name: a, token_exchange: {token_url: 'https://as', client_secret_file: s}}]", "upstream_credentials[0].token_exchange.client_id"},
		"no_client_auth": {"upstream_credentials: [{name: a, token_exchange: {token_url: 'https://as', client_id: c}}]", "upstream_credentials[0].token_exchange"},
		"upper_header":   {"upstream_credentials: [{name: a, static: {header: X-Key, value_file: v}}]", "upstream_credentials[0].static.header"},
		"no_value_file":  {"upstream_credentials: [{name: a, static: {header: x-key}}]", "upstream_credentials[0].static.value_file"},
		"secret_and_key": {"upstream_credentials: [{name: a, token_exchange: {token_url: 'https://as', client_id: c, client_secret_file: s, private_key_jwt: {key_file: k}}}]", "upstream_credentials[0].token_exchange"},
		"no_key_file":    {"upstream_credentials: [{name: a, token_exchange: {token_url: 'https://as', client_id: c, private_key_jwt: {key_id: k}}}]", "upstream_credentials[0].token_exchange.private_key_jwt.key_file"},
		"unknown_pk_key": {"upstream_credentials: [{name: a, token_exchange: {token_url: 'https://as', client_id: c, private_key_jwt: {file: k}}}]", "file"},
	}
	checkConfigErrors(t, tests)
}

// TestConfigUpstreamExchange follows upstream_credentials from the YAML
// file to an allowed decision: the caller's token is exchanged at the
// token endpoint with the client secret read from its file, and the
// exchanged one is set upstream in place of the caller's.
func TestConfigUpstreamExchange(t *testing.T) {
	var calls atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		id, secret, _ := r.BasicAuth()
		if id != "mcpauthz" || secret != "from-file" || r.FormValue("audience") != "https://files.internal" ||
			r.FormValue("grant_type") != "urn:ietf:params:oauth:grant-type:token-exchange" || r.FormValue("subject_token") == "" {
			http.Error(w, `{"error":"invalid_request"}`, http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "for-files", "token_type": "Bearer", "expires_in": 600})
	}))
	t.Cleanup(as.Close)
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	keyPath := filepath.Join(dir, "dev-key.pem")
	yaml := fmt.Sprintf(`tokens: {dev: true, dev_key_file: %q}
upstream_credentials:
- name: files
  token_exchange: {token_url: %q, client_id: mcpauthz, client_secret_file: %q, audience: 'https://files.internal'}
`, keyPath, as.URL+"/token", secret)
	ctx := context.Background()
	a := loadedApp(t, yaml)
	defer a.close()
	raw, err := token.MintDev(token.DevOptions{KeyPath: keyPath, Audience: a.cfg.Resource.URI, Scopes: []string{"mcp:tools"}})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		d := a.engine.Decide(ctx, &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
			Headers: map[string]string{"content-type": "application/json", "authorization": "Bearer " + raw},
			Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
		if !d.Allow {
			t.Fatalf("denied: %s (%s)", d.Reason, d.Code)
		}
		if got := headerMap(d.UpstreamHeaders)["authorization"]; got != "Bearer for-files" {
			t.Errorf("upstream authorization %q, want the exchanged token", got)
		}
		for _, h := range d.RemoveHeaders {
			if h == "authorization" {
				t.Error("authorization is both set and removed")
			}
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("%d exchanges for two requests of one caller, want 1", n)
	}
}

// TestConfigUpstreamPrivateKeyJWT: with private_key_jwt the key is read
// from key_file and the exchange authenticates with a client assertion.
func TestConfigUpstreamPrivateKeyJWT(t *testing.T) {
	var assertions atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, _, basic := r.BasicAuth(); !basic && r.FormValue("client_assertion") != "" && r.FormValue("client_id") == "mcpauthz" {
			assertions.Add(1)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "for-files", "token_type": "Bearer", "expires_in": 600})
	}))
	t.Cleanup(as.Close)
	dir := t.TempDir()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := filepath.Join(dir, "client.pem")
	if err := os.WriteFile(clientKey, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	devKey := filepath.Join(dir, "dev-key.pem")
	yaml := fmt.Sprintf(`tokens: {dev: true, dev_key_file: %q}
upstream_credentials:
- name: files
  token_exchange: {token_url: %q, client_id: mcpauthz, private_key_jwt: {key_file: %q, key_id: k1}}
`, devKey, as.URL+"/token", clientKey)
	ctx := context.Background()
	a := loadedApp(t, yaml)
	defer a.close()
	raw, err := token.MintDev(token.DevOptions{KeyPath: devKey, Audience: a.cfg.Resource.URI})
	if err != nil {
		t.Fatal(err)
	}
	d := a.engine.Decide(ctx, &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
		Headers: map[string]string{"content-type": "application/json", "authorization": "Bearer " + raw},
		Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`)})
	if !d.Allow || headerMap(d.UpstreamHeaders)["authorization"] != "Bearer for-files" {
		t.Fatalf("allow=%v (%s), upstream %v", d.Allow, d.Reason, d.UpstreamHeaders)
	}
	if n := assertions.Load(); n != 1 {
		t.Errorf("%d exchanges authenticated by a client assertion, want 1", n)
	}
}
