package main

import (
	"testing"

	"github.com/mcpauthz/mcpauthz/decision/oauth"
)

// TestProxyResourceFromDevConfig: under mcpauthz proxy, dev.yaml's
// challenges point at the metadata where the proxy serves it (its own
// origin, listen.proxy), and tokens are checked for that resource; a
// resource named on the command line still wins, and serve keeps
// resource.uri.
func TestProxyResourceFromDevConfig(t *testing.T) {
	const dev = "../../examples/config/dev.yaml"
	tests := map[string]struct {
		flags        proxyFlags
		wantResource string
	}{
		"proxy_uri":     {proxyFlags{}, "http://127.0.0.1:8080/mcp"},
		"resource_flag": {proxyFlags{serveFlags: serveFlags{resource: "http://127.0.0.1:9999/mcp"}}, "http://127.0.0.1:9999/mcp"},
		"set_uri":       {proxyFlags{serveFlags: serveFlags{sets: []string{"resource.uri=http://127.0.0.1:7777/mcp"}}}, "http://127.0.0.1:7777/mcp"},
		"no_proxy_uri":  {proxyFlags{serveFlags: serveFlags{sets: []string{"resource.proxy_uri="}}}, "https://mcp.example.com/mcp"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			f := tc.flags
			f.config, f.upstream = dev, "http://127.0.0.1:3001/mcp"
			cfg, err := proxyConfig(&f)
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.Resource.URI != tc.wantResource {
				t.Fatalf("resource %q, want %q", cfg.Resource.URI, tc.wantResource)
			}
			if name == "proxy_uri" {
				want := "http://" + cfg.Listen.Proxy + "/.well-known/oauth-protected-resource/mcp"
				if got := oauth.MetadataURL(cfg.Resource.URI); got != want {
					t.Errorf("challenges point at %s; the proxy serves the metadata at %s", got, want)
				}
			}
		})
	}
	serve := serveFlags{config: dev}
	cfg, err := serve.load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Resource.URI != "https://mcp.example.com/mcp" {
		t.Errorf("serve's resource %q, want resource.uri", cfg.Resource.URI)
	}
}
