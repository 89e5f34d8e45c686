# Test policy of the ExtMcp server: a caller sees a tool, prompt or
# resource when its token has the scope "<kind>:<name>" (or "admin"), and
# may call exactly what it sees, within the argument rules below.
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
	not denied_argument
}

# An argument rule: read_file never reads under /etc.
denied_argument if {
	input.mcp.tool.name == "read_file"
	startswith(input.mcp.tool.arguments.path, "/etc/")
}

# The policy lets anyone call "debug", but the visible rule hides it: the
# call is refused as if the tool did not exist.
allow if {
	input.token.valid == true
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "debug"
}

default reason := "denied by the test policy"

reason := "read_file may not read under /etc" if denied_argument

decision := {"allow": allow, "reason": reason}

default visible := false

visible if {
	input.token.valid == true
	sees(input.item.kind, input.item.name)
}

sees(_, _) if "admin" in input.token.scopes

sees(kind, name) if concat(":", [kind, name]) in input.token.scopes

# list_dir is shown, and may be called, on the backend "files" (ExtMcp:
# service_names).
visible if {
	input.token.valid == true
	input.context.mcp_server == "files"
	input.item.name == "list_dir"
}

allow if {
	input.token.valid == true
	input.mcp.method == "tools/call"
	input.context.mcp_server == "files"
	input.mcp.tool.name == "list_dir"
}

# A resource is seen by its URI (its name is for people).
visible if {
	input.token.valid == true
	input.item.kind == "resource"
	sees("resource", input.item.uri)
}
