// Package envoy_test checks examples/envoy/envoy.yaml against Envoy's v3
// API: every field must exist (protojson rejects unknown ones), every
// typed_config must name a registered type and pass its validation rules,
// and the ext_authz settings mcpauthz depends on must be as documented.
package envoy_test

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	routerv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"
)

// The extension types the example uses. Naming them here registers them in
// protoregistry.GlobalTypes, which resolves the typed_config Any values.
var (
	_ = &hcmv3.HttpConnectionManager{}
	_ = &extauthzv3.ExtAuthz{}
	_ = &routerv3.Router{}
	_ = &httpv3.HttpProtocolOptions{}
)

// loadBootstrap parses an Envoy YAML bootstrap strictly and validates it,
// including the contents of every typed_config.
func loadBootstrap(y []byte) (*bootstrapv3.Bootstrap, error) {
	j, err := yaml.YAMLToJSON(y)
	if err != nil {
		return nil, fmt.Errorf("converting YAML to JSON: %w", err)
	}
	var b bootstrapv3.Bootstrap
	opts := protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}
	if err := opts.Unmarshal(j, &b); err != nil {
		return nil, fmt.Errorf("parsing bootstrap: %w", err)
	}
	if err := b.ValidateAll(); err != nil {
		return nil, fmt.Errorf("validating bootstrap: %w", err)
	}
	if err := validateAnys(b.ProtoReflect(), "bootstrap"); err != nil {
		return nil, err
	}
	return &b, nil
}

// validateAnys walks m and validates the message inside every Any:
// protoc-gen-validate's ValidateAll does not look inside Any fields.
func validateAnys(m protoreflect.Message, path string) error {
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		p := path + "." + string(fd.Name())
		switch {
		case fd.Kind() != protoreflect.MessageKind && fd.Kind() != protoreflect.GroupKind:
		case fd.IsList():
			l := v.List()
			for i := 0; i < l.Len() && err == nil; i++ {
				err = validateMessage(l.Get(i).Message(), fmt.Sprintf("%s[%d]", p, i))
			}
		case fd.IsMap():
			if fd.MapValue().Kind() != protoreflect.MessageKind {
				break
			}
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				err = validateMessage(mv.Message(), fmt.Sprintf("%s[%s]", p, k.String()))
				return err == nil
			})
		default:
			err = validateMessage(v.Message(), p)
		}
		return err == nil
	})
	return err
}

func validateMessage(m protoreflect.Message, path string) error {
	a, ok := m.Interface().(*anypb.Any)
	if !ok {
		return validateAnys(m, path)
	}
	inner, err := a.UnmarshalNew()
	if err != nil {
		return fmt.Errorf("%s: unpacking %s: %w", path, a.GetTypeUrl(), err)
	}
	if v, ok := inner.(interface{ ValidateAll() error }); ok {
		if err := v.ValidateAll(); err != nil {
			return fmt.Errorf("%s (%s): %w", path, a.GetTypeUrl(), err)
		}
	}
	return validateAnys(inner.ProtoReflect(), path)
}

func unpack[T proto.Message](a *anypb.Any, into T) (T, error) {
	if err := a.UnmarshalTo(into); err != nil {
		return into, fmt.Errorf("unpacking %s: %w", a.GetTypeUrl(), err)
	}
	return into, nil
}

// checkMCPSetup asserts what mcpauthz relies on in the example.
func checkMCPSetup(b *bootstrapv3.Bootstrap) error {
	clusters := map[string]*clusterv3.Cluster{}
	for _, c := range b.GetStaticResources().GetClusters() {
		clusters[c.GetName()] = c
	}
	for _, name := range []string{"mcpauthz", "mcpauthz_http", "mcp_server"} {
		if clusters[name] == nil {
			return fmt.Errorf("cluster %q missing", name)
		}
	}
	// gRPC needs HTTP/2 towards mcpauthz.
	opts := clusters["mcpauthz"].GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	if opts == nil {
		return errors.New("cluster mcpauthz has no HttpProtocolOptions")
	}
	po, err := unpack(opts, &httpv3.HttpProtocolOptions{})
	if err != nil {
		return err
	}
	if po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		return errors.New("cluster mcpauthz does not use HTTP/2")
	}
	if port := firstPort(clusters["mcpauthz"]); port != 9191 {
		return fmt.Errorf("mcpauthz gRPC port = %d, want 9191", port)
	}

	listeners := b.GetStaticResources().GetListeners()
	if len(listeners) != 1 {
		return fmt.Errorf("want one listener, got %d", len(listeners))
	}
	chains := listeners[0].GetFilterChains()
	if len(chains) != 1 {
		return fmt.Errorf("want one filter chain, got %d", len(chains))
	}
	filters := chains[0].GetFilters()
	if len(filters) != 1 || filters[0].GetName() != "envoy.filters.network.http_connection_manager" {
		return errors.New("listener must have exactly the http_connection_manager filter")
	}
	hcm, err := unpack(filters[0].GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	if err != nil {
		return err
	}

	// ext_authz must run, before the router, with the settings mcpauthz needs.
	hf := hcm.GetHttpFilters()
	if len(hf) != 2 || hf[0].GetName() != "envoy.filters.http.ext_authz" || hf[1].GetName() != "envoy.filters.http.router" {
		return fmt.Errorf("http filters must be [ext_authz, router], got %d filters", len(hf))
	}
	ea, err := unpack(hf[0].GetTypedConfig(), &extauthzv3.ExtAuthz{})
	if err != nil {
		return err
	}
	if got := ea.GetGrpcService().GetEnvoyGrpc().GetClusterName(); got != "mcpauthz" || clusters[got] == nil {
		return fmt.Errorf("ext_authz grpc cluster = %q, want the mcpauthz cluster", got)
	}
	if ea.GetFailureModeAllow() {
		return errors.New("ext_authz failure_mode_allow must be false (fail closed)")
	}
	body := ea.GetWithRequestBody()
	switch {
	case body == nil:
		return errors.New("ext_authz with_request_body missing: the policy needs the JSON-RPC body")
	case !body.GetPackAsBytes():
		return errors.New("ext_authz with_request_body.pack_as_bytes must be true")
	case body.GetAllowPartialMessage():
		return errors.New("ext_authz with_request_body.allow_partial_message must be false")
	case body.GetMaxRequestBytes() != 1<<20:
		return fmt.Errorf("ext_authz max_request_bytes = %d, want 1048576", body.GetMaxRequestBytes())
	}
	if ea.GetTransportApiVersion().String() != "V3" {
		return fmt.Errorf("ext_authz transport_api_version = %v, want V3", ea.GetTransportApiVersion())
	}

	// Routes: metadata without ext_authz, /mcp with context extensions.
	vhosts := hcm.GetRouteConfig().GetVirtualHosts()
	if len(vhosts) != 1 {
		return fmt.Errorf("want one virtual host, got %d", len(vhosts))
	}
	routes := vhosts[0].GetRoutes()
	var sawMetadata, sawMCP bool
	for _, r := range routes {
		per := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]
		var pr *extauthzv3.ExtAuthzPerRoute
		if per != nil {
			if pr, err = unpack(per, &extauthzv3.ExtAuthzPerRoute{}); err != nil {
				return err
			}
		}
		switch {
		case r.GetMatch().GetPrefix() == "/.well-known/oauth-protected-resource":
			sawMetadata = true
			if r.GetRoute().GetCluster() != "mcpauthz_http" || !pr.GetDisabled() {
				return errors.New("metadata route must go to mcpauthz_http with ext_authz disabled")
			}
		case r.GetMatch().GetPath() == "/mcp":
			sawMCP = true
			if r.GetRoute().GetCluster() != "mcp_server" {
				return errors.New("/mcp must route to mcp_server")
			}
			if pr.GetDisabled() {
				return errors.New("ext_authz must not be disabled on /mcp")
			}
			if got := pr.GetCheckSettings().GetContextExtensions()["mcp_server"]; got != "files" {
				return fmt.Errorf("/mcp context_extensions.mcp_server = %q, want files", got)
			}
		default:
			// Anything else that forwards must be authorized.
			if r.GetRoute() != nil && pr.GetDisabled() {
				return fmt.Errorf("route %v forwards without ext_authz", r.GetMatch())
			}
		}
	}
	if !sawMetadata || !sawMCP {
		return fmt.Errorf("routes missing: metadata %v, /mcp %v", sawMetadata, sawMCP)
	}
	return nil
}

// firstPort is the port of a cluster's first endpoint, 0 when it has none.
func firstPort(c *clusterv3.Cluster) uint32 {
	for _, e := range c.GetLoadAssignment().GetEndpoints() {
		for _, lb := range e.GetLbEndpoints() {
			return lb.GetEndpoint().GetAddress().GetSocketAddress().GetPortValue()
		}
	}
	return 0
}

func TestEnvoyExample(t *testing.T) {
	y, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadBootstrap(y)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkMCPSetup(b); err != nil {
		t.Fatal(err)
	}
}

// TestEnvoyExampleCatchesMistakes shows that the checks above bite: each
// edit of the real file must make loading or checking fail.
func TestEnvoyExampleCatchesMistakes(t *testing.T) {
	y, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct{ old, new string }{
		"misspelt_field":         {"pack_as_bytes: true", "pack_as_byte: true"},
		"misspelt_typed_config":  {"ext_authz.v3.ExtAuthz\n", "ext_authz.v3.ExtAuth\n"},
		"wrong_field_type":       {"max_request_bytes: 1048576", "max_request_bytes: lots"},
		"body_as_string":         {"pack_as_bytes: true", "pack_as_bytes: false"},
		"fail_open":              {"failure_mode_allow: false", "failure_mode_allow: true"},
		"partial_body":           {"allow_partial_message: false", "allow_partial_message: true"},
		"wrong_grpc_cluster":     {"envoy_grpc: {cluster_name: mcpauthz}", "envoy_grpc: {cluster_name: mcpauthz_grpc}"},
		"invalid_inner_config":   {"stat_prefix: mcp", "stat_prefix: \"\""},
		"invalid_enum":           {"transport_api_version: V3", "transport_api_version: V4"},
		"metadata_route_checked": {"disabled: true\n              # The MCP endpoint", "disabled: false\n              # The MCP endpoint"},
		"no_context_extension":   {"mcp_server: files", "mcp_servr: files"},
		"grpc_without_http2":     {"http2_protocol_options: {}", "http_protocol_options: {}"},
		"mcp_route_unprotected":  {"      context_extensions:\n                        mcp_server: files", "      context_extensions:\n                        mcp_server: files\n                    disabled: true"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			s := string(y)
			if !strings.Contains(s, tc.old) {
				t.Fatalf("envoy.yaml no longer contains %q; update this test", tc.old)
			}
			b, err := loadBootstrap([]byte(strings.Replace(s, tc.old, tc.new, 1)))
			if err == nil {
				err = checkMCPSetup(b)
			}
			if err == nil {
				t.Fatalf("replacing %q with %q went unnoticed", tc.old, tc.new)
			}
			t.Logf("caught: %v", err)
		})
	}
}
