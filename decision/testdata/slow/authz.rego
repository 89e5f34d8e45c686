# Test policy that cannot finish in time for some requests: method
# "slow/op", and an HTTP request (GET, DELETE) to /slow. Its check takes
# three nested iterations over a thousand numbers, 10^9 steps; had it all
# the time it needs, it would allow. Every other request is allowed at once.
package mcp.authz

thousand := numbers.range(1, 1000)

never if {
	some a in thousand
	some b in thousand
	some c in thousand
	a + b + c < 0
}

slow if input.mcp.method == "slow/op"

slow if input.http.path == "/slow"

decision := {"allow": true} if not slow

decision := {"allow": true} if {
	slow
	not never
}
