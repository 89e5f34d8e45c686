package decision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/metrics"
	"github.com/open-policy-agent/opa/v1/topdown"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpauthz/mcpauthz/decision/confirm"
	"github.com/mcpauthz/mcpauthz/decision/credleak"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// DefaultMaxBodyBytes bounds the body the engine parses.
const DefaultMaxBodyBytes = 1 << 20

// Snapshots hands out the current policy, activated (see Rules.Activate)
// before it became current; a bundles.Manager[*Policy] is one. Current
// returns nil before the first policy is loaded.
type Snapshots interface {
	Current() *Policy
}

// Verifier verifies a bearer credential; token.Verifier is one.
type Verifier interface {
	Verify(ctx context.Context, raw string, keys *token.APIKeys) *token.Result
}

// Options configure an Engine.
type Options struct {
	// Package is the Rego package of the decision rules; default "mcp.authz".
	// The policies Snapshots hands out are activated for it: by
	// RulesIn(Package).Activate.
	Package string
	// Snapshots supplies the current policy. Required.
	Snapshots Snapshots
	// Tokens verifies bearer tokens; nil makes every presented token
	// invalid with reason "unavailable".
	Tokens Verifier
	// MetadataURL is the Protected Resource Metadata URL that 401 and 403
	// challenges point at.
	MetadataURL string
	// DPoP checks the proofs of DPoP-bound tokens (cnf.jkt, binding.go);
	// nil refuses every DPoP-bound token, as none of its proofs can be
	// checked.
	DPoP ProofChecker
	// DPoPRequired refuses valid tokens bound to no key or certificate
	// (tokens.dpop.required); its 401s carry the DPoP challenge alone.
	DPoPRequired bool
	// MaxBodyBytes bounds the body; larger bodies are denied with 413.
	MaxBodyBytes int
	// Sessions, when set, binds each session id to the owner (SessionOwner:
	// issuer and subject) of the first request with it the policy allowed,
	// and refuses it to anyone else (steps.go; input.mcp.session_owner).
	Sessions SessionBinder
	// Confirm, when set, seals and opens the requestState of a call the
	// policy asked the caller's user to confirm (decision.confirm,
	// confirmflow.go); ConfirmState consumes each state once (the shared
	// state). Without both, such a call is refused, saying confirmation is
	// needed.
	Confirm      *confirm.Ring
	ConfirmState confirm.OnceStore
	// Upstream, when set, gives each allowed request the credential it
	// carries upstream (see UpstreamCredentials).
	Upstream UpstreamCredentials
	// EvalTimeout bounds one policy evaluation; default 1s.
	EvalTimeout time.Duration
	// EvalWorkers is how many goroutines evaluate policies (evalpool.go);
	// 0 means two per core (GOMAXPROCS), a negative value evaluates on
	// each caller's own goroutine.
	EvalWorkers int
	// MCP says which MCP revisions are accepted and how requests are held
	// to their revision's rules (protocol.go).
	MCP MCPOptions
	// ServerVersions, when set, narrows the versions a -32022 answer lists
	// to those the request's server is known to support (protocol.go);
	// nil: mcp.protocol_versions.
	ServerVersions ServerVersions
	// DryRun evaluates and observes every decision as it is, then allows
	// the request (policy.dry_run, for a first rollout, as
	// opa-envoy-plugin's dry-run): observers see the real outcome with
	// Decision.DryRun set; the caller gets an allowed answer.
	DryRun bool

	// Observer, when set, sees every decision (metrics, decision logs).
	Observer Observer
	// ToolListings, when set, is the memory of listed tool definitions
	// (pins.go) this engine shares with another deciding the same traffic
	// (the shadow bundle's engine shares the live one's); nil: its own.
	ToolListings *ToolListings
	// Tracer, when set, makes every decision an OpenTelemetry span
	// continuing the caller's trace (trace.go); nil turns tracing off at
	// no cost. Give it TracerProvider.Tracer(TracerName).
	Tracer trace.Tracer

	Logger *slog.Logger
	Now    func() time.Time
}

// Observer is told of each decision after it is made. It must not block.
// The input it is given has its credentials erased (see Redacted); req is
// the request as received, credentials included, so an observer that
// records anything of req must erase them itself. An observer may keep
// req, d and input after Observe returns (the decision log writes d
// later; the shadow bundle decides req again): none of them is changed
// once Decide has returned, by the engine or by a transport.
type Observer interface {
	Observe(ctx context.Context, req *Request, d *Decision, input ast.Value, elapsed time.Duration)
}

// Engine makes decisions. It is safe for concurrent use and holds no lock on
// the decision path: the policy comes from an immutable snapshot read once
// per request.
type Engine struct {
	opts       Options
	qDecision  string
	qAllow     string
	qVisible   string
	log        *slog.Logger
	idPrefix   string
	idCounter  atomic.Uint64
	missingTok *token.Result
	badHeader  *token.Result
	noVerifier *token.Result
	// lastContext is the input.context term of the last request.
	lastContext atomic.Pointer[contextCache]
	// fullInput is set when an observer reads the input (decision logs):
	// the whole input is then built, whatever the policy reads.
	fullInput bool
	// pool runs policy evaluations on long-lived goroutines; its workers
	// stop once the Engine is unreachable.
	pool *evalPool
	// pins remembers the listed definitions of pinned tools (pins.go). It
	// lives in the engine, not the policy, so that a new bundle judges
	// what was listed before it.
	pins *ToolListings
	// traces recycles the traceRecorders of traced decisions.
	traces sync.Pool
}

// New builds an Engine.
func New(opts Options) (*Engine, error) {
	if opts.Snapshots == nil {
		return nil, errors.New("decision: Options.Snapshots is required")
	}
	if opts.Package == "" {
		opts.Package = "mcp.authz"
	}
	if _, err := ast.ParseRef("data." + opts.Package); err != nil {
		return nil, fmt.Errorf("decision: policy package %q is not a valid Rego package path: %w", opts.Package, err)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.EvalTimeout <= 0 {
		opts.EvalTimeout = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	opts.MCP.withDefaults()
	var b [6]byte
	_, _ = rand.Read(b[:])
	pool := newEvalPool(opts.EvalWorkers)
	e := &Engine{
		opts:       opts,
		qDecision:  "data." + opts.Package + ".decision",
		qAllow:     "data." + opts.Package + ".allow",
		qVisible:   "data." + opts.Package + ".visible",
		log:        opts.Logger,
		idPrefix:   hex.EncodeToString(b[:]) + "-",
		missingTok: (&token.Result{Present: false, Error: token.ErrMissing}).Finish(),
		badHeader:  (&token.Result{Present: true, Error: token.ErrMalformed}).Finish(),
		noVerifier: (&token.Result{Present: true, Error: token.ErrUnavailable}).Finish(),
		fullInput:  observesInput(opts.Observer),
		pool:       pool,
		pins:       opts.ToolListings,
	}
	if e.pins == nil {
		e.pins = &ToolListings{}
	}
	e.traces.New = func() any { return new(traceRecorder) }
	runtime.AddCleanup(e, (*evalPool).close, pool)
	return e, nil
}

// Queries returns the queries the engine evaluates, for bundles.Options.Queries
// (the same as RulesIn(Options.Package).Queries()).
func (e *Engine) Queries() []string {
	return []string{e.qDecision, e.qAllow, e.qVisible}
}

// Package returns the Rego package of the decision rules.
func (e *Engine) Package() string { return e.opts.Package }

func (e *Engine) newID() string {
	// One allocation: the number is formatted on the stack and the
	// conversion inside the concatenation does not copy it first.
	var buf [16]byte
	return e.idPrefix + string(strconv.AppendUint(buf[:0], e.idCounter.Add(1), 36))
}

// Decide makes the decision for one request. It never fails: every error
// becomes a closed decision whose Code and Reason say why.
func (e *Engine) Decide(ctx context.Context, r *Request) *Decision {
	start := time.Now()
	var tr *traceRecorder
	if e.opts.Tracer != nil {
		// Pooled: the request's state holds it, so a new one would
		// escape to the heap on every traced decision.
		tr = e.traces.Get().(*traceRecorder)
		*tr = traceRecorder{}
		defer e.traces.Put(tr)
	}
	d, input := e.decideSafely(ctx, r, tr)
	d.DryRun = e.opts.DryRun
	d.stamp()
	d.makeValidUTF8()
	var span trace.Span
	if tr != nil {
		ctx, span = e.startTrace(ctx, r, d, tr, start)
	}
	if e.opts.Observer != nil {
		e.observe(ctx, r, d, input, time.Since(start))
	}
	if span != nil {
		span.End()
	}
	if d.DryRun && !d.Allow {
		// Observers may hold d (the decision log writes it later): the
		// answer is a new value.
		return d.dryRunAllowed(r)
	}
	return d
}

// decideSafely is decide with a panic turned into a denial.
func (e *Engine) decideSafely(ctx context.Context, r *Request, tr *traceRecorder) (d *Decision, input ast.Value) {
	defer func() {
		if p := recover(); p != nil {
			d, input = e.recoverDecision(p, d), nil
		}
	}()
	return e.decide(ctx, r, tr)
}

// observe tells the observer of d; an observer that panics is logged, and
// the decision stands.
func (e *Engine) observe(ctx context.Context, r *Request, d *Decision, input ast.Value, elapsed time.Duration) {
	defer func() {
		if p := recover(); p != nil {
			e.log.Error("panic in a decision observer", "decision_id", d.ID, "panic", fmt.Sprint(p))
		}
	}()
	e.opts.Observer.Observe(ctx, r, d, input, elapsed)
}

// input builds the policy input of message i (GET and DELETE: no message).
func (p *prepared) input(i int) ast.Value {
	if len(p.body.Messages) == 0 {
		return p.shared.input(nil, nil)
	}
	m := &p.body.Messages[i]
	var mcpTerm *ast.Term
	if n := p.needs.sub("mcp"); n != nil {
		mcpTerm = mcpInput(m, i, &p.env, n)
	}
	return p.shared.input(mcpTerm, p.callItem(m))
}

// callItem is input.item of a tools/call when the policy has a visible
// rule: the tool, as the visible rule sees a listed one, judged by name
// (hidden.go). The decision and the visible rule are then evaluated on the
// same input, so the second reuses the rule values the first computed.
func (p *prepared) callItem(m *mcp.Message) *ast.Term {
	if !p.hasVisible || m.Kind != mcp.KindRequest || m.Method != "tools/call" || m.Tool == nil {
		return nil
	}
	return ast.ObjectTerm(ast.Item(keyKind, itemKindTool), ast.Item(keyName, ast.StringTerm(m.Tool.Name)))
}

var itemKindTool = ast.InternedTerm(string(ItemTool))

// decide runs a request through its path (steps.go) and returns the
// decision and the input the policy was last evaluated on (nil when the
// request was refused before evaluation).
func (e *Engine) decide(ctx context.Context, r *Request, tr *traceRecorder) (*Decision, ast.Value) {
	d := &Decision{ID: e.newID()}
	p, ok := e.prepareFor(ctx, r, d, false, tr)
	if ok {
		e.runSteps(p, decideSteps[:])
	}
	return d, p.evaluated
}

var accessTokenParam = []string{credleak.AccessTokenParam}

// queryHasAccessToken reports whether the request target's query string
// has an access_token parameter, by the one reading of a query that the
// removal uses too (credleak.AccessToken). Only the query is read, never
// the path.
func queryHasAccessToken(target string) bool {
	_, q := splitPath(target)
	found, _ := credleak.AccessToken(q)
	return found
}

// Inputs returns the policy inputs the request would be evaluated with, one
// per message (one for GET and DELETE), or the denial that stops it before
// evaluation. It is for policy authors and tests; Decide does not use it.
func (e *Engine) Inputs(ctx context.Context, r *Request) ([]ast.Value, *Decision) {
	d := &Decision{ID: e.newID()}
	p, ok := e.prepareFor(ctx, r, d, true, nil)
	if !ok {
		return nil, d
	}
	n := max(len(p.body.Messages), 1)
	out := make([]ast.Value, n)
	for i := range n {
		out[i] = p.input(i)
	}
	return out, nil
}

// carriesMessage reports whether the request should hold a JSON-RPC body:
// POST always does (an empty POST is malformed); GET opens an SSE stream and
// DELETE ends a session, and neither carries a message (one with a body is
// refused).
func carriesMessage(r *Request) bool {
	switch r.Method {
	case "GET", "DELETE", "HEAD", "OPTIONS":
		return false
	}
	return true
}

// resolveToken turns the credential of the request into its Result: a
// credential verified before us is taken as is (claims have their times
// checked again), and the Bearer credential of the header goes to the
// verifier's chain of sources.
func (e *Engine) resolveToken(ctx context.Context, r *Request, keys *token.APIKeys) *token.Result {
	switch c := &r.Credential; c.Kind {
	case token.VerifiedResult:
		if c.Result == nil {
			return e.missingTok
		}
		return c.Result
	case token.VerifiedClaims:
		return token.FromClaims(c.Claims, e.opts.Now())
	case token.NoCredential:
		return e.missingTok
	}
	raw, _, present, ok := token.AccessToken(r.Headers["authorization"])
	switch {
	case !present:
		return e.missingTok
	case !ok:
		return e.badHeader
	case e.opts.Tokens == nil:
		return e.noVerifier
	}
	return e.opts.Tokens.Verify(ctx, raw, keys)
}

// hintMismatch compares what an earlier parser (Envoy's MCP filter, or the
// client's Mcp-Method / Mcp-Name headers) said with the body, which stays
// the source of truth. It returns why they disagree, or "".
func hintMismatch(r *Request, body *mcp.Body) string {
	if body.Batch || len(body.Messages) != 1 {
		if r.Hint != nil {
			return "proxy metadata describes one message but the body is a batch"
		}
		return ""
	}
	m := &body.Messages[0]
	name := messageName(m)
	if h := r.Hint; h != nil {
		method := m.Method
		if m.Kind == mcp.KindResponse {
			method = HintResponse
		}
		if h.Method != method {
			return fmt.Sprintf("proxy metadata method %q disagrees with body method %q", h.Method, method)
		}
		if h.Name != "" && h.Name != name {
			return fmt.Sprintf("proxy metadata name %q disagrees with body name %q", h.Name, name)
		}
		if h.ID != nil && !sameID(h.ID, m.IDValue) {
			return fmt.Sprintf("proxy metadata id %v disagrees with body id %s", h.ID, m.ID)
		}
	}
	if v, ok := r.Headers["mcp-method"]; ok {
		dv, ok := headerValue(v)
		if !ok {
			return fmt.Sprintf("Mcp-Method header %q is not valid base64", v)
		}
		if dv != m.Method {
			return fmt.Sprintf("Mcp-Method header %q disagrees with body method %q", dv, m.Method)
		}
	}
	if v, ok := r.Headers["mcp-name"]; ok && name != "" {
		dv, ok := headerValue(v)
		if !ok {
			return fmt.Sprintf("Mcp-Name header %q is not valid base64", v)
		}
		if dv != name {
			return fmt.Sprintf("Mcp-Name header %q disagrees with body name %q", dv, name)
		}
	}
	return ""
}

// sameID reports whether a proxy's id (string or float64) is the body's.
func sameID(h any, body ast.Value) bool {
	switch b := body.(type) {
	case ast.String:
		s, ok := h.(string)
		return ok && s == string(b)
	case ast.Number:
		f, ok := h.(float64)
		bf, bok := b.Float64()
		return ok && bok && f == bf
	}
	return false
}

func messageName(m *mcp.Message) string {
	switch {
	case m.Tool != nil:
		return m.Tool.Name
	case m.Prompt != nil:
		return m.Prompt.Name
	case m.Resource != nil:
		return m.Resource.URI
	}
	return ""
}

// policyResult is what the policy said about one input.
type policyResult struct {
	allow       bool
	reason      string
	scopes      []string
	status      int
	rpcCode     int
	rpcMessage  string
	headers     []Header
	respHeaders []Header
	upstream    string // decision.upstream_credential
	rateLimit   []RateLimitEntry
	// confirm is decision.confirm.message: the policy allows the call once
	// the caller's user confirms it (confirmflow.go); "" when not asked.
	confirm string
	err     error // evaluation failed or the result was unusable: deny
}

// resultVar holds the value of the queried rule in a query result.
var resultVar = ast.Var("x")

// eval runs the decision query (or allow, when no decision rule exists)
// against one input.
//
// It drives OPA's evaluator (topdown) directly rather than through
// rego.PreparedEvalQuery: that saves a goroutine and a context per call
// (rego's cancellation), the conversion of the result to Go values, and
// OPA's per-call metrics, and reads the result as an ast.Value.
func (e *Engine) eval(ctx context.Context, pol *Policy, input ast.Value) policyResult {
	sc := getScratch(input, e.opts.EvalTimeout, ctx.Done())
	defer putScratch(sc)
	return e.evalOn(ctx, sc, pol)
}

// evalOn is eval on a scratch the caller got for the input and puts back:
// a second query on the same input and scratch (the visible rule, in
// hideCall) then reuses the rule values this one computed.
func (e *Engine) evalOn(ctx context.Context, sc *evalScratch, pol *Policy) policyResult {
	if pol.evalErr != nil {
		return policyResult{err: pol.evalErr}
	}
	if err := ctx.Err(); err != nil {
		return policyResult{err: fmt.Errorf("evaluating policy: %w", err)}
	}
	// The query is a copy of the snapshot's template, so nothing OPA sets
	// on it while evaluating (its clock) carries over to the next call.
	sc.q = *pol.tmpl
	sc.q.WithInput(&sc.input).
		WithCancel(&sc.cancel).
		WithVirtualCache(&sc.vc).
		WithBaseCache(&sc.bc).
		WithRequestMetadata(sc.meta)
	err := e.pool.iter(ctx, sc)
	result, n := sc.result, sc.n
	if err != nil {
		return policyResult{err: e.evalError(ctx, err)}
	}
	if n == 0 || result == nil {
		q := pol.rules.allow
		if pol.isDecision {
			q = pol.rules.decision
		}
		return policyResult{err: fmt.Errorf("%s is undefined for this input", q)}
	}
	if n > 1 {
		return policyResult{err: errors.New("policy returned more than one result")}
	}
	if !pol.isDecision {
		b, ok := result.Value.(ast.Boolean)
		if !ok {
			return policyResult{err: fmt.Errorf("%s is %s, want a boolean", pol.rules.allow, ast.ValueName(result.Value))}
		}
		return policyResult{allow: bool(b)}
	}
	return parseDecision(result.Value)
}

// evalError says why an evaluation failed. OPA reports both ways our
// cancellation stops it as "caller cancelled query execution"; the log and
// the decision say which it was: the caller gone, or the time up.
func (e *Engine) evalError(ctx context.Context, err error) error {
	if !topdown.IsCancel(err) {
		return fmt.Errorf("evaluating policy: %w", err)
	}
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("evaluating policy: %w", ctxErr)
	}
	return fmt.Errorf("evaluating policy: stopped by the evaluation timeout of %v: %w", e.opts.EvalTimeout, err)
}

// noMetrics discards OPA's evaluation timers, which cost allocations on
// every call and which nothing reads.
var noMetrics = metrics.NoOp()

// parseDecision reads the decision object. Anything unexpected is an error,
// and an error denies.
func parseDecision(v ast.Value) policyResult {
	obj, ok := v.(ast.Object)
	if !ok {
		return policyResult{err: fmt.Errorf("decision is %s, want an object", ast.ValueName(v))}
	}
	var res policyResult
	allow, ok := termValue(obj.Get(keyAllow)).(ast.Boolean)
	if !ok {
		return policyResult{err: errors.New("decision.allow is missing or not a boolean")}
	}
	res.allow = bool(allow)
	if obj.Len() == 1 {
		return res // {"allow": ...}: the common case has nothing else to read
	}
	// The members are read in sorted order, as an iteration would, so the
	// first bad one is the one reported; unknown members are ignored.
	for _, kt := range decisionMembers {
		vt := obj.Get(kt)
		if vt == nil {
			continue
		}
		if err := res.member(string(kt.Value.(ast.String)), vt.Value); err != nil {
			return policyResult{err: err}
		}
	}
	return res
}

// decisionMembers are the members of a decision besides allow, sorted.
var decisionMembers = [...]*ast.Term{
	ast.StringTerm("confirm"), ast.StringTerm("headers"), ast.StringTerm("jsonrpc_error"), ast.StringTerm("rate_limit"),
	ast.StringTerm("reason"), ast.StringTerm("response_headers"), ast.StringTerm("scopes"),
	ast.StringTerm("status"), ast.StringTerm("upstream_credential"),
}

// member reads one member k of the decision object.
func (res *policyResult) member(k string, val ast.Value) error {
	switch k {
	case "reason":
		s, ok := val.(ast.String)
		if !ok {
			return errors.New("decision.reason is not a string")
		}
		res.reason = string(s)
	case "scopes":
		arr, ok := val.(*ast.Array)
		if !ok {
			return errors.New("decision.scopes is not an array")
		}
		if arr.Len() > 0 {
			res.scopes = make([]string, 0, arr.Len())
		}
		for i := range arr.Len() {
			str, ok := arr.Elem(i).Value.(ast.String)
			if !ok {
				return errors.New("decision.scopes holds a non-string")
			}
			res.scopes = append(res.scopes, string(str))
		}
	case "status":
		n, err := astInt(val)
		if err != nil || n < 200 || n > 599 {
			return fmt.Errorf("decision.status %v is not an HTTP status", val)
		}
		res.status = n
	case "jsonrpc_error":
		o, ok := val.(ast.Object)
		if !ok {
			return errors.New("decision.jsonrpc_error is not an object")
		}
		code, err := astInt(termValue(o.Get(keyCode)))
		if err != nil {
			return errors.New("decision.jsonrpc_error.code is not an integer")
		}
		res.rpcCode = code
		if m, ok := termValue(o.Get(keyMessage)).(ast.String); ok {
			res.rpcMessage = string(m)
		}
	case "upstream_credential":
		s, ok := val.(ast.String)
		if !ok {
			return errors.New("decision.upstream_credential is not a string")
		}
		res.upstream = string(s)
	case "confirm":
		msg, err := confirmMessage(val)
		if err != nil {
			return fmt.Errorf("decision.confirm: %w", err)
		}
		res.confirm = msg
	case "rate_limit":
		rl, err := rateLimitEntries(val)
		if err != nil {
			return fmt.Errorf("decision.rate_limit: %w", err)
		}
		res.rateLimit = rl
	case "headers", "response_headers":
		hs, err := headerList(val)
		if err != nil {
			return fmt.Errorf("decision.%s: %w", k, err)
		}
		if k == "headers" {
			res.headers = hs
		} else {
			res.respHeaders = hs
		}
	}
	return nil
}

func termValue(t *ast.Term) ast.Value {
	if t == nil {
		return nil
	}
	return t.Value
}

// astInt reads an integer the policy wrote (403, not 403.5).
func astInt(v ast.Value) (int, error) {
	if n, ok := v.(ast.Number); ok {
		if i, ok := n.Int(); ok {
			return i, nil
		}
	}
	return 0, fmt.Errorf("%v is not an integer", v)
}

func headerList(v ast.Value) ([]Header, error) {
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, errors.New("not an object of header names to strings")
	}
	hs := make([]Header, 0, obj.Len())
	err := obj.Iter(func(kt, vt *ast.Term) error {
		k, ok := kt.Value.(ast.String)
		if !ok {
			return fmt.Errorf("header name %v is not a string", kt)
		}
		s, ok := vt.Value.(ast.String)
		if !ok {
			return fmt.Errorf("header %q is not a string", string(k))
		}
		if !validHeaderName(string(k)) {
			return fmt.Errorf("header name %q is not a valid lowercase HTTP header name", string(k))
		}
		if strings.ContainsAny(string(s), "\r\n\x00") {
			return fmt.Errorf("header %q has a control character in its value", string(k))
		}
		hs = append(hs, Header{Name: string(k), Value: string(s)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	sortHeaders(hs)
	return hs, nil
}
