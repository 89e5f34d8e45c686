package decisionlog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
)

var update = flag.Bool("update", false, "rewrite the golden events under testdata/golden")

// TestGoldenEvents: the decision log events of an allowed call, a denial
// by an argument rule and a 401, with the volatile fields (decision id,
// timestamp, timer, revision, token expiry) normalised.
func TestGoldenEvents(t *testing.T) {
	claims := func(scopes string) token.Credential {
		return token.Claimed(map[string]any{"iss": "https://auth.example.com", "aud": decisiontest.Resource, "sub": "alice",
			"scope": scopes, "exp": float64(time.Now().Add(time.Hour).Unix())})
	}
	tests := map[string]struct {
		body string
		cred token.Credential
	}{
		"allowed_call":    {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.txt"}}}`, claims("mcp:tools files:read")},
		"argument_denied": {`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}`, claims("mcp:tools files:read")},
		"unauthenticated": {`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.txt"}}}`, token.Credential{Kind: token.NoCredential}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out syncBuffer
			dl, err := decisionlog.New(decisionlog.Options{Writer: &out})
			if err != nil {
				t.Fatal(err)
			}
			e := decisiontest.NewEngine(t, "../../decision/testdata/policy", func(o *decision.Options) { o.Observer = dl })
			e.Decide(context.Background(), &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
				Headers: map[string]string{"content-type": "application/json", "authorization": "Bearer secret"},
				Body:    []byte(tc.body), Credential: tc.cred})
			if err := dl.Close(); err != nil {
				t.Fatal(err)
			}
			var ev map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSpace(out.b.String())), &ev); err != nil {
				t.Fatal(err)
			}
			ev["decision_id"], ev["timestamp"] = "<id>", "<timestamp>"
			ev["metrics"] = map[string]any{"timer_server_handler_ns": "<ns>"}
			ev["bundles"] = map[string]any{"policy": map[string]any{"revision": "<revision>"}}
			if in, ok := ev["input"].(map[string]any); ok {
				if tok, ok := in["token"].(map[string]any); ok {
					if c, ok := tok["claims"].(map[string]any); ok && c["exp"] != nil {
						c["exp"] = "<exp>"
					}
					if tok["expires_at"] != nil {
						tok["expires_at"] = "<exp>"
					}
				}
			}
			var buf bytes.Buffer
			enc := json.NewEncoder(&buf)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(ev); err != nil {
				t.Fatal(err)
			}
			got := buf.Bytes()
			path := filepath.Join("testdata", "golden", name+".json")
			if *update {
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to write it)", err)
			}
			if diff := cmp.Diff(string(want), string(got)); diff != "" {
				t.Errorf("event (-golden +got):\n%s", diff)
			}
		})
	}
}
