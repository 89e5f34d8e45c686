package decision

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"

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

type fixedSnapshots struct{ s *bundles.Snapshot }

func (f fixedSnapshots) Current() *bundles.Snapshot { return f.s }

// benchEnv is an engine on the reference policy with a JWKS-file verifier.
type benchEnv struct {
	e      *Engine
	snap   *bundles.Snapshot
	tokens []string
	v      *token.Verifier
}

func newBenchEnv(b *testing.B, edit func(*Options)) *benchEnv {
	b.Helper()
	ctx := context.Background()
	keys, err := workload.NewKeys()
	if err != nil {
		b.Fatal(err)
	}
	jwks, err := keys.WriteJWKS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	v, err := token.New(ctx, token.Options{Issuer: workload.Issuer, Audience: workload.Audience, JWKSFile: jwks, Algorithms: []string{"RS256"}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	toks := make([]string, 4)
	for i := range toks {
		if toks[i], err = keys.Token("agent-"+string(rune('a'+i)), workload.Scopes, ""); err != nil {
			b.Fatal(err)
		}
	}
	src := &fixedSnapshots{}
	opts := Options{Snapshots: src, Tokens: v, MetadataURL: oauth.MetadataURL(workload.Audience)}
	if edit != nil {
		edit(&opts)
	}
	e, err := New(opts)
	if err != nil {
		b.Fatal(err)
	}
	snap, err := bundles.Compile(ctx, bundles.Options{
		Sources:     []bundles.Source{{Path: benchPolicy}},
		Queries:     e.Queries(),
		InputSchema: policies.InputSchema(),
	})
	if err != nil {
		b.Fatalf("compiling %s: %v", benchPolicy, err)
	}
	src.s = snap
	return &benchEnv{e: e, snap: snap, tokens: toks, v: v}
}

// requests returns benchVariants requests of kind k (every kind of the mix
// when k is ""), with their tokens already verified once, so the token
// cache is warm as it is in steady state.
func (env *benchEnv) requests(b *testing.B, k workload.Kind) []*Request {
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
	for name, needs := range map[string]*inputNeeds{"policy_reads": env.e.state(env.snap).needs, "whole": allInput} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				var d Decision
				p, ok := env.e.prepareFor(ctx, reqs[i%len(reqs)], env.snap, &d, needs)
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
// prebuilt input, result reading included.
func BenchmarkPolicyEval(b *testing.B) {
	env := newBenchEnv(b, nil)
	ctx := context.Background()
	for _, k := range []workload.Kind{workload.ToolsCall, workload.DeniedCall} {
		b.Run(string(k), func(b *testing.B) {
			reqs := env.requests(b, k)
			inputs := make([]ast.Value, len(reqs))
			for i, r := range reqs {
				in, d := env.e.Inputs(ctx, r)
				if d != nil {
					b.Fatal(d.Reason)
				}
				inputs[i] = in[0]
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if res := env.e.eval(ctx, env.snap, inputs[i%len(inputs)]); res.err != nil {
					b.Fatal(res.err)
				}
				i++
			}
		})
	}
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

// BenchmarkDecideObserved is BenchmarkDecide/tools_call with metrics, and
// with metrics and a decision log to a file.
func BenchmarkDecideObserved(b *testing.B) {
	b.Run("metrics", func(b *testing.B) {
		env := newBenchEnv(b, func(o *Options) { o.Observer = NewMetrics(prometheus.NewRegistry()) })
		benchDecide(b, env.e, env.requests(b, workload.ToolsCall))
	})
	b.Run("metrics_and_log", func(b *testing.B) {
		dl, err := NewDecisionLog(DecisionLogOptions{File: filepath.Join(b.TempDir(), "decisions.jsonl")})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { _ = dl.Close() })
		env := newBenchEnv(b, func(o *Options) { o.Observer = Observers(NewMetrics(prometheus.NewRegistry()), dl) })
		benchDecide(b, env.e, env.requests(b, workload.ToolsCall))
		b.ReportMetric(float64(dl.Dropped()), "dropped")
	})
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
