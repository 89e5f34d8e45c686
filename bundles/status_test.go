package bundles

import (
	"bytes"
	"flag"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite golden files under testdata/golden")

// TestStatusHandlerGolden pins the JSON of GET /v1/status after a good
// load followed by a broken one.
func TestStatusHandlerGolden(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, policyFiles("golden-1"))
	clock := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	m, err := NewManager(Options{
		Sources: []Source{DirSource(dir, WithName("policy"))},
		Queries: testQueries,
		Now:     func() time.Time { return clock },
	}, AsIs)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Reload(t.Context()); err != nil {
		t.Fatal(err)
	}
	clock = clock.Add(time.Minute)
	// A broken change whose error names no temporary path: bad roots.
	writeTree(t, dir, map[string]string{".manifest": `{"revision": "golden-2", "roots": ["mcp", "mcp/authz"]}`})
	if err := m.Reload(t.Context()); err == nil {
		t.Fatal("overlapping roots in one manifest loaded")
	}
	rec := httptest.NewRecorder()
	m.StatusHandler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/v1/status", nil))
	if rec.Code != http.StatusOK || rec.Header().Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, content type %q", rec.Code, rec.Header().Get("Content-Type"))
	}
	golden := filepath.Join("testdata", "golden", "status.json")
	if *update {
		must(t, os.MkdirAll(filepath.Dir(golden), 0o755))
		must(t, os.WriteFile(golden, rec.Body.Bytes(), 0o644))
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(bytes.TrimSpace(rec.Body.Bytes()))+"\n"); diff != "" {
		t.Errorf("status JSON (-want +got):\n%s", diff)
	}
}

func TestManagerWatchesTarball(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bundle.tar.gz")
	must(t, os.WriteFile(p, tarball(t, policyFiles("tar-1")), 0o644))
	_, swaps, err := startManager(t, Options{Sources: []Source{DirSource(p)}})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitRevision(t, swaps, "tar-1")
	tmp := p + ".tmp"
	must(t, os.WriteFile(tmp, tarball(t, policyFiles("tar-2")), 0o644))
	must(t, os.Rename(tmp, p))
	waitRevision(t, swaps, "tar-2")
}
