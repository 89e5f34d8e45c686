package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/internal/nodetest"
)

// nodeProject is the npm project that pins the third-party MCP software the
// end-to-end tests run (`npm ci --prefix e2e/node` installs it).
const nodeProject = "../../e2e/node"

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

// TestEverythingVersionAgrees: `docker compose up` runs the version of
// server-everything that e2e/node pins and the end-to-end test runs.
func TestEverythingVersionAgrees(t *testing.T) {
	deps, err := nodetest.Dependencies(nodeProject)
	if err != nil {
		t.Fatal(err)
	}
	const name = "@modelcontextprotocol/server-everything"
	v := deps[name]
	if v == "" {
		t.Fatalf("e2e/node/package.json does not pin %s", name)
	}
	compose, err := os.ReadFile("../../docker-compose.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if want := `"` + name + "@" + v + `"`; !strings.Contains(string(compose), want) {
		t.Errorf("docker-compose.yaml does not run %s (the version e2e/node pins)", want)
	}
}
