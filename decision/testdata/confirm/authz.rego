# Test policy of decision.confirm: a valid token may call delete_file;
# deleting outside /tmp/ needs the caller's user to confirm it
# (input.mcp.confirmation, set on a confirmed retry). tools/list is allowed.
package mcp.authz

default decision := {"allow": false, "reason": "denied"}

decision := {"allow": true} if {
	input.token.valid
	input.mcp.method == "tools/list"
}

decision := {"allow": true} if {
	deletes
	startswith(input.mcp.tool.arguments.path, "/tmp/")
}

decision := {"allow": true, "confirm": {"message": sprintf("Delete %s?", [input.mcp.tool.arguments.path])}} if {
	deletes
	not startswith(input.mcp.tool.arguments.path, "/tmp/")
	not input.mcp.confirmation
}

decision := {"allow": false, "reason": "the user declined"} if {
	deletes
	not startswith(input.mcp.tool.arguments.path, "/tmp/")
	input.mcp.confirmation.confirmed == false
}

decision := {"allow": true} if {
	deletes
	not startswith(input.mcp.tool.arguments.path, "/tmp/")
	input.mcp.confirmation.confirmed == true
}

decision := {"allow": true, "confirm": {"message": "Read the secret?"}} if {
	input.token.valid
	input.mcp.method == "resources/read"
}

deletes if {
	input.token.valid
	input.mcp.tool.name == "delete_file"
}
