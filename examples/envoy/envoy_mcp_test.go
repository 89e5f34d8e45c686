package envoy_test

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	mcpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/mcp/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// Registers the MCP filter's typed config (go-control-plane envoy v1.40.0).
var _ = &mcpv3.Mcp{}

// checkMCPFilterSetup asserts what mcpauthz relies on in the example with
// Envoy's MCP filter: the filter runs first, parses whole bodies into
// dynamic metadata, ext_authz forwards the namespace mcpauthz reads by
// default; without the MCP filter, the rest is the plain example's setup.
func checkMCPFilterSetup(b *bootstrapv3.Bootstrap) error {
	b = proto.Clone(b).(*bootstrapv3.Bootstrap)
	chains := b.GetStaticResources().GetListeners()[0].GetFilterChains()
	f := chains[0].GetFilters()[0]
	hcm, err := unpack(f.GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	if err != nil {
		return err
	}
	hf := hcm.GetHttpFilters()
	if len(hf) != 3 || hf[0].GetName() != "envoy.filters.http.mcp" || hf[1].GetName() != "envoy.filters.http.ext_authz" {
		return errors.New("http filters must be [mcp, ext_authz, router]")
	}
	m, err := unpack(hf[0].GetTypedConfig(), &mcpv3.Mcp{})
	if err != nil {
		return err
	}
	switch {
	case m.GetTrafficMode() != mcpv3.Mcp_PASS_THROUGH:
		return fmt.Errorf("mcp traffic_mode = %v, want PASS_THROUGH (mcpauthz answers non-MCP requests)", m.GetTrafficMode())
	case m.GetMaxRequestBodySize().GetValue() != 1<<20:
		return fmt.Errorf("mcp max_request_body_size = %d, want ext_authz's 1048576", m.GetMaxRequestBodySize().GetValue())
	case m.GetRequestStorageMode() == mcpv3.Mcp_FILTER_STATE:
		return errors.New("mcp request_storage_mode FILTER_STATE: ext_authz only forwards dynamic metadata")
	}
	ea, err := unpack(hf[1].GetTypedConfig(), &extauthzv3.ExtAuthz{})
	if err != nil {
		return err
	}
	if !slices.Contains(ea.GetMetadataContextNamespaces(), extauthz.DefaultMCPMetadataNamespace) {
		return fmt.Errorf("ext_authz metadata_context_namespaces %v lack %q, where the MCP filter writes and mcpauthz reads",
			ea.GetMetadataContextNamespaces(), extauthz.DefaultMCPMetadataNamespace)
	}
	hcm.HttpFilters = hf[1:]
	a, err := anypb.New(hcm)
	if err != nil {
		return err
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	return checkMCPSetup(b)
}

func loadMCPFilterExample(t *testing.T) []byte {
	t.Helper()
	y, err := os.ReadFile("envoy-mcp-filter.yaml")
	if err != nil {
		t.Fatal(err)
	}
	return y
}

func TestEnvoyMCPFilterExample(t *testing.T) {
	b, err := loadBootstrap(loadMCPFilterExample(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMCPFilterSetup(b); err != nil {
		t.Fatal(err)
	}
}

func TestEnvoyMCPFilterExampleCatchesMistakes(t *testing.T) {
	y := string(loadMCPFilterExample(t))
	tests := map[string]struct{ old, new string }{
		"misspelt_mcp_type":     {"filters.http.mcp.v3.Mcp\n", "filters.http.mcp.v3.MCP\n"},
		"misspelt_mcp_field":    {"reject_duplicate_keys: true", "reject_duplicate_key: true"},
		"mcp_body_too_large":    {"max_request_body_size: 1048576", "max_request_body_size: 20000000"},
		"mcp_partial_parse":     {"max_request_body_size: 1048576", "max_request_body_size: 8192"},
		"mcp_rejects_non_mcp":   {"traffic_mode: PASS_THROUGH", "traffic_mode: REJECT_NO_MCP"},
		"mcp_filter_state_only": {"request_storage_mode: DYNAMIC_METADATA", "request_storage_mode: FILTER_STATE"},
		"namespace_not_sent":    {"metadata_context_namespaces: [envoy.filters.http.mcp]", "metadata_context_namespaces: [mcp_proxy]"},
		"ext_authz_fails_open":  {"failure_mode_allow: false", "failure_mode_allow: true"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if !strings.Contains(y, tc.old) {
				t.Fatalf("envoy-mcp-filter.yaml no longer contains %q; update this test", tc.old)
			}
			b, err := loadBootstrap([]byte(strings.Replace(y, tc.old, tc.new, 1)))
			if err == nil {
				err = checkMCPFilterSetup(b)
			}
			if err == nil {
				t.Fatalf("replacing %q with %q went unnoticed", tc.old, tc.new)
			}
			t.Logf("caught: %v", err)
		})
	}
}
