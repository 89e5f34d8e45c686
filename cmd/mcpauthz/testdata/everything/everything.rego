# Policy for @modelcontextprotocol/server-everything, the MCP reference
# server, in the end-to-end test of `mcpauthz proxy`. It is served beside
# the default bundle (policies/) with `policy.package: everything.authz`,
# keeps every rule of the default policy (token, session binding, scopes)
# and adds, from data.everything.config:
#
#   - a tool allowlist (tools): the other tools are hidden from every
#     caller's tools/list, and a call to one is answered as if the tool did
#     not exist (the engine's -32602 for a hidden tool);
#   - one argument rule: get-sum adds numbers of at most get_sum_limit
#     (absolute value).
package everything.authz

import data.mcp.authz as base

default offered_tools := set()

offered_tools := {t | some t in data.everything.config.tools}

default get_sum_limit := 0

get_sum_limit := data.everything.config.get_sum_limit

default decision := {
	"allow": false,
	"reason": "denied: no policy rule allows this request",
	"scopes": [],
}

# The default policy's answer stands unless it allows a call this policy
# refuses; the denial keeps the default policy's scopes, which the caller
# holds, so it is not taken for a step-up challenge.
decision := {"allow": false, "reason": denial, "scopes": base.decision.scopes} if {
	base.decision.allow == true
	denial
} else := base.decision

# The tool of a tools/call request; undefined for anything else.
call_tool := input.mcp.tool.name if {
	input.mcp.kind == "request"
	input.mcp.method == "tools/call"
}

denial := sprintf("tool %q is not offered on this server", [call_tool]) if {
	call_tool
	not call_tool in offered_tools
} else := concat("; ", sort(argument_violations)) if {
	count(argument_violations) > 0
}

# Arguments default to {} so that a call without them is checked, not
# skipped on an undefined reference.
default arguments := {}

arguments := input.mcp.tool.arguments if is_object(input.mcp.tool.arguments)

argument_violations contains msg if {
	call_tool == "get-sum"
	some key in ["a", "b"]
	not small_number(object.get(arguments, key, null))
	msg := sprintf("get-sum: %s must be a number between -%v and %v, got %s", [key, get_sum_limit, get_sum_limit, json.marshal(object.get(arguments, key, null))])
}

small_number(x) if {
	is_number(x)
	abs(x) <= get_sum_limit
}

# A list shows what the default policy shows, less the tools not offered.
default visible := false

visible if {
	base.visible
	offered(input.item)
}

offered(item) if item.kind != "tool"

offered(item) if {
	item.kind == "tool"
	item.name in offered_tools
}
