// Package metrics exports decisions to Prometheus: a counter by code and
// a latency histogram, and a counter of tool pin mismatches by tool. It
// observes the engine through decision.PinObserver.
package metrics

import (
	"context"
	"regexp"
	"sync"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/mcpauthz/mcpauthz/decision"
)

// Metrics counts decisions for Prometheus: by code, and their latency.
type Metrics struct {
	decisions *prometheus.CounterVec
	latency   prometheus.Histogram
	// pinMismatches counts listed tools that did not match their pin;
	// its tool label takes only names bundle data pins.
	pinMismatches *prometheus.CounterVec
	// results counts the answers the result rule judged, by outcome;
	// redactions the matches it redacted, by the name the policy gave.
	results, redactions *prometheus.CounterVec
	// byCode caches the counter of each code so the hot path does no label
	// lookup.
	byCode sync.Map // string -> prometheus.Counter
	// dryRun adds the label dry_run="true" (policy.dry_run): the codes
	// counted are the would-be outcomes.
	dryRun bool
}

// New registers the decision metrics on reg.
func New(reg prometheus.Registerer) *Metrics { return NewWith(reg, false) }

// NewWith is New for a server that may run in dry run: then
// mcpauthz_decisions_total has a second label, dry_run="true", and counts
// what the policy would have decided.
func NewWith(reg prometheus.Registerer, dryRun bool) *Metrics {
	labels := []string{"code"}
	if dryRun {
		labels = append(labels, "dry_run")
	}
	m := &Metrics{dryRun: dryRun,
		decisions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpauthz_decisions_total",
			Help: decision.CodesHelp(), // from the deny table, so it names every code
		}, labels),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "mcpauthz_decision_duration_seconds",
			Help:    "Time to make one decision, from request to answer, in seconds.",
			Buckets: []float64{25e-6, 50e-6, 100e-6, 250e-6, 500e-6, 1e-3, 2.5e-3, 5e-3, 10e-3, 50e-3, 0.25, 1},
		}),
		pinMismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpauthz_tool_pin_mismatches_total",
			Help: "List answers in which a pinned tool's definition did not match its pin (data.mcpauthz.tools[<name>].sha256): the tool was hidden and its calls are refused.",
		}, []string{"tool"}),
		results: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpauthz_results_total",
			Help: "Answers to tools/call, resources/read and prompts/get judged by the policy's result rule, by outcome: passed, redacted, withheld (by the rule) or failed (withheld: unreadable, too large, or the evaluation failed).",
		}, []string{"outcome"}),
		redactions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpauthz_result_redactions_total",
			Help: "Matches the result rule's redactions replaced in results, by the redaction's name.",
		}, []string{"name"}),
	}
	if reg != nil {
		reg.MustRegister(m.decisions, m.latency, m.pinMismatches, m.results, m.redactions)
	}
	return m
}

// Observe counts one decision.
func (m *Metrics) Observe(_ context.Context, _ *decision.Request, d *decision.Decision, _ ast.Value, elapsed time.Duration) {
	c, ok := m.byCode.Load(d.Code)
	if !ok {
		lv := []string{d.Code}
		if m.dryRun {
			lv = append(lv, "true")
		}
		c, _ = m.byCode.LoadOrStore(d.Code, m.decisions.WithLabelValues(lv...))
	}
	c.(prometheus.Counter).Inc()
	m.latency.Observe(elapsed.Seconds())
}

// ObservePinMismatch counts one listed tool that did not match its pin.
func (m *Metrics) ObservePinMismatch(_ context.Context, _ *decision.Request, pm *decision.PinMismatch) {
	m.pinMismatches.WithLabelValues(pm.Tool).Inc()
}

// ObserveResult counts one answer the result rule judged, and its
// redactions.
func (m *Metrics) ObserveResult(_ context.Context, _ *decision.Decision, o *decision.ResultOutcome) {
	m.results.WithLabelValues(o.Outcome).Inc()
	for name, n := range o.Counts {
		m.redactions.WithLabelValues(name).Add(float64(n))
	}
}

var (
	_ decision.PinObserver    = (*Metrics)(nil)
	_ decision.ResultObserver = (*Metrics)(nil)
)

// GCCPUMetric is the name under which Runtime exports the Go runtime's
// estimate of the CPU time spent in garbage collection
// (runtime/metrics /cpu/classes/gc/total:cpu-seconds). The load harness
// reads it from a server's /metrics, with process_cpu_seconds_total, to
// report the collector's share of the server's CPU.
const GCCPUMetric = "go_cpu_classes_gc_total_cpu_seconds_total"

// Runtime returns the collectors of the Go runtime and of the process a
// server registers beside its own metrics: client_golang's defaults, plus
// the collector's CPU time (GCCPUMetric), which the defaults leave out.
func Runtime() []prometheus.Collector {
	return []prometheus.Collector{
		collectors.NewGoCollector(collectors.WithGoCollectorRuntimeMetrics(
			collectors.GoRuntimeMetricsRule{Matcher: regexp.MustCompile(`^/cpu/classes/gc/total:cpu-seconds$`)})),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	}
}
