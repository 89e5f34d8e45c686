package bundles

import (
	"context"
	"encoding/json"
	"fmt"
	"runtime"
	rtmetrics "runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/benchgrowth"
)

// BenchmarkGrowthReload is one reload of a bundle directory (read,
// compile with the input schema, prepare the queries, swap) as the
// bundle grows: N tool entries of about 120 bytes in data.json (data), or
// N rules in the policy (rules). It reports the bundle's size, the peak of
// the heap's objects while reloading (sampled every 200 µs, so a lower
// bound) and the live heap after it. The last name element is
// "name=size" (see decision/growth_bench_test.go); under -short the
// largest sizes are left out.
func BenchmarkGrowthReload(b *testing.B) {
	for _, kind := range []string{"data", "rules"} {
		for _, n := range benchgrowth.Sizes(1000, 10, 100, 1000, 10000, 100000) {
			if kind == "rules" && n > 10000 {
				continue
			}
			b.Run(fmt.Sprintf("%s/size=%d", kind, n), func(b *testing.B) {
				dir := b.TempDir()
				files := growthBundle(kind, n, "v0")
				size := 0
				for _, body := range files {
					size += len(body)
				}
				writeTree(b, dir, files)
				m, err := NewManager(Options{Sources: []Source{DirSource(dir)}, Queries: testQueries, InputSchema: readSchema(b)}, AsIs)
				if err != nil {
					b.Fatal(err)
				}
				ctx := context.Background()
				must(b, m.Reload(ctx))
				var peak uint64
				i := 0
				b.ReportAllocs()
				for b.Loop() {
					i++
					b.StopTimer()
					// Only the manifest changes: a new revision, the same content.
					writeTree(b, dir, map[string]string{".manifest": manifest("v" + strconv.Itoa(i))})
					stop := sampleHeap(&peak)
					b.StartTimer()
					must(b, m.Reload(ctx))
					b.StopTimer()
					stop()
					b.StartTimer()
				}
				if got := m.Snapshot().Revision; got != "v"+strconv.Itoa(i) {
					b.Fatalf("serving revision %q after %d reloads", got, i)
				}
				b.ReportMetric(float64(size), "bundle_B")
				b.ReportMetric(float64(peak)/(1<<20), "peak_heap_MB")
				b.ReportMetric(float64(heapObjects(true))/(1<<20), "live_heap_MB")
				runtime.KeepAlive(m) // its snapshot counts in the live heap
			})
		}
	}
}

func manifest(rev string) string {
	return fmt.Sprintf(`{"revision": %q, "roots": ["mcp"]}`, rev)
}

// growthBundle is the test bundle (policyRego) grown to n tool entries in
// its data or n more rules in its policy.
func growthBundle(kind string, n int, rev string) map[string]string {
	files := map[string]string{".manifest": manifest(rev)}
	tools := []any{"echo"}
	rego := policyRego(rev)
	switch kind {
	case "data":
		for i := range n {
			tools = append(tools, map[string]any{"name": "tool_" + strconv.Itoa(i), "description": "a generated tool of the benchmark",
				"scopes": []string{"mcp:tools"}, "owner": "team-" + strconv.Itoa(i%97)})
		}
	case "rules":
		var s strings.Builder
		s.WriteString(rego)
		for i := range n {
			fmt.Fprintf(&s, "\nallow if {\n\tinput.mcp.tool.name == \"tool_%d\"\n\tstartswith(input.mcp.tool.arguments.path, \"/data/%d/\")\n}\n", i, i)
		}
		rego = s.String()
	}
	doc, _ := json.Marshal(map[string]any{"tools": tools, "rev": rev})
	files["mcp/config/data.json"] = string(doc)
	files["mcp/authz/policy.rego"] = rego
	return files
}

// sampleHeap records the largest heap-objects figure into peak until the
// returned function is called.
func sampleHeap(peak *uint64) (stop func()) {
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(200 * time.Microsecond)
		defer t.Stop()
		for {
			*peak = max(*peak, heapObjects(false))
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	})
	return func() { close(done); wg.Wait() }
}

// heapObjects is the runtime's count of bytes in heap objects, live or
// not yet collected; after a collection when gc is set.
func heapObjects(gc bool) uint64 {
	if gc {
		runtime.GC()
		runtime.GC()
	}
	s := []rtmetrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	rtmetrics.Read(s)
	return s[0].Value.Uint64()
}
