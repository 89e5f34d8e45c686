package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestIntegrationsConfig loads the mcpauthz configuration that
// docs/integrations.md shows beside agentgateway's, so the keys it names
// stay real.
func TestIntegrationsConfig(t *testing.T) {
	b, err := os.ReadFile("../../docs/integrations.md")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, m := range regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(string(b), -1) {
		if !strings.HasPrefix(m[1], "listen:") {
			continue // agentgateway's configuration
		}
		n++
		cfg, err := LoadConfig(writeConfig(t, m[1]))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Fatalf("docs/integrations.md configuration:\n%s\n%v", m[1], err)
		}
		if cfg.Agentgateway.MetadataKey != "authorization" {
			t.Errorf("agentgateway.metadata_key = %q", cfg.Agentgateway.MetadataKey)
		}
	}
	if n == 0 {
		t.Fatal("no mcpauthz configuration in docs/integrations.md")
	}
	cfg, err := LoadConfig(writeConfig(t, "agentgateway: {metadata_key: \"\"}\n"))
	if err == nil {
		err = cfg.Validate()
	}
	if err == nil || !strings.Contains(err.Error(), "agentgateway.metadata_key") {
		t.Errorf("an empty agentgateway.metadata_key: %v", err)
	}
}
