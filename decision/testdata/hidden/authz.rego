# Lists and calls agree (hidden.go): a call rule and a visible rule that
# disagree on purpose.
package mcp.authz

default decision := {"allow": false, "reason": "denied by default"}

# search and debug may be called; only search (and search_limited) are shown.
decision := {"allow": true} if {
	input.token.valid == true
	input.mcp.method == "tools/call"
	input.mcp.tool.name in {"search", "debug"}
}

decision := {"allow": false, "reason": "admin_tool needs scope admin", "scopes": ["admin"]} if {
	input.mcp.tool.name == "admin_tool"
}

decision := {"allow": false, "reason": "search_limited is closed today"} if {
	input.mcp.tool.name == "search_limited"
}

default visible := false

visible if input.item.name in {"search", "search_limited"}
