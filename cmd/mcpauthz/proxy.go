package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
)

// proxyFlags are serve's flags and the proxy's own.
type proxyFlags struct {
	serveFlags
	upstream  string
	proxyAddr string
}

func newProxyCmd() *cobra.Command {
	var f proxyFlags
	cmd := &cobra.Command{
		Use:   "proxy --upstream URL [flags]",
		Short: "serve an MCP server through an authorizing reverse proxy (no Envoy needed)",
		Long: `Serve the MCP server at --upstream through an authorizing reverse proxy on
listen.proxy: each request is decided as ext_authz decides it (denials are
the same answers), allowed requests go upstream without the caller's token
(unless upstream.forward_token), with the decision's headers, and the
answers to tools/list, prompts/list, resources/list and
resources/templates/list are filtered by the policy's visible rule (JSON, or
the answering event of an SSE stream). The Protected Resource Metadata is
served on the proxy's origin; resource.proxy_uri (the URL of listen.proxy)
replaces resource.uri here, so challenges point at it and tokens must name
it (examples/config/dev.yaml: http://127.0.0.1:8080/mcp). Everything serve runs (gRPC, HTTP: health,
metrics, status) runs too.

For laptops, tests and small deployments; in production, run serve beside
Envoy (ext_authz and ext_proc).`,
		Example: "  mcpauthz proxy --config examples/config/dev.yaml --upstream http://127.0.0.1:3001/mcp",
		Args:    noArgs(suggestConfig),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdProxy(cmd.Context(), &f, cmd.ErrOrStderr())
		},
	}
	f.register(cmd.Flags())
	cmd.Flags().StringVar(&f.upstream, "upstream", "", "upstream MCP endpoint `URL`, e.g. http://127.0.0.1:3001/mcp (overrides upstream.url)")
	cmd.Flags().StringVar(&f.proxyAddr, "proxy-addr", "", "proxy listen `address` (overrides listen.proxy)")
	return cmd
}

func cmdProxy(ctx context.Context, f *proxyFlags, stderr io.Writer) error {
	cfg, err := proxyConfig(f)
	if err != nil {
		return err
	}
	return serveConfig(ctx, cfg, stderr, func(a *app) (err error) {
		a.proxy, err = a.proxyHandler()
		return err
	})
}

// proxyConfig is serve's configuration with the proxy's flags and
// resource applied.
func proxyConfig(f *proxyFlags) (Config, error) {
	cfg, err := f.load()
	if err != nil {
		return cfg, err
	}
	if f.upstream != "" {
		cfg.Upstream.URL = f.upstream
	}
	if f.proxyAddr != "" {
		cfg.Listen.Proxy = f.proxyAddr
	}
	proxyResource(f, &cfg)
	switch {
	case cfg.Upstream.URL == "":
		return cfg, usageError{errors.New("no upstream: give --upstream URL (or upstream.url in the config)")}
	case cfg.Listen.Proxy == "":
		return cfg, errors.New("listen.proxy is empty: the proxy needs an address")
	}
	return cfg, nil
}

// proxyResource makes resource.proxy_uri the resource under the proxy,
// unless --resource or --set resource.uri named one: the challenges then
// point at the metadata the proxy serves on its own origin, for the
// audience of the tokens its callers get.
func proxyResource(f *proxyFlags, cfg *Config) {
	if cfg.Resource.ProxyURI == "" || f.resource != "" {
		return
	}
	for _, s := range f.sets {
		if strings.HasPrefix(s, "resource.uri=") {
			return
		}
	}
	cfg.Resource.URI = cfg.Resource.ProxyURI
	cfg.give("resource.uri")
}

// listenProxy starts the proxy on listen.proxy when there is one to serve
// (mcpauthz proxy); its failure is sent on errc.
func (a *app) listenProxy(errc chan<- error) (*http.Server, error) {
	if a.proxy == nil {
		return nil, nil
	}
	lis, err := net.Listen("tcp", a.cfg.Listen.Proxy)
	if err != nil {
		return nil, fmt.Errorf("listen.proxy: %w", err)
	}
	srv := &http.Server{Handler: a.proxy, ReadHeaderTimeout: 10 * time.Second}
	a.log.Info("proxy listening (MCP endpoint, resource metadata)", "addr", lis.Addr().String(), "upstream", a.cfg.Upstream.URL,
		"forward_token", a.cfg.Upstream.ForwardToken)
	go func() {
		if err := srv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
			errc <- err
		}
	}()
	return srv, nil
}

// stopProxy stops the proxy: requests in flight get 5 seconds (an event
// stream may never end), then their connections are closed.
func stopProxy(srv *http.Server) {
	if srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		_ = srv.Close()
	}
}
