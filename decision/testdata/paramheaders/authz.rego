# Allows every request: the Mcp-Param header checks run before the policy.
package mcp.authz

decision := {"allow": true}
