// Package shadow evaluates a candidate policy, the shadow bundle, beside
// the active one on live traffic. It observes the engine through
// decision.Observer: each decision hands its request and outcome to a
// bounded queue (a full queue drops and counts, it never waits), and one
// worker goroutine decides the request again with the shadow policy and
// compares. A decision the shadow bundle decides otherwise is counted and
// logged, as a decision log event carrying both results.
package shadow

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
)

// DefaultQueueSize is how many decisions may wait for the shadow worker
// when Options.QueueSize is 0.
const DefaultQueueSize = 1024

// Options configure a Shadow.
type Options struct {
	// Engine are the options of the shadow engine: those of the live
	// engine with Snapshots handing out the shadow bundle's policies (and
	// the live engine's ToolListings, so that tool pins judge what the
	// live engine saw listed). New overrides what must not happen twice
	// or on the decision path: no token verifier (the live decision's
	// verified credential is reused), no upstream credentials, no tracer,
	// no dry run, no observer, evaluation on the worker's own goroutine,
	// and the session table read, never written.
	Engine decision.Options
	// QueueSize bounds the decisions waiting for the worker; default
	// DefaultQueueSize.
	QueueSize int
	// Log, when set, receives an event for each difference; otherwise
	// differences go to Logger.
	Log *decisionlog.Log
	// Registerer, when set, gets the shadow metrics.
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Shadow decides live requests again with the shadow bundle, off the
// decision path. It is a decision.Observer of the live engine.
type Shadow struct {
	engine *decision.Engine
	snaps  decision.Snapshots
	queue  chan job
	done   chan struct{}
	dlog   *decisionlog.Log
	log    *slog.Logger

	dropped, compared atomic.Uint64
	differing         [3]atomic.Uint64 // by change, in the order of changes
	// seen is what the shadow engine told its observer of the decision
	// being compared; only the worker reads and writes it.
	seen seen
}

// job is one live decision waiting to be decided again.
type job struct {
	req     *decision.Request
	d       *decision.Decision
	elapsed time.Duration
}

// The kinds of difference, the change label of
// mcpauthz_shadow_differences_total.
const (
	ChangeAllowToDeny = "allow_to_deny" // the shadow bundle would deny what was allowed
	ChangeDenyToAllow = "deny_to_allow" // the shadow bundle would allow what was denied
	ChangeOther       = "other"         // same allow, other code, status, reason or scopes
)

// New builds the shadow engine and starts its worker.
func New(o Options) (*Shadow, error) {
	if o.Engine.Snapshots == nil {
		return nil, errors.New("shadow: Options.Engine.Snapshots (the shadow bundle) is required")
	}
	if o.QueueSize <= 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Shadow{
		snaps: o.Engine.Snapshots, queue: make(chan job, o.QueueSize), done: make(chan struct{}),
		dlog: o.Log, log: o.Logger,
	}
	if o.Registerer != nil {
		if err := s.register(o.Registerer); err != nil {
			return nil, fmt.Errorf("shadow: registering metrics: %w", err)
		}
	}
	eo := o.Engine
	// The live decision verified the token, fetched the upstream
	// credential and traced itself; its dry run is the live answer's.
	eo.Tokens, eo.Upstream, eo.Tracer, eo.DryRun = nil, nil, nil, false
	if eo.DPoP != nil {
		// The live decision checked the DPoP proof and used up its jti;
		// checking it again would find it replayed.
		eo.DPoP = checkedProofs{eo.DPoP}
	}
	if eo.ConfirmState != nil {
		// The live decision consumed the confirmation's requestState;
		// consuming it again would find it replayed.
		eo.ConfirmState = consumedOnce{}
	}
	if eo.Sessions != nil {
		// The live decision bound the session, or refused to: the shadow
		// only reads the table (a shadow bundle allowing what the live one
		// denied must not bind sessions).
		eo.Sessions = readOnlySessions{eo.Sessions}
	}
	eo.Observer = &s.seen
	// One worker: evaluating on its own goroutine (stack grown once) keeps
	// the shadow off the live engine's evaluation pool.
	eo.EvalWorkers = -1
	var err error
	if s.engine, err = decision.New(eo); err != nil {
		return nil, fmt.Errorf("shadow: %w", err)
	}
	go s.run()
	return s, nil
}

// consumedOnce answers every Once as the first: the shadow sees only
// requests whose confirmation the live engine opened and consumed (its
// own Open still checks the state).
type consumedOnce struct{}

// Once implements confirm.OnceStore.
func (consumedOnce) Once(context.Context, string, time.Duration) (bool, error) { return true, nil }

// checkedProofs accepts every proof: the shadow sees only requests whose
// proof the live engine checked (compare skips those it refused).
type checkedProofs struct{ decision.ProofChecker }

func (checkedProofs) Check(context.Context, *dpop.Request) error { return nil }

// readOnlySessions is a session table the shadow engine reads and never
// writes: its Bind answers what a Bind would return without binding.
type readOnlySessions struct{ decision.SessionBinder }

func (r readOnlySessions) Bind(ctx context.Context, sessionID, owner string) (string, error) {
	cur, err := r.Owner(ctx, sessionID)
	if err != nil || cur != "" {
		return cur, err
	}
	return owner, nil
}

// changes are the values of the change label, in the order of differing.
var changes = [...]string{ChangeAllowToDeny, ChangeDenyToAllow, ChangeOther}

// register exports the counters; the decision path only adds to atomics.
func (s *Shadow) register(reg prometheus.Registerer) error {
	cs := []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mcpauthz_shadow_dropped_total",
			Help: "Decisions not compared with the shadow bundle because its queue was full.",
		}, func() float64 { return float64(s.dropped.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mcpauthz_shadow_decisions_total",
			Help: "Decisions decided again with the shadow bundle and compared.",
		}, func() float64 { return float64(s.compared.Load()) }),
	}
	for i, c := range changes {
		cs = append(cs, prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "mcpauthz_shadow_differences_total",
			Help:        "Decisions the shadow bundle decides otherwise, by change: allow_to_deny, deny_to_allow, other (same allow, another code, status, reason or scopes).",
			ConstLabels: prometheus.Labels{"change": c},
		}, func() float64 { return float64(s.differing[i].Load()) }))
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}

// Observe hands the decision to the shadow worker. It never blocks: with
// the queue full the decision is dropped and counted. Nothing is queued
// before the shadow bundle is loaded.
func (s *Shadow) Observe(_ context.Context, r *decision.Request, d *decision.Decision, _ ast.Value, elapsed time.Duration) {
	if s.snaps.Current() == nil {
		return
	}
	select {
	case s.queue <- job{req: r, d: d, elapsed: elapsed}:
	default:
		s.dropped.Add(1)
	}
}

// Close stops taking decisions, compares those queued, and returns when
// the worker is done. Differences found meanwhile are handed to the
// decision log, so Close the Shadow before the log.
func (s *Shadow) Close() {
	close(s.queue)
	<-s.done
}

// Counts says how many decisions were compared, dropped (a full queue)
// and found different, by change (see Change*).
func (s *Shadow) Counts() (compared, dropped uint64, differences map[string]uint64) {
	differences = make(map[string]uint64, len(changes))
	for i, c := range changes {
		differences[c] = s.differing[i].Load()
	}
	return s.compared.Load(), s.dropped.Load(), differences
}

func (s *Shadow) run() {
	defer close(s.done)
	for j := range s.queue {
		s.compare(j)
	}
}

// compare decides j's request with the shadow policy and reports a
// difference. The request presents the credential the live decision
// verified, so a token is verified once (and an introspection endpoint
// called once); the rest (parse, input, evaluation, deny table) is the
// engine's own path.
func (s *Shadow) compare(j job) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic comparing with the shadow bundle", "decision_id", j.d.ID, "panic", fmt.Sprint(p))
		}
	}()
	if j.d.Code == decision.CodeInvalidDPoPProof || j.d.Code == decision.CodeUseDPoPNonce {
		// Refused for its proof before any policy: no policy's outcome.
		return
	}
	r := *j.req
	r.Credential = token.Credential{Kind: token.VerifiedResult, Result: j.d.Token}
	s.seen = seen{}
	sd := s.engine.Decide(context.Background(), &r)
	s.compared.Add(1)
	live, shadow := decisionlog.ResultOf(j.d), decisionlog.ResultOf(sd)
	if live.Equal(shadow) || (j.d.Code == decision.CodeUpstreamUnavailable && sd.Allow) {
		// An upstream credential that could not be had is no policy's
		// outcome: the shadow engine fetches none, and allowing agrees.
		return
	}
	i := 2 // ChangeOther
	switch {
	case live.Allow && !shadow.Allow:
		i = 0
	case !live.Allow && shadow.Allow:
		i = 1
	}
	change := changes[i]
	s.differing[i].Add(1)
	if s.dlog != nil {
		s.dlog.ObserveShadow(j.d, sd, s.seen.input, j.elapsed, s.seen.elapsed)
		return
	}
	s.log.Info("the shadow bundle decides otherwise", "decision_id", j.d.ID, "change", change,
		"method", j.d.Method, "tool", j.d.Tool, "subject", j.d.Subject,
		"result", fmt.Sprintf("%+v", live), "shadow_result", fmt.Sprintf("%+v", shadow),
		"revision", j.d.Revision, "shadow_revision", sd.Revision)
}

// seen is the shadow engine's observer: it keeps the input and time of
// the decision just made, for the difference event. It reads the input,
// so the shadow engine builds all of it (on the worker, not on the
// decision path).
type seen struct {
	input   ast.Value
	elapsed time.Duration
}

// Observe keeps the input of the shadow decision.
func (v *seen) Observe(_ context.Context, _ *decision.Request, _ *decision.Decision, input ast.Value, elapsed time.Duration) {
	v.input, v.elapsed = input, elapsed
}

// ObservesInput is true: the difference event records the input.
func (v *seen) ObservesInput() bool { return true }

var (
	_ decision.Observer      = (*Shadow)(nil)
	_ decision.InputObserver = (*seen)(nil)
)
