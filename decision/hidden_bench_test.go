package decision_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// BenchmarkShippedToolsCall is an allowed tools/call under the policy
// mcpauthz ships (policies/): with its visible rule, every allowed call
// also asks whether the caller may see the tool (lists and calls agree).
// trivial_visible replaces that rule with `visible := true` (what asking
// costs whatever the rule), without_visible leaves it out: the differences
// are what the check costs.
func BenchmarkShippedToolsCall(b *testing.B) {
	for _, tc := range []struct{ name, visible string }{
		{"with_visible", "visible.rego"},
		{"trivial_visible", ""},
		{"without_visible", "-"},
	} {
		b.Run(tc.name, func(b *testing.B) {
			dir := b.TempDir()
			files := map[string]string{"authz.rego": "", "data.json": "", "visible.rego": "package mcp.authz\nvisible := true\n"}
			switch tc.visible {
			case "-":
				delete(files, "visible.rego")
			case "visible.rego":
				files["visible.rego"] = ""
			}
			for f, text := range files {
				if text == "" {
					src, err := os.ReadFile(filepath.Join("..", "policies", f))
					if err != nil {
						b.Fatal(err)
					}
					text = string(src)
				}
				if err := os.WriteFile(filepath.Join(dir, f), []byte(text), 0o644); err != nil {
					b.Fatal(err)
				}
			}
			e := decisiontest.NewEngine(b, dir, nil)
			r := &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
				Body:       []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"search","arguments":{"q":"x"}}}`),
				Credential: token.Claimed(map[string]any{"sub": "alice", "scope": "mcp:tools"}),
				Headers:    map[string]string{"content-type": "application/json", "mcp-protocol-version": "2025-06-18"}}
			ctx := context.Background()
			if d := e.Decide(ctx, r); !d.Allow {
				b.Fatalf("not allowed: %s %s", d.Code, d.Reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				e.Decide(ctx, r)
			}
		})
	}
}
