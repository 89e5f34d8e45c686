package decision_test

import (
	"context"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// FuzzDecide feeds any body and path to the whole engine: it must never
// panic, and nothing the parser refuses may ever be allowed.
func FuzzDecide(f *testing.F) {
	for _, seed := range []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a"}}}`,
		`[{"jsonrpc":"2.0","id":1,"method":"ping"},{"jsonrpc":"2.0","method":"notifications/initialized"}]`,
		`{"jsonrpc":"2.0","id":"x","result":{}}`,
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a"}},"method":"ping"}`,
		`{`, ``, `null`, `[]`,
	} {
		f.Add([]byte(seed), "/mcp")
	}
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`), "//mcp?access_token=x")
	e := decisiontest.NewEngine(f, "testdata/policy", nil)
	f.Fuzz(func(t *testing.T, body []byte, path string) {
		r := &decision.Request{
			Method: "POST", Path: path, Host: "mcp.example.com",
			Headers:    map[string]string{"content-type": "application/json"},
			Body:       body,
			Credential: token.Claimed(claims("alice", "mcp:tools files:read")),
		}
		d := e.Decide(context.Background(), r)
		if _, err := mcp.Parse(body); err != nil && d.Allow {
			t.Fatalf("allowed a body the parser refuses (%v): %q", err, body)
		}
		if !d.Allow && d.Status == 0 {
			t.Fatalf("a denial without a status: %+v", d)
		}
	})
}
