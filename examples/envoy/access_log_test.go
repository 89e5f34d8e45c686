package envoy_test

import (
	"fmt"
	"os"
	"regexp"
	"sort"
	"testing"

	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	streamv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/known/anypb"
	"sigs.k8s.io/yaml"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// Registers the stdout access logger's typed config.
var _ = &streamv3.StdoutAccessLog{}

// withAccessLog is envoy.yaml with access-log.yaml's access_log set on its
// HTTP connection manager, re-validated as a whole bootstrap.
func withAccessLog(t *testing.T) *hcmv3.HttpConnectionManager {
	t.Helper()
	y, err := os.ReadFile("envoy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadBootstrap(y)
	if err != nil {
		t.Fatal(err)
	}
	snippet, err := os.ReadFile("access-log.yaml")
	if err != nil {
		t.Fatal(err)
	}
	j, err := yaml.YAMLToJSON(snippet)
	if err != nil {
		t.Fatal(err)
	}
	// The snippet is the access_log member of an HttpConnectionManager.
	var logs hcmv3.HttpConnectionManager
	if err := (protojson.UnmarshalOptions{Resolver: protoregistry.GlobalTypes}).Unmarshal(j, &logs); err != nil {
		t.Fatalf("access-log.yaml: %v", err)
	}
	f := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0]
	hcm, err := unpack(f.GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	if err != nil {
		t.Fatal(err)
	}
	hcm.AccessLog = logs.GetAccessLog()
	a, err := anypb.New(hcm)
	if err != nil {
		t.Fatal(err)
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	if err := b.ValidateAll(); err != nil {
		t.Fatalf("envoy.yaml with the access log: %v", err)
	}
	if err := validateAnys(b.ProtoReflect(), "bootstrap"); err != nil {
		t.Fatalf("envoy.yaml with the access log: %v", err)
	}
	return hcm
}

var dynamicMetadata = regexp.MustCompile(`%DYNAMIC_METADATA\(([^:)]+):([^:)]+)\)%`)

// TestAccessLogExample: the access log parses and validates inside
// envoy.yaml, and reads exactly the dynamic metadata keys mcpauthz's
// ext_authz answer sets, in ext_authz's namespace.
func TestAccessLogExample(t *testing.T) {
	hcm := withAccessLog(t)
	if len(hcm.GetAccessLog()) != 1 {
		t.Fatalf("want one access log, got %d", len(hcm.GetAccessLog()))
	}
	al := hcm.GetAccessLog()[0]
	if err := al.ValidateAll(); err != nil {
		t.Fatal(err)
	}
	if err := validateAnys(al.ProtoReflect(), "access_log"); err != nil {
		t.Fatal(err)
	}
	var stdout streamv3.StdoutAccessLog
	if err := al.GetTypedConfig().UnmarshalTo(&stdout); err != nil {
		t.Fatal(err)
	}
	var read []string
	for _, v := range stdout.GetLogFormat().GetJsonFormat().GetFields() {
		for _, m := range dynamicMetadata.FindAllStringSubmatch(v.GetStringValue(), -1) {
			if m[1] != "envoy.filters.http.ext_authz" {
				t.Errorf("%s reads namespace %s, want envoy.filters.http.ext_authz", m[0], m[1])
			}
			read = append(read, m[2])
		}
	}
	written := extauthz.ResponseFromDecision(&decision.Decision{ID: "x", Allow: true}).GetDynamicMetadata().GetFields()
	var keys []string
	for k := range written {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	sort.Strings(read)
	if fmt.Sprint(read) != fmt.Sprint(keys) {
		t.Errorf("the access log reads %v; mcpauthz writes %v", read, keys)
	}
}
