package mcp

// requestMethods are the methods MCP defines as requests, in any revision
// from 2024-11-05 to 2026-07-28 and in either direction (the methods a
// server sends a client are refused as notifications too: no server is
// meant to run them, and a generic JSON-RPC server would). From the
// revisions' schema.ts (the interfaces extending Request, JSONRPCRequest or
// PaginatedRequest).
//
// A message with one of these methods and no id is refused: JSON-RPC
// servers run notifications without answering, so a tools/call sent as a
// notification runs the tool, while a policy written for requests (scopes
// asked of requests, answers shaped for requests) may let notifications
// pass (issue 28 row 9).
var requestMethods = map[string]struct{}{
	// Client to server.
	"initialize":               {},
	"ping":                     {}, // both directions
	"server/discover":          {},
	"completion/complete":      {},
	"logging/setLevel":         {},
	"prompts/list":             {},
	"prompts/get":              {},
	"resources/list":           {},
	"resources/templates/list": {},
	"resources/read":           {},
	"resources/subscribe":      {},
	"resources/unsubscribe":    {},
	"subscriptions/listen":     {},
	"tools/list":               {},
	"tools/call":               {},
	"tasks/get":                {}, // tasks: both directions
	"tasks/result":             {},
	"tasks/cancel":             {},
	"tasks/list":               {},
	// Server to client.
	"sampling/createMessage": {},
	"roots/list":             {},
	"elicitation/create":     {},
}

// IsRequestMethod reports whether MCP defines method as a request, which
// must carry an id.
func IsRequestMethod(method string) bool {
	_, ok := requestMethods[method]
	return ok
}
