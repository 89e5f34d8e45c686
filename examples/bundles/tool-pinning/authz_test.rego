package mcp.authz.tests

import data.mcp.authz

caller := {"valid": true, "subject": "alice", "scopes": ["mcp:tools"]}

call(tool) := {"kind": "request", "method": "tools/call", "tool": {"name": tool, "arguments": {}}}

test_pinned_tool_allowed if {
	authz.decision.allow with input as {"token": caller, "mcp": call("read_file")}
}

test_unpinned_tool_denied if {
	d := authz.decision with input as {"token": caller, "mcp": call("delete_everything")}
	d.allow == false
	contains(d.reason, "is not pinned")
}

test_no_token_denied if {
	d := authz.decision with input as {"token": {"valid": false, "scopes": []}, "mcp": call("read_file")}
	d.allow == false
	d.scopes == ["mcp:tools"]
}

test_missing_scope_denied if {
	d := authz.decision with input as {"token": {"valid": true, "subject": "bob", "scopes": []}, "mcp": call("read_file")}
	d.allow == false
}

test_pinned_tool_visible if {
	authz.visible with input as {"token": caller, "item": {"kind": "tool", "name": "write_file"}}
}

test_unpinned_tool_hidden if {
	not authz.visible with input as {"token": caller, "item": {"kind": "tool", "name": "delete_everything"}}
}

test_every_pin_has_a_digest if {
	every name, pin in data.mcpauthz.tools {
		count(pin.sha256) == 64
		name != ""
	}
}
