package mcp.authz

decision := {"allow": false, "reason": "no token"} if {
	not input.token.valid
} else := {"allow": false, "reason": "bad sql"} if {
	contains(input.mcp.tool.arguments.sql, "DROP")
} else := {"allow": true} if {
	"reader" in input.token.claims.roles
} else := {"allow": false, "reason": "default"}
