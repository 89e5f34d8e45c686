package decision_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/confirm"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/state"
)

// confirmEngine is an engine on testdata/confirm with a key ring and a
// memory store, unless bare.
func confirmEngine(t testing.TB, bare bool) (*decision.Engine, *confirm.Ring) {
	t.Helper()
	ring, err := confirm.NewRing([]confirm.Key{{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)}}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	e := decisiontest.NewEngine(t, "testdata/confirm", func(o *decision.Options) {
		if !bare {
			o.Confirm, o.ConfirmState = ring, state.NewMemory(0, nil)
		}
	})
	return e, ring
}

// deleteCall is a tools/call of delete_file on path with capabilities caps
// (params._meta of 2026-07-28 when v is that revision), and extra params
// members (a retry's) before _meta.
func deleteCall(v, path, caps, extra string) *decision.Request {
	meta := ""
	if v == decision.Version20260728 {
		meta = `,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":` + caps + `}`
	}
	body := fmt.Sprintf(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"delete_file","arguments":{"path":%q}%s%s}}`, path, extra, meta)
	r := post(body, claims("alice", "mcp:tools"))
	r.Headers["mcp-protocol-version"] = v
	if v == decision.Version20260728 {
		r.Headers["mcp-method"] = "tools/call"
		r.Headers["mcp-name"] = "delete_file"
	}
	return r
}

const formCaps = `{"elicitation":{"form":{}}}`

// TestConfirmAsks: a call the policy allows once confirmed is never
// allowed outright; a 2026-07-28 client that declares form elicitation
// gets input_required with mcpauthz's form and a sealed state, any other
// gets a refusal that says confirmation is needed, with the envelope.
func TestConfirmAsks(t *testing.T) {
	e, _ := confirmEngine(t, false)
	bare, _ := confirmEngine(t, true)
	const refusedTool = `{"jsonrpc":"2.0","id":7,"result":{"content":[{"type":"text","text":"confirmation needed: Delete /etc/passwd? (%s)"}],"isError":true,` +
		`"_meta":{"io.modelcontextprotocol/authorization":{"reason":"insufficient_authorization","remediation":"unavailable"}}}}`
	tests := map[string]struct {
		engine *decision.Engine
		req    *decision.Request
		asked  bool
		body   string // exact, when not asked
	}{
		"form_elicitation":          {req: deleteCall(decision.Version20260728, "/etc/passwd", formCaps, ""), asked: true},
		"empty_elicitation_is_form": {req: deleteCall(decision.Version20260728, "/etc/passwd", `{"elicitation":{}}`, ""), asked: true},
		"url_elicitation_only": {req: deleteCall(decision.Version20260728, "/etc/passwd", `{"elicitation":{"url":{}}}`, ""),
			body: fmt.Sprintf(refusedTool, "the client does not declare form elicitation")},
		"no_capabilities": {req: deleteCall(decision.Version20260728, "/etc/passwd", `{}`, ""),
			body: fmt.Sprintf(refusedTool, "the client does not declare form elicitation")},
		"older_revision": {req: deleteCall("2025-06-18", "/etc/passwd", "", ""),
			body: fmt.Sprintf(refusedTool, "asking needs MCP 2026-07-28; this request speaks 2025-06-18")},
		"no_keys_configured": {engine: bare, req: deleteCall(decision.Version20260728, "/etc/passwd", formCaps, ""),
			body: fmt.Sprintf(refusedTool, "this server has no confirm.keys configured")},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			eng := e
			if tc.engine != nil {
				eng = tc.engine
			}
			d := eng.Decide(context.Background(), tc.req)
			if d.Allow || d.Code != decision.CodeConfirmationRequired || d.Status != 200 {
				t.Fatalf("allow %v code %s status %d (%s); want a confirmation_required answer", d.Allow, d.Code, d.Status, d.Reason)
			}
			if !tc.asked {
				if string(d.Body) != tc.body {
					t.Fatalf("body\n%s\nwant\n%s", d.Body, tc.body)
				}
				return
			}
			var got struct {
				ID     int `json:"id"`
				Result struct {
					ResultType    string `json:"resultType"`
					InputRequests map[string]struct {
						Method string `json:"method"`
						Params struct {
							Mode, Message   string
							RequestedSchema json.RawMessage
						} `json:"params"`
					} `json:"inputRequests"`
					RequestState string `json:"requestState"`
				} `json:"result"`
			}
			if err := json.Unmarshal(d.Body, &got); err != nil {
				t.Fatalf("%v: %s", err, d.Body)
			}
			ir, ok := got.Result.InputRequests[decision.ConfirmInputKey]
			if got.ID != 7 || got.Result.ResultType != "input_required" || !ok || len(got.Result.InputRequests) != 1 ||
				ir.Method != "elicitation/create" || ir.Params.Mode != "form" || ir.Params.Message != "Delete /etc/passwd?" ||
				!strings.Contains(string(ir.Params.RequestedSchema), `"confirm":{"type":"boolean"`) || got.Result.RequestState == "" {
				t.Fatalf("input_required answer %s", d.Body)
			}
		})
	}
	// Deleting under /tmp/ needs no confirmation.
	if d := e.Decide(context.Background(), deleteCall(decision.Version20260728, "/tmp/x", formCaps, "")); !d.Allow {
		t.Fatalf("/tmp/x: %s %s", d.Code, d.Reason)
	}
}

// sealedState returns the requestState of an input_required answer.
func sealedState(t *testing.T, d *decision.Decision) string {
	t.Helper()
	var got struct {
		Result struct {
			RequestState string `json:"requestState"`
		} `json:"result"`
	}
	if err := json.Unmarshal(d.Body, &got); err != nil || got.Result.RequestState == "" {
		t.Fatalf("not an input_required answer (%v): %s", err, d.Body)
	}
	return got.Result.RequestState
}

// retryOf is the retry of a delete of path carrying state and the
// elicitation result answer.
func retryOf(path, state, answer string) *decision.Request {
	extra := fmt.Sprintf(`,"inputResponses":{%q:%s},"requestState":%q`, decision.ConfirmInputKey, answer, state)
	return deleteCall(decision.Version20260728, path, formCaps, extra)
}

type downStore struct{}

func (downStore) Once(context.Context, string, time.Duration) (bool, error) {
	return false, fmt.Errorf("dial tcp 127.0.0.1:6379: connection refused")
}

// TestConfirmRetry: the retry that answers the form is decided again on
// input.mcp.confirmation, once; every hostile retry gets its exact answer.
func TestConfirmRetry(t *testing.T) {
	const accept = `{"action":"accept","content":{"confirm":true}}`
	type step struct {
		req    func(state string) *decision.Request
		allow  bool
		code   string
		status int
		reason string // a part of the reason
	}
	tests := map[string][]step{
		"accept_then_replay": {
			{req: func(s string) *decision.Request { return retryOf("/etc/passwd", s, accept) }, allow: true},
			{req: func(s string) *decision.Request { return retryOf("/etc/passwd", s, accept) },
				code: decision.CodeConfirmationRequired, status: 200, reason: "requestState was already used"},
		},
		"decline": {{req: func(s string) *decision.Request { return retryOf("/etc/passwd", s, `{"action":"decline"}`) },
			code: decision.CodePolicyDenied, status: 200, reason: "the user declined"}},
		"accept_unchecked": {{req: func(s string) *decision.Request {
			return retryOf("/etc/passwd", s, `{"action":"accept","content":{"confirm":false}}`)
		}, code: decision.CodePolicyDenied, status: 200, reason: "the user declined"}},
		"accept_string_true": {{req: func(s string) *decision.Request {
			return retryOf("/etc/passwd", s, `{"action":"accept","content":{"confirm":"true"}}`)
		}, code: decision.CodePolicyDenied, status: 200, reason: "the user declined"}},
		"same_tool_other_arguments": {{req: func(s string) *decision.Request { return retryOf("/etc/shadow", s, accept) },
			code: decision.CodeConfirmationRequired, status: 200, reason: "issued for another request"}},
		"another_principal": {{req: func(s string) *decision.Request {
			r := retryOf("/etc/passwd", s, accept)
			r.Credential = post("", claims("mallory", "mcp:tools")).Credential
			return r
		}, code: decision.CodeConfirmationRequired, status: 200, reason: "issued to another caller"}},
		"tampered": {{req: func(s string) *decision.Request {
			b := []byte(s)
			b[len(b)/2] ^= 1
			return retryOf("/etc/passwd", string(b), accept)
		}, code: decision.CodeConfirmationRequired, status: 200, reason: "requestState"}},
		"truncated": {{req: func(s string) *decision.Request { return retryOf("/etc/passwd", s[:len(s)-4], accept) },
			code: decision.CodeConfirmationRequired, status: 200, reason: "requestState"}},
		"no_state": {{req: func(string) *decision.Request {
			return deleteCall(decision.Version20260728, "/etc/passwd", formCaps, fmt.Sprintf(`,"inputResponses":{%q:%s}`, decision.ConfirmInputKey, accept))
		}, code: decision.CodeConfirmationRequired, status: 200, reason: "params.requestState is missing"}},
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			e, _ := confirmEngine(t, false)
			first := e.Decide(context.Background(), deleteCall(decision.Version20260728, "/etc/passwd", formCaps, ""))
			state := sealedState(t, first)
			for i, s := range steps {
				d := e.Decide(context.Background(), s.req(state))
				if d.Allow != s.allow || (!s.allow && (d.Code != s.code || d.Status != s.status || !strings.Contains(d.Reason, s.reason))) {
					t.Fatalf("step %d: allow %v code %s status %d reason %q; want allow %v code %s status %d reason with %q",
						i, d.Allow, d.Code, d.Status, d.Reason, s.allow, s.code, s.status, s.reason)
				}
			}
		})
	}
	// The shared state down: 503, never an allow.
	ring, _ := confirm.NewRing([]confirm.Key{{ID: "k1", Secret: bytes.Repeat([]byte{7}, 32)}}, time.Minute)
	e := decisiontest.NewEngine(t, "testdata/confirm", func(o *decision.Options) { o.Confirm, o.ConfirmState = ring, downStore{} })
	state := sealedState(t, e.Decide(context.Background(), deleteCall(decision.Version20260728, "/etc/passwd", formCaps, "")))
	if d := e.Decide(context.Background(), retryOf("/etc/passwd", state, accept)); d.Allow || d.Code != decision.CodeStateUnavailable || d.Status != 503 {
		t.Fatalf("store down: allow %v code %s status %d", d.Allow, d.Code, d.Status)
	}
}
