// Command mcpauthz-bench is the load harness of mcpauthz: it drives ext_authz
// Check calls over loopback gRPC at given concurrencies for a given
// duration, against mcpauthz and against a no-op ext_authz server (allows
// everything, same gRPC settings) started in the same process, and prints
// throughput and latency of both and their ratio. The no-op server is the
// machine's ceiling for this RPC, so the ratio holds on a noisy machine;
// each phase is split into rounds that alternate between the two servers,
// so that a slow minute of the machine falls on both, and the ratio of
// each round is printed too.
//
// By default it also runs mcpauthz in process, from the packages, on the
// reference policy, with its own RSA-2048 key, JWKS file and tokens, so one
// command measures everything. With --addr it targets a running server
// instead; that server must trust the tokens (see --jwks-out and --token).
// With --processes (procs.go) it runs the real binary, `mcpauthz serve`, and
// the no-op server each in a process of its own, pinned to --server-cpus,
// with the load generator pinned to --client-cpus, and reports each
// server's RSS and its collector's share of its CPU too.
//
//	go run ./cmd/mcpauthz-bench --concurrency 1,32 --duration 10s
//	go run ./cmd/mcpauthz-bench --server-cpus 0 --client-cpus 1 --concurrency 1,32,128,512 --format json
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"
)

// defaultGCPercent is mcpauthz's default limits.gc_percent
// (cmd/mcpauthz.DefaultGCPercent), applied so that the in-process server
// runs as a real one does.
const defaultGCPercent = 400

type config struct {
	concurrency []int
	duration    time.Duration
	warmup      time.Duration
	rounds      int
	addr        string
	policy      string
	conns       int
	token       string
	jwksOut     string
	reloads     int
	variants    int
	cpuprofile  string
	gcPercent   int
	keyFile     string
	baseline    bool
	memLimit    int64
	serveNoop   bool
	processes   bool
	serverBin   string
	serverCPUs  string
	clientCPUs  string
	serverSets  stringList
	format      string
	growth      bool
	soak        soakConfig
}

// stringList is a repeatable string flag.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, " ") }

func (l *stringList) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mcpauthz-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mcpauthz-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		cfg  config
		conc string
	)
	fs.StringVar(&conc, "concurrency", "1,32", "concurrent callers, a comma-separated `list`: one phase each")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured `time` of each phase, per server")
	fs.DurationVar(&cfg.warmup, "warmup", 500*time.Millisecond, "unmeasured `time` before each round")
	fs.IntVar(&cfg.rounds, "rounds", 5, "split each phase into this many `rounds` per server, alternating no-op and mcpauthz, so both see the same noise")
	fs.StringVar(&cfg.addr, "addr", "", "`host:port` of a running mcpauthz to measure instead of an in-process one")
	fs.StringVar(&cfg.policy, "policy", "decision/testdata/bench", "policy bundle `path` of the in-process mcpauthz")
	fs.IntVar(&cfg.conns, "conns", 1, "gRPC `connections` per server (Envoy multiplexes calls on few)")
	fs.StringVar(&cfg.token, "token", "", "bearer `token` to send instead of minted ones (with --addr)")
	fs.StringVar(&cfg.jwksOut, "jwks-out", "", "write the JWKS of the minted tokens to this `file` (for a server started with --addr)")
	fs.IntVar(&cfg.reloads, "reloads", 0, "after the phases, recompile and swap the policy this many `times` and report memory")
	fs.IntVar(&cfg.variants, "variants", 4096, "distinct requests (ids and arguments) in the workload")
	fs.StringVar(&cfg.cpuprofile, "cpuprofile", "", "write a CPU profile of the whole run (harness and servers) to `file`")
	fs.StringVar(&cfg.keyFile, "key", "", "PEM `file` of the token signing key, created when absent: a server started with the --jwks-out of one run trusts the tokens of the next")
	fs.BoolVar(&cfg.baseline, "baseline", true, "also run each phase against the no-op server and print the share; false for soak runs of mcpauthz alone")
	fs.IntVar(&cfg.gcPercent, "gc-percent", defaultGCPercent, "set the garbage collector's target like mcpauthz's limits.gc_percent (`percent`; 0 leaves GOGC); it applies to the whole process, harness included")
	fs.BoolVar(&cfg.serveNoop, "serve-noop", false, "only serve the no-op server on a loopback port, print its address and wait until standard input closes (how the harness gives the no-op server its own process when --addr measures a server in its own)")
	fs.DurationVar(&cfg.soak.duration, "soak", 0, "soak `time`: drive the server at --addr with the first --concurrency for this long while the bundle changes and the signing key rotates (see soak.go); 0: no soak")
	fs.DurationVar(&cfg.soak.reloadEvery, "soak-reload-every", time.Second, "during a soak, write a new bundle revision into --soak-bundle-dir this often")
	fs.StringVar(&cfg.soak.bundleDir, "soak-bundle-dir", "", "during a soak, the `directory` of the server's bundle (watched by it)")
	fs.StringVar(&cfg.soak.jwksListen, "soak-jwks-listen", "127.0.0.1:18999", "during a soak, the `host:port` where the JWKS the server fetches (tokens.jwks_url) is served")
	fs.IntVar(&cfg.soak.serverPID, "soak-server-pid", 0, "during a soak, the server's process `id`, to read its RSS")
	fs.DurationVar(&cfg.soak.settle, "soak-settle", 10*time.Second, "during a soak, how long the new key is published before tokens use it (more than the server's tokens.refresh_interval)")
	fs.Int64Var(&cfg.memLimit, "memory-limit", 0, "set a soft memory limit like mcpauthz's limits.memory_limit_bytes (`bytes`; 0 leaves GOMEMLIMIT); whole process")
	fs.BoolVar(&cfg.processes, "processes", false, "run mcpauthz (the real binary, `mcpauthz serve`) and the no-op server each in a process of its own, and report each one's RSS, CPU and collector CPU share; implied by --server-bin and --server-cpus")
	fs.StringVar(&cfg.serverBin, "server-bin", "", "mcpauthz `binary` to run with --processes (default: built from ./cmd/mcpauthz into a temporary directory)")
	fs.StringVar(&cfg.serverCPUs, "server-cpus", "", "with --processes, pin both servers to these CPUs (`list` as taskset -c takes it: 0 or 0-3,6)")
	fs.StringVar(&cfg.clientCPUs, "client-cpus", "", "pin the load generator (this process) to these CPUs (`list`: 1 or 4-7); GOMAXPROCS follows")
	fs.Var(&cfg.serverSets, "server-set", "with --processes, pass --set `key=value` to mcpauthz serve (e.g. sessions.bind_subject=true); repeatable")
	fs.StringVar(&cfg.format, "format", "text", "output `format`: text (a table) or json (one document on standard output; the table goes to standard error)")
	fs.BoolVar(&cfg.growth, "growth", false, "read `go test -bench` output of the growth benchmarks on standard input and print the growth table (make bench-growth)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if cfg.growth {
		return growth(os.Stdin, stdout)
	}
	if cfg.format != "text" && cfg.format != "json" {
		return fmt.Errorf("--format: %q is neither text nor json", cfg.format)
	}
	if cfg.serverBin != "" || cfg.serverCPUs != "" || len(cfg.serverSets) > 0 {
		cfg.processes = true
	}
	if cfg.processes && cfg.addr != "" {
		return errors.New("--processes (or --server-bin, --server-cpus, --server-set) starts mcpauthz itself: it does not go with --addr")
	}
	if cfg.serverCPUs != "" {
		if _, err := parseCPUList(cfg.serverCPUs); err != nil {
			return fmt.Errorf("--server-cpus: %w", err)
		}
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 {
			return fmt.Errorf("--concurrency: %q is not a positive number", s)
		}
		cfg.concurrency = append(cfg.concurrency, n)
	}
	if cfg.duration <= 0 || cfg.conns < 1 || cfg.variants < 10 || cfg.rounds < 1 {
		return errors.New("--duration must be positive, --conns and --rounds at least 1, --variants at least 10")
	}
	if cfg.gcPercent < -1 || (cfg.gcPercent == -1 && cfg.memLimit <= 0) || cfg.memLimit < 0 {
		return errors.New("--gc-percent must be -1 (with --memory-limit), 0 or positive; --memory-limit must not be negative")
	}
	// The collector settings are the servers'. With --processes they go to
	// the servers' processes only: a memory limit sized for a server would
	// throttle the load generator (its 512 callers' garbage) and measure
	// the harness instead.
	if !cfg.processes {
		if cfg.gcPercent != 0 {
			debug.SetGCPercent(cfg.gcPercent)
		}
		if cfg.memLimit > 0 {
			debug.SetMemoryLimit(cfg.memLimit)
		}
	}
	if cfg.serveNoop {
		return serveNoop(stdout)
	}
	if cfg.clientCPUs != "" {
		if _, err := pinSelf(cfg.clientCPUs); err != nil {
			return err
		}
	}
	if cfg.soak.duration > 0 {
		return soak(ctx, &cfg, &cfg.soak, stdout)
	}
	if cfg.cpuprofile != "" {
		f, err := os.Create(cfg.cpuprofile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	return bench(ctx, &cfg, stdout, stderr)
}

// bench sets up the servers and the workload, runs every phase and prints
// the table, or with --format json the table on stderr and the report on
// stdout.
func bench(ctx context.Context, cfg *config, stdout, stderr io.Writer) error {
	w, err := newWorkload(cfg)
	if err != nil {
		return err
	}
	defer w.close()
	out := stdout
	if cfg.format == "json" {
		out = stderr
	}
	rep := &report{Requests: len(w.reqs), Duration: cfg.duration.String(), Rounds: cfg.rounds, Warmup: cfg.warmup.String(),
		Conns: cfg.conns, ServerCPUs: cfg.serverCPUs, ClientCPUs: cfg.clientCPUs}

	// A server measured in its own process is compared with a no-op server
	// in its own process: in one process, client and server hand calls
	// over without waking another process's threads, which is faster.
	var (
		noop                noopTarget
		noopProbe, mcpProbe sampler
		target              = cfg.addr
		where               string
		inproc              *inProcess
	)
	switch {
	case cfg.processes:
		rep.Mode, rep.Policy = "processes", cfg.policy
		np, err := startNoopProcess(ctx, cfg, cfg.serverCPUs)
		if err != nil {
			return err
		}
		defer np.stop()
		sp, err := startServerProcess(ctx, cfg, w, stderr)
		if err != nil {
			return err
		}
		defer sp.stop()
		noop, noopProbe, mcpProbe, target = np, np, sp, sp.addr
		pin := "unpinned"
		if cfg.serverCPUs != "" {
			// As the kernel has it, which shows that taskset took.
			rep.ServerCPUsAllowed = statusText(fmt.Sprintf("/proc/%d/status", sp.cmd.Process.Pid), "Cpus_allowed_list")
			pin = fmt.Sprintf("pinned to CPUs %s (Cpus_allowed_list %s)", cfg.serverCPUs, rep.ServerCPUsAllowed)
		}
		where = fmt.Sprintf("mcpauthz serve (pid %d, %s) and the no-op server (pid %d) in processes of their own, %s", sp.cmd.Process.Pid, cfg.policy, np.cmd.Process.Pid, pin)
	case cfg.addr != "":
		rep.Mode = "addr"
		np, err := startNoopProcess(ctx, cfg, "")
		if err != nil {
			return err
		}
		defer np.stop()
		noop, noopProbe = np, np
		where = cfg.addr + ", no-op server in a process of its own"
	default:
		rep.Mode, rep.Policy = "in-process", cfg.policy
		if noop, err = startNoop(); err != nil {
			return err
		}
		defer noop.stop()
		if inproc, err = startInProcess(ctx, cfg.policy, w.jwksPath); err != nil {
			return err
		}
		defer inproc.stop()
		target = inproc.addr
		where = "in process (" + cfg.policy + "), no-op server in process too"
	}
	rep.Target = target
	rep.Machine.CPUs, rep.Machine.GOMAXPROCS = runtime.NumCPU(), runtime.GOMAXPROCS(0)
	rep.Machine.Go, rep.Machine.OS = runtime.Version(), runtime.GOOS+"/"+runtime.GOARCH
	gcp, memLimit := gcPercent(), memLimitString(debug.SetMemoryLimit(-1))
	if cfg.processes {
		gcp, memLimit = cfg.gcPercent, memLimitString(cfg.memLimit)
	}
	rep.GCPercent, rep.MemoryLimitBytes = gcp, cfg.memLimit

	client := "harness and servers share it"
	if cfg.clientCPUs != "" {
		client = "load generator pinned to CPUs " + cfg.clientCPUs
	}
	fmt.Fprintf(out, "machine: %d CPUs (GOMAXPROCS %d), %s %s/%s; %s\n",
		runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.Version(), runtime.GOOS, runtime.GOARCH, client)
	fmt.Fprintf(out, "mcpauthz: %s; workload: %d distinct requests, 6 in 10 allowed tools/call, 1 each tools/list, initialize, ping, denied tools/call; RS256 JWT\n", where, len(w.reqs))
	fmt.Fprintf(out, "each phase: %s measured per server in %d rounds, no-op and mcpauthz alternating, each after a %s warm-up; %d gRPC connection(s); GC percent %d, memory limit %s\n\n",
		cfg.duration, cfg.rounds, cfg.warmup, cfg.conns, gcp, memLimit)

	tw := newTable(out)
	slice := cfg.duration / time.Duration(cfg.rounds)
	for _, c := range cfg.concurrency {
		var n, m *result
		var shares []float64
		for range cfg.rounds {
			var nr *result
			if cfg.baseline {
				if nr, err = runPhase(ctx, "noop", noop.address(), c, slice, cfg, w, false, noopProbe); err != nil {
					return err
				}
			}
			mr, err := runPhase(ctx, "mcpauthz", target, c, slice, cfg, w, true, mcpProbe)
			if err != nil {
				return err
			}
			if nr != nil && nr.rate() > 0 {
				shares = append(shares, mr.rate()/nr.rate())
			}
			n, m = n.add(nr), m.add(mr)
			if ctx.Err() != nil {
				return ctx.Err()
			}
		}
		if n != nil {
			tw.row(n)
		}
		tw.row(m)
		if n != nil {
			tw.ratio(m, n)
			tw.rounds(shares)
		}
		rep.addPhase(c, n, m, shares)
	}
	if inproc != nil {
		fmt.Fprintf(out, "\nin-process mcpauthz: %d decisions in total; %s\n", inproc.decisions(), memory())
		if cfg.reloads > 0 {
			if err := inproc.reload(ctx, cfg.reloads, out); err != nil {
				return err
			}
		}
	}
	if cfg.format == "json" {
		return rep.write(stdout)
	}
	return nil
}

// gcPercent reads the collector's target: the runtime only reports it when
// setting it, so it is set back at once.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// memLimitString prints a soft memory limit: the runtime reports none as
// the largest int64, --memory-limit as 0.
func memLimitString(n int64) string {
	if n == math.MaxInt64 || n == 0 {
		return "none"
	}
	return fmt.Sprintf("%.0f MiB", float64(n)/(1<<20))
}
