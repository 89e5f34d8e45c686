package decisionlog_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
	"github.com/mcpauthz/mcpauthz/internal/workload"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
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
	e, reqs, _ := benchEngine(b, obs)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		e.Decide(ctx, reqs[i%len(reqs)])
		i++
	}
}

// benchEngine is the engine of the reference policy with obs, verifying
// the tokens of 1024 allowed tools/call requests, and the workload they
// were built from. Each request is decided once first, so every token is
// cached, by an engine without obs: a decision log must not be still
// writing the warm-up's events while the benchmark measures.
func benchEngine(b *testing.B, obs decision.Observer) (*decision.Engine, []*decision.Request, []*workload.Request) {
	ctx := context.Background()
	v, toks, err := workload.NewVerified(ctx, b.TempDir(), 4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	const policy = "../../decision/testdata/bench"
	warm := decisiontest.NewEngine(b, policy, func(o *decision.Options) { o.Tokens = v })
	reqs := make([]*decision.Request, 1024)
	ws := make([]*workload.Request, len(reqs))
	for i := range reqs {
		w := workload.New(workload.ToolsCall, i, toks[i%len(toks)])
		ws[i] = w
		reqs[i] = &decision.Request{Method: w.Method, Path: w.Path, Host: w.Host, Headers: w.Headers, Body: w.Body,
			Context: w.Context, SourceAddress: "10.0.0.7:51234"}
		if d := warm.Decide(ctx, reqs[i]); !d.Allow {
			b.Fatalf("request %d: %s: %s", i, d.Code, d.Reason)
		}
	}
	e := decisiontest.NewEngine(b, policy, func(o *decision.Options) { o.Tokens, o.Observer = v, obs })
	return e, reqs, ws
}

// BenchmarkCheckLogged is the throughput of whole ext_authz Checks (in
// process, from the CheckRequest to the CheckResponse, GOMAXPROCS callers)
// with metrics, as the server always has them, and with decision logs off,
// to standard output (a pipe drained as a log collector would), to a file,
// and to a decision log service (httptest, OPA's protocol). Run it several
// times and compare the sinks within each run: the ratios are the figure
// (docs/performance.md), absolute numbers vary with the machine. cpu-ns/op
// is the process's CPU time per Check, the writer's included: on a busy
// machine it is steadier than ns/op, and its inverse is the throughput of
// CPU-bound cores. dropped/op says what share of the events the log could
// not keep up with: a sink that drops looks cheaper than it is.
func BenchmarkCheckLogged(b *testing.B) {
	sinks := []struct {
		name string
		opts func(b *testing.B) *decisionlog.Options // nil: no decision log
	}{
		{"off", nil},
		{"stdout", func(b *testing.B) *decisionlog.Options { return &decisionlog.Options{Console: true} }},
		{"file", func(b *testing.B) *decisionlog.Options {
			return &decisionlog.Options{File: filepath.Join(b.TempDir(), "decisions.jsonl")}
		}},
		{"service", func(b *testing.B) *decisionlog.Options {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
			}))
			b.Cleanup(srv.Close)
			return &decisionlog.Options{Service: decisionlog.ServiceOptions{URL: srv.URL}}
		}},
	}
	for _, sink := range sinks {
		b.Run(sink.name, func(b *testing.B) {
			var obs decision.Observer = metrics.New(prometheus.NewRegistry())
			var dl *decisionlog.Log
			if sink.opts != nil {
				o := sink.opts(b)
				if o.Console {
					drainStdout(b)
				}
				var err error
				if dl, err = decisionlog.New(*o); err != nil {
					b.Fatal(err)
				}
				obs = decision.Observers(obs, dl)
			}
			e, _, ws := benchEngine(b, obs)
			checks := make([]*authv3.CheckRequest, len(ws))
			for i, w := range ws {
				checks[i] = workload.CheckRequest(w)
			}
			srv := extauthz.NewServer(e, extauthz.Options{}, nil)
			b.ReportAllocs()
			b.ResetTimer()
			cpu := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for i := 0; pb.Next(); i++ {
					resp, err := srv.Check(ctx, checks[i%len(checks)])
					if err != nil || resp.GetOkResponse() == nil {
						b.Errorf("check %d: %v %v", i, err, resp.GetStatus())
						return
					}
				}
			})
			b.StopTimer()
			// The decision log's writer works beside the callers: its CPU
			// is in this figure, up to the last queued event (Close writes
			// them), and so is the test service's, which only reads the
			// uploads.
			if dl != nil {
				if err := dl.Close(); err != nil {
					b.Fatal(err)
				}
				b.ReportMetric(float64(dl.Dropped())/float64(b.N), "dropped/op")
			}
			b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}

// drainStdout points os.Stdout, for the decision log built next, at a pipe
// whose reader discards everything, as a container runtime's log
// collector reads a process's standard output.
func drainStdout(b *testing.B) {
	r, w, err := os.Pipe()
	if err != nil {
		b.Fatal(err)
	}
	done := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, r); close(done) }()
	saved := os.Stdout
	os.Stdout = w
	b.Cleanup(func() {
		os.Stdout = saved
		_ = w.Close()
		<-done
		_ = r.Close()
	})
}
