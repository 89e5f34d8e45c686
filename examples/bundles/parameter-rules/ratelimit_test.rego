package mcp.authz.tests

import data.mcp.authz

# An allowed tools/call names its caller and tool for the rate limit
# service; other requests their caller; denials nothing.

test_rate_limit_per_user_per_tool if {
	d := authz.decision with input as query("SELECT 1")
	d.allow == true
	d.rate_limit == {"subject": "alice", "tool": "query"}
}

test_rate_limit_other_tool_counted_apart if {
	d := authz.decision with input as read_file("/data/x")
	d.rate_limit == {"subject": "alice", "tool": "read_file"}
}

test_rate_limit_other_request_per_user if {
	d := authz.decision with input as object.union(query("SELECT 1"), {"mcp": {
		"kind": "request",
		"method": "tools/list",
		"id": 8,
		"params": {},
	}})
	d.allow == true
	d.rate_limit == {"subject": "alice"}
}

test_rate_limit_none_without_subject if {
	d := authz.decision with input as object.union(query("SELECT 1"), {"token": {"subject": ""}})
	d.allow == true
	d.rate_limit == {}
}

test_rate_limit_no_tool_entry_for_an_overlong_name if {
	name := concat("", ["t" | some _ in numbers.range(1, 257)])
	rl := authz.rate_limit with input as call("db", name, {})
	rl == {"subject": "alice"}
}

test_rate_limit_not_on_denial if {
	d := authz.decision with input as read_file("/etc/passwd")
	d.allow == false
	not d.rate_limit
}
