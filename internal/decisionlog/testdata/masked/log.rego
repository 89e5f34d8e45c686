# The decision log's rules, as OPA's: the event is the input. The
# annotation gives this package an input of its own: without it the
# policy's input schema (a request, not an event) would refuse input.input.
# METADATA
# scope: package
# schemas:
#   - input: {"type": "object"}
package system.log

# Erase a tool argument wherever the input carries it: the tool's view
# (input.mcp.tool.arguments) and the raw params (input.mcp.params.arguments).
mask contains sprintf("/input/mcp/%s/arguments/password", [part]) if some part in ["tool", "params"]

# Replace a card number by a fixed value, in both places.
mask contains {"op": "upsert", "path": sprintf("/input/mcp/%s/arguments/card", [part]), "value": "****"} if {
	some part in ["tool", "params"]
	input.input.mcp[part].arguments.card
}

# Never log the health probe's tool.
drop if input.input.mcp.tool.name == "noisy"
