package decisionlog_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
)

// TestDryRun: under dry run a request the policy denies (no token: 401)
// is allowed (the
// decision id upstream, the client's authorization still removed), while
// the decision log carries the real result and dry_run, and
// mcpauthz_decisions_total{dry_run="true"} counts the would-be outcome.
func TestDryRun(t *testing.T) {
	var out syncBuffer
	dl, err := decisionlog.New(decisionlog.Options{Writer: &out})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	e := decisiontest.NewEngine(t, "testdata/masked", func(o *decision.Options) {
		o.DryRun = true
		o.Observer = decision.Observers(metrics.NewWith(reg, true), dl)
	})
	d := e.Decide(context.Background(), &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
		Headers: map[string]string{"content-type": "application/json", "authorization": "Bearer x"},
		Body:    []byte(`{"jsonrpc":"2.0","id":1,"method":"resources/list"}`)})
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	if !d.Allow || !d.DryRun || d.Code != decision.CodeUnauthenticated || len(d.Body) != 0 {
		t.Errorf("answer allow=%v dry_run=%v code=%s body=%q; want allowed, dry run, the real code, no body", d.Allow, d.DryRun, d.Code, d.Body)
	}
	if len(d.UpstreamHeaders) != 1 || d.UpstreamHeaders[0] != (decision.Header{Name: decision.DecisionIDHeader, Value: d.ID}) ||
		len(d.RemoveHeaders) != 1 || d.RemoveHeaders[0] != "authorization" {
		t.Errorf("upstream headers %v, removed %v; want only the decision id, authorization removed", d.UpstreamHeaders, d.RemoveHeaders)
	}
	var ev struct {
		DecisionID string         `json:"decision_id"`
		Result     map[string]any `json:"result"`
		DryRun     bool           `json:"dry_run"`
	}
	if err := json.Unmarshal([]byte(strings.TrimSpace(out.b.String())), &ev); err != nil {
		t.Fatalf("%v: %s", err, out.b.String())
	}
	if ev.DecisionID != d.ID || !ev.DryRun || ev.Result["allow"] != false || ev.Result["code"] != decision.CodeUnauthenticated {
		t.Errorf("event %+v: want the real result (denied) and dry_run", ev)
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var series []string
	for _, mf := range mfs {
		if mf.GetName() != "mcpauthz_decisions_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, l.GetName()+"="+l.GetValue())
			}
			series = append(series, fmt.Sprintf("%s %v", strings.Join(ls, ","), m.GetCounter().GetValue()))
		}
	}
	if fmt.Sprint(series) != "[code=unauthenticated,dry_run=true 1]" {
		t.Errorf("mcpauthz_decisions_total series %v, want code=unauthenticated,dry_run=true 1", series)
	}
}
