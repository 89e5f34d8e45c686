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

// TestDevConfigShowsDecisions: the development configuration prints one
// line per decision for the person watching its console (issue 26: a
// running serve or proxy logged nothing per decision).
func TestDevConfigShowsDecisions(t *testing.T) {
	cfg, err := LoadConfig("../../examples/config/dev.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if dl := cfg.DecisionLogs; !dl.Console || dl.ConsoleFormat != "text" {
		t.Errorf("decision_logs console %v, console_format %q; want console: true, console_format: text", dl.Console, dl.ConsoleFormat)
	}
}
