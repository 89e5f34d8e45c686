package decision_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// tracedEngine is the test policy's engine with a tracer whose spans a
// recorder keeps (the SDK's default sampler: a parent's decision is
// followed, roots are sampled).
func tracedEngine(t *testing.T, edit func(*decision.Options)) (*decision.Engine, *tracetest.SpanRecorder) {
	t.Helper()
	tracer, rec := recordingTracer(t)
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) {
		o.Tracer = tracer
		if edit != nil {
			edit(o)
		}
	})
	return e, rec
}

// recordingTracer is a tracer whose ended spans rec keeps.
func recordingTracer(t testing.TB) (trace.Tracer, *tracetest.SpanRecorder) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp.Tracer(decision.TracerName), rec
}

// Trace contexts of the tests: a caller's header, a message's _meta.
const (
	headerTraceID = "0af7651916cd43dd8448eb211c80319c"
	headerSpanID  = "b7ad6b7169203331"
	headerParent  = "00-" + headerTraceID + "-" + headerSpanID + "-01"
	metaTraceID   = "4bf92f3577b34da6a3ce929d0e0e4736"
	metaSpanID    = "00f067aa0ba902b7"
	metaParent    = "00-" + metaTraceID + "-" + metaSpanID + "-01"
)

// callWithMeta is a 2026-07-28 tools/call whose params._meta carries the
// members given (JSON, without braces) beside the revision.
func callWithMeta(members string) string {
	return `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.csv"},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"` + members + `}}}`
}

// spansByName returns the ended spans by name; each name must be there once.
func spansByName(t *testing.T, rec *tracetest.SpanRecorder) map[string]sdktrace.ReadOnlySpan {
	t.Helper()
	out := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range rec.Ended() {
		if _, dup := out[s.Name()]; dup {
			t.Fatalf("span %s ended twice", s.Name())
		}
		out[s.Name()] = s
	}
	return out
}

func attrsOf(s sdktrace.ReadOnlySpan) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range s.Attributes() {
		m[kv.Key] = kv.Value
	}
	return m
}

// TestTraceParent: the decision span continues the caller's trace: from
// params._meta when it holds a valid traceparent (whatever the header
// says), else from the traceparent header, else a new root. Invalid
// values are ignored.
func TestTraceParent(t *testing.T) {
	const (
		viaMeta   = "meta"
		viaHeader = "header"
		newRoot   = ""
	)
	tests := map[string]struct {
		body    string
		headers map[string]string
		want    string // where the parent comes from
		state   string // the span's tracestate
	}{
		"header": {
			body: callWithMeta(""), headers: map[string]string{"traceparent": headerParent, "tracestate": "vendor=h"},
			want: viaHeader, state: "vendor=h"},
		"meta": {
			body: callWithMeta(`,"traceparent":"` + metaParent + `","tracestate":"vendor=m"`),
			want: viaMeta, state: "vendor=m"},
		"meta_wins_over_header": {
			body:    callWithMeta(`,"traceparent":"` + metaParent + `"`),
			headers: map[string]string{"traceparent": headerParent, "tracestate": "vendor=h"},
			want:    viaMeta},
		"meta_on_an_older_revision": {
			body:    `{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"_meta":{"traceparent":"` + metaParent + `"}}}`,
			headers: map[string]string{"traceparent": headerParent},
			want:    viaMeta},
		"invalid_meta_falls_back_to_header": {
			body:    callWithMeta(`,"traceparent":"00-zz-yy-01","tracestate":"vendor=m"`),
			headers: map[string]string{"traceparent": headerParent, "tracestate": "vendor=h"},
			want:    viaHeader, state: "vendor=h"},
		"meta_not_a_string": {
			body:    callWithMeta(`,"traceparent":{"a":1}`),
			headers: map[string]string{"traceparent": headerParent},
			want:    viaHeader},
		"none": {body: callWithMeta(""), want: newRoot},
		"invalid_header": {
			body: callWithMeta(""), headers: map[string]string{"traceparent": "00-" + headerTraceID + "-0000000000000000-01"},
			want: newRoot},
		"header_of_an_unknown_version_is_read_as_version_00": {
			body: callWithMeta(""), headers: map[string]string{"traceparent": "cc-" + headerTraceID + "-" + headerSpanID + "-01-future"},
			want: viaHeader},
		"garbage_header": {
			body: callWithMeta(""), headers: map[string]string{"traceparent": strings.Repeat("\xff-", 100), "tracestate": "=,=,"},
			want: newRoot},
		"unparsable_body_header_still_read": {
			body: `{"jsonrpc":"2.0","id":1,"method":`, headers: map[string]string{"traceparent": headerParent},
			want: viaHeader},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, rec := tracedEngine(t, nil)
			r := req2026(tc.body, nil)
			for k, v := range tc.headers {
				r.Headers[k] = v
			}
			d := e.Decide(context.Background(), r)
			root := spansByName(t, rec)[decision.SpanDecide]
			if root == nil {
				t.Fatalf("no %s span; decision %s (%s)", decision.SpanDecide, d.Code, d.Reason)
			}
			parent := root.Parent()
			switch tc.want {
			case viaMeta:
				if parent.TraceID().String() != metaTraceID || parent.SpanID().String() != metaSpanID || !parent.IsRemote() {
					t.Errorf("parent %v, want the _meta traceparent", parent)
				}
			case viaHeader:
				if parent.TraceID().String() != headerTraceID || parent.SpanID().String() != headerSpanID || !parent.IsRemote() {
					t.Errorf("parent %v, want the header traceparent", parent)
				}
			case newRoot:
				if parent.IsValid() || !root.SpanContext().IsValid() {
					t.Errorf("parent %v, span %v: want a new root", parent, root.SpanContext())
				}
			}
			if got := root.SpanContext().TraceID(); parent.IsValid() && got != parent.TraceID() {
				t.Errorf("trace id %s, parent's %s", got, parent.TraceID())
			}
			if got := attrsOf(root)["mcpauthz.trace_parent.source"].AsString(); got != tc.want {
				t.Errorf("trace_parent.source %q, want %q", got, tc.want)
			}
			if got := root.SpanContext().TraceState().String(); got != tc.state {
				t.Errorf("tracestate %q, want %q", got, tc.state)
			}
		})
	}
}

// TestTraceUnsampledParent: a caller's trace that is not sampled stays
// unsampled: no span is recorded, and the decision is the same.
func TestTraceUnsampledParent(t *testing.T) {
	e, rec := tracedEngine(t, nil)
	r := req2026("", map[string]string{"traceparent": "00-" + headerTraceID + "-" + headerSpanID + "-00"})
	if d := e.Decide(context.Background(), r); !d.Allow {
		t.Fatalf("denied: %s", d.Reason)
	}
	if n := len(rec.Ended()); n != 0 {
		t.Errorf("%d spans recorded under an unsampled parent", n)
	}
}

// TestTraceSpans: the decision span's attributes, and one child span per
// stage that ran, inside it.
func TestTraceSpans(t *testing.T) {
	tests := map[string]struct {
		req    *decision.Request
		attrs  map[string]any // the decision span's; nil: absent
		stages []string       // the children, by name
		failed string         // the child with an error status, if any
		status codes.Code     // the decision span's status
		// noPolicy: the engine has no policy loaded.
		noPolicy bool
	}{
		"allowed_call": {
			req: req2026("", nil),
			attrs: map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": "read_file", "mcp.protocol.version": "2026-07-28",
				"mcpauthz.decision.allow": true, "mcpauthz.decision.code": decision.CodeAllowed, "mcpauthz.messages": int64(1),
				"mcpauthz.decision.status": nil, "mcpauthz.dry_run": nil},
			stages: []string{decision.SpanToken, decision.SpanParse, decision.SpanEvaluate},
		},
		"denied_by_policy": {
			req: post(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}`, claims("alice", "mcp:tools files:read")),
			attrs: map[string]any{"mcp.method.name": "tools/call", "gen_ai.tool.name": "read_file", "mcp.protocol.version": decision.DefaultProtocolVersion,
				"mcpauthz.decision.allow": false, "mcpauthz.decision.code": decision.CodePolicyDenied, "mcpauthz.decision.status": int64(200)},
			stages: []string{decision.SpanToken, decision.SpanParse, decision.SpanEvaluate},
		},
		"no_token": {
			req: post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil),
			attrs: map[string]any{"mcp.method.name": "tools/list", "gen_ai.tool.name": nil,
				"mcpauthz.decision.code": decision.CodeUnauthenticated, "mcpauthz.decision.status": int64(401)},
			stages: []string{decision.SpanToken, decision.SpanParse, decision.SpanEvaluate},
		},
		"unparsable": {
			req: post(`{"jsonrpc":"2.0","id":1,"method":`, claims("alice", "")),
			attrs: map[string]any{"mcp.method.name": nil, "mcpauthz.decision.code": decision.CodeParseError,
				"mcpauthz.decision.status": int64(400), "mcpauthz.messages": int64(0)},
			stages: []string{decision.SpanToken, decision.SpanParse},
			failed: decision.SpanParse,
		},
		"no_policy": {
			noPolicy: true,
			req:      post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil),
			attrs:    map[string]any{"mcpauthz.decision.code": decision.CodeNoPolicy, "mcpauthz.bundle.revision": nil},
			status:   codes.Error,
		},
		"unreadable": {
			req:    &decision.Request{Unreadable: "not a CheckRequest"},
			attrs:  map[string]any{"mcpauthz.decision.code": decision.CodeUnreadable, "mcpauthz.bundle.revision": nil},
			stages: nil,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e, rec := tracedEngine(t, nil)
			if tc.noPolicy {
				var tracer trace.Tracer
				tracer, rec = recordingTracer(t)
				var err error
				if e, err = decision.New(decision.Options{Snapshots: &decisiontest.Snapshots{}, Tracer: tracer}); err != nil {
					t.Fatal(err)
				}
			}
			d := e.Decide(context.Background(), tc.req)
			spans := spansByName(t, rec)
			root := spans[decision.SpanDecide]
			if root == nil {
				t.Fatal("no decision span")
			}
			if root.SpanKind() != trace.SpanKindServer {
				t.Errorf("kind %v", root.SpanKind())
			}
			got := attrsOf(root)
			if got["mcpauthz.decision_id"].AsString() != d.ID || d.ID == "" {
				t.Errorf("decision_id %v, decision %q", got["mcpauthz.decision_id"], d.ID)
			}
			if d.Revision != "" && got["mcpauthz.bundle.revision"].AsString() != d.Revision {
				t.Errorf("revision %v, decision %q", got["mcpauthz.bundle.revision"], d.Revision)
			}
			for k, want := range tc.attrs {
				v, ok := got[attribute.Key(k)]
				if want == nil {
					if ok {
						t.Errorf("%s = %v, want none", k, v.Emit())
					}
					continue
				}
				if !ok || v.AsInterface() != want {
					t.Errorf("%s = %v, want %v", k, v.AsInterface(), want)
				}
			}
			if root.Status().Code != tc.status {
				t.Errorf("status %v, want %v", root.Status(), tc.status)
			}
			var children []string
			for _, s := range rec.Ended() {
				if s == root {
					continue
				}
				children = append(children, s.Name())
				if s.Parent().SpanID() != root.SpanContext().SpanID() || s.SpanContext().TraceID() != root.SpanContext().TraceID() {
					t.Errorf("%s is not a child of the decision span", s.Name())
				}
				if s.StartTime().Before(root.StartTime()) || s.EndTime().After(root.EndTime()) || s.EndTime().Before(s.StartTime()) {
					t.Errorf("%s [%v, %v] is not inside the decision span [%v, %v]", s.Name(), s.StartTime(), s.EndTime(), root.StartTime(), root.EndTime())
				}
				if isErr := s.Status().Code == codes.Error; isErr != (s.Name() == tc.failed) {
					t.Errorf("%s status %v", s.Name(), s.Status())
				}
			}
			if fmt.Sprint(children) != fmt.Sprint(tc.stages) {
				t.Errorf("children %v, want %v", children, tc.stages)
			}
			if tok := spans[decision.SpanToken]; tok != nil {
				ta := attrsOf(tok)
				if ta["mcpauthz.token.valid"].AsBool() != (d.Token != nil && d.Token.Valid) || ta["mcpauthz.token.type"].AsString() != d.Token.Type {
					t.Errorf("token span %v, token %+v", tok.Attributes(), d.Token)
				}
			}
		})
	}
}

// TestTraceSpansOfAnEvaluationError: a policy that fails to evaluate makes
// the evaluation span and the decision span errors.
func TestTraceSpansOfAnEvaluationError(t *testing.T) {
	tracer, rec := recordingTracer(t)
	e := decisiontest.NewEngine(t, "testdata/conflict", func(o *decision.Options) { o.Tracer = tracer })
	d := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, claims("alice", "")))
	if d.Code != decision.CodeEvalError {
		t.Fatalf("code %s (%s), want %s", d.Code, d.Reason, decision.CodeEvalError)
	}
	spans := spansByName(t, rec)
	for _, name := range []string{decision.SpanDecide, decision.SpanEvaluate} {
		if s := spans[name]; s == nil || s.Status().Code != codes.Error || s.Status().Description != decision.CodeEvalError {
			t.Errorf("%s: %v", name, s)
		}
	}
}

// TestTraceDryRun: the span tells a dry run's real outcome.
func TestTraceDryRun(t *testing.T) {
	e, rec := tracedEngine(t, func(o *decision.Options) { o.DryRun = true })
	d := e.Decide(context.Background(), post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil))
	if !d.Allow {
		t.Fatal("dry run denied")
	}
	a := attrsOf(spansByName(t, rec)[decision.SpanDecide])
	if !a["mcpauthz.dry_run"].AsBool() || a["mcpauthz.decision.allow"].AsBool() || a["mcpauthz.decision.code"].AsString() != decision.CodeUnauthenticated {
		t.Errorf("attributes %v", a)
	}
}

// TestTraceNoSecrets: nothing a span carries (names, attributes, events,
// status, trace state) holds a credential, a claim, an argument or a
// reason, whichever way the credential came.
func TestTraceNoSecrets(t *testing.T) {
	const (
		bearer  = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzZWNyZXQtc3ViIn0.c2lnbmF0dXJlLXNlY3JldA"
		apiKey  = "mcpk_live_SECRETAPIKEY0123456789"
		cookie  = "session=COOKIESECRET"
		query   = "QUERYSECRET"
		argPath = "/data/ARGSECRET.csv"
		subject = "SUBJECTSECRET"
	)
	body := callWithMeta(`,"traceparent":"` + metaParent + `"`)
	body = strings.Replace(body, "/data/a.csv", argPath, 1)
	reqs := map[string]*decision.Request{
		"bearer_header": func() *decision.Request {
			r := req2026(body, nil)
			r.Credential = decision.Request{}.Credential
			r.Headers["authorization"] = "Bearer " + bearer
			return r
		}(),
		"claims": func() *decision.Request {
			r := req2026(body, nil)
			r.Credential.Claims["sub"] = subject
			return r
		}(),
		"everything_else": func() *decision.Request {
			r := req2026(body, map[string]string{"x-api-key": apiKey, "cookie": cookie, "traceparent": headerParent})
			r.Path = "/mcp?access_token=" + query
			return r
		}(),
	}
	for name, r := range reqs {
		t.Run(name, func(t *testing.T) {
			e, rec := tracedEngine(t, nil)
			d := e.Decide(context.Background(), r)
			spans := rec.Ended()
			if len(spans) == 0 {
				t.Fatal("no spans")
			}
			var all strings.Builder
			for _, s := range spans {
				fmt.Fprintln(&all, s.Name(), s.Status(), s.SpanContext().TraceState().String())
				for _, kv := range s.Attributes() {
					fmt.Fprintln(&all, kv.Key, kv.Value.Emit())
				}
				for _, ev := range s.Events() {
					fmt.Fprintln(&all, ev.Name, ev.Attributes)
				}
			}
			for _, secret := range []string{bearer, "c2lnbmF0dXJl", apiKey, "SECRETAPIKEY", "COOKIESECRET", query, "ARGSECRET", subject, "alice"} {
				if strings.Contains(all.String(), secret) {
					t.Errorf("spans carry %q:\n%s", secret, all.String())
				}
			}
			if d.Reason != "" && strings.Contains(all.String(), d.Reason) {
				t.Errorf("spans carry the reason %q", d.Reason)
			}
		})
	}
}

// FuzzTraceContext: any traceparent and tracestate, in the header and in
// params._meta, leave the decision as it is without tracing, never panic,
// and give one decision span whose parent, when it has one, is one of the
// traceparents sent.
func FuzzTraceContext(f *testing.F) {
	f.Add(headerParent, "vendor=h", metaParent, "vendor=m")
	f.Add(headerParent, "", "", "")
	f.Add("", "", metaParent, "")
	f.Add("00-zz-yy-01", "=,=,", "01-"+metaTraceID+"-"+metaSpanID+"-01-extra", "a=b,c=d")
	f.Add("ff-"+headerTraceID+"-"+headerSpanID+"-01", "", "00-00000000000000000000000000000000-"+metaSpanID+"-01", "")
	f.Add("\xff\xfe", "\x00", "00-"+metaTraceID+"-"+metaSpanID+"-0x", strings.Repeat("k=v,", 40))
	plain := decisiontest.NewEngine(f, "testdata/policy", nil)
	tracer, rec := recordingTracer(f)
	traced := decisiontest.NewEngine(f, "testdata/policy", func(o *decision.Options) { o.Tracer = tracer })
	f.Fuzz(func(t *testing.T, hParent, hState, mParent, mState string) {
		members := ""
		for k, v := range map[string]string{"traceparent": mParent, "tracestate": mState} {
			if v != "" {
				b, _ := json.Marshal(v)
				members += `,"` + k + `":` + string(b)
			}
		}
		set := map[string]string{"traceparent": hParent, "tracestate": hState}
		want := plain.Decide(context.Background(), req2026(callWithMeta(members), set))
		rec.Reset()
		got := traced.Decide(context.Background(), req2026(callWithMeta(members), set))
		if got.Allow != want.Allow || got.Code != want.Code || got.Status != want.Status || got.Reason != want.Reason {
			t.Fatalf("traced decision %v %s %d %q, untraced %v %s %d %q", got.Allow, got.Code, got.Status, got.Reason,
				want.Allow, want.Code, want.Status, want.Reason)
		}
		var root sdktrace.ReadOnlySpan
		for _, s := range rec.Ended() {
			if s.Name() == decision.SpanDecide {
				if root != nil {
					t.Fatal("two decision spans")
				}
				root = s
			}
		}
		if root == nil {
			return // an unsampled caller's trace
		}
		if p := root.Parent(); p.IsValid() {
			id := p.TraceID().String() + "-" + p.SpanID().String()
			if !strings.Contains(strings.ToLower(hParent), id) && !strings.Contains(strings.ToLower(mParent), id) {
				t.Fatalf("parent %s is none of the traceparents sent (%q, %q)", id, hParent, mParent)
			}
		}
	})
}
