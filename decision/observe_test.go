package decision_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// TestDecisionLogEvents checks that decisions are logged in OPA's event
// shape, with the whole input (never the raw token), and counted.
func TestDecisionLogEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	dl, err := decision.NewDecisionLog(decision.DecisionLogOptions{File: path})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics := decision.NewMetrics(reg)
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) {
		o.Observer = decision.Observers(metrics, dl)
	})
	allowed := post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, claims("alice", ""))
	allowed.Headers["authorization"] = "Bearer raw-token-must-not-be-logged"
	d1 := e.Decide(context.Background(), allowed)
	d2 := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`, nil))
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "raw-token-must-not-be-logged") {
		t.Fatal("the raw token reached the decision log")
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) != 2 {
		t.Fatalf("got %d events, want 2:\n%s", len(lines), b)
	}
	type event struct {
		DecisionID string         `json:"decision_id"`
		Path       string         `json:"path"`
		Input      map[string]any `json:"input"`
		Result     map[string]any `json:"result"`
		Bundles    map[string]any `json:"bundles"`
		Timestamp  string         `json:"timestamp"`
		Metrics    map[string]any `json:"metrics"`
	}
	for i, want := range []*decision.Decision{d1, d2} {
		var ev event
		if err := json.Unmarshal([]byte(lines[i]), &ev); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if ev.DecisionID != want.ID || ev.Path != "mcp/authz/decision" || ev.Timestamp == "" {
			t.Errorf("event %d header = %+v", i, ev)
		}
		if ev.Result["allow"] != want.Allow || ev.Result["code"] != want.Code {
			t.Errorf("event %d result = %v, want allow %v code %s", i, ev.Result, want.Allow, want.Code)
		}
		if ev.Input["mcp"] == nil || ev.Input["token"] == nil {
			t.Errorf("event %d input lacks mcp or token: %v", i, ev.Input)
		}
		if _, ok := ev.Metrics["timer_server_handler_ns"]; !ok {
			t.Errorf("event %d metrics = %v", i, ev.Metrics)
		}
	}
	if got := decisionsCounted(t, reg, "allowed"); got != 1 {
		t.Errorf("allowed decisions counted = %v, want 1", got)
	}
}

// decisionsCounted reads mcpauthz_decisions_total for one code.
func decisionsCounted(t *testing.T, reg *prometheus.Registry, code string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "mcpauthz_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no mcpauthz_decisions_total{code=%q}", code)
	return 0
}
