package extauthz

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/structpb"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

var wireOpts = Options{MCPMetadataNamespace: DefaultMCPMetadataNamespace, JWTMetadataNamespace: "envoy.filters.http.jwt_authn", JWTPayloadKey: "payload"}

// wireChecks are CheckRequests in wire format: the golden ones, every kind
// of the reference workload, and edge cases of the format itself.
func wireChecks(t testing.TB) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	files, err := filepath.Glob("testdata/checks/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no check requests: %v", err)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var req authv3.CheckRequest
		if err := protojson.Unmarshal(raw, &req); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[filepath.Base(f)] = marshal(t, &req)
	}
	for i, k := range []workload.Kind{workload.ToolsCall, workload.ToolsList, workload.Initialize, workload.Ping, workload.DeniedCall} {
		out["workload_"+string(k)] = marshal(t, workload.CheckRequest(workload.New(k, i, "h.p.s")))
	}
	base := workload.CheckRequest(workload.New(workload.ToolsCall, 9, "h.p.s"))
	// A message repeated on the wire is merged into the first, a scalar
	// replaced, a map entry added: concatenating two encodings does all three.
	later := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:            &authv3.AttributeContext_Peer{Principal: "spiffe://x/later"},
		ContextExtensions: map[string]string{"mcp_server": "other", "extra": "1"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Path: "/mcp2", Headers: map[string]string{"authorization": "Bearer later", "x-new": "v"},
		}},
	}}
	out["merged"] = append(marshal(t, base), marshal(t, later)...)
	// The source address oneof switching to a pipe, and the port to a name.
	pipe := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{
		Address: &corev3.Address{Address: &corev3.Address_Pipe{Pipe: &corev3.Pipe{Path: "/run/x.sock"}}},
	}}}
	out["source_pipe_after_socket"] = append(marshal(t, base), marshal(t, pipe)...)
	named := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{Source: &authv3.AttributeContext_Peer{
		Address: &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
			PortSpecifier: &corev3.SocketAddress_NamedPort{NamedPort: "https"},
		}}},
	}}}
	out["source_named_port"] = append(marshal(t, base), marshal(t, named)...)
	// include_peer_certificate: the source's certificate is read (RFC
	// 8705), the destination's never; the scheme (a DPoP proof's htu).
	certs := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Certificate: "-----BEGIN%20CERTIFICATE-----%0Asource%0A"},
		Destination: &authv3.AttributeContext_Peer{Certificate: "-----BEGIN%20CERTIFICATE-----%0Adestination%0A"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Scheme: "https", Path: "/mcp",
		}},
	}}
	out["source_certificate_and_scheme"] = marshal(t, certs)
	out["source_certificate_merged"] = append(marshal(t, base), marshal(t, certs)...)
	out["scheme_pseudo_header"] = marshal(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Headers: map[string]string{":scheme": "http", ":authority": "a"},
		}},
	}})
	// Both body fields, empty values, fields the adapter does not read.
	other := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Destination: &authv3.AttributeContext_Peer{Service: "mcp", Labels: map[string]string{"a": "b"}},
		TlsSession:  &authv3.AttributeContext_TLSSession{Sni: "mcp.example.com"},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Method: "POST", Body: `{"jsonrpc":"2.0","id":1,"method":"ping"}`, RawBody: []byte(`{"jsonrpc":"2.0","id":2,"method":"ping"}`),
			Headers: map[string]string{"": "", "empty": ""}, Scheme: "https", Size: 40, Protocol: "HTTP/2",
		}},
	}}
	out["both_bodies_unread_fields"] = marshal(t, other)
	// Raw headers (encode_raw_headers): a repeated key, a value given as
	// value rather than raw_value; and header_map beside a headers map,
	// where the map wins.
	hm := &corev3.HeaderMap{Headers: []*corev3.HeaderValue{
		{Key: ":path", RawValue: []byte("/mcp")}, {Key: "accept", RawValue: []byte("a")},
		{Key: "accept", RawValue: []byte("b")}, {Key: "x-plain", Value: "v"}, {Key: "x-empty"},
		{Key: "authorization", RawValue: []byte("Bearer h.p.s")},
	}}
	out["header_map"] = marshal(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{Method: "POST", HeaderMap: hm}},
	}})
	out["header_map_split"] = append(marshal(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{HeaderMap: hm}},
	}}), out["header_map"]...)
	out["headers_and_header_map"] = append(marshal(t, base), out["header_map"]...)
	out["empty"] = nil
	// An unknown field of every wire type before the known ones.
	var unknown []byte
	unknown = protowire.AppendTag(unknown, 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 7)
	unknown = protowire.AppendTag(unknown, 98, protowire.Fixed32Type)
	unknown = protowire.AppendFixed32(unknown, 7)
	unknown = protowire.AppendTag(unknown, 97, protowire.Fixed64Type)
	unknown = protowire.AppendFixed64(unknown, 7)
	unknown = protowire.AppendTag(unknown, 96, protowire.BytesType)
	unknown = protowire.AppendBytes(unknown, []byte("x"))
	out["unknown_fields"] = append(unknown, marshal(t, base)...)
	return out
}

func marshal(t testing.TB, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// generatedRequest is the request RequestFromCheck reads from b, and
// whether the generated types accept b at all.
func generatedRequest(b []byte, opts *Options) (*decision.Request, bool) {
	var req authv3.CheckRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		return nil, false
	}
	return RequestFromCheck(&req, opts), true
}

func wireDecoded(b []byte, opts *Options) (*decision.Request, error) {
	w := &wireRequest{}
	if err := decodeCheck(b, w); err != nil {
		return nil, err
	}
	if err := w.applyMetadata(opts); err != nil {
		return nil, err
	}
	return &w.req, nil
}

// TestWireMatchesGenerated requires the wire decoder to read every request
// exactly as RequestFromCheck reads the generated message.
func TestWireMatchesGenerated(t *testing.T) {
	for name, b := range wireChecks(t) {
		t.Run(name, func(t *testing.T) {
			want, ok := generatedRequest(b, &wireOpts)
			if !ok {
				t.Fatal("the generated types reject the test request")
			}
			got, err := wireDecoded(b, &wireOpts)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("wire decoder:\n%+v\nRequestFromCheck:\n%+v", got, want)
			}
		})
	}
}

func TestWireRejectsMalformed(t *testing.T) {
	good := wireChecks(t)["workload_tools_call"]
	for name, b := range map[string][]byte{
		"truncated":        good[:len(good)-3],
		"bad_length":       {0x0a, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"bad_tag":          {0x80},
		"field_zero":       {0x00, 0x01},
		"end_group_alone":  {0x0c},
		"nested_truncated": {0x0a, 0x02, 0x22, 0x05},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := wireDecoded(b, &wireOpts); err == nil {
				t.Errorf("decoded % x without an error", b)
			}
			if _, ok := generatedRequest(b, &wireOpts); ok {
				t.Errorf("the generated types accept % x: the case tests nothing", b)
			}
		})
	}
}

// FuzzDecodeCheck: whatever the generated types accept, the wire decoder
// accepts and reads the same; nothing makes it panic.
func FuzzDecodeCheck(f *testing.F) {
	for _, b := range wireChecks(f) {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := wireDecoded(b, &wireOpts)
		want, ok := generatedRequest(b, &wireOpts)
		if !ok {
			return // e.g. invalid UTF-8, which the wire decoder lets through
		}
		if err != nil {
			t.Fatalf("generated types accept it, wire decoder: %v", err)
		}
		if len(want.Context) == 0 && len(got.Context) == 0 {
			// The generated decoder makes an empty map of a map field it
			// then skips for its wire type; no context is no context.
			want.Context, got.Context = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("wire decoder:\n%#v\nRequestFromCheck:\n%#v", got, want)
		}
	})
}

// TestWireResponseMatchesGenerated requires the encoded response to decode
// into exactly what ResponseFromDecision builds, for hand-made decisions of
// every shape and for the engine's decisions on every test request.
func TestWireResponseMatchesGenerated(t *testing.T) {
	decisions := map[string]*decision.Decision{
		"allow_bare": {ID: "a", Allow: true, Code: decision.CodeAllowed},
		"allow_all_lists": {ID: "b", Allow: true, Code: decision.CodeAllowed, Revision: "r1", Method: "tools/call", Tool: "query", Subject: "alice",
			UpstreamHeaders:   []decision.Header{{Name: "x-mcp-subject", Value: "alice"}, {Name: "x-empty", Value: ""}},
			ResponseHeaders:   []decision.Header{{Name: "x-decision", Value: "allow"}},
			RemoveHeaders:     []string{"authorization", ""},
			RemoveQueryParams: []string{"access_token"}},
		"deny_401": {ID: "c", Code: decision.CodeUnauthenticated, Status: 401, Reason: "authentication required",
			ResponseHeaders: []decision.Header{{Name: "www-authenticate", Value: `Bearer resource_metadata="https://x/.well-known/oauth-protected-resource"`}},
			Body:            []byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32001,"message":"authentication required"}}`)},
		"deny_no_reason_no_body": {ID: "d", Code: decision.CodePolicyDenied, Status: 403},
		"deny_503":               {ID: "e", Code: decision.CodeNoPolicy, Status: 503, Reason: "no policy is loaded yet"},
		"deny_long_body":         {ID: "f", Code: decision.CodeParseError, Status: 400, Reason: "x", Body: bytes.Repeat([]byte("y"), 70000)},
		"allow_rate_limit": {ID: "g", Allow: true, Code: decision.CodeAllowed, Tool: "query", Subject: "alice",
			RateLimit: []decision.RateLimitEntry{{Name: "subject", Value: "alice"}, {Name: "tool", Value: "query"}}},
		"allow_rate_limit_long": {ID: "h", Allow: true, Code: decision.CodeAllowed,
			RateLimit: []decision.RateLimitEntry{{Name: strings.Repeat("n", 64), Value: strings.Repeat("v", 256)}}},
	}
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", nil)
	for name, b := range wireChecks(t) {
		r, err := wireDecoded(b, &wireOpts)
		if err != nil {
			t.Fatal(err)
		}
		decisions["engine_"+name] = e.Decide(context.Background(), r)
	}
	allowed := 0
	for name, d := range decisions {
		if d.Allow {
			allowed++
		}
		t.Run(name, func(t *testing.T) {
			b := appendCheckResponse(nil, d)
			if len(b) != sizeCheckResponse(d) {
				t.Fatalf("encoded %d bytes, sized %d", len(b), sizeCheckResponse(d))
			}
			var got authv3.CheckResponse
			if err := proto.Unmarshal(b, &got); err != nil {
				t.Fatal(err)
			}
			if want := ResponseFromDecision(d); !proto.Equal(&got, want) {
				t.Errorf("wire response:\n%v\nResponseFromDecision:\n%v", &got, want)
			}
		})
	}
	if allowed < 2 || allowed == len(decisions) {
		t.Fatalf("%d of %d decisions allow: both outcomes must be covered", allowed, len(decisions))
	}
}

// TestWireMetadataIsRead covers the metadata path of the wire decoder on
// its own: the MCP filter's hint and jwt_authn's payload.
func TestWireMetadataIsRead(t *testing.T) {
	hint, err := structpb.NewStruct(map[string]any{"method": "tools/call", "params": map[string]any{"name": "list_repos"}})
	if err != nil {
		t.Fatal(err)
	}
	req := &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{DefaultMCPMetadataNamespace: hint}},
	}}
	got, err := wireDecoded(marshal(t, req), &wireOpts)
	if err != nil {
		t.Fatal(err)
	}
	if got.Hint == nil || got.Hint.Method != "tools/call" || got.Hint.Name != "list_repos" {
		t.Errorf("hint = %+v", got.Hint)
	}
	if got.Credential.Kind != token.NoCredential || got.Credential.Claims != nil {
		t.Errorf("with a jwt_authn namespace and no payload: credential %+v; want none", got.Credential)
	}
}

// TestWireKeepsNoCopyOfTheBuffer overwrites the message after decoding, as
// gRPC may reuse its buffer once the codec returns: the request, metadata
// included, must not change.
func TestWireKeepsNoCopyOfTheBuffer(t *testing.T) {
	hint, err := structpb.NewStruct(map[string]any{"method": "tools/call", "params": map[string]any{"name": "read_file"}})
	if err != nil {
		t.Fatal(err)
	}
	checks := wireChecks(t)
	checks["with_metadata"] = marshal(t, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		MetadataContext: &corev3.Metadata{FilterMetadata: map[string]*structpb.Struct{DefaultMCPMetadataNamespace: hint}},
	}})
	for name, b := range checks {
		t.Run(name, func(t *testing.T) {
			want, err := wireDecoded(bytes.Clone(b), &wireOpts)
			if err != nil {
				t.Fatal(err)
			}
			buf := bytes.Clone(b)
			var w wireRequest
			if err := decodeCheck(buf, &w); err != nil {
				t.Fatal(err)
			}
			for i := range buf {
				buf[i] = 0xff
			}
			if err := w.applyMetadata(&wireOpts); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(&w.req, want) {
				t.Errorf("after the buffer was overwritten:\n%#v\nwant:\n%#v", &w.req, want)
			}
		})
	}
}

// FuzzRateLimitAnswer: a policy returns rate_limit {name: value} for any
// name and value. The engine allows exactly the well-formed ones (decided
// here independently) and denies the rest with eval_error; both encoders
// give the same answer; an allowed answer carries rate_limit.<name> with
// the value, and a denied one no rate_limit key.
func FuzzRateLimitAnswer(f *testing.F) {
	for _, s := range [][2]string{{"subject", "alice"}, {"tool", "query"}, {"sub.ject", "x"}, {"", "x"},
		{"k", ""}, {"k", "a\nb"}, {"k", "\xff"}, {strings.Repeat("n", 65), "v"}, {"k", strings.Repeat("v", 257)}, {"k-_9Z", "ü €"}} {
		f.Add(s[0], s[1])
	}
	e := decisiontest.NewEngine(f, "../../decision/testdata/ratelimit", nil)
	claims := map[string]any{"iss": "https://auth.example.com", "aud": decisiontest.Resource, "sub": "alice",
		"exp": float64(4102444800)}
	f.Fuzz(func(t *testing.T, name, value string) {
		r := &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
			Headers:    map[string]string{"content-type": "application/json"},
			Body:       []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"query","arguments":{}}}`),
			Credential: token.Claimed(claims),
			Context:    map[string]string{"shape": "from_context", "name": name, "value": value}}
		d := e.Decide(context.Background(), r)
		if want := wellFormedRateLimit(name, value); d.Allow != want {
			t.Fatalf("rate_limit {%q: %q}: allowed %v, want %v (%s %v)", name, value, d.Allow, want, d.Code, d.Errors)
		}
		if !d.Allow && d.Code != decision.CodeEvalError {
			t.Fatalf("denied with %s, want %s", d.Code, decision.CodeEvalError)
		}
		var got authv3.CheckResponse
		if err := proto.Unmarshal(appendCheckResponse(nil, d), &got); err != nil {
			t.Fatal(err)
		}
		want := ResponseFromDecision(d)
		if !proto.Equal(&got, want) {
			t.Fatalf("wire response:\n%v\nResponseFromDecision:\n%v", &got, want)
		}
		fields := want.GetDynamicMetadata().GetFields()
		for k, v := range fields {
			if strings.HasPrefix(k, decision.RateLimitKeyPrefix) && (!d.Allow || k != decision.RateLimitKeyPrefix+name || v.GetStringValue() != value) {
				t.Fatalf("metadata %s = %v, allowed %v, for rate_limit {%q: %q}", k, v, d.Allow, name, value)
			}
		}
		if _, ok := fields[decision.RateLimitKeyPrefix+name]; d.Allow && !ok {
			t.Fatalf("allowed without metadata %s%s: %v", decision.RateLimitKeyPrefix, name, fields)
		}
	})
}

// wellFormedRateLimit is the documented rule for one rate_limit entry.
func wellFormedRateLimit(name, value string) bool {
	if name == "" || len(name) > 64 || value == "" || len(value) > 256 || !utf8.ValidString(value) {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	for _, c := range value {
		if c < 0x20 || c == 0x7f {
			return false
		}
	}
	return true
}
