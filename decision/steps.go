package decision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/credleak"
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
	{"single_headers", (*Engine).singleHeadersStep},
	{"origin", (*Engine).originStep},
	{"request_input", (*Engine).requestInputStep},
	{"token", (*Engine).tokenStep},
	{"credential_elsewhere", (*Engine).credentialElsewhereStep},
	{"no_body", (*Engine).noBodyStep},
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
	// Here, not in prepareSteps, so that Engine.Inputs (eval) never uses
	// up a proof's jti.
	{"sender_binding", (*Engine).senderBindingStep},
	{"session_owner", (*Engine).sessionOwnerStep},
	{"confirmation", (*Engine).confirmationStep},
	{"evaluate", (*Engine).evaluateStep},
	// After the policy allowed the request:
	{"confirm", (*Engine).confirmStep},
	{"upstream_credential", (*Engine).upstreamCredentialStep},
	{"bind_session", (*Engine).bindSessionStep},
	{"stateless_session", (*Engine).statelessSessionStep},
	{"proof_header", (*Engine).proofHeaderStep},
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
	// holder is the owner the session is bound to ("" when none, or no
	// session); caller is the owner this request's token would bind
	// (SessionOwner, "" when it binds nothing).
	holder, caller string
	// hasVisible: the policy has a visible rule, so a tools/call's input
	// carries input.item (callItem).
	hasVisible bool
	// evaluated is the input the policy was last evaluated on; nil until
	// the evaluate step.
	evaluated ast.Value
	// confirm is the message of the policy's decision.confirm for an
	// allowed request ("" when none): confirmStep asks for it.
	confirm string
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

// singleValued are the request headers that hold one value. A comma in
// one is refused: Envoy joins a header sent twice with ",", and the server
// behind it may read the first value (Go's Header.Get) where mcpauthz read
// both (issue 28 row 2). Mcp-Session-Id may hold a comma by MCP's rule
// (visible ASCII); docs/security.md says why it is refused all the same.
var singleValued = [...]string{
	"mcp-session-id", "mcp-protocol-version", "mcp-method", "mcp-name",
	"authorization", "dpop", "origin", "last-event-id",
}

// singleHeadersStep refuses a single-valued header holding a comma.
func (e *Engine) singleHeadersStep(p *prepared) bool {
	for _, name := range singleValued {
		if v, ok := p.r.Headers[name]; ok && strings.IndexByte(v, ',') >= 0 {
			p.d.refuse(denial{kind: refuseRepeatedHeader,
				reason: fmt.Sprintf("the %s header holds a comma: it was sent more than once, or its value would be read differently by the server; send it once, without a comma", name)})
			return false
		}
	}
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

// noBodyStep refuses a GET or DELETE with a body: it carries no message,
// and the server must not be handed one mcpauthz did not decide on.
func (e *Engine) noBodyStep(p *prepared) bool {
	if !p.message && (len(p.r.Body) > 0 || p.r.Truncated) {
		p.d.refuse(denial{kind: refuseBodyNotAllowed,
			reason: fmt.Sprintf("a %s request must not have a body", p.r.Method)})
		return false
	}
	return true
}

// credentialElsewhereStep refuses a request that would carry a credential
// upstream where it cannot be removed (decision/credleak): an
// access_token query parameter spelled or separated so that not every
// reader of the query finds it (access%5Ftoken, ;access_token), or the
// bearer token of the Authorization header (which is removed) anywhere
// else: another header, a cookie, the Referer, the path, the query in any
// encoding, the body. Removing the copies would rest on guessing every
// place an upstream reads; refusing does not.
func (e *Engine) credentialElsewhereStep(p *prepared) bool {
	_, q := splitPath(p.r.Path)
	if found, removable := credleak.AccessToken(q); found && !removable {
		p.d.refuse(denial{kind: refuseInvalidRequest, reason: "the query has an access_token parameter whose name is percent-encoded " +
			"or follows ';', which readers of the query decode differently, so it cannot be removed: send the token only in the Authorization header"})
		return false
	}
	if raw, _, _, ok := token.AccessToken(p.r.Headers["authorization"]); ok {
		if where := credleak.Find(raw, p.r.Path, p.r.Host, p.r.Headers, p.r.Body); where != "" {
			p.d.refuse(denial{kind: refuseInvalidRequest, reason: "the bearer token of the Authorization header is also in " + where +
				": a token goes only in the Authorization header, which is never forwarded (MCP forbids passing it to the server)"})
			return false
		}
	}
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
			pr = e.withData(p.r, pr)
			p.d.refuse(denial{kind: pr.kind, reason: pr.reason, entry: answer{data: pr.data}})
			return false
		}
		if stateless(v) && (p.r.Method == "GET" || p.r.Method == "DELETE") {
			// No stream to open and no session to end: MCP answers 405.
			p.d.refuse(denial{kind: refuseMethodNotAllowed,
				reason: fmt.Sprintf("%s is not part of MCP %s: send requests as POST", p.r.Method, v)})
			return false
		}
		p.setRevision(v)
		return true
	}
	v, pr := e.revision(p.r, p.pol, &p.body)
	if pr != nil {
		pr = e.withData(p.r, pr)
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

// sessionStep looks up the owner of the request's Mcp-Session-Id,
// whatever revision it claims (sessions.bind_subject): the policy sees the
// owner's subject as input.mcp.session_owner; sessionOwnerStep refuses
// what the policy cannot judge, and bindSessionStep binds the session once
// the request is allowed.
func (e *Engine) sessionStep(p *prepared) bool {
	if e.opts.Sessions == nil || p.env.sessionID == "" {
		return true
	}
	holder, err := e.opts.Sessions.Owner(p.ctx, p.env.sessionID)
	if err != nil {
		e.refuseState(p, "looking up the session's owner", err)
		return false
	}
	p.holder, p.caller = holder, SessionOwner(p.tok)
	if holder != "" {
		sub, ok := ownerSubject(holder)
		if !ok {
			sub = holder // not an owner the engine wrote: it matches no subject
		}
		p.env.sessionOwner = sub
	}
	return true
}

// refuseState refuses a request whose session the binder could not look
// up or bind: 503, never an allow (the binder may be a shared store).
func (e *Engine) refuseState(p *prepared, what string, err error) {
	// Debug only: a store that is down fails every request with a
	// session, and the store reports that itself, counted and at most once
	// per few seconds (state.Observed); the denial's code and reason are in
	// the metrics and the decision log.
	e.log.Debug("session store failed; denying", "decision_id", p.d.ID, "error", err)
	p.d.revoke(denial{kind: refuseStateUnavailable, reason: what + ": " + err.Error(), entry: answer{id: p.replyID()}})
}

// replyID is the id of the request's one JSON-RPC request message, which a
// denial's JSON-RPC error answers; nil (null) for anything else.
func (p *prepared) replyID() []byte {
	if p.body.Batch || len(p.body.Messages) != 1 {
		return nil
	}
	return p.body.Messages[0].ID
}

// sessionOwnerStep refuses a request whose session is bound to another
// owner when the policy cannot be left to judge it: the caller is
// authenticated (another issuer's user with the same subject is another
// owner, which a policy comparing subjects cannot tell), or the request
// carries no JSON-RPC request (GET, DELETE, notifications, responses: a
// policy may not look at them). An unauthenticated request is left to the
// policy, which sees input.mcp.session_owner, so that it can answer with
// its challenge.
func (e *Engine) sessionOwnerStep(p *prepared) bool {
	if p.holder == "" || p.holder == p.caller {
		return true
	}
	if p.caller != "" || !onlyRequests(&p.body) {
		p.d.refuse(denial{kind: refuseSessionNotFound, reason: "session not found"})
		return false
	}
	return true
}

// onlyRequests reports whether every message of body is a JSON-RPC request
// (false for no message).
func onlyRequests(body *mcp.Body) bool {
	for i := range body.Messages {
		if body.Messages[i].Kind != mcp.KindRequest {
			return false
		}
	}
	return len(body.Messages) > 0
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
	for i := range outcomes {
		if outcomes[i].res.confirm != "" {
			p.confirm = outcomes[i].res.confirm
		}
	}
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

// bindSessionStep binds the session of an allowed request to its caller:
// only a request the policy allowed binds (a denied one must not fill the
// table), and a session another owner bound first, meanwhile, is refused.
func (e *Engine) bindSessionStep(p *prepared) bool {
	if e.opts.Sessions == nil || p.env.sessionID == "" || p.caller == "" {
		return true
	}
	holder, err := e.opts.Sessions.Bind(p.ctx, p.env.sessionID, p.caller)
	switch {
	case errors.Is(err, ErrSessionsFull):
		p.d.revoke(denial{kind: refuseSessionsFull, reason: "no new session can be bound: " + err.Error(), entry: answer{id: p.replyID()}})
		return false
	case err != nil:
		e.refuseState(p, "binding the session", err)
		return false
	case holder != p.caller:
		p.d.revoke(denial{kind: refuseSessionNotFound, reason: "session not found"})
		return false
	}
	return true
}

// statelessSessionStep keeps the Mcp-Session-Id of a 2026-07-28 request
// from the upstream: that revision has no sessions, and a server that
// also speaks an older one would read the header as one of its sessions.
// The session was checked and bound all the same.
func (e *Engine) statelessSessionStep(p *prepared) bool {
	if _, ok := p.r.Headers["mcp-session-id"]; ok && stateless(p.env.protocolVersion) {
		p.d.RemoveHeaders = append(slices.Clip(p.d.RemoveHeaders), "mcp-session-id")
	}
	return true
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
