package proxy_test

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/mcptest"
	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// resultRule redacts AWS access key ids for everyone and withholds
// search's results from bob.
const resultRule = `package mcp.authz

result := {"withhold": "search results are not for bob"} if {
	input.token.subject == "bob"
	input.mcp.tool.name == "search"
}

result := {"redact": [{"pattern": "AKIA[0-9A-Z]{16}", "with": "[aws-key]", "name": "aws_access_key"}]} if {
	not input.token.subject == "bob"
}

result := {"redact": [{"pattern": "AKIA[0-9A-Z]{16}", "with": "[aws-key]", "name": "aws_access_key"}]} if {
	input.token.subject == "bob"
	input.mcp.tool.name != "search"
}
`

// newResultEngine is newEngine on the scenario's policy with rule added.
func newResultEngine(t testing.TB, rule string, ob decision.Observer) *decision.Engine {
	t.Helper()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join(mcptest.PolicyDir(), "authz.rego"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"authz.rego": src, "result.rego": []byte(rule)} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return decisiontest.NewEngine(t, dir, func(o *decision.Options) { o.Tokens = tokens; o.Observer = ob })
}

// echoResult is the server's answer to call id with text as its text and
// structured content.
func echoResult(id int, text string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": map[string]any{
		"content":           []any{map[string]any{"type": "text", "text": text}},
		"structuredContent": map[string]any{"echo": text, "AKIAIOSFODNN7EXAMPLE": 1},
	}})
	return string(b)
}

const awsKey = "AKIAIOSFODNN7EXAMPLE"

// TestResultRule: the result rule judges the answer to a call, as JSON or
// as the one SSE event answering it: a secret is redacted from every text
// (never from a key), a result the rule withholds becomes a tool error
// with the same id, and what cannot be judged is withheld with a JSON-RPC
// error naming the decision.
func TestResultRule(t *testing.T) {
	ob := &resultLog{}
	e := newResultEngine(t, resultRule, ob)
	sse := func(events ...string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, ev := range events {
				_, _ = w.Write([]byte(ev))
				w.(http.Flusher).Flush()
			}
		}
	}
	progress := `{"jsonrpc":"2.0","method":"notifications/message","params":{"data":"` + awsKey + `"}}`
	tests := map[string]struct {
		tok, body string
		answer    func(http.ResponseWriter, *http.Request)
		max       int
		want      []string
		not       []string
	}{
		"json_redacted": {tok: "alice", body: call(9, "echo", `{"text":"k"}`), answer: jsonAnswer(echoResult(9, "key "+awsKey+" here")),
			want: []string{`"text":"key [aws-key] here"`, `"echo":"key [aws-key] here"`, `"id":9`, `"AKIAIOSFODNN7EXAMPLE":1`},
			not:  []string{"key " + awsKey}},
		"sse_redacted_other_events_pass": {tok: "alice", body: call(9, "echo", `{"text":"k"}`),
			answer: sse("data: "+progress+"\n\n", "id: 1\ndata: "+echoResult(9, awsKey)+"\n\n"),
			want:   []string{"data: " + progress + "\n\n", "id: 1\ndata: ", `"text":"[aws-key]"`},
			not:    []string{`"text":"` + awsKey}},
		"nothing_matched_unchanged": {tok: "alice", body: call(9, "echo", `{"text":"k"}`), answer: jsonAnswer(echoResult(9, "plain")),
			want: []string{echoResult(9, "plain")}},
		"withheld_tool_error": {tok: "bob", body: call(4, "search", `{"q":"x"}`), answer: jsonAnswer(echoResult(4, "found")),
			want: []string{`"id":4`, `"isError":true`, "search results are not for bob"}, not: []string{"found"}},
		"other_subject_passes": {tok: "alice", body: call(4, "search", `{"q":"x"}`), answer: jsonAnswer(echoResult(4, "found")),
			want: []string{`"text":"found"`}},
		"unreadable_withheld": {tok: "alice", body: call(9, "echo", `{"text":"k"}`), answer: jsonAnswer(`{"jsonrpc":"2.0","id":9,"result":{"content":[}`),
			want: []string{`"id":9`, `"code":-32603`, "the result was withheld", "(decision "}},
		"too_large_withheld": {tok: "alice", body: call(9, "echo", `{"text":"k"}`), answer: jsonAnswer(echoResult(9, strings.Repeat("x", 300))), max: 200,
			want: []string{`"id":9`, "larger than limits.max_result_bytes"}, not: []string{"xxxx"}},
		"sse_too_large_withheld": {tok: "alice", body: call(9, "echo", `{"text":"k"}`), answer: sse("data: " + echoResult(9, strings.Repeat(awsKey, 30)) + "\n\n"), max: 200,
			want: []string{`"id":9`, "larger than limits.max_result_bytes"}, not: []string{"[aws-key]", `"text":"` + awsKey}},
		"duplicate_key_withheld": {tok: "alice", body: call(9, "echo", `{"text":"k"}`),
			answer: jsonAnswer(`{"jsonrpc":"2.0","id":9,"result":{"content":[]},"result":{"content":[{"type":"text","text":"` + awsKey + `"}]}}`),
			want:   []string{"the result was withheld"}, not: []string{awsKey}},
		"second_answer_dropped": {tok: "alice", body: call(9, "echo", `{"text":"k"}`),
			answer: sse("data: "+echoResult(9, "one")+"\n\n", "data: "+echoResult(9, awsKey)+"\n\n"),
			want:   []string{`"text":"one"`}, not: []string{`"text":"` + awsKey}},
	}
	outcomes := map[string]string{
		"json_redacted": decision.ResultRedacted, "sse_redacted_other_events_pass": decision.ResultRedacted,
		"nothing_matched_unchanged": decision.ResultPassed, "withheld_tool_error": decision.ResultWithheld,
		"other_subject_passes": decision.ResultPassed, "unreadable_withheld": decision.ResultFailed,
		"too_large_withheld": decision.ResultFailed, "sse_too_large_withheld": decision.ResultFailed,
		"duplicate_key_withheld": decision.ResultFailed, "second_answer_dropped": decision.ResultPassed,
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url, _ := start(t, e, tc.answer, func(o *proxy.Options) { o.MaxResultBytes = tc.max })
			resp := post(t, url, tc.tok, tc.body)
			got := readAll(t, resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("answer %s\nwant %q in it", got, w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(got, n) {
					t.Errorf("answer %s\nholds %q", got, n)
				}
			}
			if o := ob.last(); o == nil || o.Outcome != outcomes[name] {
				t.Errorf("outcome observed %+v, want %s", o, outcomes[name])
			}
		})
	}
}

// resultLog records the result outcomes the engine reports.
type resultLog struct {
	mu   sync.Mutex
	outs []decision.ResultOutcome
}

func (l *resultLog) Observe(context.Context, *decision.Request, *decision.Decision, ast.Value, time.Duration) {
}

func (l *resultLog) ObserveResult(_ context.Context, _ *decision.Decision, o *decision.ResultOutcome) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.outs = append(l.outs, *o)
}

func (l *resultLog) last() *decision.ResultOutcome {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.outs) == 0 {
		return nil
	}
	o := l.outs[len(l.outs)-1]
	l.outs = nil
	return &o
}

// TestNoResultRule: without a result rule the answer to a call goes on
// untouched, secret and all (the rule is what redacts).
func TestNoResultRule(t *testing.T) {
	url, _ := start(t, newEngine(t, nil), jsonAnswer(echoResult(9, awsKey)), nil)
	got := readAll(t, post(t, url, "alice", call(9, "echo", `{"text":"k"}`)).Body)
	if got != echoResult(9, awsKey) {
		t.Errorf("answer %s, want it untouched", got)
	}
}

// TestResultSecretsLibrary: a rule that redacts the shipped secrets
// library (data.mcpauthz.lib.secrets, added to a bundle that does not
// define it) takes every kind of secret out of a result.
func TestResultSecretsLibrary(t *testing.T) {
	e := newResultEngine(t, "package mcp.authz\n\nresult := {\"redact\": data.mcpauthz.lib.secrets.redact}\n", nil)
	secrets := map[string]string{
		"aws_access_key": awsKey,
		"github_token":   "ghp_" + strings.Repeat("Ab12", 9),
		"private_key":    "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\n-----END PRIVATE KEY-----",
		"mcpk_key":       "mcpk_0123456789abcdefghij",
	}
	var text strings.Builder
	for _, s := range secrets {
		text.WriteString("[" + s + "]\n")
	}
	url, _ := start(t, e, jsonAnswer(echoResult(3, text.String())), nil)
	got := readAll(t, post(t, url, "alice", call(3, "echo", `{"text":"k"}`)).Body)
	for name, s := range secrets {
		if strings.Contains(got, "["+strings.ReplaceAll(s, "\n", `\n`)+"]") {
			t.Errorf("%s not redacted: %s", name, got)
		}
		if !strings.Contains(got, "[REDACTED:"+name+"]") {
			t.Errorf("no [REDACTED:%s] in %s", name, got)
		}
	}
}
