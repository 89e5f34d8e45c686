# A policy for the decision log's masking tests: tools/call is allowed.
package mcp.authz

default decision := {"allow": false, "reason": "only tools/call"}

decision := {"allow": true} if input.mcp.method == "tools/call"
