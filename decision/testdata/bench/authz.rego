# Benchmark policy: the reference policy of docs/performance.md. It has the
# three checks a typical deployment has:
#   - a scope check (the scope each method needs, from data),
#   - a tool allowlist per route (input.context.mcp_server),
#   - an argument rule: read_file may only read plain paths under a root.
#
# It is written the way OPA evaluates cheaply (docs/performance.md, "Writing
# policies that evaluate fast"): every rule OPA enters costs it some ten
# allocations whatever the rule does, so the whole decision is one
# rule whose bodies are tried in order, the common allowed case early, each
# body opening with its cheapest, most selective test; membership is
# tested with `in` on data; no helper rules, no comprehensions, no strings
# built on the allow path. It decides exactly as the equivalent policy with
# helper rules (allowed, arguments_ok) that it replaced, a test checks that
# (TestBenchPolicySameDecisions in decision/bench_test.go).
package mcp.authz

default decision := {"allow": false, "reason": "denied by policy"}

# Methods that need no scope.
decision := {"allow": true} if {
	input.token.valid
	data.mcpauthz.config.open_methods[input.mcp.method]
} else := {"allow": true} if {
	# read_file, on a route that allows it, with a plain path under the root.
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "read_file"
	input.token.valid
	data.mcpauthz.config.method_scope["tools/call"] in input.token.scopes
	"read_file" in data.mcpauthz.config.server_tools[input.context.mcp_server]
	path := input.mcp.tool.arguments.path
	startswith(path, data.mcpauthz.config.read_file_root)
	not contains(path, "..")
	not contains(path, "//")
} else := {"allow": true} if {
	# Any other tool the route allows.
	input.mcp.method == "tools/call"
	input.mcp.tool.name != "read_file"
	input.token.valid
	data.mcpauthz.config.method_scope["tools/call"] in input.token.scopes
	input.mcp.tool.name in data.mcpauthz.config.server_tools[input.context.mcp_server]
} else := {"allow": false, "reason": "this method needs a scope the token lacks", "scopes": [scope]} if {
	input.token.valid
	scope := data.mcpauthz.config.method_scope[input.mcp.method]
	not scope in input.token.scopes
} else := {"allow": false, "reason": "tool not allowed on this route, or arguments refused"} if {
	input.token.valid
	input.mcp.method == "tools/call"
}
