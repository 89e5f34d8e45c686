package mcp.authz

# visible decides whether a caller may see one item of a tools/list,
# prompts/list or resources/list answer. The engine (or the ext_proc filter
# that rewrites list responses) evaluates it once per item with the input
#
#   {"token": ..., "context": ..., "http": ..., "item": {"kind": "tool"|"prompt"|"resource",
#    "name": ..., "uri"?: ..., "description"?: ..., "annotations"?: ..., "input_schema"?: ...}}
#
# An item is visible exactly when the caller holds every scope that using it
# would need (tools/call, prompts/get, resources/read), so lists never show
# what a call would then refuse.
default visible := false

visible if {
	input.token.valid == true
	needed := item_scope_set(input.item)
	every s in needed {
		s in token_scope_set
	}
}

item_scope_set(item) := tool_scope_set(item.name) if {
	item.kind == "tool"
} else := prompt_scope_set(item.name) if {
	item.kind == "prompt"
} else := resource_scope_set("resources/read", item.uri) if {
	item.kind == "resource"
}
