package decision_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// paddedPing returns a ping whose body is exactly n bytes.
func paddedPing(n int) string {
	const head, tail = `{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"`, `"}}`
	return head + strings.Repeat("x", n-len(head)-len(tail)) + tail
}

// TestBodyLimit: a body of exactly limits.max_body_bytes is decided, one
// byte more is refused with 413 before it is parsed.
func TestBodyLimit(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", nil)
	tests := map[string]struct {
		size   int
		allow  bool
		status int
	}{
		"at_limit":       {decision.DefaultMaxBodyBytes, true, 0},
		"one_past_limit": {decision.DefaultMaxBodyBytes + 1, false, 413},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			body := paddedPing(tc.size)
			if len(body) != tc.size {
				t.Fatalf("body is %d bytes, want %d", len(body), tc.size)
			}
			d := e.Decide(context.Background(), post(body, claims("alice", "")))
			if d.Allow != tc.allow || (!tc.allow && d.Status != tc.status) {
				t.Fatalf("allow %v status %d (%s: %s), want allow %v status %d", d.Allow, d.Status, d.Code, d.Reason, tc.allow, tc.status)
			}
		})
	}
}
