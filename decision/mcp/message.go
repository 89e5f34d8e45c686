// Package mcp parses the JSON-RPC 2.0 messages that MCP clients send over the
// Streamable HTTP transport, into the values that policy input is built from.
//
// It reads only what authorization needs and builds OPA values directly, so
// that no map or JSON round trip sits between the body and the policy.
// It imports no gRPC and no policy engine code beyond OPA's ast value types.
package mcp

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// Kind says which of the three JSON-RPC message shapes a message has.
type Kind uint8

// The JSON-RPC message kinds.
const (
	KindRequest      Kind = iota + 1 // has method and id
	KindNotification                 // has method, no id
	KindResponse                     // has id and result or error, no method
)

// String returns the kind as it appears in policy input.
func (k Kind) String() string {
	switch k {
	case KindRequest:
		return "request"
	case KindNotification:
		return "notification"
	case KindResponse:
		return "response"
	}
	return "unknown"
}

// Message is one JSON-RPC 2.0 message.
type Message struct {
	Kind   Kind
	Method string // exact, case-sensitive; empty for responses

	// ID is the id exactly as sent (raw JSON: a number or a string literal),
	// so a reply can carry it back unchanged. Nil for notifications.
	ID []byte
	// IDValue is the id as a policy value (ast.Number or ast.String); nil for notifications.
	IDValue ast.Value

	// Params is the params object as sent; nil when absent.
	Params ast.Value

	// Target of the operation, by method:
	// tools/call: Tool; resources/read|subscribe|unsubscribe: Resource; prompts/get: Prompt.
	Tool     *Named
	Resource *Resource
	Prompt   *Named

	// Meta is params._meta as sent; nil when absent. Its members that MCP
	// 2026-07-28 defines are read while parsing, into the fields below.
	Meta ast.Object
	// ProtocolVersion is _meta["io.modelcontextprotocol/protocolVersion"]; "" when absent.
	ProtocolVersion string
	// ClientInfo is _meta["io.modelcontextprotocol/clientInfo"] ({name, version, title?}); nil when absent.
	ClientInfo ast.Object
	// ClientCapabilities is _meta["io.modelcontextprotocol/clientCapabilities"]; nil when absent.
	ClientCapabilities ast.Object
}

// The _meta keys of MCP 2026-07-28 that say what a stateless request speaks.
const (
	MetaProtocolVersion    = "io.modelcontextprotocol/protocolVersion"
	MetaClientInfo         = "io.modelcontextprotocol/clientInfo"
	MetaClientCapabilities = "io.modelcontextprotocol/clientCapabilities"
)

// Named is the target of tools/call or prompts/get.
type Named struct {
	Name      string
	Arguments ast.Value // the arguments object as sent; nil when absent
}

// Resource is the target of resources/read, resources/subscribe and resources/unsubscribe.
type Resource struct {
	URI string
}

// Body is a parsed HTTP body: one message, or a JSON-RPC batch.
type Body struct {
	Messages []Message
	Batch    bool // the body was a JSON array
}

// JSON-RPC error codes the parser reports.
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternalError  = -32603
)

// Error is a parse failure, with the JSON-RPC code a reply should carry.
type Error struct {
	Code    int
	Message string
	// Method, ID and ProtocolVersion are the method, raw id and
	// params._meta protocol version (when it could be read) of a single
	// request whose params failed validation (Code CodeInvalidParams):
	// whether its revision has that method at all is decided before its
	// params are. Empty otherwise.
	Method          string
	ID              []byte
	ProtocolVersion string
}

func (e *Error) Error() string { return e.Message }
