package mcp.authz

# Rate limits: mcpauthz counts nothing; it names what Envoy's rate limit
# service counts. Each entry becomes Envoy dynamic metadata
# rate_limit.<name> on an allowed request, which the rate_limits of
# examples/envoy/envoy-ratelimit.yaml turn into descriptors, limited by
# examples/ratelimit/config/mcp.yaml: each caller per tool, and each caller
# over all requests.
#
# Values must be non-empty strings of at most 256 bytes (a malformed
# rate_limit denies), hence the guards: no entry for a caller without a
# subject or a tool name that long.
default rate_limit := {}

rate_limit := {"subject": input.token.subject, "tool": input.mcp.tool.name} if {
	input.mcp.method == "tools/call"
	rate_limit_value(input.token.subject)
	rate_limit_value(input.mcp.tool.name)
} else := {"subject": input.token.subject} if {
	rate_limit_value(input.token.subject)
}

rate_limit_value(s) if {
	s != ""
	count(s) <= 256
}
