# Example bundle: the default mcpauthz rules plus rules on tool arguments.
#
# This file holds the request-level rules (token, session, method, scopes),
# kept short; parameters.rego holds the rules that look inside
# tools/call arguments and the per-route tool allowlist. Both are in package
# mcp.authz, so the engine reads data.mcp.authz.decision as usual.
package mcp.authz

default method_scopes := {}

method_scopes := data.mcpauthz.config.method_scopes

default tool_scopes := {}

tool_scopes := data.mcpauthz.config.tool_scopes

default decision := {
	"allow": false,
	"reason": "denied: no policy rule allows this request",
	"scopes": [],
}

# One deny reason at most (an else chain), then an allow: no input can make
# two decision values, so the policy never fails with a conflict.
decision := object.union({"allow": false, "scopes": required_scopes}, deny) if {
	deny
} else := {"allow": true, "scopes": required_scopes, "headers": upstream_headers, "rate_limit": rate_limit} if {
	not deny
	input.token.valid == true
	known_operation
	count(missing_scope_set) == 0
	count(argument_violations) == 0
}

deny := {
	"reason": "access tokens are not accepted in the query string; send the token in the Authorization header",
	"status": 400,
} if {
	input.http.access_token_in_query == true
} else := {"reason": "authentication required: a valid access token is needed"} if {
	not input.token.valid == true
} else := {
	"reason": "session not found: this MCP session was opened by another user; start a new session",
	"status": 404,
} if {
	owner := input.mcp.session_owner
	owner != object.get(input.token, "subject", "")
} else := {"reason": sprintf("method %q is not allowed by policy", [object.get(input, ["mcp", "method"], "")])} if {
	not known_operation
} else := {"reason": sprintf("%s needs scope(s) %s", [object.get(input, ["mcp", "method"], ""), concat(" ", required_scopes)])} if {
	count(missing_scope_set) > 0
} else := {"reason": route_violation} if {
	route_violation
} else := {"reason": concat("; ", sort(argument_violations))} if {
	count(argument_violations) > 0
}

known_operation if {
	input.mcp.kind == "request"
	input.mcp.method in object.keys(method_scopes)
}

known_operation if input.mcp.kind in {"notification", "response"}

known_operation if {
	not input.mcp
	input.http.method in {"GET", "DELETE"}
}

required_scope_set := {s | some s in object.get(method_scopes, input.mcp.method, [])} | {s |
	input.mcp.method == "tools/call"
	some s in object.get(tool_scopes, input.mcp.tool.name, [])
} if {
	input.mcp.kind == "request"
} else := set()

required_scopes := sort(required_scope_set)

token_scope_set := {s | some s in input.token.scopes}

missing_scope_set := required_scope_set - token_scope_set

default upstream_headers := {}

upstream_headers := {"x-mcp-subject": input.token.subject} if input.token.subject

# A list shows a tool only on the route that serves it, and prompts and
# resources only to callers holding the scope that using them needs.
default visible := false

visible if {
	input.token.valid == true
	input.item.kind == "tool"
	input.item.name in route_tools
	every s in scopes_for_item {
		s in token_scope_set
	}
}

visible if {
	input.token.valid == true
	input.item.kind in {"prompt", "resource"}
	every s in scopes_for_item {
		s in token_scope_set
	}
}

scopes_for_item := {s | some s in object.get(method_scopes, "tools/call", [])} | {s | some s in object.get(tool_scopes, input.item.name, [])} if {
	input.item.kind == "tool"
} else := {s | some s in object.get(method_scopes, "prompts/get", [])} if {
	input.item.kind == "prompt"
} else := {s | some s in object.get(method_scopes, "resources/read", [])} if {
	input.item.kind == "resource"
}
