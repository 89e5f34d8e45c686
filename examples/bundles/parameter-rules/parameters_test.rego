package mcp.authz.tests

import data.mcp.authz

token(scopes, team) := {
	"present": true,
	"valid": true,
	"type": "jwt",
	"subject": "alice",
	"scopes": scopes,
	"claims": {"sub": "alice", "team": team},
}

call(server, tool, args) := {
	"mcp": {
		"kind": "request",
		"method": "tools/call",
		"id": 7,
		"params": {"name": tool, "arguments": args},
		"tool": {"name": tool, "arguments": args},
	},
	"token": token(["mcp:tools", "payments:write"], "support"),
	"http": {"method": "POST", "path": "/mcp", "query": "", "host": "mcp.example.com", "headers": {}},
	"context": {"mcp_server": server},
}

read_file(path) := call("files", "read_file", {"path": path})

query(sql) := call("db", "query", {"sql": sql})

transfer(amount) := call("payments", "transfer", {"to": "acct-9", "amount": amount})

# --- read_file -----------------------------------------------------------------

test_read_file_under_data_allowed if {
	every p in ["/data/x", "/data/reports/2025/q1.csv", "/data/a.b/c..d", "/data/...hidden"] {
		d := authz.decision with input as read_file(p)
		d.allow == true
	}
}

test_read_file_outside_data_denied if {
	every p in [
		"/etc/passwd",
		"/data",
		"/database/x",
		"data/x",
		"/data/../etc/passwd",
		"/data/x/../../etc/passwd",
		"/data/./x",
		"/data//etc/passwd",
		"/data/x/",
		"/data/",
		"/data/..",
		"/data/x\\..\\..\\etc",
		"/data/%2e%2e/etc/passwd",
		"/data/%2E%2E%2Fetc",
		"/data/x\u0000.txt",
		"/DATA/x",
	] {
		d := authz.decision with input as read_file(p)
		d.allow == false
		startswith(d.reason, "read_file: path ")
	}
}

test_read_file_path_must_be_string if {
	every args in [{}, {"path": 3}, {"path": ["/data/x"]}, {"path": null}] {
		d := authz.decision with input as call("files", "read_file", args)
		d.allow == false
		startswith(d.reason, "read_file: path ")
	}
}

test_read_file_without_arguments_denied if {
	inp := json.patch(read_file("/data/x"), [{"op": "remove", "path": "/mcp/tool/arguments"}])
	d := authz.decision with input as inp
	d.allow == false
	d.reason == "read_file: path null is not a plain path under /data/"
}

test_read_file_root_from_data if {
	authz.decision.allow with input as read_file("/srv/x") with data.mcpauthz.config.read_file_root as "/srv/"
	not authz.decision.allow with input as read_file("/data/x") with data.mcpauthz.config.read_file_root as "/srv/"
}

# --- query -----------------------------------------------------------------

test_query_select_allowed if {
	every q in [
		"SELECT id, name FROM users WHERE id = 1",
		"select count(*) from orders;",
		"  WITH recent AS (SELECT * FROM orders WHERE created > now() - interval '1 day') SELECT * FROM recent",
		"SELECT offset_value, updated_at, created_by FROM t",
		"Select\n  a\nFrom\tb",
	] {
		d := authz.decision with input as query(q)
		d.allow == true
	}
}

test_query_writes_denied if {
	every q in [
		"DROP TABLE users",
		"drop table users",
		"DELETE FROM users",
		"INSERT INTO users VALUES (1)",
		"UPDATE users SET admin = true",
		"ALTER TABLE users ADD COLUMN x int",
		"CREATE TABLE x (a int)",
		"GRANT ALL ON users TO public",
		"COPY users TO '/tmp/x'",
		"TRUNCATE users",
		"SELECT 1; DROP TABLE users",
		"SELECT 1;DROP TABLE users;",
		"select 1; select 2",
		"SELECT * FROM users -- ; DROP TABLE users",
		"SELECT /* harmless */ 1",
		"SELECT 1 # comment",
		"WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone",
		"SELECT * INTO backup FROM users",
		"SELECT * FROM accounts FOR UPDATE",
		"SELECT pg_read_file('/etc/passwd')",
		"SELECT pg_sleep (10)",
		"SELECT setval('s', 1)",
		"EXPLAIN ANALYZE DELETE FROM users",
		"VALUES (1)",
		"",
		"   ",
		"SELECT 1\u0000",
		"sElEcT 1; dRoP tAbLe x",
	] {
		d := authz.decision with input as query(q)
		d.allow == false
		startswith(d.reason, "query: ")
	}
}

test_query_reason_names_keyword if {
	d := authz.decision with input as query("WITH gone AS (DELETE FROM users RETURNING *) SELECT * FROM gone")
	d.reason == `query: keyword "delete" is not allowed in a read-only query`
}

test_query_reasons_combined if {
	d := authz.decision with input as query("DROP TABLE x; SELECT 1")
	contains(d.reason, "only a single SELECT")
	contains(d.reason, "chained")
	contains(d.reason, `"drop"`)
}

test_query_sql_must_be_string if {
	every args in [{}, {"sql": 1}, {"sql": ["SELECT 1"]}] {
		d := authz.decision with input as call("db", "query", args)
		d.allow == false
		d.reason == "query: the sql argument must be a string"
	}
}

# --- transfer ----------------------------------------------------------------

test_transfer_within_limit_allowed if {
	every a in [1, 499.99, 500] {
		authz.decision.allow with input as transfer(a)
	}
}

test_transfer_over_limit_denied if {
	d := authz.decision with input as transfer(500.01)
	d.allow == false
	d.reason == `transfer: amount 500.01 exceeds the limit of 500 for team "support"`
}

test_transfer_bad_amounts_denied if {
	every a in [0, -5, "100", null, true] {
		d := authz.decision with input as transfer(a)
		d.allow == false
		startswith(d.reason, "transfer: amount must be")
	}
}

test_transfer_limit_per_team if {
	big := json.patch(transfer(250000), [{"op": "replace", "path": "/token/claims/team", "value": "treasury"}])
	authz.decision.allow with input as big
	intern := json.patch(transfer(1), [{"op": "replace", "path": "/token/claims/team", "value": "interns"}])
	not authz.decision.allow with input as intern
}

test_transfer_unknown_team_denied if {
	inp := json.patch(transfer(1), [{"op": "replace", "path": "/token/claims/team", "value": "marketing"}])
	d := authz.decision with input as inp
	d.reason == `transfer: no transfer limit is configured for team "marketing"`
}

test_transfer_without_team_claim_denied if {
	inp := json.patch(transfer(1), [{"op": "remove", "path": "/token/claims/team"}])
	d := authz.decision with input as inp
	d.reason == "transfer: the token carries no team claim"
}

test_transfer_needs_step_up_scope if {
	inp := json.patch(transfer(1), [{"op": "replace", "path": "/token/scopes", "value": ["mcp:tools"]}])
	d := authz.decision with input as inp
	d.allow == false
	d.scopes == ["mcp:tools", "payments:write"]
}

# --- per-route allowlist -----------------------------------------------------

test_tool_not_on_route_denied if {
	d := authz.decision with input as call("files", "query", {"sql": "SELECT 1"})
	d.allow == false
	d.reason == `tool "query" is not available on server "files"`
}

test_unknown_server_denied if {
	d := authz.decision with input as call("billing", "read_file", {"path": "/data/x"})
	d.allow == false
}

test_route_without_context_denied if {
	inp := json.patch(read_file("/data/x"), [{"op": "replace", "path": "/context", "value": {}}])
	d := authz.decision with input as inp
	d.allow == false
	contains(d.reason, "no mcp_server")
}

test_tool_without_argument_rules_allowed_on_its_route if {
	authz.decision.allow with input as call("payments", "balance", {})
}

# --- request-level rules still apply ---------------------------------------------

test_invalid_token_denied_before_arguments if {
	inp := json.patch(read_file("/etc/passwd"), [{"op": "replace", "path": "/token", "value": {"present": false, "valid": false, "error": "missing", "scopes": []}}])
	d := authz.decision with input as inp
	d.allow == false
	d.reason == "authentication required: a valid access token is needed"
	d.scopes == ["mcp:tools"]
}

test_non_tool_methods_unaffected if {
	inp := {
		"mcp": {"kind": "request", "method": "tools/list", "id": 1},
		"token": token([], "support"),
		"http": {"method": "POST", "path": "/mcp", "query": "", "host": "h", "headers": {}},
		"context": {"mcp_server": "files"},
	}
	authz.decision.allow with input as inp
}

test_hijack_denied if {
	inp := json.patch(read_file("/data/x"), [{"op": "add", "path": "/mcp/session_owner", "value": "bob"}])
	d := authz.decision with input as inp
	d.status == 404
}

test_token_in_query_denied if {
	inp := json.patch(read_file("/data/x"), [{"op": "add", "path": "/http/access_token_in_query", "value": true}])
	d := authz.decision with input as inp
	d.status == 400
}

test_get_stream_allowed if {
	inp := {"token": token([], "support"), "http": {"method": "GET", "path": "/mcp", "query": "", "host": "h", "headers": {}}, "context": {}}
	authz.decision.allow with input as inp
}

# --- visible -------------------------------------------------------------------

list_item(server, kind, name, scopes) := {
	"token": token(scopes, "support"),
	"http": {"method": "POST", "path": "/mcp", "query": "", "host": "h", "headers": {}},
	"context": {"mcp_server": server},
	"item": {"kind": kind, "name": name},
}

test_visible_tools_follow_route_and_scopes if {
	authz.visible with input as list_item("files", "tool", "read_file", ["mcp:tools"])
	not authz.visible with input as list_item("db", "tool", "read_file", ["mcp:tools"])
	not authz.visible with input as list_item("payments", "tool", "transfer", ["mcp:tools"])
	authz.visible with input as list_item("payments", "tool", "transfer", ["mcp:tools", "payments:write"])
	not authz.visible with input as list_item("files", "tool", "read_file", [])
}

test_visible_prompts_and_resources_follow_scopes if {
	authz.visible with input as list_item("files", "prompt", "p", ["mcp:prompts"])
	not authz.visible with input as list_item("files", "prompt", "p", ["mcp:tools"])
	authz.visible with input as list_item("files", "resource", "r", ["mcp:resources"])
	not authz.visible with input as list_item("files", "resource", "r", [])
}

# --- echo ----------------------------------------------------------------------

echo(message) := call("everything", "echo", {"message": message})

test_echo_allowed if {
	d := authz.decision with input as echo("hello")
	d.allow == true
}

test_echo_with_aws_key_denied if {
	d := authz.decision with input as echo("my key is AKIAIOSFODNN7EXAMPLE")
	d.allow == false
	d.reason == "echo: the message carries what looks like an AWS access key id"
}

test_everything_route_serves_only_its_tools if {
	d := authz.decision with input as call("everything", "get-env", {})
	d.allow == false
	d.reason == `tool "get-env" is not available on server "everything"`
}
