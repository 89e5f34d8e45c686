# Example bundle: rules over what comes back. A caller with scope mcp:tools
# may list and call the tools; result.rego then decides what each answer
# may carry to that caller.
package mcp.authz

default decision := {
	"allow": false,
	"reason": "denied: no rule allows this request",
	"scopes": ["mcp:tools"],
}

decision := {"allow": false, "reason": "authentication required", "scopes": ["mcp:tools"]} if {
	not input.token.valid == true
} else := {"allow": true, "scopes": ["mcp:tools"]} if {
	"mcp:tools" in input.token.scopes
	input.mcp.method in {"initialize", "notifications/initialized", "ping", "tools/list", "tools/call"}
} else := {"allow": true, "scopes": ["mcp:tools"]} if {
	# The session's stream (GET) and its end (DELETE) carry no message.
	"mcp:tools" in input.token.scopes
	not input.mcp
	input.http.method in {"GET", "DELETE"}
}

default visible := false

visible if {
	input.token.valid == true
	"mcp:tools" in input.token.scopes
}
