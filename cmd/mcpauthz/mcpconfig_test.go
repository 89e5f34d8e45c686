package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
)

// TestMCPConfig follows the mcp and http sections from YAML to the
// engine's MCP options.
func TestMCPConfig(t *testing.T) {
	t.Run("defaults", func(t *testing.T) {
		cfg := DefaultConfig()
		o, err := mcpOptions(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		if o.DefaultProtocolVersion != "2025-03-26" || !slices.Equal(o.ProtocolVersions, decision.KnownProtocolVersions) ||
			o.StandardHeaders != decision.ByVersion || o.Batches != decision.ByVersion ||
			!slices.Equal(o.Origins, []string{"https://mcp.example.com"}) {
			t.Errorf("default MCP options %+v", o)
		}
		if cfg.Envoy.MCPMetadataNamespace != "envoy.filters.http.mcp" {
			t.Errorf("envoy.mcp_metadata_namespace default %q", cfg.Envoy.MCPMetadataNamespace)
		}
	})
	t.Run("set", func(t *testing.T) {
		cfg, err := LoadConfig(writeConfig(t, `
resource: {uri: "https://MCP.Example.com:8443/mcp"}
mcp:
  default_protocol_version: "2025-11-25"
  protocol_versions: ["2025-11-25", "2026-07-28"]
  require_standard_headers: always
  batches: never
http:
  allowed_origins: ["https://app.example.com", "http://localhost:5173"]
`))
		if err == nil {
			err = cfg.Validate()
		}
		if err != nil {
			t.Fatal(err)
		}
		o, err := mcpOptions(&cfg)
		if err != nil {
			t.Fatal(err)
		}
		want := decision.MCPOptions{
			DefaultProtocolVersion: "2025-11-25", ProtocolVersions: []string{"2025-11-25", "2026-07-28"},
			StandardHeaders: decision.Always, Batches: decision.Never,
			Origins: []string{"https://mcp.example.com:8443", "https://app.example.com", "http://localhost:5173"},
		}
		if o.DefaultProtocolVersion != want.DefaultProtocolVersion || !slices.Equal(o.ProtocolVersions, want.ProtocolVersions) ||
			o.StandardHeaders != want.StandardHeaders || o.Batches != want.Batches || !slices.Equal(o.Origins, want.Origins) {
			t.Errorf("MCP options %+v, want %+v", o, want)
		}
	})
}

func TestMCPConfigErrorsNameTheKey(t *testing.T) {
	tests := map[string]struct {
		yaml string
		key  string
	}{
		"unknown_mcp_key":      {"mcp: {batch: never}", "batch"},
		"unknown_version":      {"mcp: {protocol_versions: ['2025-11-25', '2027-01-01']}", "mcp.protocol_versions[1]"},
		"no_versions":          {"mcp: {protocol_versions: []}", "mcp.protocol_versions"},
		"default_not_accepted": {"mcp: {protocol_versions: ['2026-07-28']}", "mcp.default_protocol_version"},
		"bad_standard_headers": {"mcp: {require_standard_headers: sometimes}", "mcp.require_standard_headers"},
		"bad_batches":          {"mcp: {batches: yes_please}", "mcp.batches"},
		"origin_with_path":     {"http: {allowed_origins: ['https://app.example.com/x']}", "http.allowed_origins[0]"},
		"origin_with_slash":    {"http: {allowed_origins: ['https://a.example', 'https://app.example.com/']}", "http.allowed_origins[1]"},
		"origin_not_http":      {"http: {allowed_origins: ['app.example.com']}", "http.allowed_origins[0]"},
		"unknown_http_key":     {"http: {allowed_origin: ['https://a.example']}", "allowed_origin"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := LoadConfig(writeConfig(t, tc.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error = %v, want one naming %q", err, tc.key)
			}
		})
	}
}
