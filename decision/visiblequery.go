package decision

import (
	"context"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// visibleQuery is the visible rule compiled for OPA's evaluator (topdown),
// as the decision query is (compileQuery): evaluated with the pooled
// scratch, it costs a fraction of a rego.PreparedEvalQuery call (no
// goroutine, context or result conversion per call), which matters since
// every tools/call is judged by it (hidden.go) and a list by it once per
// item. Each Policy holds its own, built by Activate.
type visibleQuery struct {
	tmpl *topdown.Query // nil: the policy has no visible rule
	err  error          // why it could not be compiled (items hidden)
}

// visibleFor returns the visible query of pol, built when pol was
// activated.
func (e *Engine) visibleFor(pol *Policy) *visibleQuery { return &pol.visibleQ }

func compileVisible(pol *Policy) (*topdown.Query, error) {
	s := pol.Snapshot
	ref, err := ast.ParseRef(pol.rules.visible)
	if err != nil {
		return nil, fmt.Errorf("parsing query %s: %w", pol.rules.visible, err)
	}
	body, err := s.Compiler.QueryCompiler().Compile(ast.NewBody(ast.Equality.Expr(ast.NewTerm(resultVar), ast.NewTerm(ref))))
	if err != nil {
		return nil, fmt.Errorf("compiling query %s: %w", pol.rules.visible, err)
	}
	if pol.txn == nil {
		return nil, fmt.Errorf("compiling query %s: the policy has no read transaction", pol.rules.visible)
	}
	return topdown.NewQuery(body).
		WithCompiler(s.Compiler).
		WithStore(s.Store).
		WithTransaction(pol.txn).
		WithStrictBuiltinErrors(true).
		WithMetrics(noMetrics), nil
}

// evalVisible evaluates the visible rule on input. defined is false when
// the rule is undefined for it.
func (e *Engine) evalVisible(ctx context.Context, vq *visibleQuery, input ast.Value) (visible, defined bool, err error) {
	if vq.err != nil {
		return false, false, vq.err
	}
	sc := getScratch(input, e.opts.EvalTimeout, ctx.Done())
	defer putScratch(sc)
	return e.evalVisibleOn(ctx, sc, vq)
}

// evalVisibleOn is evalVisible on a scratch already used for the same
// input: the rule values in its cache stay valid and are reused.
func (e *Engine) evalVisibleOn(ctx context.Context, sc *evalScratch, vq *visibleQuery) (visible, defined bool, err error) {
	if vq.err != nil {
		return false, false, vq.err
	}
	sc.result, sc.n = nil, 0
	sc.q = *vq.tmpl
	sc.q.WithInput(&sc.input).
		WithCancel(&sc.cancel).
		WithVirtualCache(&sc.vc).
		WithBaseCache(&sc.bc).
		WithRequestMetadata(sc.meta)
	if err := e.pool.iter(ctx, sc); err != nil {
		return false, false, fmt.Errorf("evaluating %s: %w", e.qVisible, e.evalError(ctx, err))
	}
	switch {
	case sc.n == 0 || sc.result == nil:
		return false, false, nil
	case sc.n > 1:
		return false, false, fmt.Errorf("%s returned more than one result", e.qVisible)
	}
	b, ok := sc.result.Value.(ast.Boolean)
	if !ok {
		return false, false, fmt.Errorf("%s is %s, want a boolean", e.qVisible, ast.ValueName(sc.result.Value))
	}
	return bool(b), true, nil
}
