# Test policy of decision.rate_limit: a valid token is allowed, with the
# rate_limit that input.context.shape names (none when it names none);
# shape "deny" denies with a rate_limit, which a denial never carries.
package mcp.authz

default decision := {"allow": false, "reason": "a valid token is required"}

decision := {"allow": true} if {
	input.token.valid
	not input.context.shape
}

decision := {"allow": true, "rate_limit": limits} if {
	input.token.valid
	input.context.shape != "deny"
}

decision := {"allow": false, "reason": "denied", "rate_limit": {"subject": input.token.subject}} if {
	input.token.valid
	input.context.shape == "deny"
}

limits := {"subject": input.token.subject, "tool": input.mcp.tool.name} if input.context.shape == "per_tool"

limits := {"subject": input.token.subject, "method": input.mcp.method} if input.context.shape == "per_method"

limits := {} if input.context.shape == "empty"

limits := {"subject": 7} if input.context.shape == "number"

limits := ["subject"] if input.context.shape == "array"

limits := {"sub.ject": "alice"} if input.context.shape == "dotted_name"

limits := {"subject": ""} if input.context.shape == "empty_value"

limits := {"subject": "a\nb"} if input.context.shape == "control_character"

limits := {"subject": concat("", ["x" | some _ in numbers.range(1, 257)])} if input.context.shape == "long_value"

limits := {"subject": concat("", ["x" | some _ in numbers.range(1, 256)])} if input.context.shape == "longest_value"

limits := {sprintf("k%d", [i]): "v" | some i in numbers.range(1, 17)} if input.context.shape == "too_many"

limits := {sprintf("k%d", [i]): "v" | some i in numbers.range(1, 16)} if input.context.shape == "most"

# One entry named and valued by the route's context, for the fuzz target.
limits := {input.context.name: input.context.value} if input.context.shape == "from_context"
