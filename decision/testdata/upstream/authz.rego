# Test policy of the upstream credential step: a valid token is allowed,
# and input.context.choice, when set, names the upstream credential
# ("by_method": the JSON-RPC method's name, "number": not a string).
package mcp.authz

default decision := {"allow": false, "reason": "a valid token is required"}

decision := {"allow": true} if {
	input.token.valid
	not input.context.choice
}

decision := {"allow": true, "upstream_credential": choice} if {
	input.token.valid
	choice := chosen
}

chosen := input.mcp.method if input.context.choice == "by_method"

chosen := 7 if input.context.choice == "number"

chosen := input.context.choice if not input.context.choice in {"by_method", "number"}
