# The example rules of docs/operations.md written as OPA users write them,
# for one of the two copies of a value only: the mask follows the value to
# the other copy (TestMaskFollowsValue).
# METADATA
# scope: package
# schemas:
#   - input: {"type": "object"}
package system.log

# The tool's view only.
mask contains "/input/mcp/tool/arguments/password"

# The raw params only.
mask contains {"op": "upsert", "path": "/input/mcp/params/arguments/card", "value": "****"} if {
	input.input.mcp.params.arguments.card
}

# A prompt's argument, the prompt's view only.
mask contains "/input/mcp/prompt/arguments/token"

# A resource's URI, the raw params only.
mask contains {"op": "upsert", "path": "/input/mcp/params/uri", "value": "file:///masked"} if {
	input.input.mcp.method == "resources/read"
}
