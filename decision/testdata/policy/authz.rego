# Test policy of the decision package: small, and shaped to reach every
# deny path of the engine.
package mcp.authz

default decision := {"allow": false, "reason": "denied by default"}

read_methods := {"initialize", "ping", "tools/list", "resources/list", "prompts/list"}

needed contains "mcp:tools" if input.mcp.method == "tools/call"

needed contains "files:read" if input.mcp.tool.name == "read_file"

problems contains "a valid token is required" if not input.token.valid

problems contains sprintf("scope %s is required", [s]) if {
	some s in needed
	not s in input.token.scopes
}

problems contains "read_file may only read under /data/" if {
	input.mcp.tool.name == "read_file"
	not startswith(input.mcp.tool.arguments.path, "/data/")
}

problems contains sprintf("method %s is not allowed", [input.mcp.method]) if {
	input.mcp.kind == "request"
	input.mcp.method != "tools/call"
	not input.mcp.method in read_methods
}

problems contains "this notification is blocked" if input.mcp.method == "notifications/blocked"

problems contains "tokens in the query string are refused" if input.http.access_token_in_query

decision := {
	"allow": count(problems) == 0,
	"reason": concat("; ", sort([p | some p in problems])),
	"scopes": sort([s | some s in needed]),
	"headers": {"x-mcp-subject": object.get(input.token, "subject", "")},
} if {
	not special
}

special if input.mcp.method in {"custom/status", "custom/rpcerror", "custom/error"}

decision := {"allow": false, "reason": "slow down", "status": 429} if input.mcp.method == "custom/status"

decision := {"allow": false, "jsonrpc_error": {"code": -31999, "message": "custom refusal"}} if input.mcp.method == "custom/rpcerror"

decision := {"allow": to_number(input.mcp.params.n) > 0} if input.mcp.method == "custom/error"
