package metrics

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// TestRuntimeExportsGCCPU checks that the runtime collectors export the
// collector's CPU time and the process's CPU time, which the load harness
// reads from a server's /metrics.
func TestRuntimeExportsGCCPU(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(Runtime()...)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, mf := range mfs {
		names[mf.GetName()] = true
	}
	for _, want := range []string{GCCPUMetric, "process_cpu_seconds_total", "go_gc_duration_seconds", "go_memstats_heap_inuse_bytes"} {
		if !names[want] {
			t.Errorf("%s not exported", want)
		}
	}
}
