package nodetest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// recorder is a testing.TB whose Skipf and Fatalf end the function under
// test and are recorded, so the test can see which one was called.
type recorder struct {
	testing.TB
	verdict string // "", "skip: ..." or "fatal: ..."
}

func (r *recorder) Helper() {}

func (r *recorder) Skipf(format string, args ...any) {
	r.verdict = "skip: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.verdict = "fatal: " + fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func run(t *testing.T, f func(testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.verdict
}

func TestProject(t *testing.T) {
	write := func(t *testing.T, path, body string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	const pkg = `{"dependencies": {"@scope/server": "1.2.3", "client": "4.5.6"}}`
	tests := map[string]struct {
		pkg       string
		installed map[string]string // name → version in node_modules
		require   bool
		want      string // verdict prefix
	}{
		"installed as pinned":     {pkg: pkg, installed: map[string]string{"@scope/server": "1.2.3", "client": "4.5.6"}, want: ""},
		"not installed: skip":     {pkg: pkg, installed: map[string]string{"client": "4.5.6"}, want: "skip: @scope/server is not installed (run npm ci --prefix"},
		"not installed: required": {pkg: pkg, require: true, want: "fatal: MCPAUTHZ_REQUIRE_NODE=1 but @scope/server is not installed"},
		"other version: skip":     {pkg: pkg, installed: map[string]string{"@scope/server": "1.2.3", "client": "4.5.7"}, want: "skip: client 4.5.7 is installed, package.json pins 4.5.6"},
		"other version: required": {pkg: pkg, installed: map[string]string{"@scope/server": "1.2.4", "client": "4.5.6"}, require: true, want: "fatal: MCPAUTHZ_REQUIRE_NODE=1 but @scope/server 1.2.4 is installed"},
		"no dependencies":         {pkg: `{}`, want: "fatal: "},
		"no package.json":         {want: "fatal: reading the npm project"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.require {
				t.Setenv(RequireEnv, "1")
			} else {
				t.Setenv(RequireEnv, "")
			}
			dir := t.TempDir()
			if tc.pkg != "" {
				write(t, filepath.Join(dir, "package.json"), tc.pkg)
			}
			for name, v := range tc.installed {
				write(t, filepath.Join(dir, "node_modules", name, "package.json"), `{"name": "`+name+`", "version": "`+v+`"}`)
			}
			got := run(t, func(tb testing.TB) { Project(tb, dir) })
			if tc.want == "" && got != "" || !strings.HasPrefix(got, tc.want) {
				t.Errorf("verdict = %q, want %q…", got, tc.want)
			}
		})
	}
}

func TestNodeMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	t.Setenv(RequireEnv, "")
	if got := run(t, func(tb testing.TB) { Node(tb) }); !strings.HasPrefix(got, "skip: node is not on PATH") {
		t.Errorf("without node and %s: %q, want a skip", RequireEnv, got)
	}
	t.Setenv(RequireEnv, "1")
	if got := run(t, func(tb testing.TB) { Node(tb) }); !strings.HasPrefix(got, "fatal: MCPAUTHZ_REQUIRE_NODE=1 but node is not on PATH") {
		t.Errorf("without node, with %s=1: %q, want a failure", RequireEnv, got)
	}
}
