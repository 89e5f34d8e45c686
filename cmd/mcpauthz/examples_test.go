package main

import (
	"path/filepath"
	"testing"
)

// TestExampleConfigs: every configuration under examples/config loads and
// validates, with no unknown key.
func TestExampleConfigs(t *testing.T) {
	files, err := filepath.Glob("../../examples/config/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configs: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			cfg, err := LoadConfig(f)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if !cfg.Given("resource.uri") {
				t.Error("an example should set resource.uri")
			}
		})
	}
}
