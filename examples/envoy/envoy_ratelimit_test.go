package envoy_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	clusterv3 "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	routev3 "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	ratelimitv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	httpv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
	metadatav3 "github.com/envoyproxy/go-control-plane/envoy/type/metadata/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"
	"google.golang.org/protobuf/types/known/structpb"
	"sigs.k8s.io/yaml"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/requestfile"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// Registers the rate limit filter's typed config.
var _ = &ratelimitv3.RateLimit{}

// extAuthzNamespace is where Envoy's ext_authz filter puts the dynamic
// metadata of a CheckResponse.
const extAuthzNamespace = "envoy.filters.http.ext_authz"

// rateLimitService is the configuration file of envoyproxy/ratelimit
// (its YAML format: a domain and a tree of descriptors), read strictly.
type rateLimitService struct {
	Domain      string                `json:"domain"`
	Descriptors []rateLimitDescriptor `json:"descriptors"`
}

type rateLimitDescriptor struct {
	Key         string                `json:"key"`
	Value       string                `json:"value,omitempty"`
	RateLimit   *rateLimitPolicy      `json:"rate_limit,omitempty"`
	Descriptors []rateLimitDescriptor `json:"descriptors,omitempty"`
	ShadowMode  bool                  `json:"shadow_mode,omitempty"`
}

type rateLimitPolicy struct {
	Unit            string `json:"unit,omitempty"`
	RequestsPerUnit uint32 `json:"requests_per_unit,omitempty"`
	Unlimited       bool   `json:"unlimited,omitempty"`
	Name            string `json:"name,omitempty"`
}

func (p *rateLimitPolicy) String() string {
	if p.Unlimited {
		return "unlimited"
	}
	return fmt.Sprintf("%d/%s", p.RequestsPerUnit, p.Unit)
}

// readRateLimitService reads and checks the service's configuration as the
// service does: units it knows, a count or unlimited, no two siblings with
// the same key and value.
func readRateLimitService(y []byte) (*rateLimitService, error) {
	var c rateLimitService
	if err := yaml.UnmarshalStrict(y, &c); err != nil {
		return nil, fmt.Errorf("parsing the rate limit service's config: %w", err)
	}
	if c.Domain == "" {
		return nil, errors.New("no domain")
	}
	var check func(ds []rateLimitDescriptor, path string) error
	check = func(ds []rateLimitDescriptor, path string) error {
		seen := map[string]bool{}
		for _, d := range ds {
			p := path + "/" + d.Key + "_" + d.Value
			switch {
			case d.Key == "":
				return fmt.Errorf("%s: descriptor without a key", p)
			case seen[d.Key+"_"+d.Value]:
				return fmt.Errorf("%s: duplicate descriptor", p)
			case d.RateLimit == nil && len(d.Descriptors) == 0:
				return fmt.Errorf("%s: neither a rate_limit nor nested descriptors", p)
			}
			seen[d.Key+"_"+d.Value] = true
			if rl := d.RateLimit; rl != nil && !rl.Unlimited {
				if !slices.Contains([]string{"second", "minute", "hour", "day"}, rl.Unit) || rl.RequestsPerUnit == 0 {
					return fmt.Errorf("%s: rate_limit %+v needs a unit (second, minute, hour, day) and requests_per_unit", p, *rl)
				}
			}
			if err := check(d.Descriptors, p); err != nil {
				return err
			}
		}
		return nil
	}
	return &c, check(c.Descriptors, "")
}

// descriptorEntry is one (key, value) of a rate limit descriptor.
type descriptorEntry struct{ key, value string }

// limitFor finds the limit the service applies to one descriptor, as the
// service does: at each level the entry's key and value, else its key
// alone; the limit of the level where the descriptor ends. nil: no limit.
func (c *rateLimitService) limitFor(desc []descriptorEntry) *rateLimitPolicy {
	level := c.Descriptors
	var node *rateLimitDescriptor
	for _, e := range desc {
		node = nil
		for i := range level {
			if level[i].Key == e.key && level[i].Value == e.value {
				node = &level[i]
			}
		}
		if node == nil {
			for i := range level {
				if level[i].Key == e.key && level[i].Value == "" {
					node = &level[i]
				}
			}
		}
		if node == nil {
			return nil
		}
		level = node.Descriptors
	}
	if node == nil {
		return nil
	}
	return node.RateLimit
}

// envoyDescriptors builds the descriptors Envoy's rate limit filter sends,
// from a route's rate_limits, as Envoy does with metadata actions: each
// action reads a string at its path in the dynamic metadata namespace its
// key names; a missing one (no default_value, skip_if_absent false) drops
// the whole descriptor. Other actions are errors: the example uses none.
func envoyDescriptors(limits []*routev3.RateLimit, dynamic map[string]*structpb.Struct) ([][]descriptorEntry, error) {
	var out [][]descriptorEntry
	for i, rl := range limits {
		var desc []descriptorEntry
		for _, a := range rl.GetActions() {
			md := a.GetMetadata()
			if md == nil {
				return nil, fmt.Errorf("rate_limits[%d]: an action other than metadata: %v", i, a)
			}
			if md.GetSource() != routev3.RateLimit_Action_MetaData_DYNAMIC || md.GetSkipIfAbsent() || md.GetDefaultValue() != "" {
				return nil, fmt.Errorf("rate_limits[%d]: metadata action %v must read dynamic metadata, with no default and no skip_if_absent", i, md)
			}
			v, ok := lookupString(dynamic[md.GetMetadataKey().GetKey()], md.GetMetadataKey().GetPath())
			if !ok {
				desc = nil
				break
			}
			desc = append(desc, descriptorEntry{md.GetDescriptorKey(), v})
		}
		if desc != nil {
			out = append(out, desc)
		}
	}
	return out, nil
}

// lookupString follows a metadata path through nested structs to a string
// value, as Envoy's metadata actions do (a value of another type is no
// match).
func lookupString(s *structpb.Struct, path []*metadatav3.MetadataKey_PathSegment) (string, bool) {
	for i, seg := range path {
		v, ok := s.GetFields()[seg.GetKey()]
		if !ok {
			return "", false
		}
		if i == len(path)-1 {
			sv, ok := v.GetKind().(*structpb.Value_StringValue)
			return sv.StringValue, ok && sv.StringValue != ""
		}
		if s = v.GetStructValue(); s == nil {
			return "", false
		}
	}
	return "", false
}

// ratelimitSetup is what envoy-ratelimit.yaml adds to envoy.yaml.
type ratelimitSetup struct {
	filter *ratelimitv3.RateLimit
	limits []*routev3.RateLimit // of the /mcp route
}

// checkRateLimitSetup asserts what per-user-per-tool limits rely on:
// the ratelimit filter after ext_authz and before the router, calling a
// gRPC (HTTP/2) cluster in the service's domain; /mcp's rate limits read
// only flat rate_limit.<name> keys of ext_authz's metadata, each into a
// descriptor entry of the same name; the rest is envoy.yaml's setup.
func checkRateLimitSetup(b *bootstrapv3.Bootstrap, svc *rateLimitService) (*ratelimitSetup, error) {
	b = proto.Clone(b).(*bootstrapv3.Bootstrap)
	f := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0]
	hcm, err := unpack(f.GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	if err != nil {
		return nil, err
	}
	hf := hcm.GetHttpFilters()
	if len(hf) != 3 || hf[0].GetName() != "envoy.filters.http.ext_authz" || hf[1].GetName() != "envoy.filters.http.ratelimit" {
		return nil, errors.New("http filters must be [ext_authz, ratelimit, router]: the rate limit filter reads what ext_authz wrote")
	}
	rl, err := unpack(hf[1].GetTypedConfig(), &ratelimitv3.RateLimit{})
	if err != nil {
		return nil, err
	}
	if rl.GetDomain() != svc.Domain {
		return nil, fmt.Errorf("ratelimit domain %q, the service's config has %q", rl.GetDomain(), svc.Domain)
	}
	if rl.GetRateLimitService().GetTransportApiVersion().String() != "V3" {
		return nil, errors.New("rate_limit_service.transport_api_version must be V3")
	}
	if len(rl.GetRateLimits()) > 0 {
		return nil, errors.New("rate_limits in the filter would override the route's")
	}
	var cluster *clusterv3.Cluster
	for _, c := range b.GetStaticResources().GetClusters() {
		if c.GetName() == rl.GetRateLimitService().GetGrpcService().GetEnvoyGrpc().GetClusterName() {
			cluster = c
		}
	}
	if cluster == nil {
		return nil, errors.New("rate_limit_service names no cluster of the bootstrap")
	}
	opts := cluster.GetTypedExtensionProtocolOptions()["envoy.extensions.upstreams.http.v3.HttpProtocolOptions"]
	po, err := unpack(opts, &httpv3.HttpProtocolOptions{})
	if err != nil || po.GetExplicitHttpConfig().GetHttp2ProtocolOptions() == nil {
		return nil, fmt.Errorf("the rate limit cluster must use HTTP/2 (gRPC): %v", err)
	}

	setup := &ratelimitSetup{filter: rl}
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		if len(vh.GetRateLimits()) > 0 {
			return nil, errors.New("virtual host rate_limits: keep them on the /mcp route")
		}
		for _, r := range vh.GetRoutes() {
			limits := r.GetRoute().GetRateLimits()
			if r.GetMatch().GetPath() != "/mcp" {
				if len(limits) > 0 {
					return nil, fmt.Errorf("route %v has rate limits; only /mcp is authorized by mcpauthz", r.GetMatch())
				}
				continue
			}
			setup.limits = limits
			r.GetRoute().RateLimits = nil
		}
	}
	if len(setup.limits) == 0 {
		return nil, errors.New("the /mcp route has no rate_limits")
	}
	for i, l := range setup.limits {
		for _, a := range l.GetActions() {
			md := a.GetMetadata()
			key := md.GetMetadataKey()
			if md == nil || key.GetKey() != extAuthzNamespace || len(key.GetPath()) != 1 {
				return nil, fmt.Errorf("rate_limits[%d]: each action must read one key of %s's metadata: %v", i, extAuthzNamespace, a)
			}
			name, ok := strings.CutPrefix(key.GetPath()[0].GetKey(), decision.RateLimitKeyPrefix)
			if !ok || name != md.GetDescriptorKey() {
				return nil, fmt.Errorf("rate_limits[%d]: descriptor %q reads %q, want %s%s", i, md.GetDescriptorKey(), key.GetPath()[0].GetKey(), decision.RateLimitKeyPrefix, md.GetDescriptorKey())
			}
		}
	}

	// Without what it adds, the example is envoy.yaml's setup.
	hcm.HttpFilters = slices.Delete(hf, 1, 2)
	a, err := anypb.New(hcm)
	if err != nil {
		return nil, err
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	return setup, checkMCPSetup(b)
}

func loadRateLimitExample(t *testing.T) ([]byte, *rateLimitService) {
	t.Helper()
	y, err := os.ReadFile("envoy-ratelimit.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := os.ReadFile("../ratelimit/config/mcp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	svc, err := readRateLimitService(c)
	if err != nil {
		t.Fatal(err)
	}
	return y, svc
}

// TestEnvoyRateLimitExample: per-user-per-tool limits end to end, short of
// running Envoy. The example's requests are decided by the example policy
// (examples/bundles/parameter-rules); each answer's dynamic metadata is
// turned into descriptors as Envoy's rate limit filter would from the
// example's rate_limits, and each descriptor is looked up in the rate limit
// service's configuration.
func TestEnvoyRateLimitExample(t *testing.T) {
	y, svc := loadRateLimitExample(t)
	b, err := loadBootstrap(y)
	if err != nil {
		t.Fatal(err)
	}
	setup, err := checkRateLimitSetup(b, svc)
	if err != nil {
		t.Fatal(err)
	}

	e := decisiontest.NewEngine(t, "../bundles/parameter-rules", nil)
	tests := map[string]struct {
		request string
		subject string // overrides the sample's sub claim
		want    map[string]string
		denied  bool
	}{
		"query_per_user_per_tool": {request: "tools-call-query-select-allowed",
			want: map[string]string{"subject=alice": "300/minute", "subject=alice tool=query": "10/minute"}},
		"other_tool_per_user_per_tool": {request: "tools-call-read-file-allowed",
			want: map[string]string{"subject=alice": "300/minute", "subject=alice tool=read_file": "60/minute"}},
		"other_user_counted_apart": {request: "tools-call-query-select-allowed", subject: "bob",
			want: map[string]string{"subject=bob": "300/minute", "subject=bob tool=query": "10/minute"}},
		"list_per_user_only": {request: "tools-list", want: map[string]string{"subject=alice": "300/minute"}},
		"service_account_unlimited": {request: "tools-call-query-select-allowed", subject: "batch-importer",
			want: map[string]string{"subject=batch-importer": "unlimited", "subject=batch-importer tool=query": "none"}},
		"denied_never_counted": {request: "tools-call-read-file-denied", denied: true},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r, err := requestfile.Read("../requests/" + tc.request + ".json")
			if err != nil {
				t.Fatal(err)
			}
			if tc.subject != "" {
				r.Credential.Claims["sub"] = tc.subject
			}
			resp := extauthz.ResponseFromDecision(e.Decide(context.Background(), r))
			if (resp.GetOkResponse() == nil) != tc.denied {
				t.Fatalf("allowed %v, want %v: %v", resp.GetOkResponse() != nil, !tc.denied, resp.GetStatus())
			}
			if tc.denied {
				// ext_authz answers the client: the rate limit filter after
				// it never runs, and the policy named nothing to count.
				for k := range resp.GetDynamicMetadata().GetFields() {
					if strings.HasPrefix(k, decision.RateLimitKeyPrefix) {
						t.Errorf("a denial carries %s", k)
					}
				}
				return
			}
			descs, err := envoyDescriptors(setup.limits, map[string]*structpb.Struct{extAuthzNamespace: resp.GetDynamicMetadata()})
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, d := range descs {
				var parts []string
				for _, e := range d {
					parts = append(parts, e.key+"="+e.value)
				}
				limit := "none"
				if p := svc.limitFor(d); p != nil {
					limit = p.String()
				}
				got[strings.Join(parts, " ")] = limit
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("descriptors and limits %v, want %v", got, tc.want)
			}
		})
	}
}

// TestEnvoyRateLimitExampleCatchesMistakes: each edit of the real files
// must make loading or checking fail.
func TestEnvoyRateLimitExampleCatchesMistakes(t *testing.T) {
	y, _ := loadRateLimitExample(t)
	c, err := os.ReadFile("../ratelimit/config/mcp.yaml")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		file     string // "envoy" or "service"
		old, new string
	}{
		"nested_path":            {"envoy", "path: [{key: rate_limit.subject}]", "path: [{key: rate_limit}, {key: subject}]"},
		"other_namespace":        {"envoy", "key: envoy.filters.http.ext_authz\n", "key: envoy.filters.http.mcp\n"},
		"descriptor_key_differs": {"envoy", "descriptor_key: tool", "descriptor_key: mcp_tool"},
		"wrong_domain":           {"envoy", "domain: mcp", "domain: mcp_tools"},
		"ratelimit_before_authz": {"envoy", "          - name: envoy.filters.http.ext_authz", "          - name: envoy.filters.http.ratelimit_first\n            typed_config:\n              \"@type\": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router\n          - name: envoy.filters.http.ext_authz"},
		"misspelt_field":         {"envoy", "descriptor_key: subject", "descriptor: subject"},
		"service_unknown_field":  {"service", "requests_per_unit: 10", "request_per_unit: 10"},
		"service_bad_unit":       {"service", "unit: minute", "unit: fortnight"},
		"service_duplicate":      {"service", "value: query", "value: \"\""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ey, sc := string(y), string(c)
			src := &ey
			if tc.file == "service" {
				src = &sc
			}
			if !strings.Contains(*src, tc.old) {
				t.Fatalf("%s no longer contains %q; update this test", tc.file, tc.old)
			}
			*src = strings.Replace(*src, tc.old, tc.new, 1)
			s, err := readRateLimitService([]byte(sc))
			var b *bootstrapv3.Bootstrap
			if err == nil {
				b, err = loadBootstrap([]byte(ey))
			}
			if err == nil {
				_, err = checkRateLimitSetup(b, s)
			}
			if err == nil {
				t.Fatalf("replacing %q with %q went unnoticed", tc.old, tc.new)
			}
			t.Logf("caught: %v", err)
		})
	}
}
