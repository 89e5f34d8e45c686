package decision

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/workload"
	"github.com/mcpauthz/mcpauthz/policies"
)

// The stage benchmarks run the reference workload (internal/workload) on
// the parameter-rules example policy: a scope check, a per-route tool
// allowlist and a path rule on read_file arguments. Message parsing and
// token verification have their own benchmarks in decision/mcp and
// decision/token; these measure what the engine adds.

// benchVariants is how many distinct requests each benchmark cycles
// through: ids and argument values differ, as an agent's do.
const benchVariants = 4096

// benchPolicy is the reference policy (a scope check, a tool allowlist, a
// path rule on read_file); examplePolicy is the larger parameter-rules
// example, measured for comparison.
var (
	benchPolicy   = filepath.Join("testdata", "bench")
	examplePolicy = filepath.Join("..", "examples", "bundles", "parameter-rules")
)

type fixedSnapshots struct{ p *Policy }

func (f fixedSnapshots) Current() *Policy { return f.p }

// benchEnv is an engine on the reference policy with a JWKS-file verifier.
type benchEnv struct {
	e      *Engine
	snap   *bundles.Snapshot
	pol    *Policy
	tokens []string
	v      *token.Verifier
}

func newBenchEnv(b testing.TB, edit func(*Options)) *benchEnv {
	b.Helper()
	return newBenchEnvAt(b, benchPolicy, edit)
}

// newBenchEnvAt is newBenchEnv on the policy bundle in dir.
func newBenchEnvAt(b testing.TB, dir string, edit func(*Options)) *benchEnv {
	b.Helper()
	ctx := context.Background()
	v, toks, err := workload.NewVerified(ctx, b.TempDir(), 4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	src := &fixedSnapshots{}
	opts := Options{Snapshots: src, Tokens: v, MetadataURL: oauth.MetadataURL(workload.Audience)}
	if edit != nil {
		edit(&opts)
	}
	e, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	pol := compileBench(b, dir, opts.Package)
	src.p = pol
	return &benchEnv{e: e, snap: pol.Snapshot, pol: pol, tokens: toks, v: v}
}

// compileBench compiles and activates the policy bundle in dir as serve
// does (input schema, the rules of package pkg).
func compileBench(b testing.TB, dir, pkg string) *Policy {
	b.Helper()
	rules, err := RulesIn(pkg)
	if err != nil {
		b.Fatal(err)
	}
	pol, err := bundles.CompileWith(context.Background(), bundles.Options{
		Sources:     []bundles.Source{bundles.DirSource(dir)},
		Queries:     rules.Queries(),
		InputSchema: policies.InputSchema(),
	}, rules.Activate)
	if err != nil {
		b.Fatalf("compiling %s: %v", dir, err)
	}
	return pol
}

// requests returns benchVariants requests of kind k (every kind of the mix
// when k is ""), with their tokens already verified once, so the token
// cache is warm as it is in steady state.
func (env *benchEnv) requests(b testing.TB, k workload.Kind) []*Request {
	b.Helper()
	var ws []*workload.Request
	if k == "" {
		ws = workload.Mix(benchVariants, env.tokens)
	} else {
		ws = make([]*workload.Request, benchVariants)
		for i := range ws {
			ws[i] = workload.New(k, i, env.tokens[i%len(env.tokens)])
		}
	}
	out := make([]*Request, len(ws))
	for i, w := range ws {
		out[i] = &Request{Method: w.Method, Path: w.Path, Host: w.Host, Headers: w.Headers, Body: w.Body, Context: w.Context,
			SourceAddress: "10.0.0.7:51234"}
		if d := env.e.Decide(context.Background(), out[i]); d.Allow != w.Allow {
			b.Fatalf("%s request %d: allow = %v (%s: %s), want %v", w.Kind, i, d.Allow, d.Code, d.Reason, w.Allow)
		}
	}
	return out
}

// BenchmarkInputBuild is everything before evaluation for an allowed
// tools/call: token lookup (cached), body parse, and the input: only the
// part the policy reads (as Decide builds it), or all of it (as with
// decision logs on).
func BenchmarkInputBuild(b *testing.B) {
	env := newBenchEnv(b, nil)
	reqs := env.requests(b, workload.ToolsCall)
	ctx := context.Background()
	for name, whole := range map[string]bool{"policy_reads": false, "whole": true} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var d Decision
				p, ok := env.e.prepareFor(ctx, reqs[i%len(reqs)], &d, whole, nil)
				if !ok {
					b.Fatal(d.Reason)
				}
				_ = p.input(0)
				i++
			}
		})
	}
}

// BenchmarkPolicyEval is the evaluation of data.mcp.authz.decision on a
// prebuilt input, result reading included. rego_prepared is the same
// evaluation through OPA's rego.PreparedEvalQuery (prepared once, the
// input given as an ast.Value), the usual way to embed OPA: the yardstick
// for the engine's own evaluation on the machine at hand.
func BenchmarkPolicyEval(b *testing.B) {
	env := newBenchEnv(b, nil)
	ctx := context.Background()
	inputsOf := func(b *testing.B, k workload.Kind) []ast.Value {
		reqs := env.requests(b, k)
		inputs := make([]ast.Value, len(reqs))
		for i, r := range reqs {
			in, d := env.e.Inputs(ctx, r)
			if d != nil {
				b.Fatal(d.Reason)
			}
			inputs[i] = in[0]
		}
		return inputs
	}
	for _, k := range []workload.Kind{workload.ToolsCall, workload.DeniedCall} {
		b.Run(string(k), func(b *testing.B) {
			inputs := inputsOf(b, k)
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if res := env.e.eval(ctx, env.pol, inputs[i%len(inputs)]); res.err != nil {
					b.Fatal(res.err)
				}
				i++
			}
		})
	}
	b.Run("rego_prepared/tools_call", func(b *testing.B) {
		inputs := inputsOf(b, workload.ToolsCall)
		pq, err := rego.New(rego.Query("data.mcp.authz.decision"), rego.Compiler(env.snap.Compiler),
			rego.Store(env.snap.Store)).PrepareForEval(ctx)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if rs, err := pq.Eval(ctx, rego.EvalParsedInput(inputs[i%len(inputs)])); err != nil || len(rs) != 1 {
				b.Fatal(err, rs)
			}
			i++
		}
	})
}

// BenchmarkDecide is one whole decision in process: cached token, parse,
// input, evaluation, Decision. tools_call is the figure the performance
// target names; mix is the reference mix of allowed and denied requests.
func BenchmarkDecide(b *testing.B) {
	env := newBenchEnv(b, nil)
	for _, k := range []workload.Kind{workload.ToolsCall, workload.DeniedCall, ""} {
		name := string(k)
		if k == "" {
			name = "mix"
		}
		b.Run(name, func(b *testing.B) {
			benchDecide(b, env.e, env.requests(b, k))
		})
	}
}

func benchDecide(b *testing.B, e *Engine, reqs []*Request) {
	b.Helper()
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if d := e.Decide(ctx, reqs[i%len(reqs)]); d.Code == CodeEvalError {
			b.Fatal(d.Errors)
		}
		i++
	}
}

// referencePolicyWithHelpers is the reference policy as first written, with
// helper rules: decision/testdata/bench/authz.rego is its rewrite into one
// rule for speed, and must decide exactly as it does.
const referencePolicyWithHelpers = `package mcp.authz

cfg := data.mcpauthz.config

default decision := {"allow": false, "reason": "denied by policy"}

decision := {"allow": true} if {
	allowed
} else := {"allow": false, "reason": "this method needs a scope the token lacks", "scopes": [scope]} if {
	input.token.valid
	scope := cfg.method_scope[input.mcp.method]
	not scope in input.token.scopes
} else := {"allow": false, "reason": "tool not allowed on this route, or arguments refused"} if {
	input.token.valid
	input.mcp.method == "tools/call"
}

allowed if {
	input.token.valid
	cfg.open_methods[input.mcp.method]
}

allowed if {
	input.token.valid
	input.mcp.method == "tools/call"
	cfg.method_scope["tools/call"] in input.token.scopes
	input.mcp.tool.name in cfg.server_tools[input.context.mcp_server]
	arguments_ok
}

arguments_ok if input.mcp.tool.name != "read_file"

arguments_ok if {
	path := input.mcp.tool.arguments.path
	startswith(path, cfg.read_file_root)
	not contains(path, "..")
	not contains(path, "//")
}
`

// TestBenchPolicySameDecisions evaluates the reference policy and its
// helper-rule form on every combination of method, tool, path, token
// validity, scopes and route (absent values and wrong types included) and
// requires the same decision, or an error from both.
func TestBenchPolicySameDecisions(t *testing.T) {
	rewritten, err := os.ReadFile(filepath.Join(benchPolicy, "authz.rego"))
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(filepath.Join(benchPolicy, "data.json"))
	if err != nil {
		t.Fatal(err)
	}
	var data map[string]any
	if err := json.Unmarshal(raw, &data); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	prepare := func(src string) rego.PreparedEvalQuery {
		pq, err := rego.New(
			rego.Query("data.mcp.authz.decision"),
			rego.Module("authz.rego", src),
			rego.Store(inmem.NewFromObject(data)),
			rego.StrictBuiltinErrors(true),
		).PrepareForEval(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return pq
	}
	helpers, flat := prepare(referencePolicyWithHelpers), prepare(string(rewritten))
	decide := func(pq rego.PreparedEvalQuery, input map[string]any) (any, error) {
		rs, err := pq.Eval(ctx, rego.EvalInput(input))
		if err != nil || len(rs) == 0 {
			return nil, err
		}
		return rs[0].Expressions[0].Value, nil
	}

	absent := struct{}{}
	methods := []any{"tools/call", "tools/list", "initialize", "ping", "resources/read", "prompts/get", absent}
	tools := []any{"read_file", "list_dir", "write_file", 7, absent}
	paths := []any{"/data/q3.csv", "/data/../etc/passwd", "/data//x", "/etc/passwd", "", 42, absent}
	valid := []any{true, false, "true", absent}
	scopes := []any{[]any{"mcp:tools"}, []any{"mcp:tools", "mcp:tools"}, []any{"mcp:resources"}, []any{}, "mcp:tools", absent}
	routes := []any{"files", "other", absent}
	set := func(m map[string]any, k string, v any) {
		if v != absent {
			m[k] = v
		}
	}
	n, allowed := 0, 0
	for _, method := range methods {
		for _, tool := range tools {
			for _, path := range paths {
				for _, v := range valid {
					for _, sc := range scopes {
						for _, route := range routes {
							args := map[string]any{}
							set(args, "path", path)
							tl := map[string]any{"arguments": args}
							set(tl, "name", tool)
							m := map[string]any{"tool": tl}
							set(m, "method", method)
							tok := map[string]any{}
							set(tok, "valid", v)
							set(tok, "scopes", sc)
							c := map[string]any{}
							set(c, "mcp_server", route)
							input := map[string]any{"mcp": m, "token": tok, "context": c}
							want, werr := decide(helpers, input)
							got, gerr := decide(flat, input)
							name := fmt.Sprintf("method=%v tool=%v path=%v valid=%v scopes=%v route=%v", method, tool, path, v, sc, route)
							if (werr != nil) != (gerr != nil) {
								t.Fatalf("%s: error %v, helper-rule form's %v", name, gerr, werr)
							}
							if !reflect.DeepEqual(got, want) {
								t.Fatalf("%s: decision %v, helper-rule form's %v", name, got, want)
							}
							n++
							if d, ok := want.(map[string]any); ok && d["allow"] == true {
								allowed++
							}
						}
					}
				}
			}
		}
	}
	if allowed == 0 || allowed == n {
		t.Fatalf("%d of %d inputs allowed: the table does not exercise both outcomes", allowed, n)
	}
}

// BenchmarkDecideTraced is BenchmarkDecide with tracing on: every decision
// continues a traceparent header and records its spans into the SDK's
// batch processor (the exporter discards them). unsampled is a caller's
// trace that is not sampled: nothing is recorded.
func BenchmarkDecideTraced(b *testing.B) {
	for name, flags := range map[string]string{"sampled": "01", "unsampled": "00"} {
		b.Run(name, func(b *testing.B) {
			tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(discardSpans{}))
			b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
			env := newBenchEnv(b, func(o *Options) { o.Tracer = tp.Tracer(TracerName) })
			reqs := env.requests(b, workload.ToolsCall)
			for i, r := range reqs {
				c := *r
				c.Headers = maps.Clone(r.Headers)
				c.Headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-" + flags
				reqs[i] = &c
			}
			benchDecide(b, env.e, reqs)
		})
	}
}

// discardSpans is an exporter that drops what it is given.
type discardSpans struct{}

func (discardSpans) ExportSpans(context.Context, []sdktrace.ReadOnlySpan) error { return nil }
func (discardSpans) Shutdown(context.Context) error                             { return nil }
