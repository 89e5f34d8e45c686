package main

import (
	"regexp"
	"testing"
)

// TestEverythingPolicy runs the Rego tests of testdata/everything, the
// policy TestEverythingThroughProxy serves, beside the default bundle it
// builds on, as `mcpauthz test` runs them.
func TestEverythingPolicy(t *testing.T) {
	code, out, errOut := runCLI(t, "test", "../../policies", "testdata/everything", "--run", `^data\.everything\.authz\.`)
	if code != 0 {
		t.Fatalf("mcpauthz test: exit %d\n%s%s", code, out, errOut)
	}
	if m := regexp.MustCompile(`(?m)^PASS: ([1-9][0-9]*)/([0-9]+)$`).FindStringSubmatch(out); m == nil || m[1] != m[2] {
		t.Fatalf("mcpauthz test ran no test of testdata/everything or failed one:\n%s", out)
	}
}
