package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/genproto/googleapis/rpc/code"
	"google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
	"github.com/mcpauthz/mcpauthz/internal/workload"
	"github.com/mcpauthz/mcpauthz/policies"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// Limits as the default configuration of mcpauthz serve sets them.
const (
	maxBodyBytes = decision.DefaultMaxBodyBytes
	maxStreams   = 1000
)

// server is a gRPC server on a loopback port.
type server struct {
	addr string
	srv  *grpc.Server
}

func (s *server) stop() { s.srv.Stop() }

func listen(register func(*grpc.Server)) (*server, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	srv := grpc.NewServer(extauthz.ServerOptions(maxStreams)...)
	register(srv)
	go func() { _ = srv.Serve(lis) }()
	return &server{addr: lis.Addr().String(), srv: srv}, nil
}

// noopServer allows every check without looking at it: the ceiling.
type noopServer struct {
	authv3.UnimplementedAuthorizationServer
}

var okResponse = &authv3.CheckResponse{
	Status:       &status.Status{Code: int32(code.Code_OK)},
	HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: &authv3.OkHttpResponse{}},
}

func (noopServer) Check(context.Context, *authv3.CheckRequest) (*authv3.CheckResponse, error) {
	return okResponse, nil
}

func startNoop() (*server, error) {
	return listen(func(s *grpc.Server) { authv3.RegisterAuthorizationServer(s, noopServer{}) })
}

// noopTarget is the no-op server, in this process or in a child.
type noopTarget interface {
	address() string
	stop()
}

func (s *server) address() string { return s.addr }

// serveNoop is --serve-noop: the no-op server until standard input
// closes, with the runtime's and the process's metrics on a loopback HTTP
// port. It prints both addresses on one line, gRPC first.
func serveNoop(stdout io.Writer) error {
	s, err := startNoop()
	if err != nil {
		return err
	}
	defer s.stop()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("listening on loopback for metrics: %w", err)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics.Runtime()...)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(lis) }()
	defer hs.Close()
	fmt.Fprintln(stdout, s.addr, lis.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	return nil
}

// inProcess is mcpauthz built from its packages as serve builds it: the
// policy compiled with the input schema, a JWKS-file token verifier,
// metrics on, decision logs off.
type inProcess struct {
	*server
	policy string
	snaps  *swappable
	engine *decision.Engine
	tokens *token.Verifier
	count  *countingObserver
}

// swappable is a policy source that reload can swap.
type swappable struct {
	p atomic.Pointer[decision.Policy]
}

func (s *swappable) Current() *decision.Policy { return s.p.Load() }

// countingObserver counts decisions beside the metrics.
type countingObserver struct {
	n atomic.Int64
	decision.Observer
}

func (c *countingObserver) Observe(ctx context.Context, r *decision.Request, d *decision.Decision, in ast.Value, el time.Duration) {
	c.n.Add(1)
	c.Observer.Observe(ctx, r, d, in, el)
}

func startInProcess(ctx context.Context, policy, jwks string) (*inProcess, error) {
	if _, err := os.Stat(policy); err != nil {
		return nil, fmt.Errorf("--policy: %w (run from the repository root, or pass a bundle path)", err)
	}
	tokens, err := token.New(ctx, token.Options{Issuer: workload.Issuer, Audience: workload.Audience, JWKSFile: jwks, Algorithms: []string{"RS256"}})
	if err != nil {
		return nil, fmt.Errorf("token verifier: %w", err)
	}
	p := &inProcess{policy: policy, snaps: &swappable{}, tokens: tokens,
		count: &countingObserver{Observer: metrics.New(prometheus.NewRegistry())}}
	p.engine, err = decision.New(decision.Options{
		Snapshots:    p.snaps,
		Tokens:       tokens,
		MetadataURL:  oauth.MetadataURL(workload.Audience),
		MaxBodyBytes: maxBodyBytes,
		Observer:     p.count,
	})
	if err != nil {
		tokens.Close()
		return nil, err
	}
	snap, err := p.compile(ctx)
	if err != nil {
		tokens.Close()
		return nil, err
	}
	p.snaps.p.Store(snap)
	p.server, err = listen(func(s *grpc.Server) {
		extauthz.NewServer(p.engine, extauthz.Options{}, nil).Register(s)
	})
	if err != nil {
		tokens.Close()
		return nil, err
	}
	return p, nil
}

// compile compiles and activates the policy, as the bundle manager does
// before a swap.
func (p *inProcess) compile(ctx context.Context) (*decision.Policy, error) {
	rules, err := decision.RulesIn(p.engine.Package())
	if err != nil {
		return nil, err
	}
	pol, err := bundles.CompileWith(ctx, bundles.Options{
		Sources:     []bundles.Source{bundles.DirSource(p.policy)},
		Queries:     rules.Queries(),
		InputSchema: policies.InputSchema(),
	}, rules.Activate)
	if err != nil {
		return nil, fmt.Errorf("compiling %s: %w", p.policy, err)
	}
	return pol, nil
}

func (p *inProcess) stop() {
	p.server.stop()
	p.tokens.Close()
}

func (p *inProcess) decisions() int64 { return p.count.n.Load() }

// reload recompiles and swaps the policy n times, with a decision on each
// snapshot, and reports the live heap and RSS before and after: nothing of
// an old snapshot may stay reachable.
func (p *inProcess) reload(ctx context.Context, n int, out io.Writer) error {
	r := &decision.Request{Method: "POST", Path: "/mcp", Body: workload.Body(workload.Ping, 1)}
	heap := func() uint64 {
		runtime.GC()
		debug.FreeOSMemory()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	before, rssBefore := heap(), rss()
	for i := range n {
		snap, err := p.compile(ctx)
		if err != nil {
			return err
		}
		p.snaps.p.Store(snap)
		_ = p.engine.Decide(ctx, r)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if i == n/10 {
			// The first reloads grow caches to their working size.
			before, rssBefore = heap(), rss()
		}
	}
	after, rssAfter := heap(), rss()
	fmt.Fprintf(out, "reloads: %d policy swaps; live heap %.1f MB -> %.1f MB, RSS %.1f MB -> %.1f MB (measured from reload %d on)\n",
		n, mb(before), mb(after), mb(rssBefore), mb(rssAfter), n/10+1)
	return nil
}

func mb(b uint64) float64 { return float64(b) / (1 << 20) }

// rss reads the resident set size of this process (Linux); 0 elsewhere.
func rss() uint64 { return statusField("/proc/self/status", "VmRSS") }

// statusField reads a size in kB (VmRSS, VmHWM) from a /proc/<pid>/status
// file, in bytes; 0 when it cannot.
func statusField(path, field string) uint64 {
	kb, _ := strconv.ParseUint(strings.TrimSuffix(statusText(path, field), " kB"), 10, 64)
	return kb << 10
}

// statusText reads a field of a /proc/<pid>/status file as text; "" when
// it cannot.
func statusText(path, field string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// memory describes this process's memory (harness and both servers).
func memory() string {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return fmt.Sprintf("process RSS %.1f MB, Go heap in use %.1f MB (harness and servers together)", mb(rss()), mb(ms.HeapInuse))
}
