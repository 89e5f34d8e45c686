package decision

import (
	"context"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/mcpauthz/mcpauthz/decision/token"
)

// A transport that reads the body itself (the proxy) holds it in memory
// before the engine sees the token: a flood of large, slow bodies without
// a token would cost memory no policy could ever grant. When the policy can
// allow no request that carries no credential, such a request is refused
// before its body is read.

// anonymousUnknowns is every member of the input but the token: the
// partial evaluation asks whether any request, whatever it holds, could be
// allowed without a credential.
var anonymousUnknowns = []*ast.Term{
	ast.MustParseTerm("input.mcp"), ast.MustParseTerm("input.http"), ast.MustParseTerm("input.source"),
	ast.MustParseTerm("input.context"), ast.MustParseTerm("input.item"),
}

// missingToken is input.token of a request that carries no credential.
var missingToken = (&token.Result{Present: false, Error: token.ErrMissing}).Finish()

// deniesAnonymous reports whether the policy's allow (decision.allow, or
// allow) is false for every request without a credential: partially
// evaluated with input.token as a missing token's and the rest of the
// input unknown, it leaves no query. An error, or a policy that cannot be
// evaluated, counts as "may allow": such a request is then read and decided
// as any other.
func (p *Policy) deniesAnonymous(ctx context.Context, timeout time.Duration) bool {
	if p.partialErr != nil || p.evalErr != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	input := ast.NewObject(ast.Item(keyToken, ast.NewTerm(missingToken.Value)))
	pqs, err := p.partial.Partial(ctx, rego.EvalParsedInput(input), rego.EvalParsedUnknowns(anonymousUnknowns))
	return err == nil && len(pqs.Queries) == 0
}

// unreadSteps decide a request without its body (RefuseUnread), once the
// policy is known to allow no request without a credential and the
// request carries none: the checks of Decide's path that need no body,
// then the policy on the request's HTTP input alone, so the answer is the
// one the policy gives an anonymous caller (its status and reason: the
// shipped policy's 400 for a token in the query; else the 401 challenge).
var unreadSteps = [...]step{
	{"single_headers", (*Engine).singleHeadersStep},
	{"origin", (*Engine).originStep},
	{"request_input", (*Engine).requestInputStep},
	{"token", (*Engine).tokenStep},
	{"credential_elsewhere", (*Engine).credentialElsewhereStep},
	{"evaluate_http", (*Engine).evaluateHTTPStep},
}

// evaluateHTTPStep evaluates the policy on the request's HTTP input alone
// (no input.mcp) and finishes the decision as a GET's is finished.
func (e *Engine) evaluateHTTPStep(p *prepared) bool {
	p.evaluated = p.shared.input(nil, nil)
	res := e.eval(p.ctx, p.pol, p.evaluated)
	e.finishHTTPOnly(p.d, res, p.tok)
	return p.d.Allow
}

// RefuseUnread is for a transport that reads the request body itself (the
// proxy): before reading it, the transport asks whether the request is
// refused whatever its body holds. It is when the request carries no
// credential (no Authorization header) and the current policy can allow no
// request without one (Policy.deniesAnonymous, found when the policy was
// activated), and the engine is not in dry run. The request then goes
// through unreadSteps; their denial is stamped and observed as every
// decision is. nil: the body is needed to decide (and is never decided
// without: a request those steps would allow is read and decided whole).
func (e *Engine) RefuseUnread(ctx context.Context, r *Request) *Decision {
	switch c := r.Credential.Kind; {
	case e.opts.DryRun, c == token.VerifiedClaims, c == token.VerifiedResult,
		c == token.FromHeader && r.Headers["authorization"] != "":
		return nil
	}
	pol := e.opts.Snapshots.Current()
	if pol == nil || !pol.anonymousDenied {
		return nil
	}
	start := time.Now()
	d := &Decision{ID: e.newID(), Revision: pol.Snapshot.Revision}
	p := &prepared{ctx: ctx, r: r, d: d, pol: pol, needs: pol.needs, hasVisible: pol.visible != nil}
	if e.fullInput {
		p.needs = allInput
	}
	if e.runSteps(p, unreadSteps[:]) {
		return nil // allowed without a body: never forwarded as such
	}
	d.Reason += " (refused before the body was read: the policy allows no request without a credential)"
	d.stamp()
	d.makeValidUTF8()
	if e.opts.Observer != nil {
		e.observe(ctx, r, d, p.evaluated, time.Since(start))
	}
	return d
}
