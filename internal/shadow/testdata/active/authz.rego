# The active policy of the shadow tests.
package mcp.authz

default decision := {"allow": false, "reason": "authentication required"}

decision := {"allow": count(problems) == 0, "reason": concat("; ", sort([p | some p in problems]))} if input.token.valid

tools := {"read_file", "search"}

problems contains sprintf("tool %s is not allowed", [input.mcp.tool.name]) if {
	input.mcp.method == "tools/call"
	not input.mcp.tool.name in tools
}

problems contains "read_file may not read this path" if {
	input.mcp.tool.name == "read_file"
	not startswith(object.get(input.mcp.tool.arguments, "path", ""), "/data/")
}
