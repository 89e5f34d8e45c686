package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvalFormatsFailExplain: eval's --format, --fail, --input-file,
// --explain and the policy's print() output.
func TestEvalFormatsFailExplain(t *testing.T) {
	bundle, write := evalFixture(t)
	list := write("list.json", `{"http": {"method": "POST", "path": "/mcp", "host": "mcp.example.com", "headers": {"content-type": "application/json"}},
 "claims": {"sub": "alice"}, "body": {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}}`)
	call := write("call.json", `{"http": {"method": "POST", "path": "/mcp", "host": "mcp.example.com", "headers": {"content-type": "application/json"}},
 "claims": {"sub": "alice"}, "body": {"jsonrpc": "2.0", "id": 2, "method": "prompts/list"}}`)
	input := write("input.json", `{"mcp": {"kind": "request", "method": "tools/list"}}`)
	base := []string{"eval", "--bundle", bundle}

	tests := map[string]struct {
		args       []string
		wantCode   int
		wantOut    string // stdout, exactly ("": not checked)
		wantIn     []string
		wantStderr []string
	}{
		"raw_allow":            {[]string{"--request", list, "--format", "raw"}, 0, "true\n", nil, []string{"method is tools/list\n"}},
		"raw_deny":             {[]string{"--request", call, "-f", "raw"}, 0, "false\n", nil, []string{"method is prompts/list\n"}},
		"fail_on_deny":         {[]string{"--request", call, "-f", "raw", "--fail"}, 1, "false\n", nil, nil},
		"fail_on_allow":        {[]string{"--request", list, "-f", "raw", "--fail"}, 0, "true\n", nil, nil},
		"pretty_deny":          {[]string{"--request", call, "-f", "pretty"}, 0, "", []string{"DENY 200 policy_denied  (decision ", "token:    present=true valid=true subject=alice"}, nil},
		"json_default":         {[]string{"--request", list}, 0, "", []string{`"allow": true`, `"decision_id"`}, nil},
		"input_file_json":      {[]string{"--input-file", input}, 0, "", []string{`"query": "data.mcp.authz.allow"`, `"allow": true`, `"result": true`}, []string{"method is tools/list"}},
		"input_file_pretty":    {[]string{"--input-file", input, "-f", "pretty"}, 0, "ALLOW\ndata.mcp.authz.allow = true\n", nil, nil},
		"explain_full":         {[]string{"--request", list, "-f", "raw", "--explain", "full"}, 0, "true\n", nil, []string{"explanation of data.mcp.authz.allow (full):", "Enter data.mcp.authz.allow", "authz.rego:7"}},
		"explain_fails":        {[]string{"--request", call, "-f", "raw", "--explain", "fails"}, 0, "false\n", nil, []string{"explanation of data.mcp.authz.allow (fails):", "Fail input.mcp.method = \"tools/list\""}},
		"bad_format":           {[]string{"--request", list, "-f", "yaml"}, 2, "", nil, []string{`--format "yaml" is not json, pretty or raw`}},
		"bad_explain":          {[]string{"--request", list, "--explain", "all"}, 2, "", nil, []string{`--explain "all" is not notes, fails or full`}},
		"request_and_input":    {[]string{"--request", list, "--input-file", input}, 2, "", nil, []string{"--request, --input-file and --decision-log are exclusive"}},
		"neither":              {nil, 1, "", nil, []string{"--request is required (or --input-file, or --decision-log FILE --id ID)"}},
		"input_file_undefined": {[]string{"--input-file", write("empty.json", `{}`), "-f", "raw", "--fail"}, 1, "false\n", nil, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append(append([]string{}, base...), tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			if tc.wantOut != "" && out != tc.wantOut {
				t.Errorf("stdout = %q, want %q", out, tc.wantOut)
			}
			assertHolds(t, "stdout", out, tc.wantIn)
			assertHolds(t, "stderr", errOut, tc.wantStderr)
		})
	}
}

// evalFixture writes a bundle whose policy allows tools/list and prints
// the method it decides, and returns it with a function writing files
// into a temporary directory.
func evalFixture(t *testing.T) (bundle string, write func(name, body string) string) {
	t.Helper()
	bundle = t.TempDir()
	policy := `package mcp.authz

default allow := false

allow if {
	print("method is", input.mcp.method)
	input.mcp.method == "tools/list"
}
`
	if err := os.WriteFile(filepath.Join(bundle, "authz.rego"), []byte(policy), 0o600); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	return bundle, func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
}

// assertHolds fails the test for each of want that output does not hold.
func assertHolds(t *testing.T, name, output string, want []string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(output, w) {
			t.Errorf("%s lacks %q:\n%s", name, w, output)
		}
	}
}
