package bundles

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// BenchmarkReloadLatency measures, over 100 changes per iteration, the time
// from rewriting a bundle directory (three files, renamed into place) to
// the manager serving a decision from the new revision. It includes the
// debounce, set to 20ms here (default 300ms).
func BenchmarkReloadLatency(b *testing.B) {
	const debounce = 20 * time.Millisecond
	dir := b.TempDir()
	writeTree(b, dir, policyFiles("v0"))
	m, swaps, err := startManager(b, Options{Sources: []Source{DirSource(dir)}, Debounce: debounce})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	var lat []time.Duration
	n := 0
	for b.Loop() {
		for range 100 {
			n++
			rev := "v" + strconv.Itoa(n)
			start := time.Now()
			for name, body := range policyFiles(rev) {
				replaceFile(b, filepath.Join(dir, filepath.FromSlash(name)), body)
			}
			waitRevision(b, swaps, rev)
			d, err := evalDecision(ctx, m.Current(), "echo")
			if err != nil || d["policy_rev"] != rev {
				b.Fatalf("decision %v, %v", d, err)
			}
			lat = append(lat, time.Since(start))
		}
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "median_ms")
	b.ReportMetric(float64(lat[len(lat)-1].Microseconds())/1000, "worst_ms")
	b.ReportMetric(float64(debounce.Milliseconds()), "debounce_ms")
}

// BenchmarkReloadUnderLoad reloads 100 times per iteration while two
// goroutines evaluate the current snapshot without pause, and reports
// evaluations that failed or mixed two snapshots (must be 0).
func BenchmarkReloadUnderLoad(b *testing.B) {
	dir := b.TempDir()
	writeTree(b, dir, policyFiles("v0"))
	m, err := NewManager(Options{Sources: []Source{DirSource(dir)}, Queries: testQueries}, AsIs)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	must(b, m.Reload(ctx))
	var (
		stop          atomic.Bool
		evals, failed atomic.Int64
		wg            sync.WaitGroup
	)
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				s := m.Current()
				d, err := evalDecision(ctx, s, "echo")
				evals.Add(1)
				if err != nil || d["allow"] != true || d["policy_rev"] != s.Revision || d["data_rev"] != s.Revision {
					failed.Add(1)
				}
			}
		})
	}
	n, reloads := 0, 0
	var reloadTime time.Duration
	for b.Loop() {
		for range 100 {
			n++
			writeTree(b, dir, policyFiles("v"+strconv.Itoa(n)))
			start := time.Now()
			must(b, m.Reload(ctx))
			reloadTime += time.Since(start)
			reloads++
		}
	}
	stop.Store(true)
	wg.Wait()
	b.ReportMetric(float64(failed.Load()), "failed_evals")
	b.ReportMetric(float64(evals.Load()), "evals")
	b.ReportMetric(float64(reloadTime.Microseconds())/1000/float64(reloads), "ms/reload")
}

// BenchmarkReloadHeap reloads 1,000 times per iteration and reports the
// heap in use after a GC, before and after: equal figures show that old
// snapshots are released.
func BenchmarkReloadHeap(b *testing.B) {
	dir := b.TempDir()
	writeTree(b, dir, policyFiles("v0"))
	m, err := NewManager(Options{Sources: []Source{DirSource(dir)}, Queries: testQueries, InputSchema: readSchema(b)}, AsIs)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	must(b, m.Reload(ctx))
	before := heapInUse()
	n := 0
	for b.Loop() {
		for range 1000 {
			n++
			writeTree(b, dir, policyFiles("v"+strconv.Itoa(n)))
			must(b, m.Reload(ctx))
		}
	}
	after := heapInUse()
	b.ReportMetric(float64(before)/(1<<20), "heap_first_MB")
	b.ReportMetric(float64(after)/(1<<20), "heap_after_MB")
}

func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
