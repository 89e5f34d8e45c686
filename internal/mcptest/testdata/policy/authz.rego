# The policy of the mcptest scenario (the proxy's tests): a caller sees a tool when its token has the
# scope "tool:<name>" (or "admin"), and may call what it sees; echo refuses
# a text mentioning a secret (an argument rule), transfer needs the scope
# payments:write (a step-up), and debug may be called but is never shown
# (lists and calls agree: the call is refused as an unknown tool).
package mcp.authz

default decision := {"allow": false, "reason": "denied by default"}

valid if input.token.valid == true

decision := {"allow": true, "headers": {"x-mcp-subject": input.token.subject}} if {
	valid
	not input.mcp
	input.http.method in {"GET", "DELETE"}
}

decision := {"allow": true, "headers": {"x-mcp-subject": input.token.subject}} if {
	valid
	input.mcp.kind in {"notification", "response"}
}

decision := {"allow": true, "headers": {"x-mcp-subject": input.token.subject}} if {
	valid
	input.mcp.kind == "request"
	input.mcp.method in {"initialize", "ping", "tools/list", "prompts/list", "resources/list", "resources/templates/list"}
}

decision := {"allow": true, "headers": {"x-mcp-subject": input.token.subject}, "response_headers": {"x-mcp-policy": "checked"}} if {
	call_allowed
	not echo_secret
	not needs_payments
}

decision := {"allow": false, "reason": "echo: the text must not mention a secret"} if {
	call_allowed
	echo_secret
}

decision := {"allow": false, "reason": "transfer needs scope payments:write", "scopes": ["payments:write"]} if {
	call_allowed
	needs_payments
}

call_allowed if {
	valid
	input.mcp.method == "tools/call"
	sees("tool", input.mcp.tool.name)
}

call_allowed if {
	valid
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "debug"
}

echo_secret if {
	input.mcp.tool.name == "echo"
	contains(lower(input.mcp.tool.arguments.text), "secret")
}

needs_payments if {
	input.mcp.tool.name == "transfer"
	not "payments:write" in input.token.scopes
}

default visible := false

visible if {
	valid
	sees(input.item.kind, input.item.name)
}

sees(_, _) if "admin" in input.token.scopes

sees(kind, name) if concat(":", [kind, name]) in input.token.scopes
