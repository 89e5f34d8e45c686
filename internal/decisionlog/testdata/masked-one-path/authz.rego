# A policy for the masking test of rules written for one copy only:
# every request is allowed.
package mcp.authz

decision := {"allow": true}
