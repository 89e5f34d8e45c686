package mcp.authz.tests

import data.mcp.authz

list_input(item, scopes) := {
	"token": valid_token(scopes),
	"http": post,
	"context": {},
	"item": item,
}

test_tool_visible_with_scope if {
	authz.visible with input as list_input({"kind": "tool", "name": "read_file"}, ["mcp:tools"])
}

test_tool_hidden_without_scope if {
	not authz.visible with input as list_input({"kind": "tool", "name": "read_file"}, [])
}

test_step_up_tool_hidden_until_scope_granted if {
	item := {"kind": "tool", "name": "delete_repo", "description": "Deletes a repository"}
	cfg := {"delete_repo": ["repo:admin"]}
	not authz.visible with input as list_input(item, ["mcp:tools"])
		with data.mcpauthz.config.tool_scopes as cfg
	authz.visible with input as list_input(item, ["mcp:tools", "repo:admin"])
		with data.mcpauthz.config.tool_scopes as cfg
}

test_prompt_visibility if {
	authz.visible with input as list_input({"kind": "prompt", "name": "summarise"}, ["mcp:prompts"])
	not authz.visible with input as list_input({"kind": "prompt", "name": "summarise"}, ["mcp:tools"])
}

test_resource_visibility if {
	item := {"kind": "resource", "name": "key", "uri": "file:///secrets/key"}
	cfg := {"file:///secrets/": ["secrets:read"]}
	authz.visible with input as list_input(item, ["mcp:resources", "secrets:read"])
		with data.mcpauthz.config.resource_scopes as cfg
	not authz.visible with input as list_input(item, ["mcp:resources"])
		with data.mcpauthz.config.resource_scopes as cfg
}

test_resource_without_uri_hidden if {
	not authz.visible with input as list_input({"kind": "resource", "name": "x"}, ["mcp:resources"])
}

test_unknown_item_kind_hidden if {
	not authz.visible with input as list_input({"kind": "task", "name": "x"}, ["mcp:tools"])
}

test_nothing_visible_to_invalid_token if {
	inp := object.union(list_input({"kind": "tool", "name": "read_file"}, ["mcp:tools"]), {"token": {"present": true, "valid": false, "error": "expired", "scopes": ["mcp:tools"]}})
	not authz.visible with input as inp
}

# visible and decision agree: whatever a list shows, a call allows.
test_visible_agrees_with_decision if {
	cfg := {"delete_repo": ["repo:admin"]}
	every scopes in [[], ["mcp:tools"], ["mcp:tools", "repo:admin"], ["repo:admin"]] {
		every name in ["read_file", "delete_repo"] {
			v := authz.visible with input as list_input({"kind": "tool", "name": name}, scopes)
				with data.mcpauthz.config.tool_scopes as cfg
			d := authz.decision with input as mcp_input(call_tool(name), valid_token(scopes))
				with data.mcpauthz.config.tool_scopes as cfg
			v == d.allow
		}
	}
}
