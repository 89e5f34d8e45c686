package decision

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// This file is a request's path through the engine: an ordered list of
// named steps, as Envoy's filter chain or gRPC's interceptors are. Each
// step reads and extends the request's state (prepared) and either lets
// it go on or refuses it: it writes the denial into the decision and
// returns false, which ends the path. A new check before or after the
// policy is one more step in one of the lists below, in its place.

// step is one named stage of a request's path.
type step struct {
	// name says what the step does, for people reading the lists and the
	// tests that check their order.
	name string
	// run returns false when it refused the request (p.d holds the
	// denial); the steps after it do not run.
	run func(e *Engine, p *prepared) bool
}

// prepareSteps take a request to the point where its policy input can be
// built: Engine.Inputs runs these alone.
var prepareSteps = [...]step{
	{"readable", (*Engine).readableStep},
	{"policy", (*Engine).policyStep},
	{"origin", (*Engine).originStep},
	{"request_input", (*Engine).requestInputStep},
	{"token", (*Engine).tokenStep},
	{"body_limit", (*Engine).bodyLimitStep},
	{"parse", (*Engine).parseStep},
	{"revision", (*Engine).revisionStep},
	{"method", (*Engine).methodStep},
	{"session", (*Engine).sessionStep},
}

// decideSteps follow prepareSteps in Decide: the checks the policy cannot
// make, the evaluation, then the steps an allowed request goes through
// (evaluate returns false on a denial, so no later step sees one).
var decideSteps = [...]step{
	{"session_owner", (*Engine).sessionOwnerStep},
	{"evaluate", (*Engine).evaluateStep},
	// After the policy allowed the request:
	{"upstream_credential", (*Engine).upstreamCredentialStep},
	{"query_token", (*Engine).queryTokenStep},
}

// prepared is one request on its path: what it came with, and what the
// steps so far have read and checked.
type prepared struct {
	ctx context.Context
	r   *Request
	d   *Decision
	tr  *traceRecorder // nil: not traced
	// wholeInput builds every part of the input, whatever the policy reads
	// (Engine.Inputs, and an observer that reads the input).
	wholeInput bool

	pol    *Policy
	needs  *inputNeeds // the input the policy can read
	shared sharedInput
	// message: the request should carry a JSON-RPC body (carriesMessage).
	message bool
	body    mcp.Body // empty for GET and DELETE
	env     mcpEnv
	tok     *token.Result
	// hasVisible: the policy has a visible rule, so a tools/call's input
	// carries input.item (callItem).
	hasVisible bool
	// evaluated is the input the policy was last evaluated on; nil until
	// the evaluate step.
	evaluated ast.Value
}

// runSteps runs steps in order on p until one refuses the request; it
// reports whether every step let it go on.
func (e *Engine) runSteps(p *prepared, steps []step) bool {
	for i := range steps {
		if !steps[i].run(e, p) {
			return false
		}
	}
	return true
}

// prepareFor runs prepareSteps on r: it returns the request's state, and
// false when a step refused it (d holds the denial).
func (e *Engine) prepareFor(ctx context.Context, r *Request, d *Decision, wholeInput bool, tr *traceRecorder) (*prepared, bool) {
	p := &prepared{ctx: ctx, r: r, d: d, tr: tr, wholeInput: wholeInput || e.fullInput}
	return p, e.runSteps(p, prepareSteps[:])
}

// readableStep refuses a request its transport could not read.
func (e *Engine) readableStep(p *prepared) bool {
	if p.r.Unreadable != "" {
		e.unreadable(p.r, p.d)
		return false
	}
	return true
}

// policyStep reads the current policy once: every later step uses it.
func (e *Engine) policyStep(p *prepared) bool {
	pol := e.opts.Snapshots.Current()
	if pol == nil {
		p.d.refuse(denial{kind: refuseNoPolicy, reason: "no policy is loaded yet"})
		return false
	}
	p.pol = pol
	p.d.Revision = pol.Snapshot.Revision
	p.needs = pol.needs
	if p.wholeInput {
		p.needs = allInput
	}
	p.hasVisible = pol.visible != nil
	return true
}

// originStep refuses a browser request from an origin not allowed.
func (e *Engine) originStep(p *prepared) bool {
	if !e.opts.MCP.originAllowed(p.r) {
		// DNS rebinding: a page of another origin driving the browser. It
		// is refused before its token is verified.
		p.d.refuse(denial{kind: refuseOrigin, reason: fmt.Sprintf("origin %q is not allowed", p.r.Headers["origin"])})
		return false
	}
	return true
}

// requestInputStep builds the parts of the input every message shares
// that come from the HTTP request itself.
func (e *Engine) requestInputStep(p *prepared) bool {
	r := p.r
	if n := p.needs.sub("source"); n != nil {
		p.shared.source = sourceInput(r)
	}
	if n := p.needs.sub("context"); n != nil {
		p.shared.context = e.contextTerm(r.Context)
	}
	// input.http.access_token_in_query tells the policy that a token came in
	// the query string; it is never read as a credential.
	p.shared.http = httpInputFor(r, p.needs.sub("http"))
	p.env.sessionID = r.Headers["mcp-session-id"]
	p.message = carriesMessage(r)
	return true
}

// tokenStep resolves the request's credential. An invalid or missing one
// is not refused here: the policy decides whether it may go on without.
func (e *Engine) tokenStep(p *prepared) bool {
	p.tr.begin(stageToken)
	p.tok = e.resolveToken(p.ctx, p.r, p.pol.keys)
	p.tr.end(stageToken, false)
	p.d.Token = p.tok
	p.shared.token = ast.NewTerm(p.tok.Value)
	return true
}

// bodyLimitStep refuses a body larger than limits.max_body_bytes, or one
// its sender cut.
func (e *Engine) bodyLimitStep(p *prepared) bool {
	if p.message && (p.r.Truncated || len(p.r.Body) > e.opts.MaxBodyBytes) {
		p.d.refuse(denial{kind: refuseBodyTooLarge,
			reason: fmt.Sprintf("request body is larger than %d bytes or was truncated", e.opts.MaxBodyBytes)})
		return false
	}
	return true
}

// parseStep parses the body's JSON-RPC messages (decision/mcp).
func (e *Engine) parseStep(p *prepared) bool {
	if !p.message {
		return true
	}
	// A policy that never reads input.mcp.params does not pay for building it.
	p.tr.begin(stageParse)
	body, err := mcp.ParseWith(p.r.Body, mcp.Options{SkipParams: p.needs.sub("mcp").sub("params") == nil})
	p.tr.end(stageParse, err != nil)
	if err != nil {
		code := mcp.CodeParseError
		var perr *mcp.Error
		if errors.As(err, &perr) {
			code = perr.Code
			// A method its revision does not have is refused as such,
			// whatever its params (methodStep for a body that parses).
			if pr := e.opts.MCP.invalidParamsRefusal(p.r, perr); pr != nil {
				p.d.Method = perr.Method
				p.d.refuse(denial{kind: pr.kind, reason: pr.reason, entry: answer{id: perr.ID}})
				return false
			}
		}
		p.d.refuse(denial{kind: parseRefusal(code), reason: err.Error()})
		return false
	}
	d := p.d
	d.Messages = len(body.Messages)
	d.Method = body.Messages[0].Method
	if t := body.Messages[0].Tool; t != nil {
		d.Tool = t.Name
	}
	if !body.Batch {
		p.tr.message(&body.Messages[0])
	}
	p.body = body
	if body.Batch {
		p.env.batchSize = len(body.Messages)
	}
	return true
}

// revisionStep holds the request to the rules of the MCP revision it
// speaks (protocol.go) and sets input.mcp.protocol_version.
func (e *Engine) revisionStep(p *prepared) bool {
	if !p.message {
		v, pr := e.opts.MCP.protocolVersion(p.r, &p.body)
		if pr != nil {
			p.d.refuse(denial{kind: pr.kind, reason: pr.reason, entry: answer{data: pr.data}})
			return false
		}
		p.setRevision(v)
		return true
	}
	v, pr := e.revision(p.r, p.pol, &p.body)
	if pr != nil {
		var id []byte
		if !p.body.Batch {
			id = p.body.Messages[0].ID
		}
		p.d.refuse(denial{kind: pr.kind, reason: pr.reason, entry: answer{id: id, data: pr.data}})
		return false
	}
	p.setRevision(v)
	return true
}

// methodStep refuses a request for a method its revision does not have
// (protocol.go, methodRefusal): mcpauthz answers it, never the server.
func (e *Engine) methodStep(p *prepared) bool {
	pr := methodRefusal(&p.body, p.env.protocolVersion)
	if pr == nil {
		return true
	}
	var id []byte
	if !p.body.Batch {
		id = p.body.Messages[0].ID
	}
	p.d.refuse(denial{kind: pr.kind, reason: pr.reason, entry: answer{id: id}})
	return false
}

// setRevision records the revision the request was held to.
func (p *prepared) setRevision(v string) {
	p.tr.protocolVersion(v)
	p.env.protocolVersion = v
}

// sessionStep, for revisions that have sessions, binds the request's
// session id to the token's subject (sessions.bind_subject). A 2026-07-28
// request has no session: its Mcp-Session-Id, if any, is neither bound nor
// shown to the policy.
func (e *Engine) sessionStep(p *prepared) bool {
	if stateless(p.env.protocolVersion) {
		p.env.sessionID = ""
		return true
	}
	if e.opts.Sessions != nil && p.env.sessionID != "" && p.tok.Valid && p.tok.Subject != "" {
		p.env.sessionOwner = e.opts.Sessions.Owner(p.env.sessionID, p.tok.Subject, e.opts.Now())
	}
	return true
}

// sessionOwnerStep refuses a GET or DELETE of a session bound to another
// subject: they carry no message, so input.mcp.session_owner cannot reach
// the policy.
func (e *Engine) sessionOwnerStep(p *prepared) bool {
	if len(p.body.Messages) == 0 && p.env.sessionOwner != "" && p.env.sessionOwner != p.tok.Subject {
		p.d.refuse(denial{kind: refuseSessionNotFound, reason: "session not found"})
		return false
	}
	return true
}

// evaluateStep evaluates the policy on the input of every message (one
// input for GET and DELETE) and makes the decision from what it said.
func (e *Engine) evaluateStep(p *prepared) bool {
	ctx, pol, d, tr := p.ctx, p.pol, p.d, p.tr
	if len(p.body.Messages) == 0 {
		input := p.input(0)
		tr.begin(stageEvaluate)
		res := e.eval(ctx, pol, input)
		tr.end(stageEvaluate, res.err != nil)
		e.finishHTTPOnly(d, res, p.tok)
		p.evaluated = input
		return d.Allow
	}
	outcomes := make([]outcome, len(p.body.Messages))
	failed := false
	tr.begin(stageEvaluate)
	for i := range p.body.Messages {
		p.evaluated = p.input(i)
		sc := getScratch(p.evaluated, e.opts.EvalTimeout, ctx.Done())
		outcomes[i] = outcome{msg: &p.body.Messages[i], res: e.evalOn(ctx, sc, pol)}
		e.hideCall(ctx, sc, pol, p, &outcomes[i])
		putScratch(sc)
		e.checkPins(pol, p.r, &outcomes[i])
		failed = failed || outcomes[i].res.err != nil
	}
	tr.end(stageEvaluate, failed)
	e.finishMessages(d, outcomes, p.body.Batch, p.tok)
	return d.Allow
}

// upstreamCredentialStep gives an allowed request the credential it
// carries upstream (upstream.go), or refuses it when that cannot be had.
func (e *Engine) upstreamCredentialStep(p *prepared) bool {
	if e.opts.Upstream == nil {
		return true
	}
	p.tr.begin(stageUpstream)
	e.upstreamCredential(p.ctx, p.r, p.d)
	p.tr.end(stageUpstream, !p.d.Allow)
	return p.d.Allow
}

// queryTokenStep removes an access_token query parameter from an allowed
// request: a token in the query string is never a credential and is never
// forwarded, even when the policy let the request through.
func (e *Engine) queryTokenStep(p *prepared) bool {
	if queryHasAccessToken(p.r.Path) {
		p.d.RemoveQueryParams = accessTokenParam
	}
	return true
}
