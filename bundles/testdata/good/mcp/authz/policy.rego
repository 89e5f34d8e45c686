package mcp.authz

default allow := false

allow if {
	input.mcp.method == "tools/call"
	input.mcp.tool.name in data.mcp.config.tools
}

# rev is written into the policy and into data, so a test can tell that
# both came from the same snapshot.
rev := "good-1"

decision := {"allow": allow, "policy_rev": rev, "data_rev": data.mcp.config.rev}
