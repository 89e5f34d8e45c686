package decisionlog_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// BenchmarkDecideObserved is decision's BenchmarkDecide/tools_call with
// metrics, and with metrics and a decision log to a file: what the
// exporters add to a decision.
func BenchmarkDecideObserved(b *testing.B) {
	b.Run("metrics", func(b *testing.B) {
		benchObserved(b, metrics.New(prometheus.NewRegistry()))
	})
	b.Run("metrics_and_log", func(b *testing.B) {
		dl, err := decisionlog.New(decisionlog.Options{File: filepath.Join(b.TempDir(), "decisions.jsonl")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = dl.Close() })
		benchObserved(b, decision.Observers(metrics.New(prometheus.NewRegistry()), dl))
		b.ReportMetric(float64(dl.Dropped()), "dropped")
	})
	b.Run("metrics_and_service", func(b *testing.B) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
		}))
		b.Cleanup(srv.Close)
		dl, err := decisionlog.New(decisionlog.Options{Service: decisionlog.ServiceOptions{
			URL: srv.URL, MinDelay: 50 * time.Millisecond, MaxDelay: 100 * time.Millisecond}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = dl.Close() })
		benchObserved(b, decision.Observers(metrics.New(prometheus.NewRegistry()), dl))
		b.ReportMetric(float64(dl.Dropped()), "dropped")
	})
}

func benchObserved(b *testing.B, obs decision.Observer) {
	ctx := context.Background()
	v, toks, err := workload.NewVerified(ctx, b.TempDir(), 4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	e := decisiontest.NewEngine(b, "../../decision/testdata/bench", func(o *decision.Options) {
		o.Tokens, o.Observer = v, obs
	})
	reqs := make([]*decision.Request, 1024)
	for i := range reqs {
		w := workload.New(workload.ToolsCall, i, toks[i%len(toks)])
		reqs[i] = &decision.Request{Method: w.Method, Path: w.Path, Host: w.Host, Headers: w.Headers, Body: w.Body,
			Context: w.Context, SourceAddress: "10.0.0.7:51234"}
		if d := e.Decide(ctx, reqs[i]); !d.Allow {
			b.Fatalf("request %d: %s: %s", i, d.Code, d.Reason)
		}
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Decide(ctx, reqs[i%len(reqs)])
		i++
	}
}
