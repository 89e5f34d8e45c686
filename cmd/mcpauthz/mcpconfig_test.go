package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
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
	tests := map[string]configErrorCase{
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
	checkConfigErrors(t, tests)
}

// TestMCPConfigDecides follows the mcp and http sections from YAML through
// the app's engine (the embedded default policy): an accepted 2026-07-28
// request, an Origin of resource.uri and of http.allowed_origins, a
// foreign Origin, a revision left out of mcp.protocol_versions, and a batch
// refused by mcp.batches.
func TestMCPConfigDecides(t *testing.T) {
	keyPath := filepath.Join(t.TempDir(), "dev-key.pem")
	cfg, err := LoadConfig(writeConfig(t, fmt.Sprintf(`tokens: {dev: true, dev_key_file: %q}
mcp: {protocol_versions: ["2025-06-18", "2025-11-25", "2026-07-28"], default_protocol_version: "2025-11-25", batches: never}
http: {allowed_origins: ["https://app.example.com"]}
`, keyPath)))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	a, err := buildApp(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.bundles.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := token.MintDev(token.DevOptions{KeyPath: keyPath, Audience: cfg.Resource.URI})
	if err != nil {
		t.Fatal(err)
	}
	const discover = `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	tests := map[string]struct {
		headers map[string]string
		body    string
		status  int    // 0: allowed
		resp    string // the denial's body
	}{
		"v2026_discover":  {headers: map[string]string{"mcp-method": "server/discover", "mcp-protocol-version": "2026-07-28"}, body: discover},
		"resource_origin": {headers: map[string]string{"mcp-method": "server/discover", "mcp-protocol-version": "2026-07-28", "origin": "https://mcp.example.com"}, body: discover},
		"allowed_origin":  {headers: map[string]string{"mcp-method": "server/discover", "mcp-protocol-version": "2026-07-28", "origin": "https://app.example.com"}, body: discover},
		"foreign_origin": {headers: map[string]string{"mcp-method": "server/discover", "mcp-protocol-version": "2026-07-28", "origin": "https://evil.example"}, body: discover,
			status: 403, resp: `{"jsonrpc":"2.0","id":null,"error":{"code":-32000,"message":"origin \"https://evil.example\" is not allowed"}}`},
		"revision_not_accepted": {headers: map[string]string{"mcp-protocol-version": "2025-03-26"}, body: `{"jsonrpc":"2.0","id":2,"method":"ping"}`,
			status: 400, resp: `{"jsonrpc":"2.0","id":2,"error":{"code":-32022,"message":"unsupported protocol version \"2025-03-26\"","data":{"supported":["2025-06-18","2025-11-25","2026-07-28"],"requested":"2025-03-26"}}}`},
		"default_revision": {body: `{"jsonrpc":"2.0","id":3,"method":"ping"}`},
		"batch_never": {body: `[{"jsonrpc":"2.0","id":4,"method":"ping"}]`,
			status: 400, resp: `{"jsonrpc":"2.0","id":null,"error":{"code":-32600,"message":"JSON-RPC batches are not part of MCP 2025-11-25"}}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			hs := map[string]string{"content-type": "application/json", "authorization": "Bearer " + raw}
			for k, v := range tc.headers {
				hs[k] = v
			}
			d := a.engine.Decide(ctx, &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Headers: hs, Body: []byte(tc.body)})
			if tc.status == 0 {
				if !d.Allow {
					t.Fatalf("denied: %s (%s)", d.Reason, d.Code)
				}
				return
			}
			if d.Allow || d.Status != tc.status || string(d.Body) != tc.resp {
				t.Errorf("allow %v, status %d, body %s\nwant %d %s", d.Allow, d.Status, d.Body, tc.status, tc.resp)
			}
		})
	}
}
