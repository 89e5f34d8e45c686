package decision

// Tracing: with Options.Tracer set, every decision becomes one
// OpenTelemetry span with a child span per stage (token, parse,
// evaluation, upstream credential), continuing the caller's W3C trace
// context. The stages are timed as the decision runs and the spans are
// built from those times when it is made, because the parent may only be
// known once the body is parsed (params._meta). Without a tracer the
// recorder is nil and every hook is a nil check: no allocation, no clock
// read.
//
// The engine uses only OpenTelemetry's API (trace, propagation,
// attribute); the SDK and the exporter are built in cmd/mcpauthz.

import (
	"context"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// TracerName is the instrumentation scope of the engine's spans: the name
// to give TracerProvider.Tracer for Options.Tracer.
const TracerName = "github.com/mcpauthz/mcpauthz/decision"

// Span names: one decision span, and one child per stage that ran.
const (
	SpanDecide     = "mcpauthz.decide"
	SpanToken      = "mcpauthz.token"
	SpanParse      = "mcpauthz.parse"
	SpanEvaluate   = "mcpauthz.evaluate"
	SpanUpstream   = "mcpauthz.upstream_credential"
	metaTraceKey   = "traceparent"
	metaStateKey   = "tracestate"
	parentFromMeta = "meta"
	parentFromHTTP = "header"
)

// Span attributes. The MCP ones are OpenTelemetry's semantic conventions
// for MCP (gen-ai/mcp, Development status); the rest are mcpauthz's own.
// No credential, claim, subject, argument or reason is ever recorded:
// reasons can quote the request.
const (
	attrMethod          = attribute.Key("mcp.method.name")
	attrTool            = attribute.Key("gen_ai.tool.name")
	attrProtocolVersion = attribute.Key("mcp.protocol.version")
	attrDecisionID      = attribute.Key("mcpauthz.decision_id")
	attrAllow           = attribute.Key("mcpauthz.decision.allow")
	attrCode            = attribute.Key("mcpauthz.decision.code")
	attrStatus          = attribute.Key("mcpauthz.decision.status")
	attrDryRun          = attribute.Key("mcpauthz.dry_run")
	attrRevision        = attribute.Key("mcpauthz.bundle.revision")
	attrMessages        = attribute.Key("mcpauthz.messages")
	attrParentFrom      = attribute.Key("mcpauthz.trace_parent.source")
	attrTokenPresent    = attribute.Key("mcpauthz.token.present")
	attrTokenValid      = attribute.Key("mcpauthz.token.valid")
	attrTokenError      = attribute.Key("mcpauthz.token.error")
	attrTokenType       = attribute.Key("mcpauthz.token.type")
)

// stageKind names a timed stage of a decision.
type stageKind int

const (
	stageToken stageKind = iota
	stageParse
	stageEvaluate
	stageUpstream
	stageCount
)

var stageNames = [stageCount]string{SpanToken, SpanParse, SpanEvaluate, SpanUpstream}

// stage is when one stage ran, and whether it failed (an error of the
// service: a body that is not MCP, an evaluation that did not finish, no
// upstream credential; a denial is not one).
type stage struct {
	start, end time.Time
	failed     bool
}

// traceRecorder collects what a decision's spans say while it is made.
// A nil *traceRecorder records nothing: every method checks.
type traceRecorder struct {
	stages [stageCount]stage
	// metaParent and metaState are params._meta's traceparent and
	// tracestate of the request's (single) message, "" when absent.
	metaParent, metaState string
	version               string // MCP revision the request was held to
}

func (t *traceRecorder) begin(k stageKind) {
	if t != nil {
		t.stages[k].start = time.Now()
	}
}

func (t *traceRecorder) end(k stageKind, failed bool) {
	if t != nil {
		t.stages[k].end = time.Now()
		t.stages[k].failed = failed
	}
}

func (t *traceRecorder) protocolVersion(v string) {
	if t != nil {
		t.version = v
	}
}

// message keeps the W3C trace context of a message's params._meta (the
// unprefixed keys SEP-414 reserves). Values that are not strings are
// ignored, as an invalid traceparent is.
func (t *traceRecorder) message(m *mcp.Message) {
	if t == nil || m.Meta == nil {
		return
	}
	if s, ok := termValue(m.Meta.Get(metaParentTerm)).(ast.String); ok {
		t.metaParent = string(s)
	}
	if s, ok := termValue(m.Meta.Get(metaStateTerm)).(ast.String); ok {
		t.metaState = string(s)
	}
}

var (
	metaParentTerm = ast.StringTerm(metaTraceKey)
	metaStateTerm  = ast.StringTerm(metaStateKey)
)

// metaCarrier is a params._meta trace context as a propagation carrier.
type metaCarrier struct{ parent, state string }

func (c metaCarrier) Get(key string) string {
	switch key {
	case metaTraceKey:
		return c.parent
	case metaStateKey:
		return c.state
	}
	return ""
}

func (metaCarrier) Set(string, string) {}

func (metaCarrier) Keys() []string { return []string{metaTraceKey, metaStateKey} }

// parent returns ctx carrying the caller's trace context, and where it came
// from. A valid traceparent in the message's params._meta wins: it names
// the one message decided, while the HTTP traceparent header names the
// HTTP request, which Envoy or a gateway may have set for itself. Without
// one, the header's traceparent and tracestate; without a valid one
// either, ctx as given (its span, if any, else a new root). Invalid
// values are ignored, as W3C Trace Context asks.
func (t *traceRecorder) parent(ctx context.Context, r *Request) (context.Context, string) {
	var tc propagation.TraceContext
	if t.metaParent != "" {
		if c := tc.Extract(ctx, metaCarrier{t.metaParent, t.metaState}); trace.SpanContextFromContext(c).IsRemote() {
			return c, parentFromMeta
		}
	}
	if r.Headers[metaTraceKey] != "" {
		if c := tc.Extract(ctx, propagation.MapCarrier(r.Headers)); trace.SpanContextFromContext(c).IsRemote() {
			return c, parentFromHTTP
		}
	}
	return ctx, ""
}

// startTrace builds the decision's span and its stages' spans, from start
// to now; the caller ends the returned span. The returned context carries
// it (for the observers).
func (e *Engine) startTrace(ctx context.Context, r *Request, d *Decision, t *traceRecorder, start time.Time) (context.Context, trace.Span) {
	parent, from := t.parent(ctx, r)
	ctx, span := e.opts.Tracer.Start(parent, SpanDecide, trace.WithTimestamp(start), trace.WithSpanKind(trace.SpanKindServer))
	if !span.IsRecording() {
		return ctx, span // not sampled: nothing more to build
	}
	attrs := make([]attribute.KeyValue, 0, 12)
	attrs = append(attrs,
		attrDecisionID.String(d.ID),
		attrAllow.Bool(d.Allow),
		attrCode.String(d.Code),
		attrMessages.Int(d.Messages))
	if d.Status != 0 {
		attrs = append(attrs, attrStatus.Int(d.Status))
	}
	for _, a := range [...]struct {
		k attribute.Key
		v string
	}{{attrMethod, d.Method}, {attrTool, d.Tool}, {attrProtocolVersion, t.version}, {attrRevision, d.Revision}, {attrParentFrom, from}} {
		if a.v != "" {
			attrs = append(attrs, a.k.String(a.v))
		}
	}
	if d.DryRun {
		attrs = append(attrs, attrDryRun.Bool(true))
	}
	span.SetAttributes(attrs...)
	if faultCode(d.Code) {
		span.SetStatus(codes.Error, d.Code)
	}
	for k := range stageCount {
		s := &t.stages[k]
		if s.start.IsZero() {
			continue // the decision ended before this stage
		}
		end := s.end
		if end.IsZero() {
			end = time.Now() // the stage panicked
			s.failed = true
		}
		_, child := e.opts.Tracer.Start(ctx, stageNames[k], trace.WithTimestamp(s.start))
		if k == stageToken && d.Token != nil {
			child.SetAttributes(tokenAttrs(d.Token)...)
		}
		if s.failed {
			child.SetStatus(codes.Error, d.Code)
		}
		child.End(trace.WithTimestamp(end))
	}
	return ctx, span
}

// faultCode reports whether a decision's code is a fault of the service
// (the span's status is then Error); a denial of the request is not one.
func faultCode(code string) bool {
	switch code {
	case CodeEvalError, CodeInternalError, CodeNoPolicy, CodeUpstreamUnavailable:
		return true
	}
	return false
}

// tokenAttrs describes a credential by its kind and outcome only (Error
// is one of token's Err* reasons), never by what it says.
func tokenAttrs(r *token.Result) []attribute.KeyValue {
	attrs := []attribute.KeyValue{attrTokenPresent.Bool(r.Present), attrTokenValid.Bool(r.Valid)}
	if r.Error != "" {
		attrs = append(attrs, attrTokenError.String(r.Error))
	}
	if r.Type != "" {
		attrs = append(attrs, attrTokenType.String(r.Type))
	}
	return attrs
}
