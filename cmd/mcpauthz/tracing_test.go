package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"go.opentelemetry.io/otel"
	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/prototext"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// collector is an OTLP/gRPC trace collector in the test process: it keeps
// every export it receives.
type collector struct {
	coltracepb.UnimplementedTraceServiceServer
	mu      sync.Mutex
	exports []*coltracepb.ExportTraceServiceRequest
}

func (c *collector) Export(_ context.Context, req *coltracepb.ExportTraceServiceRequest) (*coltracepb.ExportTraceServiceResponse, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.exports = append(c.exports, req)
	return &coltracepb.ExportTraceServiceResponse{}, nil
}

// received returns the spans received, with the service.name of each.
func (c *collector) received() (spans []*tracepb.Span, services []string, text string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var all strings.Builder
	for _, req := range c.exports {
		all.WriteString(prototext.Format(req))
		for _, rs := range req.GetResourceSpans() {
			service := ""
			for _, kv := range rs.GetResource().GetAttributes() {
				if kv.GetKey() == "service.name" {
					service = kv.GetValue().GetStringValue()
				}
			}
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					spans = append(spans, s)
					services = append(services, service)
				}
			}
		}
	}
	return spans, services, all.String()
}

// startCollector serves a collector on a local port.
func startCollector(t *testing.T) (*collector, string) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c := &collector{}
	s := grpc.NewServer()
	coltracepb.RegisterTraceServiceServer(s, c)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return c, lis.Addr().String()
}

// TestTracingExportsOverOTLP: with tracing.otlp_endpoint set, an ext_authz
// Check becomes spans that the real OTLP/gRPC exporter delivers to a
// collector, in the caller's trace, flushed when the app closes; no
// credential or subject travels with them.
func TestTracingExportsOverOTLP(t *testing.T) {
	coll, addr := startCollector(t)
	keyPath := filepath.Join(t.TempDir(), "dev-key.pem")
	a := loadedApp(t, fmt.Sprintf(`tokens: {dev: true, dev_key_file: %q}
tracing: {otlp_endpoint: %q, insecure: true, service_name: mcpauthz-test}
`, keyPath, addr))
	closed := false
	defer func() {
		if !closed {
			a.close()
		}
	}()
	raw, err := token.MintDev(token.DevOptions{KeyPath: keyPath, Audience: a.cfg.Resource.URI, Subject: "trace-subject", Scopes: []string{"mcp:tools"}})
	if err != nil {
		t.Fatal(err)
	}
	conn := decisiontest.Dial(t, a.registerGRPCTransports)
	const (
		traceID = "0af7651916cd43dd8448eb211c80319c"
		spanID  = "b7ad6b7169203331"
	)
	body := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/ARGSECRET"}}}`
	resp, err := authv3.NewAuthorizationClient(conn).Check(context.Background(), &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Path: "/mcp", Host: "mcp.example.com", RawBody: []byte(body),
			Headers: map[string]string{
				":method": "POST", ":path": "/mcp", ":authority": "mcp.example.com", "content-type": "application/json",
				"authorization": "Bearer " + raw, "traceparent": "00-" + traceID + "-" + spanID + "-01",
			},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	a.close() // flushes the batch
	closed = true

	spans, services, text := coll.received()
	byName := map[string]*tracepb.Span{}
	for i, s := range spans {
		byName[s.GetName()] = s
		if services[i] != "mcpauthz-test" {
			t.Errorf("span %s of service %q", s.GetName(), services[i])
		}
	}
	root := byName[decision.SpanDecide]
	if root == nil {
		t.Fatalf("no %s span among %d received (answer %v)", decision.SpanDecide, len(spans), resp.GetStatus())
	}
	if fmt.Sprintf("%x", root.GetTraceId()) != traceID || fmt.Sprintf("%x", root.GetParentSpanId()) != spanID {
		t.Errorf("trace %x parent %x, want the caller's %s %s", root.GetTraceId(), root.GetParentSpanId(), traceID, spanID)
	}
	if root.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
		t.Errorf("kind %v", root.GetKind())
	}
	attrs := map[string]string{}
	for _, kv := range root.GetAttributes() {
		attrs[kv.GetKey()] = fmt.Sprint(kv.GetValue().GetStringValue(), kv.GetValue().GetBoolValue())
	}
	if attrs["mcp.method.name"] != "tools/callfalse" || attrs["gen_ai.tool.name"] != "read_filefalse" || attrs["mcpauthz.decision_id"] == "" {
		t.Errorf("attributes %v", attrs)
	}
	for _, name := range []string{decision.SpanToken, decision.SpanParse, decision.SpanEvaluate} {
		s := byName[name]
		if s == nil || string(s.GetParentSpanId()) != string(root.GetSpanId()) {
			t.Errorf("%s: %v, want a child of the decision span", name, s)
		}
	}
	for _, secret := range []string{raw, strings.Split(raw, ".")[2], "trace-subject", "ARGSECRET"} {
		if strings.Contains(text, secret) {
			t.Errorf("the export carries %q", secret)
		}
	}
}

// TestTracingOffByDefault: without tracing.otlp_endpoint no tracer provider
// is built and the engine has no tracer.
func TestTracingOffByDefault(t *testing.T) {
	a := loadedApp(t, "")
	defer a.close()
	if a.tracing != nil {
		t.Error("a tracer provider was built without tracing.otlp_endpoint")
	}
}

// TestTracingConfigErrors: every wrong tracing key is named.
func TestTracingConfigErrors(t *testing.T) {
	checkConfigErrors(t, map[string]configErrorCase{
		"endpoint_not_host_port": {"tracing: {otlp_endpoint: 'http://collector:4317'}", "tracing.otlp_endpoint"},
		"endpoint_without_host":  {"tracing: {otlp_endpoint: ':4317'}", "tracing.otlp_endpoint"},
		"endpoint_port_zero":     {"tracing: {otlp_endpoint: 'collector:0'}", "tracing.otlp_endpoint"},
		"endpoint_bad_port":      {"tracing: {otlp_endpoint: 'collector:otlp'}", "tracing.otlp_endpoint"},
		"insecure_and_ca_file":   {"tracing: {otlp_endpoint: 'collector:4317', insecure: true, ca_file: ca.pem}", "tracing.ca_file"},
		"ratio_above_one":        {"tracing: {sample_ratio: 1.5}", "tracing.sample_ratio"},
		"ratio_negative":         {"tracing: {sample_ratio: -0.1}", "tracing.sample_ratio"},
		"empty_service_name":     {"tracing: {service_name: ''}", "tracing.service_name"},
		"unknown_tracing_key":    {"tracing: {endpoint: 'collector:4317'}", "tracing.endpoint"},
		"endpoint_not_a_string":  {"tracing: {otlp_endpoint: [a]}", "tracing.otlp_endpoint"},
	})
	cfg := DefaultConfig()
	cfg.Tracing.OTLPEndpoint, cfg.Tracing.CAFile = "collector:4317", filepath.Join(t.TempDir(), "missing.pem")
	if _, err := buildApp(context.Background(), cfg, slog.New(slog.DiscardHandler)); err == nil || !strings.Contains(err.Error(), "tracing.ca_file") {
		t.Errorf("a missing ca_file: %v, want an error naming tracing.ca_file", err)
	}
}

// TestTracingCollectorDown: a collector that cannot be reached slows no
// decision; closing the app gives up on the flush after the shutdown
// timeout and says so, and the SDK's export errors reach the service log.
func TestTracingCollectorDown(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	lis.Close() // nothing listens there any more
	cfg := DefaultConfig()
	cfg.Tracing.OTLPEndpoint, cfg.Tracing.Insecure = addr, true
	var logs syncBuffer
	a, err := buildApp(context.Background(), cfg, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.bundles.Reload(context.Background()); err != nil {
		a.close()
		t.Fatal(err)
	}
	// What the SDK reports of a failed export reaches the service log.
	otel.Handle(errors.New("export refused"))
	start := time.Now()
	for range 100 {
		a.engine.Decide(context.Background(), &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
			Headers: map[string]string{"content-type": "application/json"}, Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`)})
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("100 decisions took %v with the collector down", d)
	}
	start = time.Now()
	a.close()
	if d := time.Since(start); d > tracingShutdownTimeout+5*time.Second {
		t.Errorf("closing took %v", d)
	}
	for _, want := range []string{`"msg":"tracing: exporting spans failed"`, `"error":"tracing: flushing spans: context deadline exceeded"`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("no %s in the log:\n%s", want, logs.String())
		}
	}
}
