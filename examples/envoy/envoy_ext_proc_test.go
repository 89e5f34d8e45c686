package envoy_test

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"strings"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	listenerv3 "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	extauthzv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	extprocv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	hcmv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/anypb"

	"github.com/mcpauthz/mcpauthz/transport/extproc"
)

// Registers ext_proc's typed configs.
var (
	_ = &extprocv3.ExternalProcessor{}
	_ = &extprocv3.ExtProcPerRoute{}
)

// checkExtProcSetup asserts what mcpauthz's ext_proc server relies on:
// ext_proc runs first, on the mcpauthz cluster, fails closed, sends the
// request headers and buffered body and the response headers, streams the
// response body, and lets the server override the body mode; it is off
// wherever ext_authz is off. Without it, the rest is envoy.yaml's setup.
func checkExtProcSetup(b *bootstrapv3.Bootstrap) error {
	b = proto.Clone(b).(*bootstrapv3.Bootstrap)
	f := b.GetStaticResources().GetListeners()[0].GetFilterChains()[0].GetFilters()[0]
	hcm, err := unpack(f.GetTypedConfig(), &hcmv3.HttpConnectionManager{})
	if err != nil {
		return err
	}
	hf := hcm.GetHttpFilters()
	if len(hf) != 3 || hf[0].GetName() != "envoy.filters.http.ext_proc" || hf[1].GetName() != "envoy.filters.http.ext_authz" {
		return errors.New("http filters must be [ext_proc, ext_authz, router]")
	}
	ep, err := unpack(hf[0].GetTypedConfig(), &extprocv3.ExternalProcessor{})
	if err != nil {
		return err
	}
	pm := ep.GetProcessingMode()
	switch {
	case ep.GetGrpcService().GetEnvoyGrpc().GetClusterName() != "mcpauthz":
		return fmt.Errorf("ext_proc cluster %q, want mcpauthz", ep.GetGrpcService().GetEnvoyGrpc().GetClusterName())
	case ep.GetGrpcService().GetTimeout() != nil:
		return errors.New("ext_proc grpc_service.timeout would cut long SSE answers; use message_timeout")
	case ep.GetFailureModeAllow():
		return errors.New("ext_proc failure_mode_allow: lists would go unfiltered when mcpauthz is down")
	case pm.GetRequestHeaderMode() != extprocv3.ProcessingMode_SEND:
		return errors.New("request_header_mode must be SEND (the caller's authorization)")
	case pm.GetRequestBodyMode() != extprocv3.ProcessingMode_BUFFERED:
		return errors.New("request_body_mode must be BUFFERED (the whole JSON-RPC request)")
	case pm.GetResponseHeaderMode() != extprocv3.ProcessingMode_SEND:
		return errors.New("response_header_mode must be SEND (content-type decides)")
	case pm.GetResponseBodyMode() != extprocv3.ProcessingMode_STREAMED:
		return errors.New("response_body_mode must be STREAMED (SSE events are not held back)")
	case !ep.GetAllowModeOverride():
		return errors.New("allow_mode_override must be on (JSON answers are buffered, others skipped)")
	case len(ep.GetAllowedOverrideModes()) > 0:
		return errors.New("allowed_override_modes would have to match mcpauthz's overrides field by field")
	}
	// Wherever ext_authz is disabled, so is ext_proc, and the reverse.
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			authzOff := disabled(r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"])
			procOff := disabled(r.GetTypedPerFilterConfig()["envoy.filters.http.ext_proc"])
			if authzOff != procOff {
				return fmt.Errorf("route %v: ext_authz disabled %v, ext_proc disabled %v", r.GetMatch(), authzOff, procOff)
			}
			if authzOff {
				continue
			}
			// The route context reaches both: ext_authz's context_extensions
			// and ext_proc's mcpauthz-context-* stream metadata agree.
			want := map[string]string{}
			if a := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_authz"]; a != nil {
				pr, err := unpack(a, &extauthzv3.ExtAuthzPerRoute{})
				if err != nil {
					return err
				}
				want = pr.GetCheckSettings().GetContextExtensions()
			}
			got := map[string]string{}
			if a := r.GetTypedPerFilterConfig()["envoy.filters.http.ext_proc"]; a != nil {
				pr, err := unpack(a, &extprocv3.ExtProcPerRoute{})
				if err != nil {
					return err
				}
				for _, hv := range pr.GetOverrides().GetGrpcInitialMetadata() {
					if k, ok := strings.CutPrefix(hv.GetKey(), extproc.ContextMetadataPrefix); ok {
						got[k] = hv.GetValue() + string(hv.GetRawValue())
					}
				}
			}
			if !maps.Equal(got, want) {
				return fmt.Errorf("route %v: ext_proc context %v, ext_authz context_extensions %v", r.GetMatch(), got, want)
			}
		}
	}
	hcm.HttpFilters = hf[1:]
	for _, vh := range hcm.GetRouteConfig().GetVirtualHosts() {
		for _, r := range vh.GetRoutes() {
			delete(r.GetTypedPerFilterConfig(), "envoy.filters.http.ext_proc")
		}
	}
	a, err := anypb.New(hcm)
	if err != nil {
		return err
	}
	f.ConfigType = &listenerv3.Filter_TypedConfig{TypedConfig: a}
	return checkMCPSetup(b)
}

// disabled reports whether a per-route config turns its filter off.
func disabled(a *anypb.Any) bool {
	if a == nil {
		return false
	}
	m, err := a.UnmarshalNew()
	if err != nil {
		return false
	}
	d, ok := m.(interface{ GetDisabled() bool })
	return ok && d.GetDisabled()
}

func TestEnvoyExtProcExample(t *testing.T) {
	y, err := os.ReadFile("envoy-ext-proc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	b, err := loadBootstrap(y)
	if err != nil {
		t.Fatal(err)
	}
	if err := checkExtProcSetup(b); err != nil {
		t.Fatal(err)
	}
}

// TestEnvoyExtProcExampleChecks: the checks catch the mistakes that would
// show lists unfiltered or hold SSE events back.
func TestEnvoyExtProcExampleChecks(t *testing.T) {
	y, err := os.ReadFile("envoy-ext-proc.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct{ old, new string }{
		"fails_open":        {"              failure_mode_allow: false\n              processing_mode:", "              failure_mode_allow: true\n              processing_mode:"},
		"response_buffered": {"response_body_mode: STREAMED", "response_body_mode: BUFFERED"},
		"no_override":       {"allow_mode_override: true", "allow_mode_override: false"},
		"body_not_sent":     {"request_body_mode: BUFFERED", "request_body_mode: NONE"},
		"context_differs":   {"{key: mcpauthz-context-mcp_server, value: files}", "{key: mcpauthz-context-mcp_server, value: other}"},
	} {
		t.Run(name, func(t *testing.T) {
			s := string(y)
			if !strings.Contains(s, tc.old) {
				t.Fatalf("envoy-ext-proc.yaml no longer contains %q; update this test", tc.old)
			}
			b, err := loadBootstrap([]byte(strings.Replace(s, tc.old, tc.new, 1)))
			if err != nil {
				t.Fatal(err)
			}
			if err := checkExtProcSetup(b); err == nil {
				t.Error("the check passed")
			}
		})
	}
}
