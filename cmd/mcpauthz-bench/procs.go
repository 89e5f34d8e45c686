package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/metrics"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// With --processes the harness measures servers in processes of their own,
// as they run in production: mcpauthz is the real binary (`mcpauthz serve`,
// built from ./cmd/mcpauthz or given by --server-bin) and the no-op server
// is this harness started with --serve-noop. Both are pinned to
// --server-cpus with taskset(1), and the harness pins itself to
// --client-cpus, so that server and load generator do not take each
// other's cores. Each server's RSS is read from /proc/<pid>/status and its
// CPU and its collector's CPU from its /metrics, around every measured
// round.

// serverProcess is a server in a child process: its gRPC address, its
// /metrics URL and its process id.
type serverProcess struct {
	name    string
	cmd     *exec.Cmd
	stdin   io.Closer // the no-op process stops when its standard input closes
	addr    string
	metrics string
	done    chan struct{} // closed when the process has exited
	waitErr error
}

func (p *serverProcess) address() string { return p.addr }

// stop ends the process: the no-op server by closing its standard input,
// mcpauthz by SIGTERM (its graceful drain), and kills it when it does not
// end within 15 s.
func (p *serverProcess) stop() {
	if p.stdin != nil {
		_ = p.stdin.Close()
	} else {
		_ = p.cmd.Process.Signal(os.Interrupt)
	}
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// start runs cmd, keeping its standard error on ours, and notes when it
// exits.
func (p *serverProcess) start() error {
	p.cmd.Stderr = os.Stderr
	if err := p.cmd.Start(); err != nil {
		return fmt.Errorf("starting the %s process: %w", p.name, err)
	}
	p.done = make(chan struct{})
	go func() { p.waitErr = p.cmd.Wait(); close(p.done) }()
	return nil
}

// serverSample is what is read of a server process at one instant.
type serverSample struct {
	rss, hwm      uint64  // VmRSS and VmHWM, bytes
	cpu, gcCPU    float64 // process CPU and the collector's CPU, seconds
	hasCPU, hasGC bool
}

// sample reads the process's memory from /proc and its CPU from /metrics.
func (p *serverProcess) sample(ctx context.Context) (serverSample, error) {
	status := fmt.Sprintf("/proc/%d/status", p.cmd.Process.Pid)
	s := serverSample{rss: statusField(status, "VmRSS"), hwm: statusField(status, "VmHWM")}
	vals, err := scrape(ctx, p.metrics, "process_cpu_seconds_total", metrics.GCCPUMetric)
	if err != nil {
		return s, fmt.Errorf("%s: %w", p.name, err)
	}
	s.cpu, s.hasCPU = vals["process_cpu_seconds_total"]
	s.gcCPU, s.hasGC = vals[metrics.GCCPUMetric]
	return s, nil
}

// scrape reads the unlabelled samples named in names from a Prometheus
// text exposition.
func scrape(ctx context.Context, url string, names ...string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading metrics: %s", resp.Status)
	}
	return parseSamples(resp.Body, names...)
}

// parseSamples picks the lines "name value" of the given names out of a
// Prometheus text exposition.
func parseSamples(r io.Reader, names ...string) (map[string]float64, error) {
	want := map[string]bool{}
	for _, n := range names {
		want[n] = true
	}
	vals := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, rest, ok := strings.Cut(sc.Text(), " ")
		if !ok || !want[name] {
			continue
		}
		f := strings.Fields(rest)
		if len(f) == 0 {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			return nil, fmt.Errorf("metric %s: %w", name, err)
		}
		vals[name] = v
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading metrics: %w", err)
	}
	return vals, nil
}

// pinned returns the command that runs bin with args on the CPUs in cpus
// (taskset's list syntax); with no cpus, unpinned.
func pinned(ctx context.Context, cpus, bin string, args ...string) (*exec.Cmd, error) {
	if cpus == "" {
		return exec.CommandContext(ctx, bin, args...), nil
	}
	ts, err := exec.LookPath("taskset")
	if err != nil {
		return nil, fmt.Errorf("--server-cpus needs taskset (util-linux): %w", err)
	}
	return exec.CommandContext(ctx, ts, append([]string{"-c", cpus, bin}, args...)...), nil
}

// freeAddr returns a loopback address no one listens on at the moment.
func freeAddr() (string, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	defer lis.Close()
	return lis.Addr().String(), nil
}

// buildServer builds mcpauthz from this module into dir.
func buildServer(ctx context.Context, dir string, log io.Writer) (string, error) {
	bin := filepath.Join(dir, "mcpauthz")
	fmt.Fprintln(log, "building mcpauthz (github.com/mcpauthz/mcpauthz/cmd/mcpauthz) for --processes; --server-bin skips this")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/mcpauthz/mcpauthz/cmd/mcpauthz")
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building mcpauthz (run from the module, or pass --server-bin): %w", err)
	}
	return bin, nil
}

// serverConfig is the configuration the harness gives `mcpauthz serve`:
// the policy bundle, the harness's JWKS file, the collector settings of
// --gc-percent and --memory-limit, everything else mcpauthz's defaults.
func serverConfig(cfg *config, policy, jwks, grpcAddr, httpAddr string) string {
	return fmt.Sprintf(`# written by mcpauthz-bench --processes
listen: {grpc: %q, http: %q}
bundles: [{path: %q}]
resource: {uri: %q}
tokens: {issuer: %q, audience: %q, jwks_file: %q, algorithms: [RS256]}
limits: {gc_percent: %d, memory_limit_bytes: %d}
log: {level: warn}
`, grpcAddr, httpAddr, policy, workload.Audience, workload.Issuer, workload.Audience, jwks, cfg.gcPercent, cfg.memLimit)
}

// startServerProcess runs `mcpauthz serve` pinned to --server-cpus and
// waits until it is ready (/readyz: the first policy load done).
func startServerProcess(ctx context.Context, cfg *config, w *load, log io.Writer) (*serverProcess, error) {
	bin := cfg.serverBin
	if bin == "" {
		var err error
		if bin, err = buildServer(ctx, w.tmp, log); err != nil {
			return nil, err
		}
	}
	policy, err := filepath.Abs(cfg.policy)
	if err != nil {
		return nil, fmt.Errorf("--policy: %w", err)
	}
	if _, err := os.Stat(policy); err != nil {
		return nil, fmt.Errorf("--policy: %w (run from the repository root, or pass a bundle path)", err)
	}
	grpcAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(w.tmp, "mcpauthz.yaml")
	if err := os.WriteFile(cfgPath, []byte(serverConfig(cfg, policy, w.jwksPath, grpcAddr, httpAddr)), 0o600); err != nil {
		return nil, fmt.Errorf("writing the server's config: %w", err)
	}
	args := []string{"serve", "--config", cfgPath}
	for _, s := range cfg.serverSets {
		args = append(args, "--set", s)
	}
	cmd, err := pinned(ctx, cfg.serverCPUs, bin, args...)
	if err != nil {
		return nil, err
	}
	p := &serverProcess{name: "mcpauthz", cmd: cmd, addr: grpcAddr, metrics: "http://" + httpAddr + "/metrics"}
	if err := p.start(); err != nil {
		return nil, err
	}
	if err := p.waitReady(ctx, "http://"+httpAddr+"/readyz", time.Minute); err != nil {
		p.stop()
		return nil, err
	}
	return p, nil
}

// waitReady polls url until it answers 200, the process exits or the
// time is up.
func (p *serverProcess) waitReady(ctx context.Context, url string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-p.done:
			return fmt.Errorf("the %s process exited before it was ready: %v", p.name, p.waitErr)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the %s process was not ready within %s (%s)", p.name, limit, url)
		}
	}
}

// startNoopProcess runs this harness again with --serve-noop, pinned to
// cpus, with the same collector settings, and reads the addresses it
// serves on: gRPC, then its /metrics.
func startNoopProcess(ctx context.Context, cfg *config, cpus string) (*serverProcess, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("finding the harness binary for the no-op process: %w", err)
	}
	cmd, err := pinned(ctx, cpus, exe, "--serve-noop",
		"--gc-percent", strconv.Itoa(cfg.gcPercent), "--memory-limit", strconv.FormatInt(cfg.memLimit, 10))
	if err != nil {
		return nil, err
	}
	// A test binary runs main when this is set (TestMain).
	cmd.Env = append(os.Environ(), asMainEnv+"=1")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	p := &serverProcess{name: "no-op", cmd: cmd, stdin: stdin}
	if err := p.start(); err != nil {
		return nil, err
	}
	line, err := bufio.NewReader(stdout).ReadString('\n')
	addrs := strings.Fields(line)
	if err != nil || len(addrs) != 2 {
		p.stop()
		return nil, fmt.Errorf("reading the no-op process's addresses (%q): %w", line, errors.Join(err, errors.New("want two")))
	}
	p.addr, p.metrics = addrs[0], "http://"+addrs[1]+"/metrics"
	return p, nil
}

// asMainEnv makes the harness's test binary run main (see TestMain), so
// that tests can start the no-op process.
const asMainEnv = "MCPAUTHZ_BENCH_AS_MAIN"
