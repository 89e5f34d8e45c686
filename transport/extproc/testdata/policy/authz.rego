# Test policy of the ext_proc server: a caller sees a tool, prompt or
# resource when its token has the scope "<kind>:<name>" (or "admin"), and
# may call exactly what it sees.
package mcp.authz

default allow := false

allow if {
	input.token.valid == true
	input.mcp.method in {"initialize", "tools/list", "prompts/list", "resources/list", "resources/templates/list"}
}

allow if {
	input.token.valid == true
	input.mcp.method == "tools/call"
	sees("tool", input.mcp.tool.name)
}

# The policy lets anyone call "debug", but the visible rule hides it: the
# call is refused as if the tool did not exist.
allow if {
	input.token.valid == true
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "debug"
}

default visible := false

visible if {
	input.token.valid == true
	sees(input.item.kind, input.item.name)
}

sees(_, _) if "admin" in input.token.scopes

sees(kind, name) if concat(":", [kind, name]) in input.token.scopes

# list_dir is shown on the route whose context says mcp_server "files"
# (ext_proc: the stream's mcpauthz-context-* metadata).
visible if {
	input.token.valid == true
	input.context.mcp_server == "files"
	input.item.name == "list_dir"
}
