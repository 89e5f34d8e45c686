package decision_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
)

// slowPolicy is a policy whose check of method "slow/op" and of an HTTP
// request to /slow takes 10^9 steps; it would allow them if it finished.
const slowPolicy = "testdata/slow"

// decisionCount returns mcpauthz_decisions_total{code}.
func decisionCount(t *testing.T, reg *prometheus.Registry, code string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "mcpauthz_decisions_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "code" && l.GetValue() == code {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// TestEvalTimeoutFailsClosed runs requests whose evaluation cannot finish
// within EvalTimeout: each is denied with a complete answer (the status
// and body of an evaluation error, never an allow), says in its errors
// that the time ran out, and is counted as eval_error. Requests after
// them are decided as usual.
func TestEvalTimeoutFailsClosed(t *testing.T) {
	reg := prometheus.NewRegistry()
	e := decisiontest.NewEngine(t, slowPolicy, func(o *decision.Options) {
		o.EvalTimeout = 50 * time.Millisecond
		o.Observer = metrics.New(reg)
	})
	tests := map[string]struct {
		req    *decision.Request
		status int
		body   string // JSON subset; "" means no body
	}{
		"request": {
			req:    post(`{"jsonrpc":"2.0","id":7,"method":"slow/op"}`, claims("alice", "")),
			status: 200,
			body:   `{"jsonrpc":"2.0","id":7,"error":{"code":-31001,"message":"policy evaluation failed"}}`,
		},
		"notification": {
			req:    post(`{"jsonrpc":"2.0","method":"slow/op"}`, claims("alice", "")),
			status: 403,
		},
		"batch_element": {
			req:    post(`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","id":2,"method":"slow/op"}]`, claims("alice", "")),
			status: 200,
			body: `[{"jsonrpc":"2.0","id":1,"error":{"code":-31001,"message":"batch element 1 denied: policy evaluation failed"}},` +
				`{"jsonrpc":"2.0","id":2,"error":{"code":-31001,"message":"policy evaluation failed"}}]`,
		},
		"get_stream": {
			req:    &decision.Request{Method: "GET", Path: "/slow", Headers: map[string]string{"accept": "text/event-stream"}, Credential: token.Claimed(claims("alice", ""))},
			status: 403,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := e.Decide(context.Background(), tc.req)
			if d.Allow || d.Code != decision.CodeEvalError {
				t.Fatalf("allow=%v code=%s reason=%q errors=%v; want an eval_error denial", d.Allow, d.Code, d.Reason, d.Errors)
			}
			if d.ID == "" || d.Revision == "" || d.Status != tc.status {
				t.Errorf("id=%q revision=%q status=%d; want an id, a revision and status %d", d.ID, d.Revision, d.Status, tc.status)
			}
			if len(d.Errors) == 0 || !strings.Contains(d.Errors[0], "evaluation timeout") {
				t.Errorf("errors = %q, want one saying the evaluation timeout ran out", d.Errors)
			}
			if tc.body == "" {
				if len(d.Body) != 0 {
					t.Errorf("body = %s, want none", d.Body)
				}
				return
			}
			assertJSONSubset(t, tc.body, d.Body)
		})
	}
	if got := decisionCount(t, reg, decision.CodeEvalError); got != float64(len(tests)) {
		t.Errorf("mcpauthz_decisions_total{code=eval_error} = %v, want %d", got, len(tests))
	}

	// The evaluation state the timeouts used is reused: it must carry no
	// cancellation over.
	for range 3 {
		if d := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":8,"method":"ping"}`, claims("alice", ""))); !d.Allow {
			t.Fatalf("a quick request after the timeouts: code=%s errors=%v, want allowed", d.Code, d.Errors)
		}
	}
	if got := decisionCount(t, reg, decision.CodeAllowed); got != 3 {
		t.Errorf("mcpauthz_decisions_total{code=allowed} = %v, want 3", got)
	}
}

// TestEvalStopsWhenCallerGoesAway cancels the caller's context while the
// slow check runs, with an EvalTimeout far longer than any test: the
// evaluation stops (it would otherwise run for the whole timeout), and
// the request is denied as an evaluation error naming the cancellation.
func TestEvalStopsWhenCallerGoesAway(t *testing.T) {
	e := decisiontest.NewEngine(t, slowPolicy, func(o *decision.Options) { o.EvalTimeout = time.Hour })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan *decision.Decision, 1)
	go func() {
		done <- e.Decide(ctx, post(`{"jsonrpc":"2.0","id":7,"method":"slow/op"}`, claims("alice", "")))
	}()
	// Give the evaluation time to start; the test holds whether the
	// cancellation lands before or during it.
	time.Sleep(20 * time.Millisecond)
	cancel()
	select {
	case d := <-done:
		if d.Allow || d.Code != decision.CodeEvalError {
			t.Fatalf("allow=%v code=%s; want an eval_error denial", d.Allow, d.Code)
		}
		if len(d.Errors) == 0 || !strings.Contains(d.Errors[0], "context canceled") {
			t.Errorf("errors = %q, want the cancellation", d.Errors)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the evaluation went on after its caller had gone")
	}
	if d := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":8,"method":"ping"}`, claims("alice", ""))); !d.Allow {
		t.Fatalf("a request after the cancelled one: code=%s errors=%v, want allowed", d.Code, d.Errors)
	}
}
