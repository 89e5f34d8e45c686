# A policy with only an allow rule: the engine falls back to it.
package mcp.authz

allow if input.mcp.method == "ping"

allow := false if input.mcp.method == "tools/list"
