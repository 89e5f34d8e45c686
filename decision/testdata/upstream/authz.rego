# Test policy of the upstream credential step: a valid token is allowed,
# and input.context.choice, when set, names the upstream credential.
package mcp.authz

default decision := {"allow": false, "reason": "a valid token is required"}

decision := {"allow": true} if {
	input.token.valid
	not input.context.choice
}

decision := {"allow": true, "upstream_credential": input.context.choice} if {
	input.token.valid
	input.context.choice
}
