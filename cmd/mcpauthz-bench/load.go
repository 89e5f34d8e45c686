package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// load is the workload: CheckRequests, built before any phase so the
// phases measure only the calls.
type load struct {
	reqs     []*authv3.CheckRequest
	allow    []bool
	jwksPath string
	tmp      string
}

func newWorkload(cfg *config) (*load, error) {
	var (
		keys *workload.Keys
		err  error
	)
	if cfg.keyFile != "" {
		keys, err = workload.LoadOrCreateKeys(cfg.keyFile)
	} else {
		keys, err = workload.NewKeys()
	}
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "mcpauthz-bench-")
	if err != nil {
		return nil, fmt.Errorf("temporary directory: %w", err)
	}
	l := &load{tmp: tmp}
	if l.jwksPath, err = keys.WriteJWKS(tmp); err != nil {
		l.close()
		return nil, err
	}
	if cfg.jwksOut != "" {
		if err := os.WriteFile(cfg.jwksOut, keys.JWKS, 0o600); err != nil {
			l.close()
			return nil, fmt.Errorf("--jwks-out: %w", err)
		}
	}
	// A few agents, each with its own token; tokens are verified once and
	// then served from the verifier's cache, as in steady state.
	tokens := []string{cfg.token}
	if cfg.token == "" {
		if tokens, err = keys.Tokens(8); err != nil {
			l.close()
			return nil, err
		}
	}
	for _, r := range workload.Mix(cfg.variants, tokens) {
		l.reqs = append(l.reqs, workload.CheckRequest(r))
		l.allow = append(l.allow, r.Allow)
	}
	return l, nil
}

func (l *load) close() { _ = os.RemoveAll(filepath.Clean(l.tmp)) }

// result is the outcome of one phase against one server: the sum of its
// rounds.
type result struct {
	server      string
	callers     int
	elapsed     time.Duration
	errors      int64 // failed RPCs
	unexpected  int64 // decisions that differ from the reference policy's
	lats        []time.Duration
	checkDecide bool
	// srv is what was read of the server's process over the measured
	// time; nil when it runs in the harness's process or is not ours.
	srv *serverStats
}

// serverStats is a server process's memory after a phase and its CPU and
// its collector's CPU during the phase's measured rounds.
type serverStats struct {
	rss, hwm      uint64  // VmRSS after the last round, VmHWM (peak) then
	cpu, gcCPU    float64 // seconds, summed over the rounds
	hasCPU, hasGC bool
}

// gcShare is the collector's share of the server's CPU; ok false when
// either was not read.
func (s *serverStats) gcShare() (float64, bool) {
	if s == nil || !s.hasCPU || !s.hasGC || s.cpu <= 0 {
		return 0, false
	}
	return s.gcCPU / s.cpu, true
}

// cores is the server's CPU time per second of measured time.
func (r *result) cores() (float64, bool) {
	if r.srv == nil || !r.srv.hasCPU || r.elapsed <= 0 {
		return 0, false
	}
	return r.srv.cpu / r.elapsed.Seconds(), true
}

// between is what happened in a server process from sample a to sample b.
func between(a, b serverSample) *serverStats {
	return &serverStats{rss: b.rss, hwm: b.hwm, cpu: b.cpu - a.cpu, gcCPU: b.gcCPU - a.gcCPU,
		hasCPU: a.hasCPU && b.hasCPU, hasGC: a.hasGC && b.hasGC}
}

// add sums the next round's CPU into s and keeps its memory.
func (s *serverStats) add(next *serverStats) *serverStats {
	if s == nil || next == nil {
		return next
	}
	return &serverStats{rss: next.rss, hwm: next.hwm, cpu: s.cpu + next.cpu, gcCPU: s.gcCPU + next.gcCPU,
		hasCPU: s.hasCPU && next.hasCPU, hasGC: s.hasGC && next.hasGC}
}

func (r *result) checks() int64 { return int64(len(r.lats)) }

func (r *result) rate() float64 { return float64(r.checks()) / r.elapsed.Seconds() }

// add merges the next round of the same server into r (nil: none yet).
func (r *result) add(next *result) *result {
	if r == nil {
		return next
	}
	r.elapsed += next.elapsed
	r.errors += next.errors
	r.unexpected += next.unexpected
	r.lats = append(r.lats, next.lats...)
	r.srv = r.srv.add(next.srv)
	return r
}

// quantile returns the latency below which a share p of the calls fell.
func (r *result) quantile(p float64) time.Duration {
	if len(r.lats) == 0 {
		return 0
	}
	if !slices.IsSorted(r.lats) {
		slices.Sort(r.lats)
	}
	return r.lats[min(len(r.lats)-1, int(p*float64(len(r.lats))))]
}

// sampler reads a server process's memory and CPU (serverProcess).
type sampler interface {
	sample(ctx context.Context) (serverSample, error)
}

// runPhase drives callers concurrent callers against addr for the warm-up
// and then for d, measured; with a sampler, it reads the server's process
// as the measured time starts and as it ends.
func runPhase(ctx context.Context, name, addr string, callers int, d time.Duration, cfg *config, l *load, checkDecide bool, probe sampler) (*result, error) {
	clients := make([]authv3.AuthorizationClient, cfg.conns)
	for i := range clients {
		cc, err := grpc.NewClient("passthrough:///"+addr,
			grpc.WithTransportCredentials(insecure.NewCredentials()),
			grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxBodyBytes+1<<20)))
		if err != nil {
			return nil, fmt.Errorf("connecting to %s: %w", addr, err)
		}
		defer cc.Close()
		clients[i] = authv3.NewAuthorizationClient(cc)
	}
	var (
		next      atomic.Uint64
		measuring atomic.Bool
		stop      atomic.Bool
		wg        sync.WaitGroup
		errs      atomic.Int64
		unexp     atomic.Int64
		lats      = make([][]time.Duration, callers)
	)
	for c := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := clients[c%len(clients)]
			own := make([]time.Duration, 0, 1<<16)
			for !stop.Load() {
				i := next.Add(1) % uint64(len(l.reqs))
				start := time.Now()
				resp, err := client.Check(ctx, l.reqs[i])
				el := time.Since(start)
				if !measuring.Load() {
					continue
				}
				own = append(own, el)
				switch {
				case err != nil:
					errs.Add(1)
				case checkDecide && (resp.GetOkResponse() != nil) != l.allow[i]:
					unexp.Add(1)
				}
			}
			lats[c] = own
		}()
	}
	sleep(ctx, cfg.warmup)
	var before, after serverSample
	var errBefore, errAfter error
	if probe != nil {
		before, errBefore = probe.sample(ctx)
	}
	measuring.Store(true)
	start := time.Now()
	sleep(ctx, d)
	measuring.Store(false)
	elapsed := time.Since(start)
	if probe != nil {
		after, errAfter = probe.sample(ctx)
	}
	stop.Store(true)
	wg.Wait()
	if err := errors.Join(errBefore, errAfter); err != nil {
		// A server too starved to answer /metrics in time loses this
		// round's CPU figures, not the run: its RSS is read from /proc.
		fmt.Fprintf(os.Stderr, "mcpauthz-bench: %v; the CPU figures of this round are left out\n", err)
		after.hasCPU, after.hasGC = false, false
	}

	var all []time.Duration
	for _, s := range lats {
		all = append(all, s...)
	}
	r := &result{server: name, callers: callers, elapsed: elapsed, lats: all,
		errors: errs.Load(), unexpected: unexp.Load(), checkDecide: checkDecide}
	if probe != nil {
		r.srv = between(before, after)
	}
	return r, nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// table prints results in fixed-width columns, a row as each phase ends.
type table struct{ w io.Writer }

const (
	headFmt = "%-9s %7s %9s %9s %8s %8s %8s %8s %7s %10s %8s %8s %6s %6s\n"
	rowFmt  = "%-9s %7d %9d %9.0f %8s %8s %8s %8s %7d %10s %8s %8s %6s %6s\n"
)

// newTable prints the header. The last four columns describe the server's
// process (--processes): RSS after the phase, its peak (VmHWM), the CPUs
// it kept busy and the collector's share of its CPU; "-" when the server
// runs in the harness's process.
func newTable(w io.Writer) *table {
	fmt.Fprintf(w, headFmt, "server", "callers", "checks", "checks/s", "p50", "p99", "p99.9", "max", "errors", "unexpected",
		"rss", "peak", "cpus", "gc")
	return &table{w: w}
}

func (t *table) row(r *result) {
	unexp := "-"
	if r.checkDecide {
		unexp = fmt.Sprint(r.unexpected)
	}
	rss, peak, cores, gc := "-", "-", "-", "-"
	if r.srv != nil {
		rss, peak = fmt.Sprintf("%.1fMB", mb(r.srv.rss)), fmt.Sprintf("%.1fMB", mb(r.srv.hwm))
	}
	if c, ok := r.cores(); ok {
		cores = fmt.Sprintf("%.2f", c)
	}
	if g, ok := r.srv.gcShare(); ok {
		gc = fmt.Sprintf("%.1f%%", 100*g)
	}
	fmt.Fprintf(t.w, rowFmt, r.server, r.callers, r.checks(), r.rate(), us(r.quantile(0.50)), us(r.quantile(0.99)),
		us(r.quantile(0.999)), us(r.quantile(1)), r.errors, unexp, rss, peak, cores, gc)
}

// ratio prints mcpauthz's throughput as a share of the no-op server's, and
// its latencies as multiples of the no-op server's.
func (t *table) ratio(m, n *result) {
	if n.rate() == 0 {
		return
	}
	fmt.Fprintf(t.w, "%-9s %7d %9s %9s %8s %8s %8s\n", "ratio", m.callers, "", fmt.Sprintf("%.1f%%", 100*m.rate()/n.rate()),
		fmt.Sprintf("%.2fx", ratio(m.quantile(0.50), n.quantile(0.50))), fmt.Sprintf("%.2fx", ratio(m.quantile(0.99), n.quantile(0.99))),
		fmt.Sprintf("%.2fx", ratio(m.quantile(0.999), n.quantile(0.999))))
}

// rounds prints the share of each round, to show how far the machine's
// noise moved it.
func (t *table) rounds(shares []float64) {
	if len(shares) < 2 {
		return
	}
	parts := make([]string, len(shares))
	for i, s := range shares {
		parts[i] = fmt.Sprintf("%.1f%%", 100*s)
	}
	fmt.Fprintf(t.w, "%-9s %7s %s\n", "rounds", "", strings.Join(parts, " "))
}

func ratio(a, b time.Duration) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}

func us(d time.Duration) string { return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond)) }
