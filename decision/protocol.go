package decision

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/serverversions"
)

// This file holds a request to the rules of the MCP revision it speaks:
// which revision that is (the MCP-Protocol-Version header and, since
// 2026-07-28, params._meta), whether mcpauthz accepts it, the standard
// headers that revision requires, and batches, which 2025-06-18 removed.

// The MCP revisions mcpauthz knows, oldest first. Revisions are dates, so
// they compare as strings.
const (
	Version20241105 = "2024-11-05"
	Version20250326 = "2025-03-26"
	Version20250618 = "2025-06-18"
	Version20251125 = "2025-11-25"
	Version20260728 = "2026-07-28"
)

// KnownProtocolVersions are the revisions mcpauthz knows: the default of
// MCPOptions.ProtocolVersions.
var KnownProtocolVersions = []string{Version20241105, Version20250326, Version20250618, Version20251125, Version20260728}

// DefaultProtocolVersion is the revision of a request that names none: the
// Streamable HTTP transport says a server assumes 2025-03-26 then.
const DefaultProtocolVersion = Version20250326

// CodeUnsupportedVersion is the JSON-RPC code MCP (2026-07-28) gives a
// request whose protocol version the server does not support.
const CodeUnsupportedVersion = -32022

// Rule says when a version-dependent rule applies.
type Rule uint8

// The ways a version-dependent rule applies.
const (
	// ByVersion applies the rule as the request's revision says.
	ByVersion Rule = iota
	// Always applies it to every request.
	Always
	// Never applies it to none.
	Never
)

// ParseRule reads "by_version", "always" or "never" ("" is by_version).
func ParseRule(s string) (Rule, error) {
	switch s {
	case "", "by_version":
		return ByVersion, nil
	case "always":
		return Always, nil
	case "never":
		return Never, nil
	}
	return 0, fmt.Errorf("%q is not by_version, always or never", s)
}

// MCPOptions say which MCP revisions the engine accepts and how it holds
// a request to its revision's rules. The zero value accepts every known
// revision, defaults to 2025-03-26 and applies every rule by version.
type MCPOptions struct {
	// DefaultProtocolVersion is input.mcp.protocol_version of a request
	// that names none; default DefaultProtocolVersion.
	DefaultProtocolVersion string
	// ProtocolVersions are the revisions accepted; any other gets 400 with
	// -32022. Default KnownProtocolVersions.
	ProtocolVersions []string
	// StandardHeaders: MCP-Protocol-Version and Mcp-Method on every
	// message, Mcp-Name on tools/call, resources/read and prompts/get, are
	// required by 2026-07-28 and later (ByVersion), of every request
	// (Always) or never (Never). Headers that are present are compared with
	// the body whatever this says.
	StandardHeaders Rule
	// Batches: a JSON-RPC batch is accepted in requests of revisions before
	// 2025-06-18 (ByVersion), always (Always) or never (Never).
	Batches Rule
	// Origins are the values of the Origin header accepted besides none:
	// the origin of the MCP endpoint (resource.uri) and http.allowed_origins.
	// Empty accepts any Origin.
	Origins []string
}

func (o *MCPOptions) withDefaults() {
	if o.DefaultProtocolVersion == "" {
		o.DefaultProtocolVersion = DefaultProtocolVersion
	}
	if len(o.ProtocolVersions) == 0 {
		o.ProtocolVersions = KnownProtocolVersions
	}
}

// stateless reports whether revision v has no sessions and requires the
// standard headers (2026-07-28 and later).
func stateless(v string) bool { return v >= Version20260728 }

// noBatches reports whether revision v removed JSON-RPC batches.
func noBatches(v string) bool { return v >= Version20250618 }

// methodChanges is the spec's list of the requests a client sends a
// server, per revision: the methods each revision added and removed (its
// schema's ClientRequest), oldest first. A revision has the methods of the
// entries up to it. A request for a method its revision does not have is
// refused before its params are read (methodRefusal), and never passed on.
var methodChanges = [...]struct {
	version        string
	added, removed []string
}{
	{version: Version20241105, added: []string{
		"initialize", "ping", "completion/complete", "logging/setLevel",
		"prompts/list", "prompts/get", "resources/list", "resources/templates/list",
		"resources/read", "resources/subscribe", "resources/unsubscribe", "tools/list", "tools/call"}},
	// Tasks (SEP-1686), experimental in 2025-11-25 and an extension since.
	{version: Version20251125, added: []string{"tasks/get", "tasks/result", "tasks/list", "tasks/cancel"}},
	// SEP-2575, stateless MCP: no handshake, no ping, no per-session state.
	{version: Version20260728,
		added:   []string{"server/discover", "subscriptions/listen"},
		removed: []string{"initialize", "ping", "logging/setLevel", "resources/subscribe", "resources/unsubscribe"}},
}

// hasMethod reports whether revision v has the client request method.
func hasMethod(v, method string) bool {
	has := false
	for i := range methodChanges {
		c := &methodChanges[i]
		if c.version > v {
			break
		}
		if slices.Contains(c.added, method) {
			has = true
		}
		if slices.Contains(c.removed, method) {
			has = false
		}
	}
	return has
}

// methodRefusal refuses a body holding a request for a method its
// revision v does not have (removed by v, or in no revision): 404 with
// -32601 and the request's id, as SEP-2575 says. Only revisions from
// 2026-07-28 on are held to it: before, a 404 tells the client its session
// is gone, and a method no revision defines is the policy's to decide (the
// default policy refuses it). Notifications and responses are not held to
// it: a receiver ignores a notification it does not know.
func methodRefusal(body *mcp.Body, v string) *protocolRefusal {
	if !stateless(v) {
		return nil
	}
	for i := range body.Messages {
		m := &body.Messages[i]
		if m.Kind != mcp.KindRequest || hasMethod(v, m.Method) {
			continue
		}
		return &protocolRefusal{kind: refuseMethodNotFound, reason: fmt.Sprintf("method %q is not part of MCP %s", m.Method, v)}
	}
	return nil
}

// invalidParamsRefusal is the refusal of a single request whose params
// the parser rejected when its revision has no such method: that it does
// not exist is the answer, whatever its params. Nil when the method exists
// or the revision cannot be told (the parse refusal stands).
func (o *MCPOptions) invalidParamsRefusal(r *Request, perr *mcp.Error) *protocolRefusal {
	if perr.Code != mcp.CodeInvalidParams || perr.Method == "" {
		return nil
	}
	body := mcp.Body{Messages: []mcp.Message{{Kind: mcp.KindRequest, Method: perr.Method, ProtocolVersion: perr.ProtocolVersion}}}
	v, pr := o.protocolVersion(r, &body)
	if pr != nil {
		return nil
	}
	return methodRefusal(&body, v)
}

// protocolRefusal is why a request breaks its revision's rules: the row
// of denyTable, the reason, and the error's data (raw JSON) when it has
// any.
type protocolRefusal struct {
	kind   refusal
	reason string
	data   []byte
	// requested is the version a refuseUnsupportedVersion names.
	requested string
}

// ServerVersions tells which MCP revisions an upstream server supports,
// as its own answers said (decision/serverversions learns them on the
// paths that carry answers: mcpauthz proxy, ext_proc). server is the
// route's mcp_server context (ServerOf); nil: never said.
type ServerVersions interface {
	Versions(server string) []string
}

// AnswersVersions reports whether the answer to a request for method says
// which revisions the server supports (serverversions.Learner).
func AnswersVersions(method string) bool {
	return method == "server/discover" || method == "initialize"
}

// ServerOf is the server a request goes to: its route's mcp_server
// context ("" for none), the key of what is remembered per server (tool
// listings, ServerVersions).
func ServerOf(r *Request) string { return serverOf(r) }

// unsupportedData is the data of the -32022 answer to a request naming
// requested: the revisions that work on this path, those of
// mcp.protocol_versions the request's server is known to support (all of
// them when it never said, or supports none), and the version requested.
func (e *Engine) unsupportedData(r *Request, requested string) []byte {
	supported := e.opts.MCP.ProtocolVersions
	if e.opts.ServerVersions != nil {
		supported = serverversions.Intersect(supported, e.opts.ServerVersions.Versions(serverOf(r)))
	}
	data, _ := json.Marshal(struct {
		Supported []string `json:"supported"`
		Requested string   `json:"requested"`
	}{supported, requested})
	return data
}

// withData fills in the data of pr's answer, when it has any.
func (e *Engine) withData(r *Request, pr *protocolRefusal) *protocolRefusal {
	if pr.kind == refuseUnsupportedVersion && pr.data == nil {
		pr.data = e.unsupportedData(r, pr.requested)
	}
	return pr
}

// revision returns the revision a parsed body speaks, or why the request
// breaks what the body says (Envoy's MCP filter, the standard headers) or
// its revision's rules.
func (e *Engine) revision(r *Request, pol *Policy, body *mcp.Body) (string, *protocolRefusal) {
	if msg := hintMismatch(r, body); msg != "" {
		return "", &protocolRefusal{kind: refuseHintMismatch, reason: msg}
	}
	o := &e.opts.MCP
	v, pr := o.protocolVersion(r, body)
	if pr == nil {
		pr = o.check(r, body, v)
	}
	if pr == nil && !body.Batch {
		if msg := checkParamHeaders(r, &body.Messages[0], pol.params, o.requireHeaders(v)); msg != "" {
			pr = &protocolRefusal{kind: refuseHintMismatch, reason: msg}
		}
	}
	return v, pr
}

// protocolVersion returns the revision the request speaks: the
// MCP-Protocol-Version header and every message's _meta protocolVersion
// must agree, and the agreed value must be accepted.
func (o *MCPOptions) protocolVersion(r *Request, body *mcp.Body) (string, *protocolRefusal) {
	header, hasHeader := r.Headers["mcp-protocol-version"]
	v := header
	for i := range body.Messages {
		mv := body.Messages[i].ProtocolVersion
		switch {
		case mv == "":
		case hasHeader && mv != header:
			return "", &protocolRefusal{kind: refuseHintMismatch,
				reason: fmt.Sprintf("MCP-Protocol-Version header %q disagrees with params._meta protocolVersion %q", header, mv)}
		case v != "" && mv != v:
			return "", &protocolRefusal{kind: refuseHintMismatch,
				reason: fmt.Sprintf("the messages of the batch name protocol versions %q and %q", v, mv)}
		default:
			v = mv
		}
	}
	if !hasHeader && v == "" {
		return o.DefaultProtocolVersion, nil
	}
	if !slices.Contains(o.ProtocolVersions, v) {
		// The answer's data (the versions supported) is the engine's to
		// write: it depends on the server (unsupportedData).
		return "", &protocolRefusal{kind: refuseUnsupportedVersion, requested: v,
			reason: fmt.Sprintf("unsupported protocol version %q", v)}
	}
	return v, nil
}

// check holds a parsed body of revision v to that revision's rules:
// batches and the standard headers.
func (o *MCPOptions) check(r *Request, body *mcp.Body, v string) *protocolRefusal {
	if body.Batch && (o.Batches == Never || (o.Batches == ByVersion && noBatches(v))) {
		return &protocolRefusal{kind: refuseBatchRemoved,
			reason: fmt.Sprintf("JSON-RPC batches are not part of MCP %s", v)}
	}
	if !o.requireHeaders(v) {
		return nil
	}
	if _, ok := r.Headers["mcp-protocol-version"]; !ok {
		return &protocolRefusal{kind: refuseHintMismatch, reason: "the MCP-Protocol-Version header is required"}
	}
	if body.Batch {
		return nil // no one header can mirror several messages
	}
	m := &body.Messages[0]
	if m.Method == "" {
		return nil // a response has no method to mirror
	}
	if _, ok := r.Headers["mcp-method"]; !ok {
		return &protocolRefusal{kind: refuseHintMismatch, reason: "the Mcp-Method header is required"}
	}
	switch m.Method {
	case "tools/call", "resources/read", "prompts/get":
		if _, ok := r.Headers["mcp-name"]; !ok {
			return &protocolRefusal{kind: refuseHintMismatch, reason: "the Mcp-Name header is required for " + m.Method}
		}
	}
	return nil
}

// requireHeaders reports whether a request of revision v must send the
// standard headers (mcp.require_standard_headers).
func (o *MCPOptions) requireHeaders(v string) bool {
	return o.StandardHeaders == Always || (o.StandardHeaders == ByVersion && stateless(v))
}

// headerValue decodes a standard header's value: one written as
// =?base64?<standard base64 of UTF-8>?= (for values a header cannot carry
// as they are) is decoded; ok is false when such a value does not decode.
func headerValue(v string) (string, bool) {
	const prefix, suffix = "=?base64?", "?="
	enc, ok := strings.CutPrefix(v, prefix)
	if ok {
		enc, ok = strings.CutSuffix(enc, suffix)
	}
	if !ok {
		// Read as the MCP SDKs read it: only a value wrapped at both
		// ends is encoded (a client encodes a plain value that is).
		return v, true
	}
	b, err := base64.StdEncoding.DecodeString(enc)
	if err != nil || !utf8.Valid(b) {
		return "", false
	}
	return string(b), true
}

// originAllowed reports whether a request with this Origin header may go
// on: no Origin (not a browser), or one of the accepted origins, compared
// as RFC 6454 serializes them (scheme and host case-insensitively).
func (o *MCPOptions) originAllowed(r *Request) bool {
	origin, ok := r.Headers["origin"]
	if !ok || len(o.Origins) == 0 {
		return true
	}
	for _, a := range o.Origins {
		if strings.EqualFold(origin, a) {
			return true
		}
	}
	return false
}
