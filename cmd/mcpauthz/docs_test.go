package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	shBlock     = regexp.MustCompile("(?s)```sh\n(.*?)```")
	placeholder = regexp.MustCompile(`<[A-Za-z]`)
)

// offline says whether a shell block of the docs can run here: every
// command is the mcpauthz binary (or sets up for it), none serves forever,
// and none holds a placeholder.
func offline(block string) bool {
	for _, bad := range []string{"REQ.json", "…", "mcpauthz serve", "grpcurl", "docker", "make ", "go install", "curl"} {
		if strings.Contains(block, bad) {
			return false
		}
	}
	if placeholder.MatchString(block) {
		return false
	}
	joined := strings.ReplaceAll(block, "\\\n", " ")
	n := 0
	for _, line := range strings.Split(joined, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		switch {
		case strings.HasPrefix(line, "bin/mcpauthz "),
			strings.HasPrefix(line, "TOKEN=$(bin/mcpauthz "),
			strings.HasPrefix(line, "export MCPAUTHZ_DEV_KEY="):
			n++
		default:
			return false
		}
	}
	return n > 0
}

// TestDocCommands runs every shell block of the README and docs/ that can
// run offline, from a directory laid out like the repository with the
// binary in bin/.
func TestDocCommands(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the real binary")
	}
	docs, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	docs = append([]string{"../../README.md"}, docs...)
	type block struct{ doc, text string }
	var blocks []block
	for _, d := range docs {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range shBlock.FindAllStringSubmatch(string(b), -1) {
			if offline(m[1]) {
				blocks = append(blocks, block{filepath.Base(d), m[1]})
			}
		}
	}
	if len(blocks) < 4 {
		t.Fatalf("only %d runnable blocks found in the docs", len(blocks))
	}

	bin := buildBinary(t)
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(bin, filepath.Join(root, "bin", "mcpauthz")); err != nil {
		t.Fatal(err)
	}
	// Copies, not links: a block may rewrite files (fmt).
	for _, dir := range []string{"examples", "policies"} {
		if err := os.CopyFS(filepath.Join(root, dir), os.DirFS(filepath.Join("../..", dir))); err != nil {
			t.Fatal(err)
		}
	}
	for i, b := range blocks {
		t.Run(b.doc+"_"+string(rune('a'+i)), func(t *testing.T) {
			cmd := exec.Command("bash", "-euo", "pipefail", "-c", b.text)
			cmd.Dir = root
			cmd.Env = append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(t.TempDir(), "dev.pem"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Errorf("%s block failed: %v\n%s\n--- output:\n%s", b.doc, err, b.text, out)
			}
		})
	}
}
