package envoy

import (
	"context"
	"path/filepath"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// benchPolicy is the reference policy of the benchmarks (see
// docs/performance.md).
var benchPolicy = filepath.Join("..", "testdata", "bench")

// benchServer is the ext_authz server on the reference policy, verifying
// RS256 tokens against a JWKS file, with checks of the reference workload
// whose tokens are already cached.
func benchServer(b *testing.B, k workload.Kind) (*Server, []*authv3.CheckRequest) {
	b.Helper()
	ctx := context.Background()
	keys, err := workload.NewKeys()
	if err != nil {
		b.Fatal(err)
	}
	v, err := keys.Verifier(ctx, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	toks, err := keys.Tokens(1)
	if err != nil {
		b.Fatal(err)
	}
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

// BenchmarkCheck is one whole ext_authz Check in process, from the
// CheckRequest Envoy sends to the CheckResponse (no gRPC transport): the
// figure of the in-process target in docs/performance.md.
func BenchmarkCheck(b *testing.B) {
	for _, k := range []workload.Kind{workload.ToolsCall, ""} {
		name := string(k)
		if k == "" {
			name = "mix"
		}
		b.Run(name, func(b *testing.B) {
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
