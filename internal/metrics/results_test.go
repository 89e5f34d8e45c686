package metrics_test

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
)

// TestResultMetrics: each judged answer counts once by outcome, and its
// redactions by name.
func TestResultMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := metrics.New(reg)
	d := &decision.Decision{ID: "d-1"}
	m.ObserveResult(context.Background(), d, &decision.ResultOutcome{Outcome: decision.ResultRedacted, Counts: map[string]int{"aws_access_key": 2}})
	m.ObserveResult(context.Background(), d, &decision.ResultOutcome{Outcome: decision.ResultRedacted, Counts: map[string]int{"aws_access_key": 1, "jwt": 1}})
	m.ObserveResult(context.Background(), d, &decision.ResultOutcome{Outcome: decision.ResultWithheld})
	want := map[string]float64{
		`mcpauthz_results_total{outcome=redacted}`:              2,
		`mcpauthz_results_total{outcome=withheld}`:              1,
		`mcpauthz_result_redactions_total{name=aws_access_key}`: 3,
		`mcpauthz_result_redactions_total{name=jwt}`:            1,
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if len(mt.GetLabel()) != 1 || mt.GetCounter() == nil {
				continue
			}
			l := mt.GetLabel()[0]
			got[mf.GetName()+"{"+l.GetName()+"="+l.GetValue()+"}"] = mt.GetCounter().GetValue()
		}
	}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
