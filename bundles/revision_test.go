package bundles

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRevisionFollowsContent: a reload whose manifest revision did not
// change but whose content did serves a different revision
// ("<revision>+sha256:…"), and the log line names the files that changed;
// a reload of the same content keeps the revision; a bumped manifest
// revision is served as it is.
func TestRevisionFollowsContent(t *testing.T) {
	dir := t.TempDir()
	writeTree(t, dir, policyFiles("r1"))
	var logs bytes.Buffer
	m, err := NewManager(Options{Sources: []Source{DirSource(dir)}, Queries: testQueries,
		Logger: slog.New(slog.NewTextHandler(&logs, nil))}, AsIs)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	reload := func() string {
		t.Helper()
		if err := m.Reload(ctx); err != nil {
			t.Fatal(err)
		}
		return m.Current().Revision
	}
	if rev := reload(); rev != "r1" {
		t.Fatalf("first load revision %q, want r1", rev)
	}
	if err := os.WriteFile(filepath.Join(dir, "mcp/config/data.json"), []byte(`{"tools": ["echo", "rm"], "rev": "r1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	edited := reload()
	if !strings.HasPrefix(edited, "r1+sha256:") {
		t.Fatalf("revision after a content change under the same manifest revision %q, want r1+sha256:…", edited)
	}
	if !strings.Contains(logs.String(), "changed=[") || !strings.Contains(logs.String(), "data") {
		t.Errorf("the reload log does not name the changed files:\n%s", logs.String())
	}
	if again := reload(); again != edited {
		t.Errorf("reloading the same content changed the revision: %q, then %q", edited, again)
	}
	if err := os.WriteFile(filepath.Join(dir, "mcp/config/data.json"), []byte(`{"tools": ["echo"], "rev": "r1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if back := reload(); back == edited || !strings.HasPrefix(back, "r1") {
		t.Errorf("revision %q after a second change, want r1… and not %q", back, edited)
	}
	writeTree(t, dir, policyFiles("r2"))
	if rev := reload(); rev != "r2" {
		t.Errorf("a bumped manifest revision is served as %q, want r2", rev)
	}
}

func TestChangedFiles(t *testing.T) {
	got := changedFiles(map[string]string{"b/a.rego": "1", "b/data": "2", "b/gone.rego": "3"},
		map[string]string{"b/a.rego": "1", "b/data": "9", "b/new.rego": "4"})
	if strings.Join(got, " ") != "b/data b/gone.rego b/new.rego" {
		t.Errorf("changed %v", got)
	}
}
