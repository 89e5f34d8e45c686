package decision

import (
	"strings"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// This file chooses every denial's answer: its code, HTTP status,
// JSON-RPC code, headers and body come from denyTable, and Decision.refuse
// is the one place that writes them. A new kind of refusal is a refusal
// constant and a row of denyTable; its call site names the refusal and
// gives the words (reason, id, challenge), never a status or a code.

// Code says why a decision came out as it did. It is the label of
// mcpauthz_decisions_total, the "code" of decision logs, Envoy dynamic
// metadata and the Decision API; its values never change. Decision.Code
// holds it as a string for those readers, so the constants below are
// untyped: they compare with either.
type Code string

// The codes of decisions.
const (
	CodeAllowed           = "allowed"
	CodePolicyDenied      = "policy_denied"
	CodeUnauthenticated   = "unauthenticated"
	CodeInsufficientScope = "insufficient_scope"
	CodeParseError        = "request_parse_error"
	CodeBodyTooLarge      = "body_too_large"
	CodeHintMismatch      = "hint_mismatch"
	CodeEvalError         = "eval_error"
	CodeNoPolicy          = "no_policy"
	// CodeUnreadable is the code of a request that its transport could
	// not read (Request.Unreadable): Envoy sent a CheckRequest that is not
	// protobuf, or metadata that cannot be decoded.
	CodeUnreadable = "unreadable_request"
	// CodeInternalError is the code of a decision whose making panicked:
	// the request is denied, the panic and its stack are logged, and the
	// decision counts under this code like any other.
	CodeInternalError = "internal_error"
	// CodeUpstreamUnavailable is the code of a request the policy allowed
	// whose upstream credential could not be had: the token exchange
	// failed, or the policy chose an entry that does not exist.
	CodeUpstreamUnavailable = "upstream_credential_unavailable"
	// CodeUnsupportedProtocolVersion is the code of a request whose MCP
	// revision (header or params._meta) is not in mcp.protocol_versions.
	CodeUnsupportedProtocolVersion = "unsupported_protocol_version"
	// CodeOriginNotAllowed is the code of a request whose Origin header is
	// neither the MCP endpoint's origin nor in http.allowed_origins.
	CodeOriginNotAllowed = "origin_refused"
	// CodeToolPinMismatch is the code of a tools/call of a tool whose
	// definition, as its server last listed it, does not match its pin
	// (data.mcpauthz.tools[<name>].sha256).
	CodeToolPinMismatch = "tool_pin_mismatch"
	// CodeInvalidArguments is the code of a tools/call whose arguments do
	// not validate against its tool's pinned input schema
	// (data.mcpauthz.tools[<name>].input_schema).
	CodeInvalidArguments = "invalid_arguments"
	// CodeSessionsFull is the code of a request that would bind a new
	// session when the session table is full (sessions.max_sessions): new
	// sessions are refused, bound ones are never forgotten to make room.
	CodeSessionsFull = "sessions_full"
	// CodeStateUnavailable is the code of a request whose session could
	// not be looked up or bound: the session store failed.
	CodeStateUnavailable = "state_unavailable"
	// CodeMethodNotAllowed is the code of a GET or DELETE of a revision
	// without sessions or streams to open (2026-07-28): 405, as MCP says.
	CodeMethodNotAllowed = "method_refused"
	// CodeInvalidDPoPProof is the code of a request with a DPoP-bound
	// token whose proof is missing, refused or used before (RFC 9449).
	CodeInvalidDPoPProof = "invalid_dpop_proof"
	// CodeUseDPoPNonce is the code of a request whose DPoP proof lacks a
	// valid server nonce where tokens.dpop.nonce is enabled: the 401 says
	// use_dpop_nonce and gives a fresh nonce in DPoP-Nonce (RFC 9449 §8).
	CodeUseDPoPNonce = "use_dpop_nonce"
	// CodeConfirmationRequired is the code of a call the policy allows once
	// the caller's user confirms it (decision.confirm): answered with an
	// input_required result, or refused saying confirmation is needed.
	CodeConfirmationRequired = "confirmation_required"
)

// CodeJSONRPCDenied is the JSON-RPC error code of a policy denial of a
// non-tool request. It lies outside the range -32768..-32000 that JSON-RPC
// reserves, as application codes must.
const CodeJSONRPCDenied = -31001

// CodeHeaderMismatch is the JSON-RPC code MCP (2026-07-28) gives a request
// whose Mcp-Method or Mcp-Name header disagrees with its body.
const CodeHeaderMismatch = -32020

// refusal is a kind of denial: a row of denyTable.
type refusal uint8

const (
	refuseUnreadable refusal = iota
	refuseNoPolicy
	refuseBodyTooLarge
	refuseParseError
	refuseInvalidRequest
	refuseInvalidParams
	refuseHintMismatch
	refuseSessionNotFound
	refuseUnauthenticated
	refuseInsufficientScope
	refuseNoReply
	refuseToolError
	refuseRPCError
	refuseBatch
	refuseInternalError
	refuseUpstreamCredential
	refuseUnsupportedVersion
	refuseBatchRemoved
	refuseOrigin
	refuseHiddenTool
	refusePinMismatch
	refuseInvalidArguments
	refuseMethodNotFound
	refuseRepeatedHeader
	refuseBodyNotAllowed
	refuseMethodNotAllowed
	refuseSessionsFull
	refuseStateUnavailable
	refuseDPoPProof
	refuseDPoPNonce
	refuseTokenBinding
	refuseInputRequired
	refuseConfirmTool
	refuseConfirmRPC
	numRefusals
)

// bodyShape is what a denial's body holds.
type bodyShape uint8

const (
	// noBody: the status (and headers) alone.
	noBody bodyShape = iota
	// rpcErrorShape: {"jsonrpc":"2.0","id":<id>,"error":{"code":<rpc>,"message":<message>}}.
	rpcErrorShape
	// toolErrorShape: {"jsonrpc":"2.0","id":<id>,"result":{"content":[{"type":"text","text":<message>}],"isError":true}},
	// which the model reads, and the session lives on.
	toolErrorShape
	// batchShape: [<entry>, ...], one rpcErrorShape or toolErrorShape
	// entry per request element, in order.
	batchShape
	// inputRequiredShape: {"jsonrpc":"2.0","id":<id>,"result":{"resultType":"input_required",
	// "inputRequests":{"io.mcpauthz/confirm":<elicitation/create form>},"requestState":<state>}}
	// (confirmflow.go).
	inputRequiredShape
	// toolErrorMetaShape: toolErrorShape whose result carries
	// _meta["io.modelcontextprotocol/authorization"] (the entry's data).
	toolErrorMetaShape
)

// denyRow is the answer to one kind of refusal.
type denyRow struct {
	what   string // the case, for people
	code   Code
	status int
	// rpc is the JSON-RPC error code of an rpcErrorShape body.
	rpc  int
	body bodyShape
	// message is the body's message when it is not the reason.
	message string
	// challenge: the denial sets WWW-Authenticate (RFC 6750, with the
	// RFC 9728 resource_metadata) to denial.challenge.
	challenge bool
	// headers are set on every such denial (Allow, Retry-After).
	headers []Header
	// policy: the policy chose this denial, so its decision.status,
	// response_headers and jsonrpc_error apply, and a failed evaluation
	// counts as eval_error.
	policy bool
}

// denyTable holds every refusal, in the order a request meets them.
var denyTable = [numRefusals]denyRow{
	refuseUnreadable: {what: "a request its transport cannot read (not protobuf, bad metadata)",
		code: CodeUnreadable, status: 400, rpc: mcp.CodeParseError, body: rpcErrorShape},
	refuseNoPolicy: {what: "no policy loaded yet",
		code: CodeNoPolicy, status: 503},
	refuseBodyTooLarge: {what: "truncated body, or larger than limits.max_body_bytes",
		code: CodeBodyTooLarge, status: 413, rpc: mcp.CodeInvalidRequest, body: rpcErrorShape},
	refuseParseError: {what: "malformed JSON, not UTF-8, or nested too deep",
		code: CodeParseError, status: 400, rpc: mcp.CodeParseError, body: rpcErrorShape},
	refuseInvalidRequest: {what: "JSON that is not a JSON-RPC 2.0 message, or an ambiguous one",
		code: CodeParseError, status: 400, rpc: mcp.CodeInvalidRequest, body: rpcErrorShape},
	refuseInvalidParams: {what: "bad params of tools/call, prompts/get or resources/*",
		code: CodeParseError, status: 400, rpc: mcp.CodeInvalidParams, body: rpcErrorShape},
	refuseHintMismatch: {what: "Envoy's MCP filter, a standard header (MCP-Protocol-Version, Mcp-Method, Mcp-Name) or _meta disagrees with the body, or a header its revision requires is missing or malformed",
		code: CodeHintMismatch, status: 400, rpc: CodeHeaderMismatch, body: rpcErrorShape},
	refuseSessionNotFound: {what: "a request whose Mcp-Session-Id is bound to another owner (issuer and subject): any from an authenticated caller, and a GET, DELETE, notification or response from anyone",
		code: CodePolicyDenied, status: 404},
	refuseUnauthenticated: {what: "no token, or an invalid one",
		code: CodeUnauthenticated, status: 401, challenge: true},
	refuseInsufficientScope: {what: "a valid token without all of decision.scopes (step-up)",
		code: CodeInsufficientScope, status: 403, challenge: true},
	refuseNoReply: {what: "denied notification or response, or a denied GET or DELETE: no id to answer",
		code: CodePolicyDenied, status: 403, policy: true},
	refuseToolError: {what: "other denial of tools/call",
		code: CodePolicyDenied, status: 200, body: toolErrorShape, policy: true},
	refuseRPCError: {what: "other denial of a request",
		code: CodePolicyDenied, status: 200, rpc: CodeJSONRPCDenied, body: rpcErrorShape, policy: true},
	refuseBatch: {what: "a batch with a denied element",
		code: CodePolicyDenied, status: 200, body: batchShape, policy: true},
	refuseInternalError: {what: "a panic while deciding",
		code: CodeInternalError, status: 500, rpc: mcp.CodeInternalError, body: rpcErrorShape,
		message: "internal error; the request was not authorized"},
	refuseUpstreamCredential: {what: "an allowed request whose upstream credential cannot be had (token exchange failed)",
		code: CodeUpstreamUnavailable, status: 503},
	refuseUnsupportedVersion: {what: "an MCP revision (MCP-Protocol-Version or params._meta) not in mcp.protocol_versions",
		code: CodeUnsupportedProtocolVersion, status: 400, rpc: CodeUnsupportedVersion, body: rpcErrorShape},
	refuseBatchRemoved: {what: "a JSON-RPC batch in a request of 2025-06-18 or later (mcp.batches)",
		code: CodeParseError, status: 400, rpc: mcp.CodeInvalidRequest, body: rpcErrorShape},
	refuseOrigin: {what: "an Origin header that is neither the MCP endpoint's origin nor in http.allowed_origins",
		code: CodeOriginNotAllowed, status: 403, rpc: CodeOriginRefused, body: rpcErrorShape},
	refuseHiddenTool: {what: "a tools/call of a tool the visible rule hides from the caller: answered as if the tool did not exist",
		code: CodePolicyDenied, status: 200, rpc: mcp.CodeInvalidParams, body: rpcErrorShape},
	// The two pin refusals answer as the MCP server answers an unknown
	// tool or bad arguments: a JSON-RPC error in a 200, so the client's
	// session goes on and the model reads why.
	refusePinMismatch: {what: "a tools/call of a tool whose definition, as its server last listed it, does not match its pin: answered as if the tool did not exist",
		code: CodeToolPinMismatch, status: 200, rpc: mcp.CodeInvalidParams, body: rpcErrorShape},
	refuseInvalidArguments: {what: "a tools/call whose arguments do not validate against its tool's pinned input schema",
		code: CodeInvalidArguments, status: 200, rpc: mcp.CodeInvalidParams, body: rpcErrorShape},
	// A method the request's revision does not have: refused before its
	// params are read, never passed on (SEP-2575).
	refuseMethodNotFound: {what: "a request of 2026-07-28 or later for a method its revision does not have (removed, or in no revision)",
		code: CodeParseError, status: 404, rpc: mcp.CodeMethodNotFound, body: rpcErrorShape},
	refuseRepeatedHeader: {what: "a single-valued header (Mcp-Session-Id, MCP-Protocol-Version, Mcp-Method, Mcp-Name, Authorization, DPoP, Origin, Last-Event-ID) holding a comma: sent twice and joined by Envoy, or a value two readers read differently",
		code: CodeParseError, status: 400, rpc: mcp.CodeInvalidRequest, body: rpcErrorShape},
	refuseBodyNotAllowed: {what: "a GET or DELETE with a body",
		code: CodeParseError, status: 400, rpc: mcp.CodeInvalidRequest, body: rpcErrorShape},
	refuseMethodNotAllowed: {what: "a GET or DELETE claiming a revision without sessions (2026-07-28)",
		code: CodeMethodNotAllowed, status: 405, headers: []Header{{Name: "allow", Value: "POST"}}},
	refuseSessionsFull: {what: "an allowed request that would bind a new session when the session table is full (sessions.max_sessions)",
		code: CodeSessionsFull, status: 503, rpc: CodeServerBusy, body: rpcErrorShape},
	refuseStateUnavailable: {what: "a request whose session could not be looked up or bound: the session store failed",
		code: CodeStateUnavailable, status: 503, rpc: CodeServerBusy, body: rpcErrorShape,
		headers: []Header{{Name: "retry-after", Value: "1"}}},
	refuseDPoPProof: {what: "a DPoP-bound token whose DPoP proof is missing, refused by a check of RFC 9449 §4.3, or used before (jti)",
		code: CodeInvalidDPoPProof, status: 401, challenge: true},
	refuseDPoPNonce: {what: "a DPoP-bound token whose otherwise valid proof has no server nonce, or a stale or forged one, where tokens.dpop.nonce is enabled; the answer's DPoP-Nonce header holds a fresh nonce",
		code: CodeUseDPoPNonce, status: 401, challenge: true},
	refuseTokenBinding: {what: "a valid token sent as its binding does not allow: a DPoP-bound one as Bearer, an unbound one with the DPoP scheme or where tokens.dpop.required, a certificate-bound one without its certificate, an unreadable cnf",
		code: CodeUnauthenticated, status: 401, challenge: true},
	// decision.confirm (confirmflow.go): the call is held until the
	// caller's user confirms it; answered as MCP answers a call that needs
	// input, so the session goes on.
	refuseInputRequired: {what: "a call the policy allows once the caller's user confirms it (decision.confirm), from a 2026-07-28 client that declares form elicitation",
		code: CodeConfirmationRequired, status: 200, body: inputRequiredShape},
	refuseConfirmTool: {what: "a tools/call the policy allows once confirmed, whose caller cannot be asked (older revision, no form elicitation, no confirm.keys, unauthenticated)",
		code: CodeConfirmationRequired, status: 200, body: toolErrorMetaShape},
	refuseConfirmRPC: {what: "any other request the policy allows once confirmed, whose caller cannot be asked",
		code: CodeConfirmationRequired, status: 200, rpc: CodeJSONRPCDenied, body: rpcErrorShape},
}

// CodeServerBusy is the JSON-RPC code of a request refused because the
// server cannot take it now (its session table is full or its session
// store failed): a server error of the transport, -32000, as the MCP SDKs
// answer a session they cannot serve.
const CodeServerBusy = -32000

// CodeOriginRefused is the JSON-RPC code of a request refused for its
// Origin header: a server error of the transport (-32000, as the MCP
// SDKs answer it), not a JSON-RPC one.
const CodeOriginRefused = -32000

// parseRefusal is the refusal of a body the parser rejected with JSON-RPC
// code rpc (mcp.Error.Code).
func parseRefusal(rpc int) refusal {
	switch rpc {
	case mcp.CodeInvalidRequest:
		return refuseInvalidRequest
	case mcp.CodeInvalidParams:
		return refuseInvalidParams
	}
	return refuseParseError
}

// answer is the JSON-RPC entry that answers one refused request.
type answer struct {
	kind refusal // refuseToolError or refuseRPCError
	id   []byte  // nil: null
	// rpc is the policy's jsonrpc_error.code (policy rows); 0 keeps the
	// table's.
	rpc     int
	message string // the table's message, when it has one, wins
	// data is the error's data member, raw JSON; nil: none.
	data []byte
	// state is an input_required answer's sealed requestState.
	state string
}

// erase passes the answer's message and data through redact.String (see
// Decision.refuse): data may quote what the client sent, as
// unsupported_protocol_version's "requested" does.
func (a *answer) erase() {
	a.message = redact.String(a.message)
	if len(a.data) > 0 {
		if s := redact.String(string(a.data)); s != string(a.data) {
			a.data = []byte(s)
		}
	}
}

// denial is one refusal and the words of its answer.
type denial struct {
	kind   refusal
	reason string
	// evalFailed: the policy's evaluation failed (policy rows).
	evalFailed bool
	// challenge is the WWW-Authenticate value (challenge rows).
	challenge string
	// status and headers are the policy's decision.status and
	// response_headers (policy rows); status 0 keeps the table's.
	status  int
	headers []Header
	// entry is the body's JSON-RPC entry, when the row has one; its
	// message defaults to the reason.
	entry answer
	// entries are a batch's entries, one per request element.
	entries []answer
}

// refuse makes d the denial dn, as denyTable says.
func (d *Decision) refuse(dn denial) {
	// A reason may quote what the client sent (an Origin, a protocol
	// version, a header): a credential sent there is erased before the
	// reason reaches the client, Envoy's metadata or any log. Reasons
	// without a credential's marks cost one scan and no allocation.
	dn.reason = redact.String(dn.reason)
	dn.entry.erase()
	for i := range dn.entries {
		dn.entries[i].erase()
	}
	row := &denyTable[dn.kind]
	code := row.code
	if row.policy && dn.evalFailed {
		code = CodeEvalError
	}
	d.deny(string(code), dn.reason)
	d.Status = row.status
	d.ResponseHeaders = append(d.ResponseHeaders, row.headers...)
	if row.policy {
		d.ResponseHeaders = append(d.ResponseHeaders, dn.headers...)
		if dn.status != 0 {
			d.Status = dn.status
		}
	}
	if row.challenge {
		d.ResponseHeaders = append(d.ResponseHeaders, Header{Name: "www-authenticate", Value: dn.challenge})
	}
	switch row.body {
	case rpcErrorShape, toolErrorShape, inputRequiredShape, toolErrorMetaShape:
		a := dn.entry
		a.kind = dn.kind
		if a.message == "" {
			a.message = dn.reason
		}
		d.setJSONBody(a.render())
	case batchShape:
		var b strings.Builder
		b.WriteByte('[')
		for i, a := range dn.entries {
			if i > 0 {
				b.WriteByte(',')
			}
			b.Write(a.render())
		}
		b.WriteByte(']')
		d.setJSONBody([]byte(b.String()))
	}
}

// revoke turns an allowed decision into the denial dn, dropping what the
// allow would have sent (an after-policy step refusing the request).
func (d *Decision) revoke(dn denial) {
	d.UpstreamHeaders, d.ResponseHeaders, d.RemoveHeaders, d.RemoveQueryParams = nil, nil, nil, nil
	d.UpstreamCredential, d.RateLimit = "", nil
	d.refuse(dn)
}

// render writes the entry as its row's body shape says.
func (a answer) render() []byte {
	row := &denyTable[a.kind]
	msg := a.message
	if row.message != "" {
		msg = row.message
	}
	switch row.body {
	case toolErrorShape:
		return toolErrorBody(a.id, msg)
	case inputRequiredShape:
		return inputRequiredBody(a.id, msg, a.state)
	case toolErrorMetaShape:
		return toolErrorMetaBody(a.id, msg, a.data)
	}
	rpc := row.rpc
	if row.policy && a.rpc != 0 {
		rpc = a.rpc
	}
	return rpcErrorBody(a.id, rpc, msg, a.data)
}

func (d *Decision) deny(code, reason string) {
	d.Allow = false
	d.Code = code
	d.Reason = reason
}

// AllCodes returns every code a decision can have: allowed, then the
// codes of denyTable in its order.
func AllCodes() []Code {
	codes := []Code{CodeAllowed}
	add := func(c Code) {
		for _, have := range codes {
			if have == c {
				return
			}
		}
		codes = append(codes, c)
	}
	for i := range denyTable {
		add(denyTable[i].code)
		if denyTable[i].policy {
			add(CodeEvalError)
		}
	}
	return codes
}

// CodesHelp is the help text of mcpauthz_decisions_total{code}: it names
// every code, so that it cannot drift from denyTable.
func CodesHelp() string {
	codes := AllCodes()
	names := make([]string, len(codes))
	for i, c := range codes {
		names[i] = string(c)
	}
	return "Decisions made, by code (" + strings.Join(names, ", ") + ")."
}

// InternalError is the denial of a request that could not be decided at
// all (an adapter that cannot encode its answer, or whose engine failed
// too): 500 with a JSON-RPC internal error, as denyTable says. It has no
// decision id.
func InternalError() *Decision {
	d := &Decision{}
	d.refuse(denial{kind: refuseInternalError, reason: "internal error"})
	return d
}
