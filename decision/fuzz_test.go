package decision_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

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

// FuzzDecideHeaders feeds any value of the headers the engine reads beside
// the body (MCP-Protocol-Version, Mcp-Method, Mcp-Name, an Mcp-Param
// header, Origin, Mcp-Session-Id) with a 2026-07-28 or older body: the
// engine must never panic, every denial has a status, every string of the
// answer is UTF-8, and a header that disagrees with the body is never
// allowed.
func FuzzDecideHeaders(f *testing.F) {
	const call = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a"},` +
		`"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	f.Add(call, "2026-07-28", "tools/call", "read_file", "/data/a", "", "")
	f.Add(call, "2026-07-28", "tools/call", "=?base64?cmVhZF9maWxl?=", "=?base64?L2RhdGEvYQ==?=", "", "")
	f.Add(call, "2026-07-28", "TOOLS/CALL", "Read_File", "/etc/passwd", "https://evil.example", "s1")
	f.Add(call, "2025-11-25", "tools/call", "read_file\x00", "\xff", "null", "\xfe")
	f.Add(`{"jsonrpc":"2.0","id":1,"method":"ping"}`, "", "", "", "", "", "")
	f.Add(call, "2026-07-28", "tools/call", "=?base64?", "=?base64?!!?=", "https://mcp.example.com", "")
	e := decisiontest.NewEngine(f, "testdata/policy", nil)
	f.Fuzz(func(t *testing.T, body, version, method, name, param, origin, session string) {
		headers := map[string]string{"content-type": "application/json"}
		for k, v := range map[string]string{"mcp-protocol-version": version, "mcp-method": method, "mcp-name": name,
			"mcp-param-path": param, "origin": origin, "mcp-session-id": session} {
			if v != "" {
				headers[k] = v
			}
		}
		r := &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com", Headers: headers, Body: []byte(body),
			Credential: token.Claimed(claims("alice", "mcp:tools files:read"))}
		d := e.Decide(context.Background(), r)
		if !d.Allow && d.Status == 0 {
			t.Fatalf("a denial without a status: %+v", d)
		}
		for _, s := range []string{d.Reason, string(d.Body)} {
			if !utf8.ValidString(s) {
				t.Fatalf("the answer holds invalid UTF-8: %q", s)
			}
		}
		if _, err := mcp.Parse([]byte(body)); err != nil && d.Allow {
			t.Fatalf("allowed a body the parser refuses (%v): %q", err, body)
		}
		if d.Allow && method != "" && body == call && method != "tools/call" && !strings.HasPrefix(method, "=?base64?") {
			t.Fatalf("allowed a call whose Mcp-Method %q disagrees with the body", method)
		}
	})
}
