package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
)

func TestDecisionLogConfigErrors(t *testing.T) {
	checkConfigErrors(t, map[string]configErrorCase{
		"service_url_missing":  {"decision_logs: {service: {bearer_token_file: /t}}", "decision_logs.service.url"},
		"service_url_relative": {"decision_logs: {service: {url: logs.example.com}}", "decision_logs.service.url"},
		"service_cert_alone":   {"decision_logs: {service: {url: https://l.example.com, cert_file: c.pem}}", "decision_logs.service.cert_file"},
		"min_delay_zero":       {"decision_logs: {reporting: {min_delay_seconds: 0}}", "decision_logs.reporting.min_delay_seconds"},
		"max_below_min":        {"decision_logs: {reporting: {min_delay_seconds: 20, max_delay_seconds: 10}}", "decision_logs.reporting.max_delay_seconds"},
		"buffer_negative":      {"decision_logs: {reporting: {buffer_size_limit_bytes: -1}}", "decision_logs.reporting.buffer_size_limit_bytes"},
		"service_unknown_key":  {"decision_logs: {service: {url: https://l.example.com, token: x}}", "decision_logs.service.token"},
	})
}

// TestDecisionLogService follows decision_logs.service from the YAML file
// to an upload: the app's decisions reach the service (gzip JSON array at
// /logs, the bearer token from its file) with the decision ids the
// decisions carry, and mcpauthz_decision_logs_dropped_total is exported.
func TestDecisionLogService(t *testing.T) {
	var (
		mu   sync.Mutex
		ids  []string
		auth []string
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		zr, err := gzip.NewReader(r.Body)
		if r.URL.Path != "/v1/logs" || err != nil {
			http.Error(w, "no", http.StatusBadRequest)
			return
		}
		var evs []struct {
			DecisionID string `json:"decision_id"`
		}
		if err := json.NewDecoder(zr).Decode(&evs); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		auth = append(auth, r.Header.Get("Authorization"))
		for _, e := range evs {
			ids = append(ids, e.DecisionID)
		}
	}))
	defer srv.Close()
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("t0ken"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a := loadedApp(t, fmt.Sprintf(`tokens: {dev: true, dev_key_file: %q}
decision_logs:
  service: {url: %q, bearer_token_file: %q}
  reporting: {min_delay_seconds: 60, max_delay_seconds: 60}
`, filepath.Join(t.TempDir(), "dev-key.pem"), srv.URL+"/v1", tok))
	var want []string
	for i := range 3 {
		d := a.engine.Decide(ctx, &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
			Headers: map[string]string{"content-type": "application/json"}, Body: fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"ping"}`, i)})
		want = append(want, d.ID)
	}
	mfs, err := a.registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, mf := range mfs {
		found = found || mf.GetName() == "mcpauthz_decision_logs_dropped_total"
	}
	if !found {
		t.Error("mcpauthz_decision_logs_dropped_total is not exported")
	}
	a.close() // the delays are a minute: Close uploads what is left
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(ids) != fmt.Sprint(want) || len(auth) == 0 || auth[0] != "Bearer t0ken" {
		t.Errorf("service got ids %v with authorization %v; want %v with Bearer t0ken", ids, auth, want)
	}
}

func TestDecisionLogRuleConfigErrors(t *testing.T) {
	checkConfigErrors(t, map[string]configErrorCase{
		"mask_not_a_path": {"decision_logs: {mask_decision: \"system/log/ma sk\"}", "decision_logs.mask_decision"},
		"drop_not_a_path": {"decision_logs: {drop_decision: \"system/log/dr[op\"}", "decision_logs.drop_decision"},
	})
}

// TestDecisionLogMaskFromConfig: with decision logs on, the bundle's
// system.log rules (the default mask_decision and drop_decision) are
// prepared with the snapshot and mask the events the app writes; the
// policy's type check against the input schema does not refuse them.
func TestDecisionLogMaskFromConfig(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	ctx := context.Background()
	a := loadedApp(t, fmt.Sprintf(`tokens: {dev: true, dev_key_file: %q}
bundles: [{path: ../../internal/decisionlog/testdata/masked}]
decision_logs: {file: %q}
`, filepath.Join(t.TempDir(), "dev-key.pem"), logFile))
	if m, d := a.bundles.Current().LogRules(); m == nil || d == nil {
		a.close()
		t.Fatal("the mask and drop rules were not prepared")
	}
	a.engine.Decide(ctx, &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
		Headers: map[string]string{"content-type": "application/json"},
		Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"login","arguments":{"password":"hunter2"}}}`)})
	a.close()
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) == 0 || bytes.Contains(b, []byte("hunter2")) || !bytes.Contains(b, []byte(`"erased":["/input/mcp/`)) {
		t.Errorf("decision log:\n%s\nwant one event, the password erased", b)
	}
}

// TestDryRunFromConfig: policy.dry_run from YAML allows what the policy
// denies and logs the real result.
func TestDryRunFromConfig(t *testing.T) {
	logFile := filepath.Join(t.TempDir(), "decisions.jsonl")
	ctx := context.Background()
	a := loadedApp(t, fmt.Sprintf(`tokens: {dev: true, dev_key_file: %q}
policy: {dry_run: true}
decision_logs: {file: %q}
`, filepath.Join(t.TempDir(), "dev-key.pem"), logFile))
	d := a.engine.Decide(ctx, &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
		Headers: map[string]string{"content-type": "application/json"}, Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)})
	a.close()
	b, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	if !d.Allow || !bytes.Contains(b, []byte(`"dry_run":true`)) || !bytes.Contains(b, []byte(`"allow":false`)) {
		t.Errorf("allow=%v, log %s; want allowed, the real denial logged with dry_run", d.Allow, b)
	}
}
