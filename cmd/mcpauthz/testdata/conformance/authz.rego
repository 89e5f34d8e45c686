# The policy of the conformance test (TestConformance): every request with
# a valid token is allowed and every list item shown, so whatever the
# suite finds through mcpauthz is the gateway's doing, not the policy's.
package mcp.authz

default decision := {"allow": false, "reason": "authentication required: a valid access token is needed"}

decision := {"allow": true} if input.token.valid == true

default visible := false

visible if input.token.valid == true
