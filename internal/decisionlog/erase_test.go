package decisionlog

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
)

// testJWT is JWT-shaped and valid nowhere.
const testJWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

// TestEventErasesCredentials covers issue 27 row 10 and item 6: every
// string of a decision log event (the reason, input.mcp.session_id, any
// other value or key of the input) passes through the credential erasure,
// on the direct path and on the general one (a key that holds a JWT).
func TestEventErasesCredentials(t *testing.T) {
	tests := map[string]string{
		"direct":  `{"mcp": {"session_id": "` + testJWT + `", "meta": {"note": "sent Basic ZGVwbG95Omh1bnRlcjI="}}, "http": {"headers": {"origin": "` + testJWT + `"}}}`,
		"general": `{"mcp": {"session_id": "` + testJWT + `", "meta": {"` + testJWT + `": "x"}}}`,
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			var buf bytes.Buffer
			l, err := New(Options{Writer: &buf})
			if err != nil {
				t.Fatal(err)
			}
			d := &decision.Decision{ID: "d1", Code: "origin_not_allowed", Reason: `origin "` + testJWT + `" is not allowed`, Status: 403}
			l.Observe(context.Background(), nil, d, ast.MustParseTerm(doc).Value, time.Millisecond)
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			out := buf.String()
			for _, secret := range []string{testJWT, "ZGVwbG95Omh1bnRlcjI="} {
				if strings.Contains(out, secret) {
					t.Errorf("event holds %q: %s", secret, out)
				}
			}
			for _, want := range []string{`"session_id":"REDACTED"`, `"reason":"origin \"REDACTED\" is not allowed"`} {
				if !strings.Contains(out, want) {
					t.Errorf("event lacks %s: %s", want, out)
				}
			}
		})
	}
}
