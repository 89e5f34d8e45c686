package extauthz

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc/encoding"
	protocodec "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// benchPolicy is the reference policy of the benchmarks (see
// docs/performance.md).
var benchPolicy = filepath.Join("..", "..", "decision", "testdata", "bench")

// benchServer is the ext_authz server on the reference policy, verifying
// RS256 tokens against a JWKS file, with checks of the reference workload
// whose tokens are already cached.
func benchServer(b *testing.B, k workload.Kind) (*Server, []*authv3.CheckRequest) {
	b.Helper()
	ctx := context.Background()
	v, toks, err := workload.NewVerified(ctx, b.TempDir(), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	tok := toks[0]
	e := decisiontest.NewEngine(b, benchPolicy, func(o *decision.Options) { o.Tokens = v })
	srv := NewServer(e, Options{}, nil)
	var ws []*workload.Request
	if k == "" {
		ws = workload.Mix(4096, []string{tok})
	} else {
		for i := range 4096 {
			ws = append(ws, workload.New(k, i, tok))
		}
	}
	reqs := make([]*authv3.CheckRequest, len(ws))
	for i, w := range ws {
		reqs[i] = workload.CheckRequest(w)
		resp, _ := srv.Check(ctx, reqs[i])
		if allowed := resp.GetOkResponse() != nil; allowed != w.Allow {
			b.Fatalf("%s %d: allowed = %v, want %v (%s)", w.Kind, i, allowed, w.Allow, resp.GetStatus().GetMessage())
		}
	}
	return srv, reqs
}

// benchKinds are the workloads of the Check benchmarks: an allowed
// tools/call, and the reference mix ("").
var benchKinds = []workload.Kind{workload.ToolsCall, ""}

func benchName(k workload.Kind) string {
	if k == "" {
		return "mix"
	}
	return string(k)
}

// BenchmarkCheck is one whole ext_authz Check in process, from the
// CheckRequest Envoy sends to the CheckResponse (no gRPC transport): the
// figure of the in-process target in docs/performance.md.
func BenchmarkCheck(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(benchName(k), func(b *testing.B) {
			srv, reqs := benchServer(b, k)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := srv.Check(ctx, reqs[i%len(reqs)]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkRequestFromCheck is the adapter's reading of a CheckRequest.
func BenchmarkRequestFromCheck(b *testing.B) {
	w := workload.New(workload.ToolsCall, 1, "x.y.z")
	req := workload.CheckRequest(w)
	opts := &Options{MCPMetadataNamespace: DefaultMCPMetadataNamespace}
	b.ReportAllocs()
	for b.Loop() {
		_ = RequestFromCheck(req, opts)
	}
}

// BenchmarkResponseFromDecision is the rendering of an allowed decision.
func BenchmarkResponseFromDecision(b *testing.B) {
	d := &decision.Decision{ID: "0123456789ab-1", Allow: true, Code: decision.CodeAllowed, Revision: "rev-1",
		UpstreamHeaders: []decision.Header{{Name: "x-mcp-subject", Value: "agent-a"}}, RemoveHeaders: []string{"authorization"}}
	b.ReportAllocs()
	for b.Loop() {
		_ = ResponseFromDecision(d)
	}
}

// BenchmarkCheckWire is one whole Check as the server runs it, from the
// request bytes gRPC hands the codec to the response bytes it sends:
// ServerCodec's decoding, the decision and the encoding. generated is the
// same with gRPC's protobuf codec and the generated types, for comparison.
func BenchmarkCheckWire(b *testing.B) {
	for _, k := range benchKinds {
		b.Run(benchName(k), func(b *testing.B) {
			srv, reqs := benchServer(b, k)
			benchWire(b, ServerCodec(), reqs, func() any { return &checkRequest{} },
				func(ctx context.Context, in any) (any, error) { return srv.check(ctx, in.(*checkRequest)) })
		})
	}
	b.Run("generated", func(b *testing.B) {
		srv, reqs := benchServer(b, workload.ToolsCall)
		benchWire(b, encoding.GetCodecV2(protocodec.Name), reqs, func() any { return &authv3.CheckRequest{} },
			func(ctx context.Context, in any) (any, error) { return srv.Check(ctx, in.(*authv3.CheckRequest)) })
	})
}

func benchWire(b *testing.B, codec encoding.CodecV2, reqs []*authv3.CheckRequest, newIn func() any, check func(context.Context, any) (any, error)) {
	wire := make([]mem.BufferSlice, len(reqs))
	for i, r := range reqs {
		raw, err := proto.Marshal(r)
		if err != nil {
			b.Fatal(err)
		}
		wire[i] = mem.BufferSlice{mem.SliceBuffer(raw)}
	}
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		in := newIn()
		if err := codec.Unmarshal(wire[i%len(wire)], in); err != nil {
			b.Fatal(err)
		}
		resp, err := check(ctx, in)
		if err != nil {
			b.Fatal(err)
		}
		out, err := codec.Marshal(resp)
		if err != nil {
			b.Fatal(err)
		}
		out.Free()
		i++
	}
}

// BenchmarkDecodeCheck is the reading of a CheckRequest from its bytes
// into the engine's request: by ServerCodec, and by gRPC's protobuf codec
// with RequestFromCheck.
func BenchmarkDecodeCheck(b *testing.B) {
	raw, err := proto.Marshal(workload.CheckRequest(workload.New(workload.ToolsCall, 1, benchJWTShape)))
	if err != nil {
		b.Fatal(err)
	}
	data := mem.BufferSlice{mem.SliceBuffer(raw)}
	opts := &Options{MCPMetadataNamespace: DefaultMCPMetadataNamespace}
	b.Run("server_codec", func(b *testing.B) {
		codec := ServerCodec()
		b.ReportAllocs()
		for b.Loop() {
			in := &checkRequest{}
			if err := codec.Unmarshal(data, in); err != nil {
				b.Fatal(err)
			}
			if err := in.wire.applyMetadata(opts); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("generated", func(b *testing.B) {
		codec := encoding.GetCodecV2(protocodec.Name)
		b.ReportAllocs()
		for b.Loop() {
			in := &authv3.CheckRequest{}
			if err := codec.Unmarshal(data, in); err != nil {
				b.Fatal(err)
			}
			_ = RequestFromCheck(in, opts)
		}
	})
}

// benchJWTShape is a bearer token of an RS256 JWT's length (the decoders
// do not verify it).
var benchJWTShape = strings.Repeat("eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.", 22)

// BenchmarkResponseRateLimit is the rendering of an allowed decision with
// two rate_limit entries, by the generated types and by the wire encoder:
// what a policy's rate_limit adds to BenchmarkResponseFromDecision.
func BenchmarkResponseRateLimit(b *testing.B) {
	d := &decision.Decision{ID: "0123456789ab-1", Allow: true, Code: decision.CodeAllowed, Revision: "rev-1",
		UpstreamHeaders: []decision.Header{{Name: "x-mcp-subject", Value: "agent-a"}}, RemoveHeaders: []string{"authorization"},
		RateLimit: []decision.RateLimitEntry{{Name: "subject", Value: "agent-a"}, {Name: "tool", Value: "query"}}}
	b.Run("generated", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ResponseFromDecision(d)
		}
	})
	b.Run("wire", func(b *testing.B) {
		buf := make([]byte, 0, 1024)
		b.ReportAllocs()
		for b.Loop() {
			buf = appendCheckResponse(buf[:0], d)
		}
	})
}
