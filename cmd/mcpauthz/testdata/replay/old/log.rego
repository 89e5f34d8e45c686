# Decision log mask: the path of one secret file is never logged, in the
# tool's view and in the raw params. The event is this package's input.
# METADATA
# scope: package
# schemas:
#   - input: {"type": "object"}
package system.log

mask contains sprintf("/input/mcp/%s/arguments/path", [part]) if {
	some part in ["tool", "params"]
	input.input.mcp[part].arguments.path == "/data/secret.txt"
}
