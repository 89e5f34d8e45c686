# The result rule: mcpauthz evaluates data.mcp.authz.result on the answer
# to each tools/call, resources/read and prompts/get, with the call's input
# plus input.result (the JSON-RPC result as the server sent it).
#
# Environment dumps (get-env and the like) go to admins only; every other
# answer has the secrets of the shipped library (data.mcpauthz.lib.secrets:
# cloud keys, tokens, JWTs, private keys) redacted, whoever asks.
package mcp.authz

# env_dump_tools return the server's environment, secrets and all.
env_dump_tools := {"get-env", "printEnv", "env"}

result := {"withhold": "environment dumps are for admins only"} if {
	input.mcp.method == "tools/call"
	input.mcp.tool.name in env_dump_tools
	not "admin" in input.token.scopes
} else := {"redact": data.mcpauthz.lib.secrets.redact}
