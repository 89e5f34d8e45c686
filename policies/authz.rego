# mcpauthz default policy.
#
# The engine queries data.mcp.authz.decision for every message Envoy forwards
# (and for GET/DELETE on the MCP endpoint, which carry none). Everything is
# denied unless a rule below allows it. Settings (which scope each method and
# tool needs, the name of the subject header) live in data.mcpauthz.config,
# outside this package, so operators change them without touching Rego.
#
# Each deciding rule is a single-valued rule whose alternatives are chained
# with `else`: two alternatives can never both produce a value, so no input
# can make the policy fail with a "complete rules must not produce multiple
# outputs" conflict (which the engine would turn into a deny anyway).
package mcp.authz

# Settings, each read by its full path: a test's
# `with data.mcpauthz.config.tool_scopes as ...` then replaces exactly that
# setting. A missing setting falls back to the most restrictive value.
default method_scopes := {}

method_scopes := data.mcpauthz.config.method_scopes

default tool_scopes := {}

tool_scopes := data.mcpauthz.config.tool_scopes

default prompt_scopes := {}

prompt_scopes := data.mcpauthz.config.prompt_scopes

default resource_scopes := {}

resource_scopes := data.mcpauthz.config.resource_scopes

default subject_header := "x-mcp-subject"

subject_header := data.mcpauthz.config.subject_header

# decision is what the engine reads. A deny always carries the scopes the
# operation needs (for the 401/403 challenge) and a reason people can read.
default decision := {
	"allow": false,
	"reason": "denied: no policy rule allows this request",
	"scopes": [],
}

decision := object.union({"allow": false, "scopes": required_scopes}, deny) if {
	deny
} else := {
	"allow": true,
	"scopes": required_scopes,
	"headers": upstream_headers,
} if {
	allowed
}

# allowed restates the positive conditions instead of relying on "no deny
# reason was found": a gap in the deny chain then still cannot allow.
allowed if {
	not deny
	input.token.valid == true
	known_operation
	every s in required_scope_set {
		s in token_scope_set
	}
}

# deny is the first reason, in priority order, for refusing the request.
# Credentials come first, so that an unauthenticated caller learns nothing
# about sessions or methods.
deny := {
	"reason": "access tokens are not accepted in the query string; send the token in the Authorization header",
	# 400: this is a client mistake that a new token would not fix
	# (OAuth 2.1 §5.2.2 forbids tokens in the query string).
	"status": 400,
} if {
	input.http.access_token_in_query == true
} else := {"reason": token_reason} if {
	not input.token.valid == true
} else := {
	"reason": "session not found: this MCP session was opened by another user; start a new session",
	# 404 is what the Streamable HTTP transport answers for an unknown
	# session: the client starts a new one, and the caller learns nothing
	# about the session's owner.
	"status": 404,
} if {
	session_hijack
} else := {"reason": unknown_operation_reason} if {
	not known_operation
} else := {"reason": missing_scope_reason} if {
	count(missing_scope_set) > 0
}

# A session id is bound to the subject that first used it (when the engine
# runs with session binding on); anyone else presenting it is refused.
session_hijack if {
	owner := input.mcp.session_owner
	owner != object.get(input.token, "subject", "")
}

default token_reason := "the access token is not valid"

token_reason := "authentication required: no access token was sent" if {
	not input.token.present == true
} else := sprintf("the access token was rejected: %s", [input.token.error]) if {
	input.token.error
}

# known_operation: an MCP request whose method is configured, any
# notification or response, or a GET (SSE stream) or DELETE (end session),
# which carry no MCP message.
known_operation if {
	input.mcp.kind == "request"
	input.mcp.method in object.keys(method_scopes)
}

known_operation if input.mcp.kind in {"notification", "response"}

known_operation if {
	not input.mcp
	input.http.method in {"GET", "DELETE"}
}

default unknown_operation_reason := "denied: this kind of request is not allowed"

unknown_operation_reason := sprintf("method %q is not allowed by policy", [input.mcp.method]) if {
	input.mcp.method
} else := sprintf("HTTP %s without an MCP message is not allowed", [input.http.method]) if {
	not input.mcp
}

# required_scope_set: every scope the operation needs. The target-specific
# alternatives include the method's own scopes.
required_scope_set := tool_scope_set(input.mcp.tool.name) if {
	input.mcp.kind == "request"
	input.mcp.method == "tools/call"
} else := prompt_scope_set(input.mcp.prompt.name) if {
	input.mcp.kind == "request"
	input.mcp.method == "prompts/get"
} else := resource_scope_set(input.mcp.method, input.mcp.resource.uri) if {
	input.mcp.kind == "request"
	input.mcp.method in {"resources/read", "resources/subscribe", "resources/unsubscribe"}
} else := method_scope_set(input.mcp.method) if {
	input.mcp.kind == "request"
} else := set()

required_scopes := sort(required_scope_set)

token_scope_set := {s | some s in input.token.scopes}

missing_scope_set := required_scope_set - token_scope_set

missing_scope_reason := sprintf("%s needs scope(s) %s; the token lacks %s", [
	operation_label,
	concat(" ", required_scopes),
	concat(" ", sort(missing_scope_set)),
])

operation_label := sprintf("tools/call of tool %q", [input.mcp.tool.name]) if {
	input.mcp.method == "tools/call"
} else := sprintf("prompts/get of prompt %q", [input.mcp.prompt.name]) if {
	input.mcp.method == "prompts/get"
} else := sprintf("%s of %q", [input.mcp.method, input.mcp.resource.uri]) if {
	input.mcp.resource.uri
} else := input.mcp.method

# Headers added to the upstream request on allow: the verified subject, so
# the MCP server need not parse tokens (it never receives the client's token).
default upstream_headers := {}

upstream_headers := {subject_header: input.token.subject} if {
	input.token.subject
}

# Scope helpers, shared with the visible rule so that a list shows exactly
# what the caller may then use.

method_scope_set(method) := {s | some s in object.get(method_scopes, method, [])}

tool_scope_set(name) := method_scope_set("tools/call") | {s | some s in object.get(tool_scopes, name, [])}

prompt_scope_set(name) := method_scope_set("prompts/get") | {s | some s in object.get(prompt_scopes, name, [])}

# resource_scopes is keyed by URI prefix: every matching prefix adds its scopes.
resource_scope_set(method, uri) := method_scope_set(method) | {s |
	some prefix, scopes in resource_scopes
	startswith(uri, prefix)
	some s in scopes
}
