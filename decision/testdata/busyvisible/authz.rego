# A visible rule that takes a few hundred expressions to judge an item, so
# an evaluation whose time ran out before it started is stopped
# (TestListWaitsForWorkers).
package mcp.authz

default decision := {"allow": false, "reason": "denied by default"}

default visible := false

visible if {
	count([x | some x in numbers.range(1, 300); x != input.item.name]) == 300
	input.item.name in {"search", "search_limited"}
}
