package bundles

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// waitLimit bounds how long a test waits for an expected event; reaching
// it is a failure, not a measurement.
const waitLimit = 15 * time.Second

// startManager starts a Manager on opts and returns it with a channel of
// the snapshots it swaps in.
func startManager(t testing.TB, opts Options) (*Manager[*Snapshot], <-chan *Snapshot, error) {
	t.Helper()
	if opts.Queries == nil {
		opts.Queries = testQueries
	}
	if opts.Debounce == 0 {
		opts.Debounce = 20 * time.Millisecond
	}
	m, err := NewManager(opts, AsIs)
	if err != nil {
		t.Fatalf("NewManager: %v", err)
	}
	swaps := make(chan *Snapshot, 256)
	m.OnSwap(func(s *Snapshot) { swaps <- s })
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); m.Wait() })
	return m, swaps, m.Start(ctx)
}

// waitFor reads swaps until one satisfies ok.
func waitFor(t testing.TB, swaps <-chan *Snapshot, what string, ok func(*Snapshot) bool) *Snapshot {
	t.Helper()
	deadline := time.After(waitLimit)
	for {
		select {
		case s := <-swaps:
			if ok(s) {
				return s
			}
		case <-deadline:
			t.Fatalf("no snapshot with %s within %v", what, waitLimit)
		}
	}
}

func waitRevision(t testing.TB, swaps <-chan *Snapshot, rev string) *Snapshot {
	t.Helper()
	return waitFor(t, swaps, "revision "+rev, func(s *Snapshot) bool { return s.Revision == rev })
}

// eventually polls cond until it holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitLimit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not happen within %v", what, waitLimit)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replaceFile writes body to a temporary file beside p and renames it over
// p, as editors and atomic writers do.
func replaceFile(t testing.TB, p, body string) {
	t.Helper()
	tmp := filepath.Join(filepath.Dir(p), "."+filepath.Base(p)+".tmp")
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
}

func TestManagerWatchesDirectory(t *testing.T) {
	tests := map[string]func(t *testing.T, dir string){
		"edit_in_place": func(t *testing.T, dir string) {
			writeTree(t, dir, policyFiles("b"))
		},
		"rename_over": func(t *testing.T, dir string) {
			for name, body := range policyFiles("b") {
				replaceFile(t, filepath.Join(dir, filepath.FromSlash(name)), body)
			}
		},
	}
	for name, change := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, policyFiles("a"))
			m, swaps, err := startManager(t, Options{Sources: []Source{DirSource(dir)}, InputSchema: readSchema(t)})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			if !m.Ready() || m.Current().Revision != "a" {
				t.Fatalf("after Start: ready %v, status %+v", m.Ready(), m.Status())
			}
			waitRevision(t, swaps, "a")
			change(t, dir)
			s := waitRevision(t, swaps, "b")
			d, err := evalDecision(t.Context(), s, "echo")
			if err != nil || d["policy_rev"] != "b" || d["data_rev"] != "b" {
				t.Fatalf("decision %v, %v", d, err)
			}
		})
	}
}

// configMapFiles is a flat bundle, as a Kubernetes ConfigMap holds one:
// no subdirectories, data at the root.
func configMapFiles(rev string) map[string]string {
	return map[string]string{
		".manifest":   `{"revision": "` + rev + `"}`,
		"data.json":   `{"mcp": {"config": {"tools": ["echo"], "rev": "` + rev + `"}}}`,
		"policy.rego": policyRego(rev),
	}
}

// TestManagerConfigMapSymlinkSwap mimics the kubelet's atomic update of a
// mounted ConfigMap: files live in a timestamped directory, "..data" links
// to it, the visible names link through "..data", and an update writes a
// new directory and renames a new "..data" link over the old one.
func TestManagerConfigMapSymlinkSwap(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, filepath.Join(dir, "..2026_01_01_v1"), configMapFiles("cm-1"))
	must(t, os.Symlink("..2026_01_01_v1", filepath.Join(dir, "..data")))
	for name := range configMapFiles("") {
		must(t, os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)))
	}
	_, swaps, err := startManager(t, Options{Sources: []Source{DirSource(dir)}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	s := waitRevision(t, swaps, "cm-1")
	if n := len(s.Compiler.Modules); n != 1 {
		t.Fatalf("%d modules compiled, want 1 (ConfigMap internals must not be read twice)", n)
	}

	writeTree(t, filepath.Join(dir, "..2026_01_02_v2"), configMapFiles("cm-2"))
	must(t, os.Symlink("..2026_01_02_v2", filepath.Join(dir, "..data_tmp")))
	must(t, os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	must(t, os.RemoveAll(filepath.Join(dir, "..2026_01_01_v1")))
	s = waitRevision(t, swaps, "cm-2")
	d, err := evalDecision(t.Context(), s, "echo")
	if err != nil || d["policy_rev"] != "cm-2" || d["data_rev"] != "cm-2" {
		t.Fatalf("decision %v, %v", d, err)
	}
}

func TestManagerNewSubdirectoryAndDelete(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, policyFiles("a"))
	m, swaps, err := startManager(t, Options{Sources: []Source{DirSource(dir)}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	visible := func(want string) func(*Snapshot) bool {
		return func(s *Snapshot) bool {
			pq, ok := s.Query("data.mcp.authz.visible")
			if !ok {
				return want == ""
			}
			rs, err := pq.Eval(t.Context())
			return err == nil && len(rs) == 1 && rs[0].Expressions[0].Value == want
		}
	}

	// A new subdirectory with a module in it.
	sub := filepath.Join(dir, "mcp", "authz", "more", "deeper")
	must(t, os.MkdirAll(sub, 0o755))
	writeTree(t, sub, map[string]string{"visible.rego": "package mcp.authz\n\nvisible := \"one\"\n"})
	waitFor(t, swaps, "visible one", visible("one"))
	// The new directory is watched: an edit inside it is seen.
	writeTree(t, sub, map[string]string{"visible.rego": "package mcp.authz\n\nvisible := \"two\"\n"})
	waitFor(t, swaps, "visible two", visible("two"))
	// Deleting the file removes the rule.
	must(t, os.Remove(filepath.Join(sub, "visible.rego")))
	waitFor(t, swaps, "visible gone", visible(""))

	// Deleting the whole bundle fails the load; the last good stays.
	before := m.Current()
	must(t, os.RemoveAll(dir))
	eventually(t, "a failed load", func() bool { return strings.Contains(m.Status().LastError, "no such file or directory") })
	if m.Current() != before || !m.Ready() {
		t.Fatal("a failed load replaced the snapshot or made the manager unready")
	}
	// The directory coming back is seen through the parent's watch.
	writeTree(t, dir, policyFiles("back"))
	waitRevision(t, swaps, "back")
}

func TestManagerBrokenChangeKeepsLastGood(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, policyFiles("a"))
	reg := prometheus.NewRegistry()
	m, swaps, err := startManager(t, Options{Sources: []Source{DirSource(dir)}, InputSchema: readSchema(t), Registerer: reg})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	good := m.Current()
	writeTree(t, dir, map[string]string{"mcp/authz/policy.rego": "package mcp.authz\n\nallow if {\n"})
	eventually(t, "a failed load", func() bool { return m.Status().LastError != "" })
	st := m.Status()
	if !regexp.MustCompile(regexp.QuoteMeta(filepath.Join(dir, "mcp/authz/policy.rego")) + `:\d+: rego_parse_error`).MatchString(st.LastError) {
		t.Errorf("last error lacks file:line: %q", st.LastError)
	}
	if m.Current() != good || !st.Ready || st.Revision != "a" {
		t.Errorf("after a broken change: status %+v", st)
	}
	if got := metricValue(t, reg, "mcpauthz_bundle_loads_total", "failure"); got < 1 {
		t.Errorf("failure count %v", got)
	}
	writeTree(t, dir, policyFiles("c"))
	waitRevision(t, swaps, "c")
	if got := metricValue(t, reg, "mcpauthz_bundle_revision_info", "c"); got != 1 {
		t.Errorf("revision_info{c} = %v", got)
	}
	if got := metricValue(t, reg, "mcpauthz_bundle_revision_info", "a"); got != -1 {
		t.Errorf("revision_info{a} still exported: %v", got)
	}
	if got := metricValue(t, reg, "mcpauthz_bundle_last_success_timestamp_seconds", ""); got <= 0 {
		t.Errorf("last success timestamp %v", got)
	}
}

func TestManagerNotReadyUntilFirstGoodLoad(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, merge(policyFiles("a"), map[string]string{"mcp/authz/policy.rego": "package mcp.authz\n\nallow if {\n"}))
	m, swaps, err := startManager(t, Options{Sources: []Source{DirSource(dir)}})
	if err == nil {
		t.Fatal("Start succeeded on a broken bundle")
	}
	if m.Ready() || m.Current() != nil {
		t.Fatal("ready before a good load")
	}
	rec := httptest.NewRecorder()
	m.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("status code %d before ready", rec.Code)
	}
	writeTree(t, dir, policyFiles("fixed"))
	waitRevision(t, swaps, "fixed")
	if !m.Ready() {
		t.Fatal("not ready after a good load")
	}
	rec = httptest.NewRecorder()
	m.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	var st Status
	if err := json.Unmarshal(rec.Body.Bytes(), &st); err != nil {
		t.Fatal(err)
	}
	if rec.Code != http.StatusOK || st.Revision != "fixed" || st.LoadedAt.IsZero() || !strings.Contains(st.LastError, "rego_parse_error") {
		t.Errorf("status %d %+v", rec.Code, st)
	}
	rec = httptest.NewRecorder()
	m.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/status", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST got %d", rec.Code)
	}
}

// TestManagerConcurrentReloads reloads in a loop, every fifth change
// broken, while goroutines evaluate the current snapshot. Every decision
// must come from one complete snapshot: its policy and data revisions
// agree with each other and with the snapshot's revision. Run with -race.
func TestManagerConcurrentReloads(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, policyFiles("r0"))
	m, err := NewManager(Options{Sources: []Source{DirSource(dir)}, Queries: testQueries}, AsIs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	var (
		stop      atomic.Bool
		evals     atomic.Int64
		wg        sync.WaitGroup
		failMu    sync.Mutex
		failures  []string
		seenMu    sync.Mutex
		revisions = map[string]bool{}
	)
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				s := m.Current()
				d, err := evalDecision(ctx, s, "echo")
				evals.Add(1)
				if err != nil || d["allow"] != true || d["policy_rev"] != s.Revision || d["data_rev"] != s.Revision {
					failMu.Lock()
					failures = append(failures, s.Revision)
					failMu.Unlock()
					continue
				}
				seenMu.Lock()
				revisions[s.Revision] = true
				seenMu.Unlock()
			}
		})
	}
	for i := 1; i <= 40; i++ {
		files := policyFiles("r" + itoa(i))
		if i%5 == 0 {
			files["mcp/authz/policy.rego"] = "package mcp.authz\n\nallow if {\n"
		}
		writeTree(t, dir, files)
		err := m.Reload(ctx)
		if (err != nil) != (i%5 == 0) {
			t.Errorf("reload %d: %v", i, err)
		}
	}
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d evaluations failed or mixed snapshots, e.g. at %s", len(failures), evals.Load(), failures[0])
	}
	if len(revisions) < 2 {
		t.Errorf("evaluations saw only %v", revisions)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// metricValue returns the value of the series of family name whose first
// label has value label ("" for an unlabelled series), or -1.
func metricValue(t *testing.T, reg *prometheus.Registry, name, label string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if (label == "" && len(m.GetLabel()) == 0) || (len(m.GetLabel()) > 0 && m.GetLabel()[0].GetValue() == label) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return -1
}
