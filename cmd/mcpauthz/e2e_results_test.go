package main

import (
	"strings"
	"testing"
)

// TestEverythingResultRules runs the result-rules example bundle as
// `mcpauthz proxy` in front of server-everything (the version e2e/node
// pins), driven by the TypeScript SDK's client: echo returns what it is
// sent, so an AWS access key id comes back redacted; get-env, whose answer
// holds the server's environment (given an AWS key here), is withheld from
// alice (a tool error with the rule's reason) and passed to an admin with
// the key redacted. Directly, the server answers with the key.
func TestEverythingResultRules(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary and Node.js")
	}
	const awsKey = "AKIAIOSFODNN7EXAMPLE" // AWS's documented example key id
	ev := startEverythingProxyWith(t, "../../examples/bundles/result-rules", []string{"MCPAUTHZ_E2E_AWS_KEY=" + awsKey})
	plan := []everythingCall{
		{"echo", map[string]any{"message": "my key is " + awsKey}},
		{"get-env", map[string]any{}},
	}
	direct := runTSClient(t, ev.node, "http://"+ev.upstream+"/mcp", "", plan)
	for i, c := range direct.Calls {
		if !strings.Contains(c.text(), awsKey) {
			t.Fatalf("call %d directly: %v, want the server to answer with the key", i, c)
		}
	}
	alice := runTSClient(t, ev.node, ev.resource, ev.mint("alice", "mcp:tools"), plan)
	admin := runTSClient(t, ev.node, ev.resource, ev.mint("root", "mcp:tools admin"), plan)

	if err := (callWant{text: "Echo: my key is [REDACTED:aws_access_key]"}).check(alice.Calls[0]); err != nil {
		t.Errorf("alice's echo: %v", err)
	}
	if err := (callWant{text: "result withheld by policy: environment dumps are for admins only", isError: true}).check(alice.Calls[1]); err != nil {
		t.Errorf("alice's get-env: %v", err)
	}
	if err := (callWant{text: "Echo: my key is [REDACTED:aws_access_key]"}).check(admin.Calls[0]); err != nil {
		t.Errorf("the admin's echo: %v", err)
	}
	env := admin.Calls[1]
	if env.Result == nil || env.Result.IsError || strings.Contains(env.text(), awsKey) ||
		!strings.Contains(env.text(), "MCPAUTHZ_E2E_AWS_KEY") || !strings.Contains(env.text(), "[REDACTED:aws_access_key]") {
		t.Errorf("the admin's get-env: %v, want the environment with the key redacted", env)
	}
}
