package mcp.authz.tests

import data.mcp.authz

# Inputs are built from small helpers so each test states only what differs.

valid_token(scopes) := {
	"present": true,
	"valid": true,
	"type": "jwt",
	"subject": "alice",
	"scopes": scopes,
	"claims": {"sub": "alice", "team": "blue"},
}

post := {
	"method": "POST",
	"path": "/mcp",
	"query": "",
	"host": "mcp.example.com",
	"headers": {"content-type": "application/json"},
}

request(method, extra) := object.union({"kind": "request", "method": method, "id": 1}, extra)

mcp_input(msg, token) := {
	"mcp": msg,
	"token": token,
	"http": post,
	"source": {"address": "10.0.0.1"},
	"context": {},
}

call_tool(name) := request("tools/call", {
	"params": {"name": name, "arguments": {}},
	"tool": {"name": name, "arguments": {}},
})

# --- methods open to every valid token -----------------------------------

test_open_methods_allowed_without_scopes if {
	every m in [
		"initialize", "ping", "tools/list", "resources/list", "resources/templates/list",
		"prompts/list", "completion/complete", "logging/setLevel",
	] {
		d := authz.decision with input as mcp_input(request(m, {}), valid_token([]))
		d.allow == true
		d.scopes == []
	}
}

# MCP 2026-07-28: clients call server/discover first, and open
# subscriptions/listen (a long-lived stream of the notifications its params
# opt into) like any request; a 2026-07-28 request carries its revision and
# client in _meta, which changes nothing here.
test_2026_methods_allowed_to_any_valid_token if {
	every m in ["server/discover", "subscriptions/listen"] {
		msg := request(m, {
			"params": {"_meta": {"io.modelcontextprotocol/protocolVersion": "2026-07-28"}},
			"protocol_version": "2026-07-28",
			"client": {"name": "ci-bot", "version": "1.0.0"},
		})
		d := authz.decision with input as mcp_input(msg, valid_token([]))
		d.allow == true
		d.scopes == []
	}
}

test_2026_methods_denied_without_token if {
	every m in ["server/discover", "subscriptions/listen"] {
		d := authz.decision with input as mcp_input(request(m, {}), {"present": false, "valid": false, "error": "missing", "scopes": []})
		d.allow == false
	}
}

# A retried tools/call of MCP 2026-07-28 (multi round-trip requests) carries
# inputResponses and requestState in params: decided like the first call.
test_mrtr_retry_decided_like_the_call if {
	msg := request("tools/call", {
		"params": {"name": "deploy", "arguments": {}, "inputResponses": {"confirm": {"action": "accept"}}, "requestState": "opaque"},
		"tool": {"name": "deploy", "arguments": {}},
	})
	d := authz.decision with input as mcp_input(msg, valid_token(["mcp:tools"]))
	d.allow == true
}

test_open_methods_denied_without_token if {
	every m in ["initialize", "ping", "tools/list"] {
		d := authz.decision with input as mcp_input(request(m, {}), {"present": false, "valid": false, "error": "missing", "scopes": []})
		d.allow == false
		d.reason == "authentication required: no access token was sent"
	}
}

test_notifications_and_responses_allowed if {
	n := {"kind": "notification", "method": "notifications/initialized"}
	authz.decision.allow with input as mcp_input(n, valid_token([]))
	r := {"kind": "response", "id": "srv-1"}
	authz.decision.allow with input as mcp_input(r, valid_token([]))
}

test_notification_denied_with_invalid_token if {
	n := {"kind": "notification", "method": "notifications/cancelled"}
	d := authz.decision with input as mcp_input(n, {"present": true, "valid": false, "error": "expired", "scopes": []})
	d.allow == false
	d.reason == "the access token was rejected: expired"
}

test_unknown_method_denied if {
	d := authz.decision with input as mcp_input(request("tasks/cancel", {}), valid_token(["mcp:tools"]))
	d.allow == false
	d.reason == `method "tasks/cancel" is not allowed by policy`
	d.scopes == []
}

test_method_match_is_case_sensitive if {
	d := authz.decision with input as mcp_input(request("Tools/List", {}), valid_token([]))
	d.allow == false
}

# --- tools/call ----------------------------------------------------------

test_tools_call_allowed_with_scope if {
	d := authz.decision with input as mcp_input(call_tool("read_file"), valid_token(["mcp:tools"]))
	d.allow == true
	d.scopes == ["mcp:tools"]
	d.headers == {"x-mcp-subject": "alice"}
}

test_tools_call_denied_without_scope if {
	d := authz.decision with input as mcp_input(call_tool("read_file"), valid_token(["mcp:resources"]))
	d.allow == false
	d.scopes == ["mcp:tools"]
	d.reason == `tools/call of tool "read_file" needs scope(s) mcp:tools; the token lacks mcp:tools`
	not d.status
}

test_tools_call_step_up_scope_required if {
	d := authz.decision with input as mcp_input(call_tool("delete_repo"), valid_token(["mcp:tools"]))
		with data.mcpauthz.config.tool_scopes as {"delete_repo": ["repo:admin"]}
	d.allow == false
	d.scopes == ["mcp:tools", "repo:admin"]
	d.reason == `tools/call of tool "delete_repo" needs scope(s) mcp:tools repo:admin; the token lacks repo:admin`
}

test_tools_call_step_up_scope_granted if {
	d := authz.decision with input as mcp_input(call_tool("delete_repo"), valid_token(["mcp:tools", "repo:admin"]))
		with data.mcpauthz.config.tool_scopes as {"delete_repo": ["repo:admin"]}
	d.allow == true
	d.scopes == ["mcp:tools", "repo:admin"]
}

test_step_up_scope_does_not_replace_base_scope if {
	d := authz.decision with input as mcp_input(call_tool("delete_repo"), valid_token(["repo:admin"]))
		with data.mcpauthz.config.tool_scopes as {"delete_repo": ["repo:admin"]}
	d.allow == false
	d.scopes == ["mcp:tools", "repo:admin"]
}

test_tool_scopes_apply_only_to_their_tool if {
	d := authz.decision with input as mcp_input(call_tool("read_file"), valid_token(["mcp:tools"]))
		with data.mcpauthz.config.tool_scopes as {"delete_repo": ["repo:admin"]}
	d.allow == true
}

test_tools_call_removed_from_config_is_denied if {
	d := authz.decision with input as mcp_input(call_tool("read_file"), valid_token(["mcp:tools"]))
		with data.mcpauthz.config.method_scopes as {"ping": []}
	d.allow == false
	d.reason == `method "tools/call" is not allowed by policy`
}

# --- resources -------------------------------------------------------------

test_resources_allowed_with_scope if {
	every m in ["resources/read", "resources/subscribe", "resources/unsubscribe"] {
		msg := request(m, {"params": {"uri": "file:///data/a.txt"}, "resource": {"uri": "file:///data/a.txt"}})
		d := authz.decision with input as mcp_input(msg, valid_token(["mcp:resources"]))
		d.allow == true
		d.scopes == ["mcp:resources"]
	}
}

test_resources_denied_without_scope if {
	every m in ["resources/read", "resources/subscribe", "resources/unsubscribe"] {
		msg := request(m, {"params": {"uri": "file:///data/a.txt"}, "resource": {"uri": "file:///data/a.txt"}})
		d := authz.decision with input as mcp_input(msg, valid_token(["mcp:tools", "mcp:prompts"]))
		d.allow == false
		d.scopes == ["mcp:resources"]
		d.reason == sprintf(`%s of "file:///data/a.txt" needs scope(s) mcp:resources; the token lacks mcp:resources`, [m])
	}
}

test_resource_prefix_scope if {
	secret := request("resources/read", {"resource": {"uri": "file:///secrets/key"}})
	cfg := {"file:///secrets/": ["secrets:read"]}
	d1 := authz.decision with input as mcp_input(secret, valid_token(["mcp:resources"]))
		with data.mcpauthz.config.resource_scopes as cfg
	d1.allow == false
	d1.scopes == ["mcp:resources", "secrets:read"]
	d2 := authz.decision with input as mcp_input(secret, valid_token(["mcp:resources", "secrets:read"]))
		with data.mcpauthz.config.resource_scopes as cfg
	d2.allow == true
	other := request("resources/read", {"resource": {"uri": "file:///data/x"}})
	d3 := authz.decision with input as mcp_input(other, valid_token(["mcp:resources"]))
		with data.mcpauthz.config.resource_scopes as cfg
	d3.allow == true
}

# --- prompts ---------------------------------------------------------------

test_prompts_get_allowed_with_scope if {
	msg := request("prompts/get", {"prompt": {"name": "summarise"}})
	d := authz.decision with input as mcp_input(msg, valid_token(["mcp:prompts"]))
	d.allow == true
	d.scopes == ["mcp:prompts"]
}

test_prompts_get_denied_without_scope if {
	msg := request("prompts/get", {"prompt": {"name": "summarise"}})
	d := authz.decision with input as mcp_input(msg, valid_token(["mcp:tools"]))
	d.allow == false
	d.reason == `prompts/get of prompt "summarise" needs scope(s) mcp:prompts; the token lacks mcp:prompts`
}

test_prompt_step_up_scope if {
	msg := request("prompts/get", {"prompt": {"name": "incident"}})
	d := authz.decision with input as mcp_input(msg, valid_token(["mcp:prompts"]))
		with data.mcpauthz.config.prompt_scopes as {"incident": ["oncall"]}
	d.allow == false
	d.scopes == ["mcp:prompts", "oncall"]
}

# --- tokens ----------------------------------------------------------------

test_missing_token_denied_with_needed_scopes if {
	d := authz.decision with input as mcp_input(call_tool("read_file"), {"present": false, "valid": false, "error": "missing", "scopes": []})
	d.allow == false
	d.scopes == ["mcp:tools"]
	d.reason == "authentication required: no access token was sent"
	not d.headers
}

test_invalid_token_reasons if {
	every e in ["expired", "bad_signature", "wrong_audience", "unavailable"] {
		d := authz.decision with input as mcp_input(call_tool("read_file"), {"present": true, "valid": false, "error": e, "scopes": ["mcp:tools"]})
		d.allow == false
		d.reason == sprintf("the access token was rejected: %s", [e])
	}
}

test_invalid_token_without_error_field if {
	d := authz.decision with input as mcp_input(request("ping", {}), {"present": true, "valid": false, "scopes": []})
	d.allow == false
	d.reason == "the access token is not valid"
}

test_token_absent_from_input_denied if {
	d := authz.decision with input as {"mcp": request("ping", {}), "http": post, "context": {}}
	d.allow == false
}

test_valid_must_be_boolean_true if {
	d := authz.decision with input as mcp_input(request("ping", {}), {"present": true, "valid": "true", "scopes": []})
	d.allow == false
}

test_no_subject_header_without_subject if {
	tok := {"present": true, "valid": true, "type": "api_key", "scopes": []}
	d := authz.decision with input as mcp_input(request("ping", {}), tok)
	d.allow == true
	d.headers == {}
}

test_subject_header_name_configurable if {
	d := authz.decision with input as mcp_input(request("ping", {}), valid_token([]))
		with data.mcpauthz.config.subject_header as "x-user"
	d.headers == {"x-user": "alice"}
}

# --- access token in the query string ---------------------------------------

test_access_token_in_query_denied if {
	http := object.union(post, {"query": "access_token=abc", "query_params": {"access_token": ["abc"]}, "access_token_in_query": true})
	d := authz.decision with input as object.union(mcp_input(request("ping", {}), valid_token([])), {"http": http})
	d.allow == false
	d.status == 400
	contains(d.reason, "query string")
}

test_access_token_in_query_false_is_fine if {
	http := object.union(post, {"access_token_in_query": false})
	authz.decision.allow with input as object.union(mcp_input(request("ping", {}), valid_token([])), {"http": http})
}

# --- sessions ----------------------------------------------------------------

test_session_hijack_denied if {
	msg := object.union(call_tool("read_file"), {"session_id": "s-1", "session_owner": "mallory"})
	d := authz.decision with input as mcp_input(msg, valid_token(["mcp:tools"]))
	d.allow == false
	d.status == 404
	contains(d.reason, "another user")
	not contains(d.reason, "mallory")
}

test_session_owner_matches if {
	msg := object.union(call_tool("read_file"), {"session_id": "s-1", "session_owner": "alice"})
	authz.decision.allow with input as mcp_input(msg, valid_token(["mcp:tools"]))
}

test_session_owner_against_token_without_subject if {
	msg := object.union(request("ping", {}), {"session_id": "s-1", "session_owner": "alice"})
	d := authz.decision with input as mcp_input(msg, {"present": true, "valid": true, "scopes": []})
	d.allow == false
	d.status == 404
}

test_notification_in_hijacked_session_denied if {
	msg := {"kind": "notification", "method": "notifications/initialized", "session_id": "s-1", "session_owner": "bob"}
	d := authz.decision with input as mcp_input(msg, valid_token([]))
	d.allow == false
}

# --- GET (SSE) and DELETE (end session) --------------------------------------

http_only(method, token) := {
	"token": token,
	"http": object.union(post, {"method": method, "headers": {"accept": "text/event-stream", "mcp-session-id": "s-1"}}),
	"source": {"address": "10.0.0.1"},
	"context": {},
}

test_get_and_delete_allowed_with_valid_token if {
	every m in ["GET", "DELETE"] {
		d := authz.decision with input as http_only(m, valid_token([]))
		d.allow == true
		d.scopes == []
		d.headers == {"x-mcp-subject": "alice"}
	}
}

test_get_and_delete_denied_without_token if {
	every m in ["GET", "DELETE"] {
		d := authz.decision with input as http_only(m, {"present": false, "valid": false, "error": "missing", "scopes": []})
		d.allow == false
		d.reason == "authentication required: no access token was sent"
	}
}

test_other_http_methods_without_message_denied if {
	every m in ["POST", "PUT", "PATCH", "OPTIONS"] {
		d := authz.decision with input as http_only(m, valid_token(["mcp:tools"]))
		d.allow == false
		d.reason == sprintf("HTTP %s without an MCP message is not allowed", [m])
	}
}

# --- priorities and the absence of conflicts ---------------------------------

# An input that trips every deny rule at once must still produce exactly one
# decision (a conflict would be an evaluation error, failing this test), with
# the highest-priority reason.
test_single_decision_when_every_rule_fires if {
	http := object.union(post, {"access_token_in_query": true})
	msg := object.union(call_tool("delete_repo"), {"session_owner": "mallory"})
	inp := {"mcp": msg, "token": {"present": true, "valid": false, "error": "expired", "scopes": []}, "http": http, "context": {}}
	d := authz.decision with input as inp
		with data.mcpauthz.config.tool_scopes as {"delete_repo": ["repo:admin"]}
	d.status == 400
	d.scopes == ["mcp:tools", "repo:admin"]
}

test_token_failure_outranks_hijack if {
	msg := object.union(call_tool("read_file"), {"session_owner": "mallory"})
	d := authz.decision with input as mcp_input(msg, {"present": false, "valid": false, "error": "missing", "scopes": []})
	d.reason == "authentication required: no access token was sent"
	not d.status
}

test_hijack_outranks_missing_scope if {
	msg := object.union(call_tool("read_file"), {"session_owner": "mallory"})
	d := authz.decision with input as mcp_input(msg, valid_token([]))
	d.status == 404
}

test_empty_input_denied_by_default if {
	d := authz.decision with input as {}
	d.allow == false
	d.reason
}

test_batch_member_decided_alone if {
	msg := object.union(call_tool("read_file"), {"batch": {"index": 1, "size": 2}})
	authz.decision.allow with input as mcp_input(msg, valid_token(["mcp:tools"]))
	d := authz.decision with input as mcp_input(msg, valid_token([]))
	d.allow == false
}

test_config_missing_denies_everything if {
	d := authz.decision with input as mcp_input(request("ping", {}), valid_token(["mcp:tools"]))
		with data.mcpauthz.config as {}
	d.allow == false
}
