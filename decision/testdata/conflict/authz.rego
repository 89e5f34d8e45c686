# Two complete definitions of decision that disagree: OPA reports a
# conflict at evaluation, which must deny.
package mcp.authz

decision := {"allow": true} if input.mcp.method == "ping"

decision := {"allow": false, "reason": "no"} if input.mcp.kind == "request"
