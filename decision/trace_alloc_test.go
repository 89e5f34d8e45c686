package decision

import (
	"context"
	"maps"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// TestTracingOffIsFree: without a tracer a decision allocates nothing for
// tracing. The hooks on a nil recorder allocate nothing, and a Decide
// allocates exactly what the decision it wraps does.
func TestTracingOffIsFree(t *testing.T) {
	var tr *traceRecorder
	m := &mcp.Message{Meta: ast.NewObject(ast.Item(metaParentTerm, ast.StringTerm("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")))}
	if n := testing.AllocsPerRun(100, func() {
		for k := range stageCount {
			tr.begin(k)
			tr.end(k, false)
		}
		tr.protocolVersion(Version20260728)
		tr.message(m)
	}); n != 0 {
		t.Errorf("the hooks of a nil recorder allocate %v times", n)
	}

	if raceEnabled {
		t.Skip("the race detector's instrumentation allocates on its own")
	}
	env := newBenchEnv(t, nil)
	ctx := context.Background()
	for _, k := range []workload.Kind{workload.ToolsCall, workload.DeniedCall} {
		r := env.requests(t, k)[0]
		decide := testing.AllocsPerRun(200, func() { env.e.Decide(ctx, r) })
		bare := testing.AllocsPerRun(200, func() {
			d, _ := env.e.decideSafely(ctx, r, nil)
			d.stamp()
			d.makeValidUTF8()
		})
		if decide != bare {
			t.Errorf("%s: Decide without a tracer allocates %v times, the decision alone %v", k, decide, bare)
		}
		t.Logf("%s: %v allocations per decision without a tracer", k, decide)
	}
}

// TestTracingOnCosts: with a tracer, a decision that continues a header's
// trace records four spans (the decision and three stages) and costs
// allocations only then.
func TestTracingOnCosts(t *testing.T) {
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	env := newBenchEnv(t, func(o *Options) { o.Tracer = tp.Tracer(TracerName) })
	r := *env.requests(t, workload.ToolsCall)[0]
	r.Headers = maps.Clone(r.Headers)
	r.Headers["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
	before := len(rec.Ended())
	env.e.Decide(context.Background(), &r)
	if n := len(rec.Ended()) - before; n != 4 {
		t.Errorf("%d spans, want 4", n)
	}
}
