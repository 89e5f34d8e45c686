package mcp.authz.tests

import data.mcp.authz

bearer := {"valid": true, "subject": "alice", "scopes": ["mcp:tools"]}

dpop := object.union(bearer, {"binding": {"kind": "dpop", "jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}})

mtls := object.union(bearer, {"binding": {"kind": "mtls", "x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}})

call(tool) := {"kind": "request", "method": "tools/call", "tool": {"name": tool, "arguments": {}}}

test_risky_tool_with_bearer_token_denied if {
	d := authz.decision with input as {"token": bearer, "mcp": call("deploy")}
	d.allow == false
	contains(d.reason, "sender-constrained")
}

test_risky_tool_with_dpop_token_allowed if {
	authz.decision.allow with input as {"token": dpop, "mcp": call("deploy")}
}

test_risky_tool_with_mtls_token_allowed if {
	authz.decision.allow with input as {"token": mtls, "mcp": call("transfer_funds")}
}

test_ordinary_tool_with_bearer_token_allowed if {
	authz.decision.allow with input as {"token": bearer, "mcp": call("read_file")}
}

test_no_token_denied if {
	d := authz.decision with input as {"token": {"valid": false, "scopes": []}, "mcp": call("deploy")}
	d.allow == false
	d.scopes == ["mcp:tools"]
}
