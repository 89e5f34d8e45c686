package mcp.authz

# The same rules as lists-else, without the else chain: partial
# evaluation splits them, so lists derived from the decision are exact.
default decision := {"allow": false, "reason": "default"}

decision := {"allow": true} if {
	input.token.valid
	"reader" in input.token.claims.roles
	not contains(input.mcp.tool.arguments.sql, "DROP")
}
