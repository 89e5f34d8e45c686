package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// policyBundle writes a small policy with one passing and one failing
// test (which prints) into a temporary directory.
func policyBundle(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{
		"authz.rego": `package mcp.authz

default allow := false

allow if {
	input.mcp.method == "tools/list"
}

allow if {
	input.mcp.method == "tools/call"
	input.mcp.tool.name == "read_file"
}
`,
		"authz_test.rego": `package mcp.authz_test

import data.mcp.authz

test_list if authz.allow with input as {"mcp": {"method": "tools/list"}}

test_call_wrong if {
	print("checking write_file")
	authz.allow with input as {"mcp": {"method": "tools/call", "tool": {"name": "write_file"}}}
}

test_call_read if authz.allow with input as {"mcp": {"method": "tools/call", "tool": {"name": "read_file"}}}
`,
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

var durations = regexp.MustCompile(`\([0-9.]+[µnm]?s\)`)

func TestPolicyTestReport(t *testing.T) {
	dir := policyBundle(t)
	code, out, errOut := runCLI(t, "test", dir)
	if code != 2 {
		t.Fatalf("exit %d, want 2\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		"data.mcp.authz_test.test_call_wrong: FAIL",
		"  checking write_file\n",                       // print() output
		filepath.Join(dir, "authz_test.rego") + ":9:\n", // the failing expression's location
		`authz.allow with input as {"mcp": {"method": "tools/call", "tool": {"name": "write_file"}}}`,
		"PASS: 2/3\nFAIL: 1/3\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}

	// -v lists every test in file and line order, the same every run.
	var first string
	for i := range 5 {
		_, out, _ := runCLI(t, "test", dir, "-v")
		out = durations.ReplaceAllString(out, "(D)")
		if i == 0 {
			first = out
			list := strings.Index(out, "test_list: PASS")
			wrong := strings.Index(out, "test_call_wrong: FAIL")
			read := strings.Index(out, "test_call_read: PASS")
			if list < 0 || wrong < list || read < wrong {
				t.Fatalf("not in file order:\n%s", out)
			}
		} else if out != first {
			t.Fatalf("run %d differs from the first:\n%s\nfirst:\n%s", i, out, first)
		}
	}
}

func TestPolicyTestRunCoverageFormat(t *testing.T) {
	dir := policyBundle(t)
	tests := map[string]struct {
		args     []string
		wantCode int
		want     []string
		wantNot  []string
	}{
		"run_filters":        {[]string{"--run", "test_list"}, 0, []string{"PASS: 1/1"}, []string{"test_call"}},
		"run_no_match":       {[]string{"--run", "nothing"}, 2, []string{`no tests match --run "nothing"`}, nil},
		"bad_run_regexp":     {[]string{"--run", "("}, 2, []string{"--run: error parsing regexp"}, nil},
		"coverage":           {[]string{"--run", "test_list", "--coverage"}, 0, []string{"COVERAGE\n", "authz.rego: 33.3% (not covered: lines 3, 9, 10, 11)", "coverage: 33.3%"}, []string{"authz_test.rego: "}},
		"threshold_met":      {[]string{"--run", "test_call_read|test_list", "--threshold", "50"}, 0, []string{"coverage: 83.3% (threshold 50.0%)"}, nil},
		"threshold_not_met":  {[]string{"--run", "test_list", "--threshold", "50"}, 2, []string{"coverage: 33.3%, below the threshold of 50.0%", "coverage 33.3% is below --threshold 50.0%"}, nil},
		"threshold_too_high": {[]string{"--threshold", "101"}, 2, []string{"coverage threshold 101 is not between 0 and 100"}, nil},
		"bad_format":         {[]string{"--format", "xml"}, 2, []string{`format "xml" is not pretty or json`}, nil},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append([]string{"test", dir}, tc.args...)...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.wantCode, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out+errOut, w) {
					t.Errorf("output lacks %q:\n%s%s", w, out, errOut)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("output has %q:\n%s", w, out)
				}
			}
		})
	}

	// JSON: OPA's results, in order, with the print() output.
	code, out, errOut := runCLI(t, "test", dir, "--format", "json")
	if code != 2 {
		t.Fatalf("json: exit %d\n%s", code, errOut)
	}
	var results []struct {
		Name   string `json:"name"`
		Fail   bool   `json:"fail"`
		Output []byte `json:"output"`
	}
	if err := json.Unmarshal([]byte(out), &results); err != nil {
		t.Fatalf("json: %v\n%s", err, out)
	}
	if len(results) != 3 || results[0].Name != "test_list" || !results[1].Fail || string(results[1].Output) != "checking write_file\n" {
		t.Errorf("json results: %+v", results)
	}
	// JSON with coverage: OPA's coverage report of the policy files.
	_, out, _ = runCLI(t, "test", dir, "--format", "json", "--coverage", "--run", "test_list")
	var report struct {
		Files    map[string]any `json:"files"`
		Coverage float64        `json:"coverage"`
	}
	if err := json.Unmarshal([]byte(out), &report); err != nil || len(report.Files) != 1 || report.Coverage < 33 || report.Coverage > 34 {
		t.Errorf("coverage report (%v): %s", err, out)
	}
}
