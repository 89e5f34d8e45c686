package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestTestWatch: test --watch runs the tests, then again when a policy
// file changes, until its context ends.
func TestTestWatch(t *testing.T) {
	dir := policyBundle(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := &syncBuffer{}
	done := make(chan int, 1)
	go func() { done <- run(ctx, []string{"test", dir, "--watch"}, out, out) }()

	waitFor := func(what string, ok func(string) bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !ok(out.String()) {
			if time.Now().After(deadline) {
				t.Fatalf("no %s:\n%s", what, out.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor("first run", func(s string) bool { return strings.Contains(s, "watching for changes") })
	if !strings.Contains(out.String(), "FAIL: 1/3") {
		t.Fatalf("first run:\n%s", out.String())
	}
	// Fix the failing test: allow write_file too.
	fixed := `package mcp.authz

default allow := false

allow if input.mcp.method in {"tools/list", "tools/call"}
`
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFor("second run", func(s string) bool {
		return strings.Contains(s, "running the tests again") && strings.Contains(s, "PASS: 3/3")
	})
	cancel()
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("exit %d after interrupt", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("test --watch did not stop with its context")
	}
}
