package mcp.authz.tests

import data.mcp.authz

call(name, scopes) := {
	"token": {"valid": true, "subject": "alice", "scopes": scopes},
	"mcp": {"kind": "request", "method": "tools/call", "tool": {"name": name}},
	"result": {"content": [{"type": "text", "text": "AWS_KEY=AKIAIOSFODNN7EXAMPLE"}]},
	"decision_id": "d-1",
}

test_env_dump_withheld_from_non_admins if {
	authz.result.withhold == "environment dumps are for admins only" with input as call("get-env", ["mcp:tools"])
}

test_env_dump_redacted_for_admins if {
	r := authz.result with input as call("get-env", ["mcp:tools", "admin"])
	not r.withhold
	some e in r.redact
	e.name == "aws_access_key"
}

test_other_tools_redacted_for_everyone if {
	r := authz.result with input as call("echo", ["mcp:tools"])
	count(r.redact) == count(data.mcpauthz.lib.secrets.patterns)
}
