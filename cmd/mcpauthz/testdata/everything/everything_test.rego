package everything.authz.tests

import data.everything.authz

token(scopes) := {"present": true, "valid": true, "type": "jwt", "subject": "alice", "scopes": scopes}

post := {"method": "POST", "path": "/mcp", "query": "", "host": "127.0.0.1", "headers": {"content-type": "application/json"}}

call(name, args) := {
	"token": token(["mcp:tools"]),
	"http": post,
	"context": {},
	"mcp": {"kind": "request", "method": "tools/call", "id": 1, "tool": {"name": name, "arguments": args}},
}

item(name) := {"token": token(["mcp:tools"]), "http": post, "context": {}, "item": {"kind": "tool", "name": name}}

test_offered_tool_allowed if {
	d := authz.decision with input as call("echo", {"message": "hi"})
	d.allow == true
	d.headers == {"x-mcp-subject": "alice"}
}

test_tool_not_offered_denied_with_the_callers_scopes if {
	d := authz.decision with input as call("get-env", {})
	d.allow == false
	d.reason == `tool "get-env" is not offered on this server`
	d.scopes == ["mcp:tools"]
}

test_get_sum_within_limit_allowed if {
	authz.decision.allow with input as call("get-sum", {"a": -1000, "b": 999.5})
}

test_get_sum_arguments_denied if {
	cases := [
		[{"a": 1, "b": 5000}, "get-sum: b must be a number between -1000 and 1000, got 5000"],
		[{"a": "1", "b": 2}, `get-sum: a must be a number between -1000 and 1000, got "1"`],
		[{"a": 1}, "get-sum: b must be a number between -1000 and 1000, got null"],
	]
	every c in cases {
		d := authz.decision with input as call("get-sum", c[0])
		d.allow == false
		d.reason == c[1]
	}
}

test_default_policy_denial_stands if {
	d := authz.decision with input as object.union(call("echo", {"message": "hi"}), {"token": token([])})
	d.allow == false
	d.scopes == ["mcp:tools"]
	contains(d.reason, "the token lacks mcp:tools")
}

test_list_allowed if {
	d := authz.decision with input as {"token": token([]), "http": post, "context": {}, "mcp": {"kind": "request", "method": "tools/list", "id": 2}}
	d.allow == true
}

test_visible_only_offered_tools if {
	authz.visible with input as item("echo")
	not authz.visible with input as item("get-env")
	not authz.visible with input as object.union(item("echo"), {"token": token([])})
	authz.visible with input as {"token": token(["mcp:prompts"]), "http": post, "context": {}, "item": {"kind": "prompt", "name": "simple-prompt"}}
}
