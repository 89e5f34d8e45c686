package extproc_test

import (
	"strings"
	"testing"

	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/extproc"
)

// TestListAnswerShapes: list answers are filtered whatever their
// content-type says (missing, repeated as Envoy joins it, with junk after
// it, a list of types), an event stream starting with a byte order mark,
// a batch request, an answer whose id is the string "7" for the request
// id 7 (emptied): issue 28 row 10; a GET carrying a body gets its stream
// filtered as a replay (issue 27 row 3).
func TestListAnswerShapes(t *testing.T) {
	c := client(t)
	answer := toolsList("search", "delete_repo")
	sse := func(data string) string { return "event: message\ndata: " + data + "\n\n" }
	shown := `"tools":[{"name":"search"`
	tests := map[string]struct {
		method, request string
		headers         []string // the answer's headers after :status
		chunks          []string
		want            string
	}{
		"no_content_type":    {chunks: []string{answer}, want: shown},
		"content_type_twice": {headers: []string{"content-type", "text/event-stream", "content-type", "application/json"}, chunks: []string{answer[:20], answer[20:]}, want: shown},
		"json_and_junk":      {headers: []string{"content-type", "application/json x"}, chunks: []string{answer}, want: shown},
		"json_comma_text":    {headers: []string{"content-type", "application/json, text/plain"}, chunks: []string{answer}, want: shown},
		"sse_bom":            {headers: []string{"content-type", "text/event-stream"}, chunks: []string{"\xef\xbb", "\xbfdata: " + answer + "\n\n"}, want: shown},
		"sse_as_json":        {headers: []string{"content-type", "application/json"}, chunks: []string{sse(answer)}, want: shown},
		"batch_request":      {request: "[" + listTools + "]", headers: []string{"content-type", "application/json"}, chunks: []string{"[" + answer + "]"}, want: shown},
		"batch_request_sse":  {request: "[" + listTools + "]", headers: []string{"content-type", "text/event-stream"}, chunks: []string{sse(answer)}, want: shown},
		"string_id":          {headers: []string{"content-type", "application/json"}, chunks: []string{strings.Replace(answer, `"id":7`, `"id":"7"`, 1)}, want: `"tools":[]`},
		"get_with_body": {method: "GET", request: `{"jsonrpc":"2.0","id":999,"method":"tools/list"}`, headers: []string{"content-type", "text/event-stream"},
			chunks: []string{sse(answer)}, want: shown},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			x := open(t, c)
			request := tc.request
			if request == "" {
				request = listTools
			}
			var extra []string
			if tc.method != "" {
				extra = []string{":method", tc.method}
			}
			x.requestAs("alice", request, extra...)
			kv := append([]string{":status", "200"}, tc.headers...)
			x.send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &procv3.HttpHeaders{Headers: headers(kv...)}}})
			var got strings.Builder
			for i, ch := range tc.chunks {
				got.WriteString(x.chunk(ch, i == len(tc.chunks)-1))
			}
			out := got.String()
			if strings.Contains(out, "delete_repo") || !strings.Contains(out, tc.want) {
				t.Fatalf("Envoy passes on %q, want %s in it and no delete_repo", out, tc.want)
			}
		})
	}
}

// requestAs is request with the pseudo-headers overridable (a GET).
func (x *exchange) requestAs(tok, body string, pseudo ...string) {
	x.t.Helper()
	kv := map[string]string{":method": "POST", ":path": "/mcp", ":authority": "mcp.example.com"}
	for i := 0; i+1 < len(pseudo); i += 2 {
		kv[pseudo[i]] = pseudo[i+1]
	}
	h := []string{":method", kv[":method"], ":path", kv[":path"], ":authority", kv[":authority"], "content-type", "application/json", "authorization", "Bearer " + tok}
	x.send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_RequestHeaders{RequestHeaders: &procv3.HttpHeaders{Headers: headers(h...)}}})
	x.send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_RequestBody{RequestBody: &procv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
}

// TestListAnonymousCaller: under a policy that lets a caller without a
// credential list tools and call search, such a caller's list shows search,
// as its call is decided; a rejected credential still empties it. Issue 20
// item 4.
func TestListAnonymousCaller(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../decision/testdata/anonymous", func(o *decision.Options) { o.Tokens = tokens })
	c := procClient(decisiontest.Dial(t, func(s *grpc.Server) { extproc.NewServer(decision.NewItemFilter(e), nil).Register(s) }))
	for name, tc := range map[string]struct{ tok, want string }{
		"no_credential": {want: `"tools":[{"name":"search"}]`},
		"rejected":      {tok: "forged", want: `"tools":[]`},
	} {
		t.Run(name, func(t *testing.T) {
			x := open(t, c)
			x.request(tc.tok, listTools)
			x.responseHeaders("application/json")
			if out := x.chunk(`{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"debug"},{"name":"search"}]}}`, true); !strings.Contains(out, tc.want) {
				t.Fatalf("Envoy passes on %s, want %s", out, tc.want)
			}
		})
	}
}
