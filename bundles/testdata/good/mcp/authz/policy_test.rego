package mcp.authz_test

import data.mcp.authz

test_allow_listed_tool if {
	authz.allow with input as {"mcp": {"method": "tools/call", "tool": {"name": "echo"}}}
}

test_deny_unlisted_tool if {
	not authz.allow with input as {"mcp": {"method": "tools/call", "tool": {"name": "rm"}}}
}
