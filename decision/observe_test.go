package decision_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
)

// TestDecisionLogEvents checks that decisions are logged in OPA's event
// shape, with the whole input (never the raw token), and counted.
func TestDecisionLogEvents(t *testing.T) {
	path := filepath.Join(t.TempDir(), "decisions.jsonl")
	dl, err := decisionlog.New(decisionlog.Options{File: path})
	if err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	metrics := metrics.New(reg)
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
	n, ok := counted(t, reg, "mcpauthz_decisions_total", "code", code)
	if !ok {
		t.Fatalf("no mcpauthz_decisions_total{code=%q}", code)
	}
	return n
}

// counted reads the counter metric{label=value}; ok is false when reg has
// none.
func counted(t *testing.T, reg *prometheus.Registry, metric, label, value string) (n float64, ok bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != metric {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == label && l.GetValue() == value {
					return m.GetCounter().GetValue(), true
				}
			}
		}
	}
	return 0, false
}

// stuckWriter is a decision log sink that blocks every write until it is
// released, as a hung disk or a full pipe does.
type stuckWriter struct {
	release chan struct{}
	mu      sync.Mutex
	b       strings.Builder
}

func (w *stuckWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *stuckWriter) Write(p []byte) (int, error) {
	<-w.release
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// failingWriter is a sink whose first writes fail (as many as failures), as a full disk's
// do until space is freed.
type failingWriter struct {
	failures atomic.Int64
	mu       sync.Mutex
	b        strings.Builder
}

func (w *failingWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.failures.Add(-1) >= 0 {
		return 0, errors.New("no space left on device")
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// TestDecisionLogSinkDown checks that a decision log whose sink blocks or
// fails never slows decisions, and that every event is either written or
// counted as dropped.
func TestDecisionLogSinkDown(t *testing.T) {
	const decisions = 300
	type sink struct {
		w       io.Writer
		release func()        // unblocks a blocked sink; may be called twice
		written func() string // what the sink took
	}
	stuck := func() sink {
		w := &stuckWriter{release: make(chan struct{})}
		var once sync.Once
		return sink{w: w, release: func() { once.Do(func() { close(w.release) }) }, written: w.String}
	}
	failing := func(failures int64) func() sink {
		return func() sink {
			w := &failingWriter{}
			w.failures.Store(failures)
			return sink{w: w, release: func() {}, written: w.String}
		}
	}
	tests := map[string]struct {
		sink           func() sink
		wantDropped    bool // some events must be dropped
		wantAllDropped bool
		wantWritten    bool // some events must be written
		wantOneWarning bool
	}{
		"blocked_writer":                 {sink: stuck, wantDropped: true, wantWritten: true},
		"failing_writer":                 {sink: failing(1 << 30), wantAllDropped: true, wantOneWarning: true},
		"failing_then_recovering_writer": {sink: failing(3), wantDropped: true, wantWritten: true, wantOneWarning: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sk := tc.sink()
			var logs lockedBuffer
			dl, err := decisionlog.New(decisionlog.Options{
				Writer: sk.w, Buffer: 8,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) { o.Observer = dl })
			req := post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, claims("alice", ""))
			finished := make(chan struct{})
			go func() {
				defer close(finished)
				for range decisions {
					if d := e.Decide(context.Background(), req); !d.Allow {
						t.Errorf("decision = %s %s, want allowed", d.Code, d.Reason)
						return
					}
					// Decisions spaced a little, as real traffic is, so
					// the writer takes several batches.
					time.Sleep(50 * time.Microsecond)
				}
			}()
			// Unslowed: were Observe to wait for a blocked sink, the
			// decisions would never finish. The bound is loose for a
			// shared, slow machine.
			select {
			case <-finished:
			case <-time.After(20 * time.Second):
				sk.release()
				t.Fatalf("%d decisions did not finish within 20s with the sink down", decisions)
			}
			sk.release()
			if err := dl.Close(); err != nil {
				t.Fatal(err)
			}
			lines := 0
			if out := strings.TrimSpace(sk.written()); out != "" {
				lines = len(strings.Split(out, "\n"))
			}
			dropped := dl.Dropped()
			if got := uint64(lines) + dropped; got != decisions {
				t.Errorf("written %d + dropped %d = %d events, want %d", lines, dropped, got, decisions)
			}
			if tc.wantDropped && dropped == 0 {
				t.Errorf("no event counted as dropped")
			}
			if tc.wantAllDropped && dropped != decisions {
				t.Errorf("dropped %d, want all %d", dropped, decisions)
			}
			if tc.wantWritten && lines == 0 {
				t.Errorf("no event written once the sink worked")
			}
			// A failing sink is reported, but not once per event.
			if warnings := strings.Count(logs.String(), "writing decision log failed"); tc.wantOneWarning && warnings != 1 {
				t.Errorf("%d warnings for a failing sink, want 1:\n%s", warnings, logs.String())
			}
		})
	}
}
