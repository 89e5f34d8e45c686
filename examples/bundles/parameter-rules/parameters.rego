package mcp.authz

# Rules on tools/call arguments. Each rule adds a message to
# argument_violations (a set: any number of rules may fire at once without
# conflict); one message is enough to deny.

tool_name := input.mcp.tool.name if input.mcp.method == "tools/call"

# Arguments default to {} so that a call that omits them is checked (and
# refused) rather than skipped because a reference was undefined.
default arguments := {}

arguments := input.mcp.tool.arguments if is_object(input.mcp.tool.arguments)

# --- per-route allowlist ------------------------------------------------------

# Envoy names the upstream server in the route's context_extensions
# (mcp_server); each server exposes only its own tools through this route.
route_tools contains tool if {
	some tool in data.mcpauthz.config.server_tools[input.context.mcp_server]
}

route_violation := sprintf("tool %q is not available on this route (no mcp_server in the route context)", [tool_name]) if {
	not input.context.mcp_server
} else := sprintf("tool %q is not available on server %q", [tool_name, input.context.mcp_server]) if {
	not tool_name in route_tools
}

# --- read_file: only below the data root --------------------------------------

argument_violations contains msg if {
	tool_name == "read_file"
	path := object.get(arguments, "path", null)
	not safe_data_path(path)
	msg := sprintf("read_file: path %v is not a plain path under %s", [json.marshal(path), read_root])
}

default read_root := "/data/"

read_root := data.mcpauthz.config.read_file_root

# A path is safe when it starts with the root and cannot climb out of it or
# be read differently by the server: no "." or ".." segments, no empty
# segment ("//"), no backslash, no control character, and no percent-encoded
# dot, slash or backslash a server might decode later.
safe_data_path(path) if {
	is_string(path)
	startswith(path, read_root)
	segments := split(trim_prefix(path, read_root), "/")

	# an empty segment is a "//" (or a trailing "/": a directory, not a file)
	every seg in segments {
		not seg in {"", ".", ".."}
	}
	not contains(path, "\\")
	not regex.match(`[\x00-\x1f\x7f]`, path)
	not regex.match(`(?i)%(2e|2f|5c|00)`, path)
}

# --- query: one read-only SQL statement --------------------------------------

argument_violations contains sprintf("query: %s", [problem]) if {
	tool_name == "query"
	some problem in sql_problems
}

# The statement, lower-cased and trimmed; undefined when sql is no string.
sql := lower(trim_space(arguments.sql)) if is_string(arguments.sql)

sql_problems contains "the sql argument must be a string" if not sql

sql_problems contains "only a single SELECT or WITH statement is allowed" if {
	not regex.match(`^(select|with)\b`, sql)
}

# One optional trailing ';' is tolerated; any other ';' could start a second
# statement (a ';' inside a string literal is refused too: simple beats clever).
sql_problems contains "statements may not be chained with ';'" if {
	contains(trim_suffix(sql, ";"), ";")
}

# Comments can hide text from a reader (and from naive checks): refuse them.
sql_problems contains "SQL comments are not allowed" if {
	regex.match(`--|/\*|\*/|#`, sql)
}

sql_problems contains "control characters are not allowed" if {
	regex.match(`[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]`, sql)
}

sql_problems contains sprintf("keyword %q is not allowed in a read-only query", [kw]) if {
	some kw in regex.find_n(write_keywords, sql, -1)
}

# Keywords that change data, schema, permissions or server state, or run
# other code. Matched as whole words anywhere, so that a data-modifying CTE
# (WITH x AS (DELETE ... RETURNING *) SELECT ...), SELECT ... INTO and
# SELECT ... FOR UPDATE are caught too. A column named like one of them is
# refused as well: the price of a rule simple enough to audit.
write_keywords := `\b(insert|update|delete|merge|upsert|drop|alter|create|truncate|grant|revoke|copy|call|exec|execute|into|attach|detach|pragma|vacuum|reindex|cluster|lock|set|reset|load|import|handler|do|commit|rollback|begin|savepoint|prepare|deallocate|listen|notify|comment|security|owner|refresh)\b`

# Functions with side effects or reach beyond the database (files, network,
# sequences, sleeping). Not exhaustive: see the README.
sql_problems contains sprintf("function %q is not allowed in a read-only query", [fn]) if {
	some m in regex.find_n(side_effect_functions, sql, -1)
	fn := trim_space(trim_suffix(m, "("))
}

side_effect_functions := `\b(pg_read_file|pg_read_binary_file|pg_ls_dir|pg_stat_file|lo_import|lo_export|lo_unlink|dblink|dblink_exec|pg_sleep|pg_terminate_backend|pg_cancel_backend|set_config|nextval|setval|load_file|sys_exec|xp_cmdshell)\s*\(`

# --- transfer: amount within the caller's team limit --------------------------

argument_violations contains msg if {
	tool_name == "transfer"
	msg := transfer_problem
}

transfer_problem := "transfer: amount must be a number" if {
	not is_number(object.get(arguments, "amount", null))
} else := "transfer: amount must be positive" if {
	arguments.amount <= 0
} else := "transfer: the token carries no team claim" if {
	not is_string(object.get(input.token, ["claims", "team"], null))
} else := sprintf("transfer: no transfer limit is configured for team %q", [input.token.claims.team]) if {
	not is_number(team_limit)
} else := sprintf("transfer: amount %v exceeds the limit of %v for team %q", [arguments.amount, team_limit, input.token.claims.team]) if {
	arguments.amount > team_limit
}

# The limit of the caller's team (claim "team"), null when none is configured.
team_limit := object.get(object.get(data.mcpauthz.config, "transfer_limits", {}), input.token.claims.team, null)

# --- echo (the reference server "everything"): no credentials in messages ----

# A message that carries an AWS access key id is refused: a tool argument is
# a way out for a secret the model has seen.
argument_violations contains "echo: the message carries what looks like an AWS access key id" if {
	tool_name == "echo"
	is_string(arguments.message)
	regex.match(`AKIA[0-9A-Z]{16}`, arguments.message)
}
