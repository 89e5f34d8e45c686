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
// also asks whether the caller may see the tool (lists and calls agree);
// without_visible is the same policy with visible.rego left out, so the
// difference is what that check costs.
func BenchmarkShippedToolsCall(b *testing.B) {
	without := b.TempDir()
	for _, f := range []string{"authz.rego", "data.json"} {
		src, err := os.ReadFile(filepath.Join("..", "policies", f))
		if err != nil {
			b.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(without, f), src, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	for _, tc := range []struct{ name, dir string }{
		{"with_visible", filepath.Join("..", "policies")},
		{"without_visible", without},
	} {
		b.Run(tc.name, func(b *testing.B) {
			e := decisiontest.NewEngine(b, tc.dir, nil)
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
