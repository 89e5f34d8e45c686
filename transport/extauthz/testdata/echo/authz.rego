# A policy that echoes request bytes into every string of its answer: the
# reason, a response header and an upstream header. The adapter must still
# send a CheckResponse that Envoy can decode when those bytes are not UTF-8.
package mcp.authz

echo := object.get(input.http.headers, "x-echo", "")

decision := {
	"allow": input.http.method == "GET",
	"reason": sprintf("refused %s at %s", [echo, input.http.path]),
	"headers": {"x-echo": echo},
	"response_headers": {"x-echo": echo},
}
