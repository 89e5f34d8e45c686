package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision/listplan"
)

// TestCheckConfigBundles: check and test with --config and no PATH load
// the configuration's bundles, as serve would; a PATH given replaces them.
func TestCheckConfigBundles(t *testing.T) {
	dir := t.TempDir()
	good, broken := filepath.Join(dir, "good"), filepath.Join(dir, "broken")
	for p, rego := range map[string]string{
		good:   "package mcp.authz\n\ndefault allow := false\n",
		broken: "package mcp.authz\n\nallow if {\n",
	} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(p, "authz.rego"), []byte(rego), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := func(name, bundle string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("bundles:\n  - path: "+bundle+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	goodCfg, brokenCfg := config("good.yaml", good), config("broken.yaml", broken)
	runCLICases(t, map[string]cliCase{
		"config_bundles_ok":       {[]string{"check", "--config", goodCfg}, 0, "ok: " + good + " (the bundles of " + goodCfg + ") compiled"},
		"config_bundles_broken":   {[]string{"check", "--config", brokenCfg}, 1, "broken/authz.rego:4: rego_parse_error"},
		"path_replaces_bundles":   {[]string{"check", "--config", brokenCfg, good}, 0, "ok: " + good + " compiled"},
		"test_config_bundles":     {[]string{"test", "--config", brokenCfg}, 2, "broken/authz.rego:4: rego_parse_error"},
		"neither_path_nor_config": {[]string{"check"}, 1, "name at least one bundle PATH, or --config FILE to use the configuration's bundles"},
	})
}

// TestBrokenBundleErrorOnce: a bundle that does not compile is reported
// once by the one-shot commands (the error they return), not also by the
// bundle manager's log line.
func TestBrokenBundleErrorOnce(t *testing.T) {
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "authz.rego"), []byte("package mcp.authz\n\nallow if {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	req := filepath.Join(t.TempDir(), "list.json")
	if err := os.WriteFile(req, []byte(`{"jsonrpc": "2.0", "id": 1, "method": "tools/list"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string][]string{
		"eval":   {"eval", "--bundle", broken, "--request", req},
		"replay": {"replay", "--bundle", broken, req},
	}
	for name, args := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, args...)
			if code == 0 {
				t.Fatalf("exit 0 on a broken bundle\nstdout: %s\nstderr: %s", out, errOut)
			}
			if n := strings.Count(errOut, "rego_parse_error"); n != 1 {
				t.Errorf("the error is printed %d times, want once:\n%s", n, errOut)
			}
		})
	}
}

// TestCheckStatesLists: check says how the bundle's lists will be
// filtered, and when the derivation from the decision is not exact, what
// a caller may be shown and what to write.
func TestCheckStatesLists(t *testing.T) {
	runCLICases(t, map[string]cliCase{
		"visible_rule": {[]string{"check", "../../policies"}, 0, "lists: filtered by the visible rule (../../policies/visible.rego:"},
		"else_chain":   {[]string{"check", "../../decision/testdata/lists-else"}, 0, "NOT exact for this policy: partial evaluation cannot split data.mcp.authz.decision (../../decision/testdata/lists-else/authz.rego:3)"},
		"how_to_write": {[]string{"check", "../../decision/testdata/lists-else"}, 0, "lists: to list exactly, write a visible rule beside the decision"},
		"split_exact":  {[]string{"check", "../../decision/testdata/lists-split"}, 0, "derived from the decision by partial evaluation (an item is listed when some arguments could make its call allowed), exact for this policy"},
	})
}

// TestLogListPlan: serve and proxy log how lists will be filtered, as a
// warning when a caller may be shown items it cannot call.
func TestLogListPlan(t *testing.T) {
	tests := map[string]struct {
		rep  listplan.Report
		want []string
	}{
		"exact":     {listplan.Report{Mode: listplan.ByVisible, VisibleAt: "a.rego:3", Exact: true}, []string{`level=INFO msg="lists: filtered by the visible rule (a.rego:3)`}},
		"not_exact": {listplan.Report{Mode: listplan.Derived, Unsplit: []string{"data.mcp.authz.decision (a.rego:3)"}}, []string{`level=WARN msg="lists: no visible rule`, `level=WARN msg="lists: to list exactly`}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var b strings.Builder
			logListPlan(slog.New(slog.NewTextHandler(&b, nil)), tc.rep)
			assertHolds(t, "log", b.String(), tc.want)
		})
	}
}
