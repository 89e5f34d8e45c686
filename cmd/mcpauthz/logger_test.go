package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestJSONLogDurations: durations in JSON logs read as "1.5s", not as
// integer nanoseconds.
func TestJSONLogDurations(t *testing.T) {
	var b bytes.Buffer
	newLogger(&b, LogConfig{Level: "info", Format: "json"}).Info("loaded", "took", 1500*time.Millisecond)
	if !strings.Contains(b.String(), `"took":"1.5s"`) {
		t.Errorf("log line: %s", b.String())
	}
}

// TestCheckOverlappingBundles: two bundles that both have a manifest are
// not said to lack one; a bundle without manifest roots is named.
func TestCheckOverlappingBundles(t *testing.T) {
	code, out, errOut := runCLI(t, "check", "../../policies", "../../examples/bundles/parameter-rules")
	want := `bundles ../../policies and ../../examples/bundles/parameter-rules have overlapping roots "mcp/authz" and "mcp/authz"`
	if code != 1 || strings.TrimSpace(errOut) != want {
		t.Errorf("exit %d\nstdout: %s\nstderr: %s\nwant: %s", code, out, errOut, want)
	}
	bare := t.TempDir()
	if err := os.WriteFile(filepath.Join(bare, "x.rego"), []byte("package x\n\ny := 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, errOut = runCLI(t, "check", "../../policies", bare)
	if !strings.Contains(errOut, "("+bare+" has no manifest roots, so it owns every root: list its roots in its .manifest)") {
		t.Errorf("stderr: %s", errOut)
	}
}

// TestAPIKeyCreateSaysWhichFiles: apikey create says that only data.json
// and data.yaml are read.
func TestAPIKeyCreateSaysWhichFiles(t *testing.T) {
	_, out, _ := runCLI(t, "apikey", "create", "--sub", "ci-bot")
	if !strings.Contains(out, "mcpauthz/api_keys/data.json") || !strings.Contains(out, "named data.json and data.yaml") {
		t.Errorf("output:\n%s", out)
	}
}
