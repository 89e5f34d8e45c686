// Package extauthz adapts Envoy's ext_authz v3 API to the decision engine: it
// turns a CheckRequest into a decision.Request and a decision.Decision into
// a CheckResponse. It holds no policy logic.
package extauthz

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/dynmeta"
)

// Options configure the adapter.
type Options struct {
	// MCPMetadataNamespace is the metadata_context namespace where Envoy's
	// MCP filter leaves its parse of the body; default
	// "envoy.filters.http.mcp", where envoy.filters.http.mcp writes it.
	MCPMetadataNamespace string
	// JWTMetadataNamespace, when set (e.g. "envoy.filters.http.jwt_authn"),
	// takes the verified token payload from metadata_context instead of
	// verifying the bearer header. Only metadata is trusted, never a header.
	JWTMetadataNamespace string
	// JWTPayloadKey is the key under that namespace holding the payload
	// (jwt_authn's payload_in_metadata); "" takes the only struct there.
	JWTPayloadKey string
}

// DefaultMCPMetadataNamespace is where Envoy's MCP filter
// (envoy.filters.http.mcp) writes its metadata: method, id and params.
const DefaultMCPMetadataNamespace = "envoy.filters.http.mcp"

// Decider is what the adapter needs of the engine.
type Decider interface {
	Decide(ctx context.Context, r *decision.Request) *decision.Decision
}

// Server is an envoy.service.auth.v3.Authorization server.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	engine Decider
	opts   Options
	log    *slog.Logger
}

var _ authv3.AuthorizationServer = (*Server)(nil)

// NewServer builds the ext_authz server around an engine.
func NewServer(engine Decider, opts Options, logger *slog.Logger) *Server {
	if opts.MCPMetadataNamespace == "" {
		opts.MCPMetadataNamespace = DefaultMCPMetadataNamespace
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{engine: engine, opts: opts, log: logger}
}

// Check answers one ext_authz CheckRequest. It never returns an error: a
// request it cannot read is denied with a response, so Envoy never falls
// back to failure_mode_allow because of us.
func (s *Server) Check(ctx context.Context, req *authv3.CheckRequest) (resp *authv3.CheckResponse, err error) {
	defer func() {
		if p := recover(); p != nil {
			resp, err = ResponseFromDecision(s.failed(ctx, nil, p)), nil
		}
	}()
	r := RequestFromCheck(req, &s.opts)
	d := s.engine.Decide(ctx, r)
	return ResponseFromDecision(d), nil
}

// failureRecorder is an engine that can record a failed request as a
// decision (decision.Engine.Failed), so that it is logged and counted.
type failureRecorder interface {
	Failed(ctx context.Context, r *decision.Request, why any) *decision.Decision
}

// failed is the answer to a Check whose handling panicked in this adapter:
// the engine's internal_error denial when it records failures, else the
// fixed failsafeDecision, logged here.
func (s *Server) failed(ctx context.Context, r *decision.Request, p any) (d *decision.Decision) {
	if rec, ok := s.engine.(failureRecorder); ok {
		defer func() {
			if recover() != nil {
				d = failsafeDecision
			}
		}()
		if r == nil {
			r = &decision.Request{}
		}
		return rec.Failed(ctx, r, fmt.Sprintf("ext_authz adapter: %v", p))
	}
	s.log.Error("panic in the ext_authz adapter; denying", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return failsafeDecision
}

// RequestFromCheck builds the engine's request from a CheckRequest as Envoy
// sends it: lowercase header keys, the body in http.body (a string) or
// http.raw_body (bytes, with pack_as_bytes), per-route context_extensions,
// and filter results in metadata_context.
func RequestFromCheck(req *authv3.CheckRequest, opts *Options) *decision.Request {
	attrs := req.GetAttributes()
	h := attrs.GetRequest().GetHttp()
	r := &decision.Request{
		Method:  h.GetMethod(),
		Path:    h.GetPath(),
		Host:    h.GetHost(),
		Scheme:  h.GetScheme(),
		Headers: h.GetHeaders(),
		Context: attrs.GetContextExtensions(),
	}
	if len(r.Headers) == 0 && len(h.GetHeaderMap().GetHeaders()) > 0 {
		r.Headers = headersFromMap(h.GetHeaderMap().GetHeaders())
	}
	if raw := h.GetRawBody(); len(raw) > 0 {
		r.Body = raw
	} else if b := h.GetBody(); b != "" {
		r.Body = []byte(b)
	}
	fromHeaders(r)
	if src := attrs.GetSource(); src != nil {
		r.SourceAddress = socketAddress(src.GetAddress())
		r.SourcePrincipal = src.GetPrincipal()
		r.SourceCertificate = src.GetCertificate()
	}
	applyFilterMetadata(r, attrs.GetMetadataContext().GetFilterMetadata(), opts)
	return r
}

// applyFilterMetadata reads what Envoy's filters left in metadata_context:
// the MCP filter's parse of the body, and jwt_authn's verified payload.
func applyFilterMetadata(r *decision.Request, md map[string]*structpb.Struct, opts *Options) {
	if opts == nil {
		return
	}
	ns := opts.MCPMetadataNamespace
	if ns == "" {
		ns = DefaultMCPMetadataNamespace
	}
	r.Hint = mcpHint(md[ns])
	if opts.JWTMetadataNamespace != "" {
		// Only Envoy's verified payload counts; when Envoy left none,
		// the request carried no valid token, whatever its headers say.
		r.Credential = token.Claimed(jwtPayload(md[opts.JWTMetadataNamespace], opts.JWTPayloadKey))
	}
}

// headersFromMap reads http.header_map, which Envoy sends instead of the
// headers map when encode_raw_headers is on: only key and raw_value are
// set there, and a repeated header comes once per value. Values are joined
// with "," as Envoy joins them in the headers map.
func headersFromMap(hvs []*corev3.HeaderValue) map[string]string {
	hs := make(map[string]string, len(hvs))
	for _, hv := range hvs {
		addHeader(hs, hv.GetKey(), hv.GetValue(), string(hv.GetRawValue()))
	}
	return hs
}

// addHeader adds one header_map entry: raw_value, or value when Envoy
// left raw_value empty; a key seen before gets the value appended.
func addHeader(hs map[string]string, key, value, raw string) {
	if raw != "" {
		value = raw
	}
	if prev, ok := hs[key]; ok {
		value = prev + "," + value
	}
	hs[key] = value
}

// fromHeaders fills what the HTTP attributes left empty from the
// pseudo-headers, and reads whether the body was cut.
func fromHeaders(r *decision.Request) {
	if r.Headers == nil {
		r.Headers = map[string]string{}
	}
	if r.Method == "" {
		r.Method = r.Headers[":method"]
	}
	if r.Path == "" {
		r.Path = r.Headers[":path"]
	}
	if r.Host == "" {
		r.Host = r.Headers[":authority"]
	}
	if r.Scheme == "" {
		r.Scheme = r.Headers[":scheme"]
	}
	r.Truncated = truncated(r.Headers, len(r.Body))
}

// truncated reports whether Envoy cut the body: it says so in a header when
// allow_partial_message is on, and content-length tells in any case.
func truncated(headers map[string]string, bodyLen int) bool {
	if strings.EqualFold(headers["x-envoy-auth-partial-body"], "true") {
		return true
	}
	if cl, ok := headers["content-length"]; ok {
		n, err := strconv.ParseInt(strings.TrimSpace(cl), 10, 64)
		if err == nil && n > int64(bodyLen) {
			return true
		}
	}
	return false
}

func socketAddress(a *corev3.Address) string {
	sa := a.GetSocketAddress()
	if sa == nil {
		return ""
	}
	return hostPort(sa.GetAddress(), sa.GetPortValue())
}

// hostPort formats a socket address as host:port in one allocation: the
// builder's buffer becomes the string.
func hostPort(host string, port uint32) string {
	var digits [10]byte
	p := strconv.AppendUint(digits[:0], uint64(port), 10)
	var b strings.Builder
	b.Grow(len(host) + 1 + len(p))
	b.WriteString(host)
	b.WriteByte(':')
	b.Write(p)
	return b.String()
}

// mcpHint reads what Envoy's MCP filter parsed: method ("__jsonrpc_response"
// for a response), id (a string or a number), and params.name (or
// params.uri) when it extracted them.
func mcpHint(s *structpb.Struct) *decision.Hint {
	if s == nil {
		return nil
	}
	f := s.GetFields()
	method := f["method"].GetStringValue()
	if method == "" {
		return nil
	}
	h := &decision.Hint{Method: method}
	switch id := f["id"].GetKind().(type) {
	case *structpb.Value_StringValue:
		h.ID = id.StringValue
	case *structpb.Value_NumberValue:
		h.ID = id.NumberValue
	}
	if p := f["params"].GetStructValue(); p != nil {
		pf := p.GetFields()
		if n := pf["name"].GetStringValue(); n != "" {
			h.Name = n
		} else if u := pf["uri"].GetStringValue(); u != "" {
			h.Name = u
		}
	}
	return h
}

// jwtPayload reads the payload jwt_authn wrote with payload_in_metadata.
func jwtPayload(s *structpb.Struct, key string) map[string]any {
	if s == nil {
		return nil
	}
	f := s.GetFields()
	if key != "" {
		if p := f[key].GetStructValue(); p != nil {
			return p.AsMap()
		}
		return nil
	}
	if len(f) != 1 {
		return nil
	}
	for _, v := range f {
		if p := v.GetStructValue(); p != nil {
			return p.AsMap()
		}
	}
	return nil
}

// ResponseFromDecision renders a decision as Envoy expects it: OK with
// headers to set upstream, or Denied with the exact status, headers and body
// the MCP client must see.
//
// Every response is built in one allocation (the messages, the oneof
// wrapper and the dynamic metadata) plus one per header list: this runs on
// every request.
func ResponseFromDecision(d *decision.Decision) *authv3.CheckResponse {
	if d.Allow {
		blk := &allowBlock{}
		blk.ok = authv3.OkHttpResponse{
			Headers:                 headerOptions(d.UpstreamHeaders, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
			HeadersToRemove:         d.RemoveHeaders,
			QueryParametersToRemove: d.RemoveQueryParams,
			ResponseHeadersToAdd:    headerOptions(d.ResponseHeaders, corev3.HeaderValueOption_APPEND_IF_EXISTS_OR_ADD),
		}
		blk.oneof.OkResponse = &blk.ok
		blk.resp = authv3.CheckResponse{
			Status:          &blk.status,
			HttpResponse:    &blk.oneof,
			DynamicMetadata: blk.md.fill(d),
		}
		blk.status.Code = int32(code.Code_OK)
		return &blk.resp
	}
	denied := &authv3.DeniedHttpResponse{
		Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
		Headers: headerOptions(d.ResponseHeaders, corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD),
		Body:    string(d.Body),
	}
	var md metadataBlock
	return &authv3.CheckResponse{
		Status:          &status.Status{Code: int32(grpcCode(d)), Message: d.Reason},
		HttpResponse:    &authv3.CheckResponse_DeniedResponse{DeniedResponse: denied},
		DynamicMetadata: md.fill(d),
	}
}

// allowBlock holds every message of an OK response, allocated together.
type allowBlock struct {
	resp   authv3.CheckResponse
	status status.Status
	ok     authv3.OkHttpResponse
	oneof  authv3.CheckResponse_OkResponse
	md     metadataBlock
}

// metadataBlock holds the dynamic metadata of a response, allocated
// together with it.
type metadataBlock struct{ dynmeta.Block }

// fill sets the decision's metadata (internal/dynmeta: Envoy's dynamic
// metadata, so access logs can carry it and join the decision log), and
// one rate_limit.<name> per entry of the decision's rate_limit (for Envoy's
// rate limit filter), and returns the struct.
func (b *metadataBlock) fill(d *decision.Decision) *structpb.Struct {
	s := b.Fill(d, len(d.RateLimit))
	if len(d.RateLimit) > 0 {
		addRateLimit(s.Fields, d.RateLimit)
	}
	return s
}

// rateLimitValue is one rate_limit entry's Value, allocated together.
type rateLimitValue struct {
	v    structpb.Value
	kind structpb.Value_StringValue
}

// addRateLimit sets each entry under its flat key rate_limit.<name>: one
// key, which Envoy's metadata action names as one path segment.
func addRateLimit(fields map[string]*structpb.Value, rl []decision.RateLimitEntry) {
	vals := make([]rateLimitValue, len(rl))
	for i, e := range rl {
		v := &vals[i]
		v.kind.StringValue = e.Value
		v.v.Kind = &v.kind
		fields[decision.RateLimitKeyPrefix+e.Name] = &v.v
	}
}

func grpcCode(d *decision.Decision) code.Code {
	switch d.Status {
	case 401:
		return code.Code_UNAUTHENTICATED
	case 400, 413:
		return code.Code_INVALID_ARGUMENT
	case 503:
		return code.Code_UNAVAILABLE
	}
	return code.Code_PERMISSION_DENIED
}

// headerOption is one header of a response with its value, allocated together.
type headerOption struct {
	opt corev3.HeaderValueOption
	hv  corev3.HeaderValue
}

func headerOptions(hs []decision.Header, action corev3.HeaderValueOption_HeaderAppendAction) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	out := make([]*corev3.HeaderValueOption, len(hs))
	blk := make([]headerOption, len(hs))
	for i, h := range hs {
		b := &blk[i]
		b.hv.Key, b.hv.Value = h.Name, h.Value
		b.opt.Header, b.opt.AppendAction = &b.hv, action
		out[i] = &b.opt
	}
	return out
}
