package proxy_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// TestListAnswerShapes: every list answer the server sends back is
// filtered for the caller, whatever the shape of the request and of the
// answer: a batch (issue 27 row 1), an id the server echoes in another
// form (row 2: matched by value; a string for a number, or another id,
// emptied), a GET resuming a stream with a body (row 3: replayed answers
// filtered by their shape), any content-type or none, a byte order mark
// (issue 28 row 10), cacheScope made private (issue 20 item 5).
func TestListAnswerShapes(t *testing.T) {
	e := newEngine(t, nil)
	server := toolsList(serverTools...)
	withID := func(id string) string { return strings.Replace(server, `"id":7`, `"id":`+id, 1) }
	sse := func(data string) string { return "event: message\nid: ev-1\ndata: " + data + "\n\n" }
	tests := map[string]struct {
		method, body string
		ct           []string // the answer's Content-Type headers
		answer       string
		want         string // in what the client receives
	}{
		"batch_json":         {body: "[" + listTools + "]", ct: []string{"application/json"}, answer: "[" + server + "]", want: aliceTools},
		"batch_sse":          {body: `[{"jsonrpc":"2.0","id":1,"method":"ping"},` + listTools + `]`, ct: []string{"text/event-stream"}, answer: sse(`[{"jsonrpc":"2.0","id":1,"result":{}},` + server + `]`), want: aliceTools},
		"batch_sse_events":   {body: `[` + listTools + `]`, ct: []string{"text/event-stream"}, answer: sse(server), want: aliceTools},
		"id_7_0":             {body: `{"jsonrpc":"2.0","id":7.0,"method":"tools/list"}`, ct: []string{"application/json"}, answer: server, want: aliceTools},
		"id_7e0":             {body: `{"jsonrpc":"2.0","id":7e0,"method":"tools/list"}`, ct: []string{"text/event-stream"}, answer: sse(server), want: aliceTools},
		"string_for_number":  {body: listTools, ct: []string{"application/json"}, answer: withID(`"7"`), want: `"tools":[]`},
		"other_id":           {body: listTools, ct: []string{"text/event-stream"}, answer: sse(withID("8")), want: `"tools":[]`},
		"get_with_body":      {method: "GET", body: `{"jsonrpc":"2.0","id":999,"method":"tools/list"}`, ct: []string{"text/event-stream"}, answer: sse(server)},
		"no_content_type":    {body: listTools, answer: server, want: aliceTools},
		"content_type_twice": {body: listTools, ct: []string{"text/event-stream", "application/json"}, answer: server, want: aliceTools},
		"json_and_junk":      {body: listTools, ct: []string{"application/json x"}, answer: server, want: aliceTools},
		"json_comma_text":    {body: listTools, ct: []string{"application/json, text/plain"}, answer: server, want: aliceTools},
		"sse_as_json":        {body: listTools, ct: []string{"application/json"}, answer: sse(server), want: aliceTools},
		"sse_bom":            {body: listTools, ct: []string{"text/event-stream"}, answer: "\xef\xbb\xbfdata: " + server + "\n\n", want: aliceTools},
		"cache_scope_public": {body: listTools, ct: []string{"application/json"}, answer: strings.Replace(server, `]}}`, `],"cacheScope":"public","ttlMs":300000}}`, 1), want: `"cacheScope":"private"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url, _ := start(t, e, func(w http.ResponseWriter, _ *http.Request) {
				if tc.ct != nil {
					w.Header()["Content-Type"] = tc.ct
				} else {
					w.Header()["Content-Type"] = nil // no sniffing by net/http
				}
				_, _ = io.WriteString(w, tc.answer)
			}, nil)
			method := tc.method
			if method == "" {
				method = http.MethodPost
			}
			resp := do(t, method, url, tc.body, "Content-Type", "application/json", "Accept", "application/json, text/event-stream")
			got := readAll(t, resp.Body)
			resp.Body.Close()
			for _, hidden := range []string{"delete_repo", "debug"} {
				if strings.Contains(got, hidden) {
					t.Fatalf("status %d, the client received %s: %q is hidden from alice", resp.StatusCode, got, hidden)
				}
			}
			if resp.StatusCode == http.StatusOK && !strings.Contains(got, tc.want) {
				t.Errorf("the client received %s, want %s in it", got, tc.want)
			}
		})
	}
}

// do sends alice's request, resuming a stream (Last-Event-ID ev-0), with
// the headers given as name, value pairs; the caller closes the body.
func do(t *testing.T, method, url, body string, hdr ...string) *http.Response {
	t.Helper()
	return sendAs(t, method, url, "alice", body, append([]string{"Last-Event-ID", "ev-0"}, hdr...)...)
}

// TestListAnonymousCaller: under a policy that lets a caller without a
// credential list tools and call search, such a caller's list shows search
// (what its calls may use), as the call is decided; a credential that is
// sent and rejected still empties the list. Issue 20 item 4.
func TestListAnonymousCaller(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../decision/testdata/anonymous", func(o *decision.Options) { o.Tokens = tokens })
	url, _ := start(t, e, jsonAnswer(`{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"debug"},{"name":"search"}]}}`), nil)
	for name, tc := range map[string]struct{ tok, want string }{
		"no_credential": {want: `"tools":[{"name":"search"}]`},
		"rejected":      {tok: "forged", want: `"tools":[]`},
		"verified":      {tok: "alice", want: `"tools":[{"name":"debug"},{"name":"search"}]`},
	} {
		t.Run(name, func(t *testing.T) {
			resp := post(t, url, tc.tok, listTools)
			if got := readAll(t, resp.Body); resp.StatusCode != http.StatusOK || !strings.Contains(got, tc.want) {
				t.Fatalf("status %d: %s, want %s", resp.StatusCode, got, tc.want)
			}
			if tc.tok == "" {
				call := post(t, url, "", `{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{"name":"search","arguments":{}}}`)
				if call.StatusCode != http.StatusOK {
					t.Errorf("the call of search the list shows: status %d, want it allowed", call.StatusCode)
				}
			}
		})
	}
}
