package main

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestDemoLeavesNoKey runs examples/demo.sh with the real binary and
// checks that it prints an allowed and a denied decision and removes the
// temporary directory that held its development key.
func TestDemoLeavesNoKey(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	bin := buildBinary(t)
	tmp := t.TempDir()
	cmd := exec.Command("bash", "examples/demo.sh")
	cmd.Dir = "../.."
	env := []string{"MCPAUTHZ=" + bin, "TMPDIR=" + tmp}
	for _, e := range os.Environ() {
		if !strings.HasPrefix(e, "MCPAUTHZ_DEV_KEY=") && !strings.HasPrefix(e, "TMPDIR=") {
			env = append(env, e)
		}
	}
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("demo.sh: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), `"allow": true`) || !strings.Contains(string(out), `"allow": false`) {
		t.Errorf("demo output:\n%s", out)
	}
	left, err := os.ReadDir(tmp)
	if err != nil {
		t.Fatal(err)
	}
	if len(left) != 0 {
		t.Errorf("demo.sh left %d entries in TMPDIR (%s...)", len(left), left[0].Name())
	}
}
