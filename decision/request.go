// Package decision is the domain of mcpauthz: it takes one HTTP request of
// the MCP Streamable HTTP transport (as Envoy, our own API or the eval command
// present it), verifies its credentials, builds the policy input, evaluates
// the current policy snapshot and answers with a Decision that carries the
// exact response an MCP client understands when the request is denied.
package decision

import (
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// Request is one HTTP request to an MCP endpoint, as the authorizer sees it.
// Adapters (Envoy ext_authz, the Decision API, the eval command) fill it.
type Request struct {
	// Method is the HTTP method (POST, GET, DELETE).
	Method string
	// Path is the request target exactly as received (":path"), query
	// included. It is split at the first '?' and never parsed as a URL.
	// Credential parameters of its query reach the policy input only as
	// Redacted.
	Path string
	// Host is the authority (":authority" or Host header).
	Host string
	// Scheme is the scheme the client used (":scheme", "http" or "https"),
	// as the transport knows it; "" when it does not. It makes the URI a
	// DPoP proof must name, unless tokens.dpop.htu names it.
	Scheme string
	// Headers holds the request headers with lowercase names. The
	// authorization header is read for the token and never reaches policy
	// input; other credential headers reach it only as Redacted.
	Headers map[string]string

	// Body is the request body as forwarded; Truncated says the sender cut it
	// (Envoy's partial body flag, or content-length larger than the body).
	Body      []byte
	Truncated bool

	// SourceAddress and SourcePrincipal describe the peer (from Envoy's
	// attributes.source).
	SourceAddress   string
	SourcePrincipal string
	// SourceCertificate is the client's TLS certificate as Envoy sends it
	// (attributes.source.certificate with include_peer_certificate: the
	// PEM, URL-encoded); "" when there is none. A certificate-bound token
	// (RFC 8705) must match it.
	SourceCertificate string

	// Context holds per-route settings (Envoy context_extensions).
	Context map[string]string

	// Credential is the credential the request presents. The zero value
	// verifies the Bearer credential of the authorization header; a
	// transport that trusts a verification made before it (Envoy's
	// jwt_authn metadata, a trusted API caller, the eval command) sets
	// verified claims instead, or NoCredential when that verification
	// found none, and the header is then not read.
	Credential token.Credential

	// Unreadable, when set, says why the transport could not read the
	// request (a CheckRequest that is not protobuf, say): Decide denies it
	// with 400 instead of the transport failing the call, so the caller's
	// failure mode never decides.
	Unreadable string

	// Hint is what an earlier proxy (Envoy's MCP filter) parsed from the body.
	// The body stays the source of truth: a hint that disagrees denies.
	Hint *Hint

	// ResponseTrusted says that a list answer filtered for this request
	// comes from the MCP server through a channel mcpauthz trusts: the
	// proxy, which read it from the upstream itself, or an authenticated
	// gRPC caller of ext_proc or ExtMcp. Only such answers change what the
	// engine remembers of the pinned tools a server lists (pins.go):
	// anyone who can reach the gRPC port could otherwise clear a detected
	// rug pull, or block a tool for everyone.
	ResponseTrusted bool
}

// Hint is a method, id and target name parsed by someone else before us.
type Hint struct {
	// Method is the method; HintResponse for a JSON-RPC response.
	Method string
	Name   string // tool or prompt name, or resource URI; "" when not given
	// ID is the message id: a string, a float64 (a JSON number), or nil
	// when not given.
	ID any
}

// HintResponse is the method Envoy's MCP filter gives a JSON-RPC response.
const HintResponse = "__jsonrpc_response"

// Header is one response or upstream header.
type Header struct {
	Name  string
	Value string
}
