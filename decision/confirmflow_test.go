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
