// Package envoytest builds ext_authz CheckRequests as Envoy's ext_authz
// filter builds them, for tests that stand in for Envoy in front of
// mcpauthz: a test describes the HTTP request a client sent, as the
// client sent it (names in any case, a header repeated), and gets the
// CheckRequest Envoy would send for it.
//
// What it reproduces, as transport/extauthz reads it:
//   - header names lowercased; a header the client repeated becomes one
//     entry of attributes.request.http.headers, its values joined with ","
//     in the order sent (the reason single-valued headers must be checked
//     for a comma);
//   - the pseudo-headers :method, :path (query included), :authority and
//     :scheme among the headers, and method, path, host, scheme and
//     protocol as fields of the request;
//   - content-length for a body the client sent without one (HTTP/1.1);
//   - x-forwarded-proto and x-request-id, which Envoy's connection manager
//     adds before the filter runs;
//   - the body in raw_body (with_request_body.pack_as_bytes); past
//     MaxRequestBytes with AllowPartial, cut there and marked with the
//     x-envoy-auth-partial-body header;
//   - the route's context_extensions and the peer's socket address.
package envoytest

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
)

// Header is one request header line as the client sent it.
type Header struct {
	Name, Value string
}

// Request is an HTTP request as a client sent it to Envoy.
type Request struct {
	// Method defaults to POST; Path (query included) to /mcp; Authority
	// to mcp.example; Scheme to http.
	Method, Path, Authority, Scheme string
	// Headers are the header lines in the order sent; a name may repeat
	// and be in any case.
	Headers []Header
	// Body is the body as sent.
	Body []byte
	// ContextExtensions are the route's per-route context_extensions.
	ContextExtensions map[string]string
	// SourceAddress is the peer's IP address; default 127.0.0.1.
	SourceAddress string
	// MaxRequestBytes and AllowPartial are with_request_body's settings:
	// 0 buffers the whole body.
	MaxRequestBytes int
	AllowPartial    bool
}

// H is a shorthand for a list of header lines: name, value, name, value...
func H(nameValues ...string) []Header {
	if len(nameValues)%2 != 0 {
		panic("envoytest.H: an odd number of strings")
	}
	hs := make([]Header, 0, len(nameValues)/2)
	for i := 0; i < len(nameValues); i += 2 {
		hs = append(hs, Header{nameValues[i], nameValues[i+1]})
	}
	return hs
}

// Bearer is the Authorization header line of token.
func Bearer(token string) Header { return Header{"Authorization", "Bearer " + token} }

// CheckRequest returns the CheckRequest Envoy sends for r.
func (r Request) CheckRequest() *authv3.CheckRequest {
	method, path, authority, scheme := or(r.Method, "POST"), or(r.Path, "/mcp"), or(r.Authority, "mcp.example"), or(r.Scheme, "http")
	body := r.Body
	partial := false
	if r.MaxRequestBytes > 0 && len(body) > r.MaxRequestBytes && r.AllowPartial {
		body, partial = body[:r.MaxRequestBytes], true
	}
	headers := map[string]string{
		":method": method, ":path": path, ":authority": authority, ":scheme": scheme,
	}
	hasLength := false
	for _, h := range r.Headers {
		name := strings.ToLower(h.Name)
		hasLength = hasLength || name == "content-length"
		if prev, ok := headers[name]; ok {
			headers[name] = prev + "," + h.Value
			continue
		}
		headers[name] = h.Value
	}
	if !hasLength && len(r.Body) > 0 {
		headers["content-length"] = strconv.Itoa(len(r.Body))
	}
	if _, ok := headers["x-forwarded-proto"]; !ok {
		headers["x-forwarded-proto"] = scheme
	}
	if _, ok := headers["x-request-id"]; !ok {
		headers["x-request-id"] = "6f1e0c1b-6a4e-4f61-9b2c-4c1d5e0a7b21"
	}
	if partial {
		headers["x-envoy-auth-partial-body"] = "true"
	}
	src := or(r.SourceAddress, "127.0.0.1")
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source: &authv3.AttributeContext_Peer{Address: &corev3.Address{Address: &corev3.Address_SocketAddress{
			SocketAddress: &corev3.SocketAddress{Address: src, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: 51234}},
		}}},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:       "1",
			Method:   method,
			Path:     path,
			Host:     authority,
			Scheme:   scheme,
			Protocol: "HTTP/1.1",
			Headers:  headers,
			Size:     int64(len(r.Body)),
			RawBody:  body,
		}},
		ContextExtensions: r.ContextExtensions,
	}}
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Answer is what Envoy does with a CheckResponse, as a test asserts it.
type Answer struct {
	// Allowed: the request goes upstream.
	Allowed bool
	// Status is the HTTP status of a denial (0 when allowed).
	Status int
	// Headers are the denial's response headers, or the headers an allow
	// sets upstream, names as given.
	Headers map[string]string
	// HeadersToRemove are the upstream headers an allow removes.
	HeadersToRemove []string
	// Body is the denial's body.
	Body string
}

// Check sends r to c as Envoy does and reads the answer. A gRPC error is
// returned as it is: Envoy's failure mode would decide it.
func Check(ctx context.Context, c authv3.AuthorizationClient, r Request) (Answer, error) {
	resp, err := c.Check(ctx, r.CheckRequest())
	if err != nil {
		return Answer{}, err
	}
	return Read(resp)
}

// Read turns a CheckResponse into the Answer Envoy acts on; a response
// that is neither OK nor denied is an error.
func Read(resp *authv3.CheckResponse) (Answer, error) {
	a := Answer{Headers: map[string]string{}}
	if ok := resp.GetOkResponse(); ok != nil {
		a.Allowed = true
		for _, h := range ok.GetHeaders() {
			a.Headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
		}
		a.HeadersToRemove = ok.GetHeadersToRemove()
		return a, nil
	}
	d := resp.GetDeniedResponse()
	if d == nil {
		return Answer{}, fmt.Errorf("CheckResponse is neither OK nor denied: %v", resp)
	}
	a.Status = int(d.GetStatus().GetCode())
	for _, h := range d.GetHeaders() {
		a.Headers[h.GetHeader().GetKey()] = h.GetHeader().GetValue()
	}
	a.Body = d.GetBody()
	return a, nil
}
