// Package nodetest finds Node.js and the npm packages that tests run
// against: the TypeScript SDK's JSON reader, its client and the reference
// MCP servers are JavaScript, and mcpauthz is tested against them as users
// run them.
//
// Without node, or without the packages installed, a test is skipped,
// unless MCPAUTHZ_REQUIRE_NODE=1 (as .ci/run sets it) makes that a
// failure: CI must run these tests, not skip them.
package nodetest

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// RequireEnv is the variable that turns a missing node or npm package into
// a failure.
const RequireEnv = "MCPAUTHZ_REQUIRE_NODE"

// Node returns the path of node on PATH, or skips (or fails) t.
func Node(t testing.TB) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, fmt.Sprintf("node is not on PATH: %v", err))
	}
	return node
}

// Project checks that the npm project in dir (a package.json with exact
// versions, and its package-lock.json) is installed as pinned, as
// `npm ci --prefix dir` installs it, or skips (or fails) t. Every
// dependency of package.json must be in dir/node_modules at the version
// package.json names, so a test never runs against packages other than
// the ones it pins.
func Project(t testing.TB, dir string) {
	t.Helper()
	deps, err := Dependencies(dir)
	if err != nil {
		t.Fatalf("reading the npm project: %v", err)
	}
	for _, name := range slices.Sorted(maps.Keys(deps)) {
		want := deps[name]
		var got struct {
			Version string `json:"version"`
		}
		err := readJSON(filepath.Join(dir, "node_modules", name, "package.json"), &got)
		switch {
		case err != nil:
			missing(t, fmt.Sprintf("%s is not installed (run npm ci --prefix %s): %v", name, dir, err))
		case got.Version != want:
			missing(t, fmt.Sprintf("%s %s is installed, package.json pins %s (run npm ci --prefix %s)", name, got.Version, want, dir))
		}
	}
}

// Dependencies returns the dependencies that dir/package.json pins, name
// to version; a package.json without any is an error.
func Dependencies(dir string) (map[string]string, error) {
	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	if err := readJSON(filepath.Join(dir, "package.json"), &pkg); err != nil {
		return nil, err
	}
	if len(pkg.Dependencies) == 0 {
		return nil, fmt.Errorf("%s/package.json names no dependencies", dir)
	}
	return pkg.Dependencies, nil
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s=1 but %s", RequireEnv, why)
	}
	t.Skipf("%s (%s=1 makes this a failure)", why, RequireEnv)
}

func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("parsing %s: %w", path, err)
	}
	return nil
}
