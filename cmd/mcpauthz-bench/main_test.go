package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the harness when the harness
// starts itself (the no-op process): then it runs main.
func TestMain(m *testing.M) {
	if os.Getenv(asMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestHarnessRuns runs the harness briefly, in rounds, and reads its
// table: both servers answered, mcpauthz decided every request as the
// reference policy does, and a share was printed for each round.
func TestHarnessRuns(t *testing.T) {
	var out, errOut bytes.Buffer
	args := []string{"--concurrency", "2", "--duration", "400ms", "--rounds", "2", "--warmup", "50ms",
		"--variants", "40", "--policy", "../../decision/testdata/bench"}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	rows := map[string][]string{}
	for _, line := range strings.Split(out.String(), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			rows[f[0]] = f
		}
	}
	for _, server := range []string{"noop", "mcpauthz"} {
		f := rows[server]
		if len(f) < 10 {
			t.Fatalf("no %s row in:\n%s", server, out.String())
		}
		if n, _ := strconv.Atoi(f[2]); n == 0 {
			t.Errorf("%s: no checks", server)
		}
		if f[8] != "0" {
			t.Errorf("%s: %s RPC errors", server, f[8])
		}
	}
	if got := rows["mcpauthz"][9]; got != "0" {
		t.Errorf("mcpauthz: %s decisions differ from the reference policy's", got)
	}
	if !regexp.MustCompile(`(?m)^rounds\s+\d+\.\d% \d+\.\d%$`).MatchString(out.String()) {
		t.Errorf("no share per round in:\n%s", out.String())
	}
}

// TestHarnessProcesses runs the harness with both servers in processes of
// their own (mcpauthz built from this module, the no-op server this test
// binary), mcpauthz pinned to one CPU, and reads its JSON report: both
// servers answered without errors, mcpauthz decided as the reference
// policy does, the kernel pinned it where asked, and each phase carries
// the servers' memory and the collector's CPU share.
func TestHarnessProcesses(t *testing.T) {
	if testing.Short() {
		t.Skip("builds mcpauthz and starts two processes")
	}
	cpus := allowedCPUs(t)
	var out, errOut bytes.Buffer
	args := []string{"--processes", "--server-cpus", strconv.Itoa(cpus[0]), "--concurrency", "1,4", "--duration", "400ms",
		"--rounds", "2", "--warmup", "50ms", "--variants", "40", "--policy", "../../decision/testdata/bench", "--format", "json"}
	if err := run(context.Background(), args, &out, &errOut); err != nil {
		t.Fatalf("%v\n%s", err, errOut.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("standard output is not one JSON document: %v\n%s", err, out.String())
	}
	if rep.Mode != "processes" || rep.ServerCPUsAllowed != strconv.Itoa(cpus[0]) {
		t.Errorf("mode %q, server pinned to %q; want processes, %d", rep.Mode, rep.ServerCPUsAllowed, cpus[0])
	}
	if len(rep.Phases) != 2 || rep.Phases[0].Callers != 1 || rep.Phases[1].Callers != 4 {
		t.Fatalf("phases: %+v", rep.Phases)
	}
	for _, p := range rep.Phases {
		if p.Ratio == nil || *p.Ratio <= 0 || len(p.RoundRatios) != 2 {
			t.Errorf("%d callers: ratio %v, rounds %v", p.Callers, p.Ratio, p.RoundRatios)
		}
		for name, s := range map[string]*serverReport{"noop": p.Noop, "mcpauthz": p.MCPAuthz} {
			switch {
			case s == nil:
				t.Fatalf("%d callers: no %s figures", p.Callers, name)
			case s.Checks == 0 || s.Errors != 0:
				t.Errorf("%d callers, %s: %d checks, %d errors", p.Callers, name, s.Checks, s.Errors)
			case s.RSSBytes == nil || *s.RSSBytes == 0 || s.PeakRSSBytes == nil || *s.PeakRSSBytes < *s.RSSBytes:
				t.Errorf("%d callers, %s: RSS %v, peak %v", p.Callers, name, s.RSSBytes, s.PeakRSSBytes)
			case s.CPUSeconds == nil || *s.CPUSeconds <= 0 || s.GCCPUShare == nil || *s.GCCPUShare < 0:
				t.Errorf("%d callers, %s: CPU %v s, GC share %v", p.Callers, name, s.CPUSeconds, s.GCCPUShare)
			}
		}
		if u := p.MCPAuthz.Unexpected; u == nil || *u != 0 {
			t.Errorf("%d callers: unexpected decisions %v", p.Callers, u)
		}
		if p.Noop.Unexpected != nil {
			t.Errorf("the no-op server's decisions are not checked, yet reported")
		}
	}
	// The table went to standard error, with the process columns filled.
	if !regexp.MustCompile(`(?m)^mcpauthz\s+4 .* \d+\.\dMB\s+\d+\.\dMB\s+\d+\.\d\d\s+\d+\.\d%$`).MatchString(errOut.String()) {
		t.Errorf("no table with the process columns on standard error:\n%s", errOut.String())
	}
}

// allowedCPUs lists the CPUs this process may run on.
func allowedCPUs(t *testing.T) []int {
	t.Helper()
	cpus, err := parseCPUList(statusText("/proc/self/status", "Cpus_allowed_list"))
	if err != nil {
		t.Skipf("no CPU list: %v", err)
	}
	return cpus
}

// TestPinSelf pins the test process to the CPUs it already has (so the
// other tests run as before) and checks GOMAXPROCS followed.
func TestPinSelf(t *testing.T) {
	cpus := allowedCPUs(t)
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	list := statusText("/proc/self/status", "Cpus_allowed_list")
	n, err := pinSelf(list)
	if err != nil {
		t.Fatal(err)
	}
	if n != len(cpus) || runtime.GOMAXPROCS(0) != len(cpus) {
		t.Errorf("pinned to %d CPUs, GOMAXPROCS %d; want %d", n, runtime.GOMAXPROCS(0), len(cpus))
	}
	if got := statusText("/proc/self/status", "Cpus_allowed_list"); got != list {
		t.Errorf("Cpus_allowed_list %q after pinning to %q", got, list)
	}
	if _, err := pinSelf("1-0"); err == nil {
		t.Error("a reversed range was accepted")
	}
}

func TestParseCPUList(t *testing.T) {
	for in, want := range map[string]string{
		"0": "[0]", "0-3": "[0 1 2 3]", "2-3,6": "[2 3 6]", "6, 1,1-2": "[1 2 6]",
		"": "error", "a": "error", "3-1": "error", "-1": "error", "1-": "error", "0,,1": "error", "2048": "error",
	} {
		got, err := parseCPUList(in)
		s := fmt.Sprint(got)
		if err != nil {
			s = "error"
		}
		if s != want {
			t.Errorf("parseCPUList(%q) = %s, want %s", in, s, want)
		}
	}
}

func TestParseSamples(t *testing.T) {
	text := `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
go_cpu_classes_gc_total_cpu_seconds_total 1.25e-01
mcpauthz_decisions_total{code="allowed"} 7
process_cpu_seconds_total_extra 99
`
	got, err := parseSamples(strings.NewReader(text), "process_cpu_seconds_total", "go_cpu_classes_gc_total_cpu_seconds_total", "mcpauthz_decisions_total", "absent")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"process_cpu_seconds_total": 12.5, "go_cpu_classes_gc_total_cpu_seconds_total": 0.125}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got %v, want %v (labelled samples are not read)", got, want)
	}
	if _, err := parseSamples(strings.NewReader("process_cpu_seconds_total x\n"), "process_cpu_seconds_total"); err == nil {
		t.Error("a value that is not a number was accepted")
	}
}

// TestServerStats sums rounds: CPU adds up, memory is the last round's,
// and a round whose CPU could not be read leaves the phase without a GC
// share rather than with a wrong one.
func TestServerStats(t *testing.T) {
	a := serverSample{rss: 10, hwm: 12, cpu: 1, gcCPU: 0.1, hasCPU: true, hasGC: true}
	b := serverSample{rss: 20, hwm: 25, cpu: 3, gcCPU: 0.3, hasCPU: true, hasGC: true}
	c := serverSample{rss: 30, hwm: 35, cpu: 4, gcCPU: 0.4, hasCPU: true, hasGC: true}
	s := between(a, b).add(between(b, c))
	if g, ok := s.gcShare(); !ok || math.Abs(g-0.1) > 1e-9 || s.rss != 30 || s.hwm != 35 || math.Abs(s.cpu-3) > 1e-9 {
		t.Errorf("two rounds: %+v, GC share %v %v", s, g, ok)
	}
	starved := c
	starved.hasCPU, starved.hasGC = false, false
	s = between(a, b).add(between(b, starved))
	if g, ok := s.gcShare(); ok || s.rss != 30 {
		t.Errorf("a round without CPU figures: GC share %v %v, RSS %d", g, ok, s.rss)
	}
	r := &result{elapsed: 2 * time.Second, srv: between(a, b)}
	if cores, ok := r.cores(); !ok || cores != 1 {
		t.Errorf("2 CPU seconds in 2 s: %v CPUs busy", cores)
	}
}
