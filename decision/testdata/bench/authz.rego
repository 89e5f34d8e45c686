# Benchmark policy: the reference policy of docs/performance.md. It has the
# three checks a typical deployment has, written the way OPA evaluates
# cheaply (indexed equality tests and membership, no comprehensions, no
# functions, no strings built on the allow path):
#   - a scope check (the scope each method needs, from data),
#   - a tool allowlist per route (input.context.mcp_server),
#   - an argument rule: read_file may only read plain paths under a root.
package mcp.authz

cfg := data.mcpauthz.config

default decision := {"allow": false, "reason": "denied by policy"}

decision := {"allow": true} if {
	allowed
} else := {"allow": false, "reason": "this method needs a scope the token lacks", "scopes": [scope]} if {
	input.token.valid
	scope := cfg.method_scope[input.mcp.method]
	not scope in input.token.scopes
} else := {"allow": false, "reason": "tool not allowed on this route, or arguments refused"} if {
	input.token.valid
	input.mcp.method == "tools/call"
}

# Methods that need no scope.
allowed if {
	input.token.valid
	cfg.open_methods[input.mcp.method]
}

allowed if {
	input.token.valid
	input.mcp.method == "tools/call"
	cfg.method_scope["tools/call"] in input.token.scopes
	input.mcp.tool.name in cfg.server_tools[input.context.mcp_server]
	arguments_ok
}

arguments_ok if input.mcp.tool.name != "read_file"

arguments_ok if {
	path := input.mcp.tool.arguments.path
	startswith(path, cfg.read_file_root)
	not contains(path, "..")
	not contains(path, "//")
}
