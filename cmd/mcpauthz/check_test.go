package main

import (
	"os"
	"path/filepath"
	"testing"
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
