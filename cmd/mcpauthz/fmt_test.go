package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFmt(t *testing.T) {
	dir := t.TempDir()
	ugly := filepath.Join(dir, "sub", "ugly.rego")
	if err := os.MkdirAll(filepath.Dir(ugly), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(ugly, []byte("package x\nallow if {input.a==1}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	const formatted = "package x\n\nallow if input.a == 1\n"

	code, out, errOut := runCLI(t, "fmt", "--check", dir)
	if code != 1 || out != ugly+"\n" || !strings.Contains(errOut, "1 file(s) need formatting") {
		t.Fatalf("fmt --check: exit %d\nstdout: %s\nstderr: %s", code, out, errOut)
	}
	if b, _ := os.ReadFile(ugly); string(b) == formatted {
		t.Fatal("fmt --check wrote the file")
	}
	if code, out, _ := runCLI(t, "fmt", dir); code != 0 || out != ugly+"\n" {
		t.Fatalf("fmt: exit %d: %s", code, out)
	}
	if b, _ := os.ReadFile(ugly); string(b) != formatted {
		t.Fatalf("formatted file:\n%s", b)
	}
	if code, out, errOut := runCLI(t, "fmt", "--check", dir); code != 0 || out != "" {
		t.Fatalf("fmt --check after fmt: exit %d\n%s%s", code, out, errOut)
	}
	// The shipped policies are formatted.
	if code, out, errOut := runCLI(t, "fmt", "--check", "../../policies", "../../examples/bundles"); code != 0 {
		t.Errorf("shipped policies need formatting: %s%s", out, errOut)
	}
	// A parse error names the file and line.
	bad := filepath.Join(dir, "bad.rego")
	if err := os.WriteFile(bad, []byte("package x\nallow if {\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := runCLI(t, "fmt", "--check", bad); code != 1 || !strings.Contains(errOut, bad+":") {
		t.Errorf("parse error: exit %d: %s", code, errOut)
	}
	if code, _, errOut := runCLI(t, "fmt"); code != 2 || !strings.Contains(errOut, "name at least one .rego file or directory") {
		t.Errorf("no path: exit %d: %s", code, errOut)
	}
}
