package main

import (
	"bytes"
	"fmt"
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

// TestLogErasesCredentials: a service log line, in either format, holds
// no credential (issue 27 item 6, issue 28 item 5): not a JWT in the
// message or a value, not a URL's user info or signature, not one inside
// an error.
func TestLogErasesCredentials(t *testing.T) {
	const jwt = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	for _, format := range []string{"json", "text"} {
		t.Run(format, func(t *testing.T) {
			var b bytes.Buffer
			newLogger(&b, LogConfig{Level: "info", Format: format}).Warn("session "+jwt+" refused",
				"bundle", "http://deploy:hunter2@bundles.example.com/b.tar.gz?X-Amz-Signature=abc123",
				"error", fmt.Errorf("origin %q is not allowed", jwt))
			for _, secret := range []string{jwt, "hunter2", "abc123"} {
				if strings.Contains(b.String(), secret) {
					t.Errorf("log line holds %q: %s", secret, b.String())
				}
			}
			if !strings.Contains(b.String(), "REDACTED@bundles.example.com") {
				t.Errorf("log line: %s", b.String())
			}
		})
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

// TestCLIErrorErasesURL: a command that fails on a bundle URL names it
// without its user info and signature (issue 28 row 6): stderr is a log
// too.
func TestCLIErrorErasesURL(t *testing.T) {
	in := filepath.Join(t.TempDir(), "input.json")
	if err := os.WriteFile(in, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := runCLI(t, "eval", "--bundle", "http://deploy:hunter2@127.0.0.1:1/b.tar.gz?X-Amz-Signature=sigsecret", "--input-file", in)
	if code == 0 || strings.Contains(errOut, "hunter2") || strings.Contains(errOut, "sigsecret") || !strings.Contains(errOut, "REDACTED@127.0.0.1") {
		t.Errorf("exit %d, stderr:\n%s", code, errOut)
	}
}
