package shadow_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/internal/shadow"
)

var alice = token.Claimed(map[string]any{"sub": "alice", "scope": "mcp:tools", "exp": float64(4102444800)})

func call(id int, tool, path string) *decision.Request {
	return &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
		Headers:    map[string]string{"content-type": "application/json", "authorization": "Bearer secret-token"},
		Body:       fmt.Appendf(nil, `{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"path":%q}}}`, id, tool, path),
		Credential: alice}
}

// candidate returns the options of a shadow engine on the candidate policy.
func candidate(t testing.TB) decision.Options {
	return decision.Options{MetadataURL: oauth.MetadataURL(decisiontest.Resource),
		Snapshots: &decisiontest.Snapshots{P: decisiontest.Compile(t, "testdata/candidate", "")}}
}

type shadowEvent struct {
	DecisionID   string             `json:"decision_id"`
	Result       decisionlog.Result `json:"result"`
	ShadowResult decisionlog.Result `json:"shadow_result"`
	Shadow       bool               `json:"shadow"`
	DryRun       bool               `json:"dry_run"`
	Bundles      map[string]struct {
		Revision string `json:"revision"`
	} `json:"bundles"`
	Input struct {
		MCP struct {
			Tool struct {
				Name string `json:"name"`
			} `json:"tool"`
		} `json:"mcp"`
	} `json:"input"`
	Metrics map[string]int64 `json:"metrics"`
}

// events reads the log's events: the decisions' own, and the shadow
// difference events by decision id.
func events(t *testing.T, b []byte) (own int, diffs map[string]shadowEvent) {
	t.Helper()
	diffs = map[string]shadowEvent{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev shadowEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatalf("%v: %s", err, line)
		}
		if !ev.Shadow {
			own++
			continue
		}
		if _, dup := diffs[ev.DecisionID]; dup {
			t.Errorf("two shadow events for %s", ev.DecisionID)
		}
		diffs[ev.DecisionID] = ev
	}
	return own, diffs
}

// TestShadowDifferences: live decisions on the active policy are decided
// again with the candidate (one rule narrowed, one tool added); exactly
// the decisions it decides otherwise get a second event, with the live
// decision's id and result, the shadow_result and the shadow revision,
// credentials erased, and are counted by change; equal decisions get
// none. Under dry run, the real outcome is compared.
func TestShadowDifferences(t *testing.T) {
	tests := map[string]struct {
		dryRun bool
	}{"live": {}, "dry_run": {dryRun: true}}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			dl, err := decisionlog.New(decisionlog.Options{Writer: &out})
			if err != nil {
				t.Fatal(err)
			}
			reg := prometheus.NewRegistry()
			sh, err := shadow.New(shadow.Options{Engine: candidate(t), Log: dl, Registerer: reg})
			if err != nil {
				t.Fatal(err)
			}
			e := decisiontest.NewEngine(t, "testdata/active", func(o *decision.Options) {
				o.Observer, o.DryRun = decision.Observers(dl, sh), tc.dryRun
			})
			noToken := call(7, "search", "/data")
			noToken.Credential = token.Credential{Kind: token.NoCredential}
			list := call(1, "", "")
			list.Body = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)
			reqs := []struct {
				r      *decision.Request
				change string // "": the same decision
				shadow decisionlog.Result
			}{
				{r: list},
				{r: call(2, "read_file", "/data/public/a.csv")},
				{r: call(3, "read_file", "/data/a.csv"), change: shadow.ChangeAllowToDeny,
					shadow: decisionlog.Result{Code: decision.CodePolicyDenied, Reason: "read_file may not read this path", Status: 200}},
				{r: call(4, "summarize", "/data/a.csv"), change: shadow.ChangeDenyToAllow,
					shadow: decisionlog.Result{Allow: true, Code: decision.CodeAllowed}},
				{r: call(5, "delete", "/data/a.csv")},
				{r: call(6, "read_file", "/etc/passwd")},
				{r: noToken},
			}
			ctx := context.Background()
			want := map[string]decisionlog.Result{} // by decision id: the live result
			wantShadow := map[string]decisionlog.Result{}
			for _, q := range reqs {
				d := e.Decide(ctx, q.r)
				if q.change != "" {
					want[d.ID], wantShadow[d.ID] = decisionlog.Result{Allow: q.change == shadow.ChangeAllowToDeny, Code: map[bool]string{true: decision.CodeAllowed, false: decision.CodePolicyDenied}[q.change == shadow.ChangeAllowToDeny]}, q.shadow
				}
			}
			sh.Close()
			if err := dl.Close(); err != nil {
				t.Fatal(err)
			}
			if strings.Contains(out.String(), "secret-token") {
				t.Error("a credential reached the decision log")
			}
			own, diffs := events(t, out.Bytes())
			if own != len(reqs) {
				t.Errorf("%d decision events, want %d", own, len(reqs))
			}
			if len(diffs) != len(want) {
				t.Errorf("%d shadow events, want %d: %s", len(diffs), len(want), out.String())
			}
			rev := decisiontest.Compile(t, "testdata/candidate", "").Snapshot.Revision
			for id, ev := range diffs {
				live, ok := want[id]
				if !ok {
					t.Errorf("shadow event for %s, whose decisions agree", id)
					continue
				}
				live.Reason = ev.Result.Reason // the live reason is the policy's; compared by code below
				if ev.Result.Allow != live.Allow || ev.Result.Code != live.Code {
					t.Errorf("%s: result %+v, want the live %+v", id, ev.Result, live)
				}
				if !ev.ShadowResult.Equal(wantShadow[id]) {
					t.Errorf("%s: shadow_result %+v, want %+v", id, ev.ShadowResult, wantShadow[id])
				}
				if ev.Bundles["shadow"].Revision != rev || ev.Bundles["policy"].Revision == "" {
					t.Errorf("%s: bundles %+v, want the shadow revision %s beside the policy's", id, ev.Bundles, rev)
				}
				if ev.Input.MCP.Tool.Name == "" || ev.Metrics["timer_shadow_ns"] <= 0 {
					t.Errorf("%s: input tool %q, metrics %v: want the input and the shadow's time", id, ev.Input.MCP.Tool.Name, ev.Metrics)
				}
				if ev.DryRun != tc.dryRun {
					t.Errorf("%s: dry_run %v, want %v", id, ev.DryRun, tc.dryRun)
				}
			}
			compared, dropped, differences := sh.Counts()
			if compared != uint64(len(reqs)) || dropped != 0 {
				t.Errorf("compared %d, dropped %d; want %d, 0", compared, dropped, len(reqs))
			}
			if diff := cmp.Diff(map[string]uint64{shadow.ChangeAllowToDeny: 1, shadow.ChangeDenyToAllow: 1, shadow.ChangeOther: 0}, differences); diff != "" {
				t.Errorf("differences (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(map[string]float64{`change="allow_to_deny"`: 1, `change="deny_to_allow"`: 1, `change="other"`: 0},
				gather(t, reg, "mcpauthz_shadow_differences_total")); diff != "" {
				t.Errorf("mcpauthz_shadow_differences_total (-want +got):\n%s", diff)
			}
		})
	}
}

// TestShadowWithoutDecisionLog: with no decision log, a difference is a
// line of the service log naming the decision and both results.
func TestShadowWithoutDecisionLog(t *testing.T) {
	var logs bytes.Buffer
	sh, err := shadow.New(shadow.Options{Engine: candidate(t), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	e := decisiontest.NewEngine(t, "testdata/active", func(o *decision.Options) { o.Observer = sh })
	d := e.Decide(context.Background(), call(1, "summarize", "/x"))
	e.Decide(context.Background(), call(2, "search", "/x"))
	sh.Close()
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"decision_id":"`+d.ID+`"`) ||
		!strings.Contains(lines[0], `"change":"deny_to_allow"`) || !strings.Contains(lines[0], "shadow_result") {
		t.Errorf("service log %q: want one line for %s, deny_to_allow, with both results", logs.String(), d.ID)
	}
}

// blockingBinder holds the shadow worker inside its session lookup until
// released, and says when it got there.
type blockingBinder struct {
	entered chan struct{}
	release chan struct{}
}

func (b *blockingBinder) Owner(context.Context, string) (string, error) {
	select {
	case b.entered <- struct{}{}:
	default:
	}
	<-b.release
	return "", nil
}

func (b *blockingBinder) Bind(_ context.Context, _, owner string) (string, error) {
	return owner, nil
}

// TestShadowNeverBlocksDecisions: while the shadow worker is stuck, live
// decisions go on: the queue fills, every decision past it is dropped and
// counted (mcpauthz_shadow_dropped_total), none waits. Released, the
// worker compares what was queued.
func TestShadowNeverBlocksDecisions(t *testing.T) {
	const queue = 4
	binder := &blockingBinder{entered: make(chan struct{}, 1), release: make(chan struct{})}
	opts := candidate(t)
	opts.Sessions = binder
	reg := prometheus.NewRegistry()
	sh, err := shadow.New(shadow.Options{Engine: opts, QueueSize: queue, Registerer: reg})
	if err != nil {
		t.Fatal(err)
	}
	e := decisiontest.NewEngine(t, "testdata/active", func(o *decision.Options) { o.Observer = sh })
	withSession := func(id int) *decision.Request {
		r := call(id, "search", "/x")
		r.Headers["mcp-session-id"] = "s1"
		return r
	}
	ctx := context.Background()
	e.Decide(ctx, withSession(0))
	select {
	case <-binder.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the shadow worker never took the first decision")
	}
	const burst = queue + 5
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range burst {
			if d := e.Decide(ctx, withSession(i+1)); !d.Allow {
				t.Errorf("decision %d: %s", i+1, d.Reason)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("live decisions waited for the blocked shadow worker")
	}
	compared, dropped, _ := sh.Counts()
	if compared != 0 || dropped != burst-queue {
		t.Errorf("while blocked: compared %d, dropped %d; want 0, %d", compared, dropped, burst-queue)
	}
	if got := gather(t, reg, "mcpauthz_shadow_dropped_total"); got[""] != burst-queue {
		t.Errorf("mcpauthz_shadow_dropped_total %v, want %d", got, burst-queue)
	}
	close(binder.release)
	sh.Close()
	if compared, _, _ := sh.Counts(); compared != queue+1 {
		t.Errorf("compared %d after release, want the blocked one and the %d queued", compared, queue)
	}
}

// TestShadowNotLoaded: before the shadow bundle loads, nothing is queued
// or compared.
func TestShadowNotLoaded(t *testing.T) {
	opts := candidate(t)
	opts.Snapshots = &decisiontest.Snapshots{}
	sh, err := shadow.New(shadow.Options{Engine: opts})
	if err != nil {
		t.Fatal(err)
	}
	e := decisiontest.NewEngine(t, "testdata/active", func(o *decision.Options) { o.Observer = sh })
	e.Decide(context.Background(), call(1, "summarize", "/x"))
	sh.Close()
	if compared, dropped, _ := sh.Counts(); compared != 0 || dropped != 0 {
		t.Errorf("compared %d, dropped %d with no shadow policy; want nothing", compared, dropped)
	}
}

// gather returns the values of the series of metric name, by their labels
// (name="value",...).
func gather(t *testing.T, reg *prometheus.Registry, name string) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var ls []string
			for _, l := range m.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			out[strings.Join(ls, ",")] = m.GetCounter().GetValue()
		}
	}
	return out
}

// TestObserveAllocatesNothing: what the shadow adds to a decision (a
// queued decision, or a dropped one) allocates nothing. The worker is held
// so that only the decision path's allocations are counted.
func TestObserveAllocatesNothing(t *testing.T) {
	binder := &blockingBinder{entered: make(chan struct{}, 1), release: make(chan struct{})}
	opts := candidate(t)
	opts.Sessions = binder
	sh, err := shadow.New(shadow.Options{Engine: opts, QueueSize: 150})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { close(binder.release); sh.Close() }()
	e := decisiontest.NewEngine(t, "testdata/active", nil)
	r := call(1, "search", "/x")
	r.Headers["mcp-session-id"] = "s1"
	d := e.Decide(context.Background(), r)
	ctx := context.Background()
	sh.Observe(ctx, r, d, nil, 0)
	<-binder.entered
	// 101 runs into a queue of 150, then 101 more, of which 52 are dropped.
	for i := range 2 {
		if n := testing.AllocsPerRun(100, func() { sh.Observe(ctx, r, d, nil, 0) }); n != 0 {
			t.Errorf("round %d: %v allocations per observed decision, want 0", i, n)
		}
	}
	if _, dropped, _ := sh.Counts(); dropped != 202-150 {
		t.Errorf("dropped %d, want %d", dropped, 202-150)
	}
}
