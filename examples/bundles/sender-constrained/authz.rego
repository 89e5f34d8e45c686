# Example bundle: risky tools only with a sender-constrained token. A
# bearer token leaked into a log, a prompt or a tool's output works for
# whoever finds it; a token bound to a DPoP key (RFC 9449) or to a client
# certificate (RFC 8705) works only with that key or certificate, which
# mcpauthz checks before the policy runs. input.token.binding says which
# binding was checked; this policy lets any valid token list and call the
# ordinary tools, and only a bound one call the risky ones.
package mcp.authz

risky_tools := {"deploy", "delete_repo", "transfer_funds"}

default decision := {
	"allow": false,
	"reason": "denied: no rule allows this request",
	"scopes": ["mcp:tools"],
}

decision := {"allow": false, "reason": "authentication required", "scopes": ["mcp:tools"]} if {
	not input.token.valid == true
} else := {
	"allow": false,
	"reason": sprintf("tool %q needs a sender-constrained token (DPoP or a client certificate)", [input.mcp.tool.name]),
} if {
	input.mcp.method == "tools/call"
	input.mcp.tool.name in risky_tools
	not sender_constrained
} else := {"allow": true, "scopes": ["mcp:tools"]} if {
	"mcp:tools" in input.token.scopes
	input.mcp.method in {"initialize", "notifications/initialized", "ping", "tools/list", "tools/call"}
}

# sender_constrained holds for a token bound to a DPoP key or a client
# certificate: the engine refused the request unless its proof or its
# certificate matched.
sender_constrained if input.token.binding.kind in {"dpop", "mtls"}
