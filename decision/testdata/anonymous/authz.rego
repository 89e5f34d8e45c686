# Callers without a credential may list tools and call search (issue 20
# item 4): their lists show what their calls may use, no more, no less.
package mcp.authz

default decision := {"allow": false, "reason": "denied by default"}

decision := {"allow": true} if input.mcp.method in {"initialize", "notifications/initialized", "tools/list"}

decision := {"allow": true} if {
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "search"
}

decision := {"allow": true} if {
	input.token.valid
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "debug"
}

default visible := false

visible if input.item.name == "search"

visible if {
	input.token.valid
	input.item.name == "debug"
}
