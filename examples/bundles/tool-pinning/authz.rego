# Example bundle: tool pinning. data.json pins each tool of the files
# server, as reviewed (`mcpauthz pin --from examples/pins/files-tools-list.json
# --schemas` wrote it): mcpauthz hides a listed tool whose definition no
# longer has its digest and refuses its calls, and holds the arguments of
# every call to the pinned input schema. This policy adds what pins alone
# cannot: a tool with no pin (one the server added after the review) is
# neither shown nor callable.
package mcp.authz

default decision := {
	"allow": false,
	"reason": "denied: no rule allows this request",
	"scopes": ["mcp:tools"],
}

decision := {"allow": false, "reason": "authentication required", "scopes": ["mcp:tools"]} if {
	not input.token.valid == true
} else := {
	"allow": false,
	"reason": sprintf("tool %q is not pinned: review it, then pin it with mcpauthz pin", [input.mcp.tool.name]),
	"scopes": ["mcp:tools"],
} if {
	input.mcp.method == "tools/call"
	not pinned(input.mcp.tool.name)
} else := {"allow": true, "scopes": ["mcp:tools"]} if {
	"mcp:tools" in input.token.scopes
	input.mcp.method in {"initialize", "notifications/initialized", "ping", "tools/list", "tools/call"}
}

# pinned holds for a tool whose definition bundle data pins.
pinned(name) if data.mcpauthz.tools[name].sha256

default visible := false

visible if {
	input.token.valid == true
	"mcp:tools" in input.token.scopes
	input.item.kind == "tool"
	pinned(input.item.name)
}
