package decision

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// Decision is the answer for one request. When Allow is false, Status,
// ResponseHeaders and Body are the exact response the client must get.
type Decision struct {
	ID       string
	Allow    bool
	Code     string // one of the Code* constants
	Reason   string
	Scopes   []string // scopes the request needs, as the policy said
	Revision string   // policy revision that decided
	Messages int      // JSON-RPC messages in the body

	// Method, Tool and Subject say what was decided, for access logs and
	// decision logs to join on: the JSON-RPC method of the (first) message,
	// the tool a tools/call names, and the verified token's subject. Each
	// is "" when the request did not get that far.
	Method  string
	Tool    string
	Subject string

	// DryRun says the decision was made under policy.dry_run: observers
	// see the policy's real outcome; the answer a transport renders allows
	// the request whatever it was (dryRunAllowed).
	DryRun bool

	// Status, ResponseHeaders and Body form the denial response.
	// On allow, ResponseHeaders are added to the client's response.
	Status          int
	ResponseHeaders []Header
	Body            []byte

	// UpstreamHeaders are set on the request sent upstream, on allow.
	UpstreamHeaders []Header
	// RemoveHeaders are removed from the upstream request, on allow:
	// authorization (no token passthrough) and, for a 2026-07-28 request,
	// mcp-session-id (that revision has no sessions: the server must not
	// read one). Every transport honours it (ext_authz's
	// headers_to_remove, the proxy).
	RemoveHeaders []string
	// RemoveQueryParams are removed from the upstream request's query
	// string, on allow (access_token: tokens travel only in the header).
	RemoveQueryParams []string

	// Token is the credential as verified.
	Token *token.Result
	// Errors holds evaluation errors (logged, never sent to the client).
	Errors []string

	// UpstreamCredential is the policy's decision.upstream_credential of
	// an allowed request: an entry's name, "none", or "" when it named
	// none (see UpstreamCredentials).
	UpstreamCredential string

	// RateLimit is the policy's decision.rate_limit of an allowed request,
	// sorted by name: each entry becomes Envoy dynamic metadata
	// RateLimitKeyPrefix+Name, for Envoy's rate limit filter to build
	// descriptors from. Denied requests carry none: they never reach that
	// filter.
	RateLimit []RateLimitEntry
}

// DecisionIDHeader carries the decision id on the upstream request of an
// allowed call and on every denied response, so the client's, Envoy's and
// the upstream's logs join the decision log.
const DecisionIDHeader = "x-mcp-authz-decision-id"

// stamp sets what every decision carries whatever decided it: the subject
// and the decision id header (set over any a client sent upstream).
func (d *Decision) stamp() {
	if d.Token != nil && d.Token.Valid {
		d.Subject = d.Token.Subject
	}
	h := Header{Name: DecisionIDHeader, Value: d.ID}
	if d.Allow {
		d.UpstreamHeaders = append(d.UpstreamHeaders, h)
	} else {
		d.ResponseHeaders = append(d.ResponseHeaders, h)
	}
}

// dryRunAllowed is the answer to a request the policy denied under
// dry run: allowed, with the real code and reason kept (so the access
// log shows the would-be outcome), the decision id header upstream, and
// the client's credentials still kept from the upstream (MCP forbids
// token passthrough). No upstream credential is set: the policy chose
// none for a request it denied.
//
// A request claiming 2026-07-28 in its MCP-Protocol-Version header loses
// its Mcp-Session-Id as an allowed one would (statelessSessionStep): the
// revision's standard headers make the header the claim.
func (d *Decision) dryRunAllowed(r *Request) *Decision {
	a := &Decision{
		ID: d.ID, Allow: true, Code: d.Code, Reason: "dry run: " + d.Reason, Scopes: d.Scopes,
		Revision: d.Revision, Messages: d.Messages, Method: d.Method, Tool: d.Tool, Subject: d.Subject,
		DryRun: true, Token: d.Token, Errors: d.Errors,
		UpstreamHeaders: []Header{{Name: DecisionIDHeader, Value: d.ID}},
		RemoveHeaders:   removedHeaders,
	}
	if queryHasAccessToken(r.Path) {
		a.RemoveQueryParams = accessTokenParam
	}
	if _, ok := r.Headers["mcp-session-id"]; ok && stateless(r.Headers["mcp-protocol-version"]) {
		a.RemoveHeaders = append(slices.Clip(a.RemoveHeaders), "mcp-session-id")
	}
	return a
}

func (d *Decision) setJSONBody(b []byte) {
	d.Body = b
	d.ResponseHeaders = append(d.ResponseHeaders, Header{Name: "content-type", Value: "application/json"})
}

// outcome pairs one message with what the policy said of it.
type outcome struct {
	msg *mcp.Message
	res policyResult
	// hidden: a tools/call of a tool the visible rule hides (hidden.go).
	hidden bool
	// pin: a tools/call the policy allowed that its tool's pin refuses
	// (pins.go); nil otherwise.
	pin *pinRefusal
}

// finishHTTPOnly completes a decision for GET and DELETE, which carry no message.
func (e *Engine) finishHTTPOnly(d *Decision, res policyResult, tok *token.Result) {
	if res.err != nil {
		e.log.Error("policy evaluation failed; denying", "decision_id", d.ID, "error", res.err)
		d.Errors = append(d.Errors, res.err.Error())
	}
	d.Scopes = res.scopes
	if res.err == nil && res.allow {
		d.Allow = true
		d.Code = CodeAllowed
		d.UpstreamHeaders = res.headers
		d.ResponseHeaders = res.respHeaders
		d.RemoveHeaders = removedHeaders
		d.UpstreamCredential = res.upstream
		d.RateLimit = res.rateLimit
		return
	}
	reason := res.reason
	if reason == "" {
		reason = "denied by policy"
	}
	if res.err != nil {
		reason = "policy evaluation failed"
	}
	// An explicit decision.status is the policy's word and wins over the
	// automatic 401/403 challenges.
	if res.status == 0 && e.challenge(d, tok, res.scopes, reason) {
		return
	}
	// GET and DELETE carry no message: there is no id to answer.
	d.refuse(denial{kind: refuseNoReply, reason: reason, evalFailed: res.err != nil,
		status: res.status, headers: res.respHeaders})
}

// removedHeaders are never forwarded upstream: the token was meant for us
// (MCP forbids token passthrough).
var removedHeaders = []string{"authorization"}

// challenge turns a denial into 401 (no valid token) or 403 insufficient_scope
// (valid token lacking scopes the policy says are needed). It reports whether
// it did.
func (e *Engine) challenge(d *Decision, tok *token.Result, scopes []string, reason string) bool {
	if !tok.Valid {
		desc := ""
		if tok.Present {
			desc = tokenErrorDescription(tok)
		}
		c := oauth.Challenge401(e.opts.MetadataURL, tok.Present, desc)
		if e.opts.DPoPRequired {
			// Only DPoP-bound tokens are accepted: the DPoP challenge alone.
			code := ""
			if tok.Present {
				code = "invalid_token"
			}
			c = e.dpopChallenge(code, desc)
		}
		d.refuse(denial{kind: refuseUnauthenticated, reason: "authentication required: " + tokenReason(tok), challenge: c})
		return true
	}
	if len(scopes) > 0 && !tok.HasScopes(scopes) {
		d.refuse(denial{kind: refuseInsufficientScope, reason: reason,
			challenge: oauth.Challenge403(e.opts.MetadataURL, scopes, "this operation needs scope "+strings.Join(scopes, " "))})
		return true
	}
	return false
}

func tokenReason(tok *token.Result) string {
	if !tok.Present {
		return "no bearer token"
	}
	if tok.Detail != "" {
		return "token " + tok.Error + ": " + tok.Detail
	}
	return "token " + tok.Error
}

// tokenErrorDescription is the challenge's error_description: public, so
// it says what is wrong with the token in general terms, never what the
// token holds.
func tokenErrorDescription(tok *token.Result) string {
	switch tok.Error {
	case token.ErrExpired:
		return "the access token expired"
	case token.ErrNotYetValid:
		return "the access token is not yet valid"
	case token.ErrWrongAudience:
		if tok.Resource != "" {
			return "the access token was not issued for this resource (" + tok.Resource + ")"
		}
		return "the access token was not issued for this resource"
	case token.ErrWrongIssuer:
		return "the access token was issued by an untrusted issuer"
	case token.ErrMalformed:
		return "the access token is malformed"
	case token.ErrAlgNotAllowed:
		return "the access token's signing algorithm is not allowed"
	case token.ErrInactive:
		return "the access token is not active"
	case token.ErrUnavailable:
		return "the access token could not be verified now"
	}
	return "the access token is invalid"
}

// finishMessages completes a decision for a body of one or more messages.
// Any denied element denies the whole body.
func (e *Engine) finishMessages(d *Decision, outs []outcome, batch bool, tok *token.Result) {
	var (
		denied    []int
		allScopes []string
		upstream  []Header
		respHdrs  []Header
	)
	for i := range outs {
		o := &outs[i]
		if o.res.err != nil {
			e.log.Error("policy evaluation failed; denying", "decision_id", d.ID, "message", i, "error", o.res.err)
			d.Errors = append(d.Errors, o.res.err.Error())
		}
		allScopes = appendUnique(allScopes, o.res.scopes...)
		if o.res.err != nil || !o.res.allow {
			denied = append(denied, i)
			continue
		}
		upstream = append(upstream, o.res.headers...)
		respHdrs = append(respHdrs, o.res.respHeaders...)
	}
	d.Scopes = allScopes
	if len(denied) == 0 {
		d.Allow = true
		d.Code = CodeAllowed
		d.UpstreamHeaders = upstream
		d.ResponseHeaders = respHdrs
		d.RemoveHeaders = removedHeaders
		d.UpstreamCredential = upstreamChoice(outs)
		d.RateLimit = rateLimitOf(outs)
		return
	}

	first := &outs[denied[0]]
	reason := denyReason(first.res)
	if batch {
		reason = fmt.Sprintf("batch element %d denied: %s", denied[0], reason)
	}
	// Scopes needed by the denied elements decide step-up: one challenge
	// lists every scope they need.
	var deniedScopes []string
	anyEvalErr := false
	for _, i := range denied {
		deniedScopes = appendUnique(deniedScopes, outs[i].res.scopes...)
		anyEvalErr = anyEvalErr || outs[i].res.err != nil
	}
	// A pin refuses a call the policy allowed: no token would change that.
	if first.pin == nil && first.res.status == 0 && !anyEvalErr && e.challenge(d, tok, deniedScopes, reason) {
		return
	}
	if anyEvalErr && !tok.Valid && e.challenge(d, tok, nil, reason) {
		return
	}

	dn := denial{reason: reason, evalFailed: first.res.err != nil, status: first.res.status}
	for _, i := range denied {
		dn.headers = append(dn.headers, outs[i].res.respHeaders...)
	}

	// A denied notification or response has no id to answer: 403, no body.
	hasRequest := false
	for i := range outs {
		if outs[i].msg.Kind == mcp.KindRequest {
			hasRequest = true
			break
		}
	}
	switch {
	case !hasRequest:
		dn.kind = refuseNoReply
	case !batch:
		dn.entry = denialEntry(first)
		dn.kind = dn.entry.kind
	default:
		// One JSON-RPC entry per request element, in order: the denied ones
		// say why, the others say that the batch was refused because of them.
		dn.kind = refuseBatch
		for i := range outs {
			o := &outs[i]
			if o.msg.Kind != mcp.KindRequest {
				continue
			}
			if o.res.err != nil || !o.res.allow {
				dn.entries = append(dn.entries, denialEntry(o))
			} else {
				dn.entries = append(dn.entries, answer{kind: refuseRPCError, id: o.msg.ID, message: reason})
			}
		}
	}
	d.refuse(dn)
}

func denyReason(res policyResult) string {
	if res.err != nil {
		return "policy evaluation failed"
	}
	if res.reason != "" {
		return res.reason
	}
	return "denied by policy"
}

// denialEntry is the JSON-RPC answer to one denied request: the policy's
// jsonrpc_error when it gave one, a tool error result for tools/call (so
// the model reads why and adapts), else an error.
func denialEntry(o *outcome) answer {
	if o.hidden {
		return answer{kind: refuseHiddenTool, id: o.msg.ID, message: "Unknown tool: " + o.msg.Tool.Name}
	}
	if o.pin != nil {
		return answer{kind: o.pin.kind, id: o.msg.ID, message: o.pin.message}
	}
	reason := denyReason(o.res)
	if o.res.rpcCode != 0 {
		msg := o.res.rpcMessage
		if msg == "" {
			msg = reason
		}
		return answer{kind: refuseRPCError, id: o.msg.ID, rpc: o.res.rpcCode, message: msg}
	}
	if o.msg.Method == "tools/call" {
		return answer{kind: refuseToolError, id: o.msg.ID, message: reason}
	}
	return answer{kind: refuseRPCError, id: o.msg.ID, message: reason}
}

type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

type rpcErrorReply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Error   rpcError        `json:"error"`
}

type textContent struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type toolResult struct {
	Content []textContent `json:"content"`
	IsError bool          `json:"isError"`
}

type toolReply struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  toolResult      `json:"result"`
}

var nullID = json.RawMessage("null")

func rawID(id []byte) json.RawMessage {
	if len(id) == 0 {
		return nullID
	}
	return id
}

// rpcErrorBody renders a JSON-RPC error reply. Denials are the cold path, so
// encoding/json is fine here.
func rpcErrorBody(id []byte, code int, msg string, data []byte) []byte {
	b, _ := json.Marshal(rpcErrorReply{JSONRPC: "2.0", ID: rawID(id), Error: rpcError{Code: code, Message: msg, Data: data}})
	return b
}

func toolErrorBody(id []byte, reason string) []byte {
	b, _ := json.Marshal(toolReply{JSONRPC: "2.0", ID: rawID(id), Result: toolResult{
		Content: []textContent{{Type: "text", Text: reason}},
		IsError: true,
	}})
	return b
}

func appendUnique(dst []string, src ...string) []string {
outer:
	for _, s := range src {
		for _, d := range dst {
			if d == s {
				continue outer
			}
		}
		dst = append(dst, s)
	}
	return dst
}

func sortHeaders(hs []Header) {
	sort.Slice(hs, func(i, j int) bool { return hs[i].Name < hs[j].Name })
}

// validHeaderName reports whether s is an HTTP token, lowercase as Envoy
// expects, so a policy cannot inject a malformed header.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}
