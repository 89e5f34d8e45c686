package extauthz

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/upstream"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// BenchmarkCheckUpstreamExchange is BenchmarkCheck/tools_call with an
// upstream credential by token exchange: every Check after the first finds
// the exchanged token in the cache, so the difference between the two is
// the cost of a cache hit on the Check path (choosing the entry, the cache
// lookup, setting the header on the CheckResponse).
func BenchmarkCheckUpstreamExchange(b *testing.B) {
	var exchanges atomic.Int32
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		exchanges.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "exchanged", "token_type": "Bearer", "expires_in": 3600})
	}))
	b.Cleanup(as.Close)
	creds, err := upstream.New(upstream.Options{Entries: []upstream.Entry{{
		Name:     "server",
		Exchange: &upstream.Exchange{TokenURL: as.URL, ClientID: "mcpauthz", ClientSecret: "s", Audience: "https://mcp-server.internal"},
	}}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	v, toks, err := workload.NewVerified(ctx, b.TempDir(), 1)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(v.Close)
	e := decisiontest.NewEngine(b, benchPolicy, func(o *decision.Options) { o.Tokens, o.Upstream = v, creds })
	srv := NewServer(e, Options{}, nil)
	reqs := make([]*authv3.CheckRequest, 4096)
	for i := range reqs {
		reqs[i] = workload.CheckRequest(workload.New(workload.ToolsCall, i, toks[0]))
	}
	resp, _ := srv.Check(ctx, reqs[0])
	set := false
	for _, h := range resp.GetOkResponse().GetHeaders() {
		set = set || (h.GetHeader().GetKey() == "authorization" && h.GetHeader().GetValue() == "Bearer exchanged")
	}
	if !set {
		b.Fatalf("the first Check did not set the exchanged token: %v", resp)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, err := srv.Check(ctx, reqs[i%len(reqs)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	if n := exchanges.Load(); n != 1 {
		b.Errorf("%d exchanges, want 1: the benchmark measured misses", n)
	}
}
