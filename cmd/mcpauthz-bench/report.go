package main

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
)

// report is the --format json document: the run's settings and one entry
// per phase (caller count). Times are in microseconds, memory in bytes,
// CPU in seconds, shares and ratios as fractions (0.93, not 93%).
type report struct {
	Machine struct {
		CPUs       int    `json:"cpus"`
		GOMAXPROCS int    `json:"gomaxprocs"`
		Go         string `json:"go"`
		OS         string `json:"os"`
	} `json:"machine"`
	// Mode is "processes" (both servers in processes of their own),
	// "addr" (a running server, no-op server in a process of its own) or
	// "in-process" (both servers in the harness's process).
	Mode       string `json:"mode"`
	Target     string `json:"target"`
	ServerCPUs string `json:"server_cpus,omitempty"`
	// ServerCPUsAllowed is mcpauthz's Cpus_allowed_list as the kernel
	// reports it once started.
	ServerCPUsAllowed string  `json:"server_cpus_allowed,omitempty"`
	ClientCPUs        string  `json:"client_cpus,omitempty"`
	Policy            string  `json:"policy,omitempty"`
	Requests          int     `json:"requests"`
	Duration          string  `json:"duration"`
	Rounds            int     `json:"rounds"`
	Warmup            string  `json:"warmup"`
	Conns             int     `json:"conns"`
	GCPercent         int     `json:"gc_percent"`
	MemoryLimitBytes  int64   `json:"memory_limit_bytes"`
	Phases            []phase `json:"phases"`
}

// phase is one caller count: each server's figures, and mcpauthz's
// throughput as a share of the no-op server's (in total and per round).
type phase struct {
	Callers     int           `json:"callers"`
	Noop        *serverReport `json:"noop,omitempty"`
	MCPAuthz    *serverReport `json:"mcpauthz"`
	Ratio       *float64      `json:"ratio,omitempty"`
	RoundRatios []float64     `json:"round_ratios,omitempty"`
}

// serverReport is one server's figures in a phase. The process fields are
// absent when the server runs in the harness's process.
type serverReport struct {
	Checks          int64    `json:"checks"`
	ChecksPerSec    float64  `json:"checks_per_second"`
	P50             float64  `json:"p50_us"`
	P99             float64  `json:"p99_us"`
	P999            float64  `json:"p99_9_us"`
	Max             float64  `json:"max_us"`
	Errors          int64    `json:"errors"`
	Unexpected      *int64   `json:"unexpected_decisions,omitempty"`
	RSSBytes        *uint64  `json:"rss_bytes,omitempty"`
	PeakRSSBytes    *uint64  `json:"peak_rss_bytes,omitempty"`
	CPUSeconds      *float64 `json:"cpu_seconds,omitempty"`
	GCCPUSeconds    *float64 `json:"gc_cpu_seconds,omitempty"`
	GCCPUShare      *float64 `json:"gc_cpu_share,omitempty"`
	CPUsBusy        *float64 `json:"cpus_busy,omitempty"`
	MeasuredSeconds float64  `json:"measured_seconds"`
}

func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func ptr[T any](v T) *T { return &v }

// newServerReport summarises one server's result (nil: none).
func newServerReport(r *result) *serverReport {
	if r == nil {
		return nil
	}
	s := &serverReport{Checks: r.checks(), ChecksPerSec: r.rate(), P50: micros(r.quantile(0.50)), P99: micros(r.quantile(0.99)),
		P999: micros(r.quantile(0.999)), Max: micros(r.quantile(1)), Errors: r.errors, MeasuredSeconds: r.elapsed.Seconds()}
	if r.checkDecide {
		s.Unexpected = ptr(r.unexpected)
	}
	if r.srv != nil {
		s.RSSBytes, s.PeakRSSBytes = ptr(r.srv.rss), ptr(r.srv.hwm)
		if r.srv.hasCPU {
			s.CPUSeconds = ptr(r.srv.cpu)
		}
		if r.srv.hasGC {
			s.GCCPUSeconds = ptr(r.srv.gcCPU)
		}
		if g, ok := r.srv.gcShare(); ok {
			s.GCCPUShare = ptr(g)
		}
		if c, ok := r.cores(); ok {
			s.CPUsBusy = ptr(c)
		}
	}
	return s
}

// addPhase adds a phase's results (n nil without the no-op server).
func (rep *report) addPhase(callers int, n, m *result, shares []float64) {
	p := phase{Callers: callers, Noop: newServerReport(n), MCPAuthz: newServerReport(m), RoundRatios: shares}
	if n != nil && n.rate() > 0 {
		p.Ratio = ptr(m.rate() / n.rate())
	}
	rep.Phases = append(rep.Phases, p)
}

func (rep *report) write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("writing the JSON report: %w", err)
	}
	return nil
}
