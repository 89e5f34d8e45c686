package main

import (
	"strings"
	"testing"
)

// TestEvalDecisionLog: eval --decision-log FILE --id ID decides a logged
// decision again on its logged input, prints the result beside the logged
// one, and explains it; an id it cannot decide again says why.
func TestEvalDecisionLog(t *testing.T) {
	bundle, write := evalFixture(t)
	req := write("call.json", `{"claims": {"sub": "alice"}, "body": {"jsonrpc": "2.0", "id": 2, "method": "prompts/list"}}`)
	code, input, errOut := runCLI(t, "eval", "--bundle", bundle, "--request", req, "--input")
	if code != 0 {
		t.Fatalf("eval --input: exit %d: %s", code, errOut)
	}
	// The input as the decision log records it: one event per line.
	input = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(input), "["), "]")
	log := write("decisions.jsonl", `{"decision_id": "d-1", "path": "mcp/authz/decision", "input": `+strings.Join(strings.Fields(input), " ")+`, "result": {"allow": true, "code": "allowed"}}
{"decision_id": "d-2", "path": "mcp/authz/decision", "result": {"allow": false, "code": "parse_error", "status": 400, "reason": "not JSON"}}
`)
	base := []string{"eval", "--bundle", bundle, "--decision-log", log}
	tests := map[string]struct {
		args       []string
		wantCode   int
		wantOut    []string
		wantStderr []string
	}{
		"decided_again_and_explained": {args: []string{"--id", "d-1", "-f", "pretty", "--explain", "fails"},
			wantOut:    []string{"DENY 200 policy_denied", "logged:   allow"},
			wantStderr: []string{"explanation of data.mcp.authz.allow (fails):", "method is prompts/list"}},
		"json_has_logged":  {args: []string{"--id", "d-1"}, wantOut: []string{`"allow": false`, `"logged": {`}},
		"refused_before":   {args: []string{"--id", "d-2"}, wantCode: 1, wantStderr: []string{"decision d-2 was refused before the policy ran, so there is no input to decide again: logged deny 400 parse_error"}},
		"unknown_id":       {args: []string{"--id", "d-9"}, wantCode: 1, wantStderr: []string{"has no decision d-9: the id is the x-mcp-authz-decision-id header of the answer"}},
		"id_without_log":   {args: []string{"--id", "d-1", "--decision-log", ""}, wantCode: 2, wantStderr: []string{"--decision-log FILE and --id ID go together"}},
		"log_with_request": {args: []string{"--id", "d-1", "--request", req}, wantCode: 2, wantStderr: []string{"--request, --input-file and --decision-log are exclusive"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append(append([]string{}, base...), tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			assertHolds(t, "stdout", out, tc.wantOut)
			assertHolds(t, "stderr", errOut, tc.wantStderr)
		})
	}
}
