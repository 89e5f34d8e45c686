package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// soakConfig is what a soak run needs beyond the load's settings.
type soakConfig struct {
	duration    time.Duration // the whole run
	reloadEvery time.Duration // how often the bundle changes on disk
	bundleDir   string        // the server's bundle directory, written to
	jwksListen  string        // where the JWKS the server fetches is served
	serverPID   int           // the server's process, for its RSS; 0: not read
	settle      time.Duration // how long the new key is published before tokens use it
}

// requestSet is the CheckRequests callers send, with the decision each
// must get; swapped whole when the tokens change.
type requestSet struct {
	reqs  []*authv3.CheckRequest
	allow []bool
}

// soakStats are counted by every caller and read by the reporter.
type soakStats struct {
	decisions, errs, unexpected atomic.Int64
	first, firstUnexpected      atomic.Pointer[error] // the first of each, for the report
	window, total               histogram
	mu                          sync.Mutex
	revisions                   map[string]bool
}

// soak drives a running mcpauthz (cfg.addr) at full rate for sc.duration
// with cfg.concurrency[0] callers, while the bundle on disk changes every
// sc.reloadEvery and the signing key rotates half-way: the JWKS it serves
// gains a second key, tokens switch to it once the server had time to
// fetch it, and the first key is retired at three quarters. It prints a
// line a minute and a summary, and fails when any call errs or any
// decision differs from the reference policy's.
func soak(ctx context.Context, cfg *config, sc *soakConfig, out io.Writer) error {
	if cfg.addr == "" || sc.bundleDir == "" || sc.jwksListen == "" {
		return errors.New("--soak needs --addr, --soak-bundle-dir and --soak-jwks-listen")
	}
	oldKey, err := workload.NewKeysWithID("soak-1")
	if err != nil {
		return err
	}
	newKey, err := workload.NewKeysWithID("soak-2")
	if err != nil {
		return err
	}
	before, err := requestsFor(oldKey, cfg.variants)
	if err != nil {
		return err
	}
	after, err := requestsFor(newKey, cfg.variants)
	if err != nil {
		return err
	}
	var jwks atomic.Pointer[[]byte]
	publish := func(keys ...*workload.Keys) error {
		b, err := workload.JWKS(keys...)
		if err == nil {
			jwks.Store(&b)
		}
		return err
	}
	if err := publish(oldKey); err != nil {
		return err
	}
	lis, err := net.Listen("tcp", sc.jwksListen)
	if err != nil {
		return fmt.Errorf("--soak-jwks-listen: %w", err)
	}
	jwksSrv := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("content-type", "application/json")
		_, _ = w.Write(*jwks.Load())
	})}
	go func() { _ = jwksSrv.Serve(lis) }()
	defer jwksSrv.Close()

	cc, err := grpc.NewClient("passthrough:///"+cfg.addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallSendMsgSize(maxBodyBytes+1<<20)))
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", cfg.addr, err)
	}
	defer cc.Close()
	client := authv3.NewAuthorizationClient(cc)
	if err := waitReady(ctx, client, before, 60*time.Second); err != nil {
		return err
	}

	var current atomic.Pointer[requestSet]
	current.Store(before)
	st := &soakStats{revisions: map[string]bool{}}
	// Stopped by a cancel, not a deadline: gRPC fails a call whose
	// deadline has passed before the context itself says so, which
	// would count the end of the run as errors.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopTimer := time.AfterFunc(sc.duration, cancel)
	defer stopTimer.Stop()
	var wg sync.WaitGroup
	var next atomic.Uint64
	callers := cfg.concurrency[0]
	for range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seen := ""
			for runCtx.Err() == nil {
				set := current.Load()
				i := next.Add(1) % uint64(len(set.reqs))
				start := time.Now()
				resp, err := client.Check(runCtx, set.reqs[i])
				el := time.Since(start)
				if runCtx.Err() != nil {
					return // the run ended during the call: not counted
				}
				st.decisions.Add(1)
				st.window.add(el)
				st.total.add(el)
				switch {
				case err != nil:
					if st.errs.Add(1) == 1 {
						st.first.Store(&err)
					}
				case (resp.GetOkResponse() != nil) != set.allow[i]:
					if st.unexpected.Add(1) == 1 {
						msg := fmt.Errorf("request %d: %v", i, resp)
						st.firstUnexpected.Store(&msg)
					}
				}
				if rev := resp.GetDynamicMetadata().GetFields()["revision"].GetStringValue(); rev != seen {
					seen = rev
					st.mu.Lock()
					st.revisions[rev] = true
					st.mu.Unlock()
				}
			}
		}()
	}

	rssStart := processRSS(sc.serverPID)
	fmt.Fprintf(out, "soak: %d callers for %s against %s, bundle change every %s, key rotation at %s; server RSS at start %.1f MB\n",
		callers, sc.duration, cfg.addr, sc.reloadEvery, sc.duration/2, mb(rssStart))
	start := time.Now()
	reloads, reloadErrs := 0, 0
	reload := time.NewTicker(sc.reloadEvery)
	defer reload.Stop()
	report := time.NewTicker(time.Minute)
	defer report.Stop()
	phase := 0 // 0: old key; 1: both published; 2: tokens of the new key; 3: old key retired
	var lastDecisions int64
	lastReport := start
	for runCtx.Err() == nil {
		select {
		case <-runCtx.Done():
		case <-reload.C:
			reloads++
			if err := writeGeneration(sc.bundleDir, reloads); err != nil {
				reloadErrs++
				fmt.Fprintf(out, "soak: writing the bundle: %v\n", err)
			}
		case now := <-report.C:
			n := st.decisions.Load()
			p50, p99 := st.window.quantile(0.5), st.window.quantile(0.99)
			st.window.reset()
			fmt.Fprintf(out, "soak: %5.0fs  %8.0f checks/s  p50 %s  p99 %s  errors %d  unexpected %d  revisions seen %d  server RSS %.1f MB\n",
				now.Sub(start).Seconds(), float64(n-lastDecisions)/now.Sub(lastReport).Seconds(), us(p50), us(p99),
				st.errs.Load(), st.unexpected.Load(), st.revisionCount(), mb(processRSS(sc.serverPID)))
			lastDecisions, lastReport = n, now
		}
		el := time.Since(start)
		switch {
		case phase == 0 && el >= sc.duration/2:
			if err := publish(oldKey, newKey); err != nil {
				return err
			}
			fmt.Fprintf(out, "soak: %5.0fs  JWKS now holds soak-1 and soak-2\n", el.Seconds())
			phase = 1
		case phase == 1 && el >= sc.duration/2+sc.settle:
			current.Store(after)
			fmt.Fprintf(out, "soak: %5.0fs  tokens now signed by soak-2\n", el.Seconds())
			phase = 2
		case phase == 2 && el >= sc.duration*3/4:
			if err := publish(newKey); err != nil {
				return err
			}
			fmt.Fprintf(out, "soak: %5.0fs  JWKS now holds soak-2 only\n", el.Seconds())
			phase = 3
		}
	}
	wg.Wait()
	elapsed := time.Since(start)
	fmt.Fprintf(out, "soak: done in %.0fs: %d decisions (%.0f/s), errors %d, unexpected decisions %d, p50 %s, p99 %s, "+
		"bundle changes written %d (failed %d), policy revisions seen in answers %d, server RSS %.1f MB at start, %.1f MB at end\n",
		elapsed.Seconds(), st.decisions.Load(), float64(st.decisions.Load())/elapsed.Seconds(), st.errs.Load(), st.unexpected.Load(),
		us(st.total.quantile(0.5)), us(st.total.quantile(0.99)), reloads, reloadErrs, st.revisionCount(), mb(rssStart), mb(processRSS(sc.serverPID)))
	for _, e := range []*error{st.first.Load(), st.firstUnexpected.Load()} {
		if e != nil {
			fmt.Fprintf(out, "soak: first: %v\n", *e)
		}
	}
	if st.errs.Load() != 0 || st.unexpected.Load() != 0 {
		return fmt.Errorf("soak: %d errors and %d unexpected decisions", st.errs.Load(), st.unexpected.Load())
	}
	return nil
}

func (s *soakStats) revisionCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.revisions)
}

// requestsFor builds the reference mix with eight tokens signed by k.
func requestsFor(k *workload.Keys, variants int) (*requestSet, error) {
	toks, err := k.Tokens(8)
	if err != nil {
		return nil, err
	}
	set := &requestSet{}
	for _, r := range workload.Mix(variants, toks) {
		set.reqs = append(set.reqs, workload.CheckRequest(r))
		set.allow = append(set.allow, r.Allow)
	}
	return set, nil
}

// waitReady calls Check until the server answers as the reference policy
// does (it may still be loading its bundle or fetching its keys).
func waitReady(ctx context.Context, c authv3.AuthorizationClient, set *requestSet, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := c.Check(ctx, set.reqs[0])
		if err == nil && (resp.GetOkResponse() != nil) == set.allow[0] {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the server at the given address did not answer as expected within %s (last: %v, %v)", limit, resp, err)
		}
		sleep(ctx, 200*time.Millisecond)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

// writeGeneration changes the bundle on disk: soak/data.json holds the
// generation, so every write is a new bundle revision that the server's
// watcher must load and swap.
func writeGeneration(dir string, gen int) error {
	d := filepath.Join(dir, "soak")
	if err := os.MkdirAll(d, 0o755); err != nil {
		return err
	}
	tmp := filepath.Join(d, ".data.json.tmp")
	if err := os.WriteFile(tmp, []byte(`{"generation":`+strconv.Itoa(gen)+"}\n"), 0o644); err != nil {
		return err
	}
	// A rename, as editors and ConfigMap updates do: the watcher sees whole files.
	return os.Rename(tmp, filepath.Join(d, "data.json"))
}

// processRSS reads the resident set size of process pid (Linux); 0 when
// pid is 0 or it cannot be read.
func processRSS(pid int) uint64 {
	if pid == 0 {
		return 0
	}
	return statusField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
}

// histogram counts latencies in buckets 2% wide, from 1µs to about 17s,
// without keeping them: a soak makes millions.
type histogram struct {
	counts [histBuckets]atomic.Int64
}

const (
	histBuckets = 850
	histGrowth  = 1.02
)

// bucket returns the bucket of d: floor(log(d/1µs)/log(1.02)).
func bucket(d time.Duration) int {
	us := float64(d) / float64(time.Microsecond)
	if us <= 1 {
		return 0
	}
	return min(int(math.Log(us)/math.Log(histGrowth)), histBuckets-1)
}

func (h *histogram) add(d time.Duration) { h.counts[bucket(d)].Add(1) }

func (h *histogram) reset() {
	for i := range h.counts {
		h.counts[i].Store(0)
	}
}

// quantile returns the upper bound of the bucket holding quantile p.
func (h *histogram) quantile(p float64) time.Duration {
	var total int64
	for i := range h.counts {
		total += h.counts[i].Load()
	}
	if total == 0 {
		return 0
	}
	want := int64(p * float64(total))
	var seen int64
	v := 1.0
	for i := range h.counts {
		seen += h.counts[i].Load()
		v *= histGrowth
		if seen > want {
			return time.Duration(v * float64(time.Microsecond))
		}
	}
	return time.Duration(v * float64(time.Microsecond))
}
