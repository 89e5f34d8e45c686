package decisionlog_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
)

// TestConsoleText: console_format text writes one line per decision for a
// person (verdict, status, code, id, method, tool, subject, reason), and
// the JSON events still go to the other sink.
func TestConsoleText(t *testing.T) {
	alice := token.Claimed(map[string]any{"iss": "https://auth.example.com", "aud": decisiontest.Resource, "sub": "alice",
		"scope": "mcp:tools files:read", "exp": float64(time.Now().Add(time.Hour).Unix())})
	tests := map[string]struct {
		body string
		cred token.Credential
		want string // the line, with <id> for the decision id
	}{
		"allowed_call":    {`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.txt"}}}`, alice, `ALLOW allowed id=<id> method=tools/call tool=read_file subject=alice`},
		"argument_denied": {`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}`, alice, `DENY 200 policy_denied id=<id> method=tools/call tool=read_file subject=alice reason="read_file may only read under /data/"`},
		"unauthenticated": {`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, token.Credential{Kind: token.NoCredential}, `DENY 401 unauthenticated id=<id> method=tools/list reason="authentication required: no bearer token"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var text, events syncBuffer
			dl, err := decisionlog.New(decisionlog.Options{Console: true, ConsoleFormat: decisionlog.ConsoleText, TextWriter: &text, Writer: &events})
			if err != nil {
				t.Fatal(err)
			}
			e := decisiontest.NewEngine(t, "../../decision/testdata/policy", func(o *decision.Options) { o.Observer = dl })
			d := e.Decide(context.Background(), &decision.Request{Method: "POST", Path: "/mcp", Host: "mcp.example.com",
				Headers: map[string]string{"content-type": "application/json"}, Body: []byte(tc.body), Credential: tc.cred})
			if err := dl.Close(); err != nil {
				t.Fatal(err)
			}
			if want := strings.ReplaceAll(tc.want, "<id>", d.ID) + "\n"; text.b.String() != want {
				t.Errorf("console line\n got %q\nwant %q", text.b.String(), want)
			}
			if !strings.Contains(events.b.String(), `"decision_id":"`+d.ID+`"`) {
				t.Errorf("the JSON event is missing beside the console line: %q", events.b.String())
			}
		})
	}
}

// TestConsoleFormatUnknown: a console format that is neither json nor
// text is refused, naming both.
func TestConsoleFormatUnknown(t *testing.T) {
	_, err := decisionlog.New(decisionlog.Options{Console: true, ConsoleFormat: "yaml"})
	if err == nil || !strings.Contains(err.Error(), `console format "yaml" is not json or text`) {
		t.Fatalf("error %v", err)
	}
}

// TestResultEvent: what the result rule did with an answer is an event
// under the call's decision id (outcome, method, redaction names and
// counts, the reason), never the text matched, and one console line.
func TestResultEvent(t *testing.T) {
	var text, events syncBuffer
	dl, err := decisionlog.New(decisionlog.Options{Console: true, ConsoleFormat: decisionlog.ConsoleText, TextWriter: &text, Writer: &events})
	if err != nil {
		t.Fatal(err)
	}
	d := &decision.Decision{ID: "d-1", Allow: true, Tool: "echo", Revision: "r1"}
	dl.ObserveResult(context.Background(), d, &decision.ResultOutcome{Judged: true, Outcome: decision.ResultRedacted,
		Method: "tools/call", Counts: map[string]int{"aws_access_key": 2, "jwt": 1}})
	dl.ObserveResult(context.Background(), d, &decision.ResultOutcome{Judged: true, Outcome: decision.ResultWithheld,
		Method: "tools/call", Reason: "env dumps are for admins"})
	if err := dl.Close(); err != nil {
		t.Fatal(err)
	}
	wantText := "RESULT redacted id=d-1 method=tools/call redacted.aws_access_key=2 redacted.jwt=1\n" +
		`RESULT withheld id=d-1 method=tools/call reason="env dumps are for admins"` + "\n"
	if text.b.String() != wantText {
		t.Errorf("console\n got %q\nwant %q", text.b.String(), wantText)
	}
	for _, want := range []string{
		`"decision_id":"d-1","path":"mcpauthz/result","result":{"method":"tools/call","outcome":"redacted","redactions":{"aws_access_key":2,"jwt":1},"tool":"echo"}`,
		`"result":{"method":"tools/call","outcome":"withheld","reason":"env dumps are for admins","tool":"echo"}`,
	} {
		if !strings.Contains(events.b.String(), want) {
			t.Errorf("events %s\nwant %s", events.b.String(), want)
		}
	}
}
