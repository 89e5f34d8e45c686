package extproc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/extproc"
)

var tokens = decisiontest.Tokens{
	// alice sees the tools read_file and search, the prompt summarize and
	// the resource file:///a.
	"alice": {"sub": "alice", "scope": "tool:read_file tool:search prompt:summarize resource:file:///a resource:file:///{path}"},
	"admin": {"sub": "root", "scope": "admin"},
}

func newEngine(t testing.TB) *decision.Engine {
	return decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) { o.Tokens = tokens })
}

// client opens a processing stream on a fresh server.
func client(t testing.TB) procv3.ExternalProcessorClient {
	t.Helper()
	e := newEngine(t)
	cc := decisiontest.Dial(t, func(s *grpc.Server) {
		extproc.NewServer(decision.NewItemFilter(e), nil).Register(s)
	})
	return procClient(cc)
}

func procClient(cc *grpc.ClientConn) procv3.ExternalProcessorClient {
	return procv3.NewExternalProcessorClient(cc)
}

// exchange is one HTTP stream as Envoy drives it: it sends each message
// and reads its answer before sending the next.
type exchange struct {
	t      testing.TB
	stream procv3.ExternalProcessor_ProcessClient
}

func open(t testing.TB, c procv3.ExternalProcessorClient) *exchange {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	s, err := c.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return &exchange{t: t, stream: s}
}

func (x *exchange) send(req *procv3.ProcessingRequest) *procv3.ProcessingResponse {
	x.t.Helper()
	if err := x.stream.Send(req); err != nil {
		x.t.Fatal(err)
	}
	resp, err := x.stream.Recv()
	if err != nil {
		x.t.Fatal(err)
	}
	return resp
}

// headers is a header map as current Envoy sends it: values in raw_value.
func headers(kv ...string) *corev3.HeaderMap {
	hm := &corev3.HeaderMap{}
	for i := 0; i < len(kv); i += 2 {
		hm.Headers = append(hm.Headers, &corev3.HeaderValue{Key: kv[i], RawValue: []byte(kv[i+1])})
	}
	return hm
}

// request sends the request headers (with the bearer token, "" for none)
// and the buffered body.
func (x *exchange) request(tok, body string, extra ...string) *procv3.ProcessingResponse {
	x.t.Helper()
	kv := []string{":method", "POST", ":path", "/mcp", ":authority", "mcp.example.com", "content-type", "application/json", "accept-encoding", "gzip"}
	if tok != "" {
		kv = append(kv, "authorization", "Bearer "+tok)
	}
	kv = append(kv, extra...)
	x.send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_RequestHeaders{RequestHeaders: &procv3.HttpHeaders{Headers: headers(kv...)}}})
	return x.send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_RequestBody{RequestBody: &procv3.HttpBody{Body: []byte(body), EndOfStream: true}}})
}

func (x *exchange) responseHeaders(contentType string, extra ...string) *procv3.ProcessingResponse {
	x.t.Helper()
	kv := append([]string{":status", "200", "content-type", contentType, "content-length", "1234"}, extra...)
	return x.send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &procv3.HttpHeaders{Headers: headers(kv...)}}})
}

// chunk sends one response body chunk and returns what Envoy passes on
// for it.
func (x *exchange) chunk(b string, eof bool) string {
	x.t.Helper()
	resp := x.send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_ResponseBody{ResponseBody: &procv3.HttpBody{Body: []byte(b), EndOfStream: eof}}})
	return applied(x.t, resp, b)
}

// applied is the chunk after Envoy applies the body response to it.
func applied(t testing.TB, resp *procv3.ProcessingResponse, in string) string {
	t.Helper()
	br := resp.GetResponseBody()
	if br == nil {
		t.Fatalf("response to a body chunk is %T", resp.GetResponse())
	}
	switch m := br.GetResponse().GetBodyMutation().GetMutation().(type) {
	case nil:
		return in
	case *procv3.BodyMutation_Body:
		return string(m.Body)
	case *procv3.BodyMutation_ClearBody:
		return ""
	default:
		t.Fatalf("unexpected mutation %T", m)
	}
	return ""
}

func toolsList(names ...string) string {
	var tools []string
	for _, n := range names {
		tools = append(tools, fmt.Sprintf(`{"name":%q,"description":"the <%s> tool","inputSchema":{"type":"object"}}`, n, n))
	}
	return `{"jsonrpc":"2.0","id":7,"result":{"tools":[` + strings.Join(tools, ",") + `],"nextCursor":"c2"}}`
}

const listTools = `{"jsonrpc":"2.0","id":7,"method":"tools/list","params":{}}`

// names reads the names of a list answer's items.
func names(t testing.TB, msg, member string) []string {
	t.Helper()
	var m struct {
		Result map[string]json.RawMessage `json:"result"`
	}
	if err := json.Unmarshal([]byte(msg), &m); err != nil {
		t.Fatalf("answer %q: %v", msg, err)
	}
	var items []struct {
		Name string `json:"name"`
	}
	if err := json.Unmarshal(m.Result[member], &items); err != nil {
		t.Fatalf("answer %q: %v", msg, err)
	}
	out := []string{}
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

func TestJSONListFiltered(t *testing.T) {
	c := client(t)
	tests := map[string]struct {
		request, member, answer string
		tok                     string
		want                    []string
	}{
		"tools_in_server_order": {request: listTools, member: "tools", tok: "alice",
			answer: toolsList("search", "delete_repo", "read_file", "transfer"), want: []string{"search", "read_file"}},
		"admin_sees_all": {request: listTools, member: "tools", tok: "admin",
			answer: toolsList("search", "delete_repo"), want: []string{"search", "delete_repo"}},
		"unverifiable_caller_empty": {request: listTools, member: "tools", tok: "forged",
			answer: toolsList("search", "read_file"), want: []string{}},
		"no_credential_empty": {request: listTools, member: "tools", tok: "",
			answer: toolsList("search", "read_file"), want: []string{}},
		"prompts": {request: `{"jsonrpc":"2.0","id":7,"method":"prompts/list"}`, member: "prompts", tok: "alice",
			answer: `{"jsonrpc":"2.0","id":7,"result":{"prompts":[{"name":"leak"},{"name":"summarize"}]}}`, want: []string{"summarize"}},
		"resources": {request: `{"jsonrpc":"2.0","id":7,"method":"resources/list"}`, member: "resources", tok: "alice",
			answer: `{"jsonrpc":"2.0","id":7,"result":{"resources":[{"uri":"file:///a","name":"file:///a"},{"uri":"file:///b","name":"file:///b"}]}}`, want: []string{"file:///a"}},
		"resource_templates": {request: `{"jsonrpc":"2.0","id":7,"method":"resources/templates/list"}`, member: "resourceTemplates", tok: "alice",
			answer: `{"jsonrpc":"2.0","id":7,"result":{"resourceTemplates":[{"uriTemplate":"file:///{path}","name":"file:///{path}"},{"uriTemplate":"db://{table}","name":"db://{table}"}]}}`, want: []string{"file:///{path}"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			x := open(t, c)
			rb := x.request(tc.tok, tc.request)
			if rm := rb.GetRequestBody().GetResponse().GetHeaderMutation().GetRemoveHeaders(); len(rm) != 1 || rm[0] != "accept-encoding" {
				t.Errorf("request body answer removes %v, want accept-encoding (a coded answer could not be filtered)", rm)
			}
			rh := x.responseHeaders("application/json")
			if got := rh.GetModeOverride().GetResponseBodyMode(); got != procfilterv3.ProcessingMode_BUFFERED {
				t.Errorf("mode override %v, want BUFFERED", got)
			}
			if rm := rh.GetResponseHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(); len(rm) == 0 || rm[0] != "content-length" {
				t.Errorf("response headers: removes %v, want content-length", rm)
			}
			out := x.chunk(tc.answer, true)
			if got := names(t, out, tc.member); strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("visible %v, want %v (answer %s)", got, tc.want, out)
			}
			if strings.Contains(out, "cacheScope") {
				t.Errorf("cacheScope set for a 2025-03-26 request: %s", out)
			}
		})
	}
}

// TestJSONCollectedWhenStreamed: when Envoy does not honour the mode
// override, the answer comes in chunks; nothing goes on before the end.
func TestJSONCollectedWhenStreamed(t *testing.T) {
	x := open(t, client(t))
	x.request("alice", listTools)
	x.responseHeaders("application/json; charset=utf-8")
	answer := toolsList("search", "delete_repo")
	var got string
	for i := 0; i < len(answer); i += 10 {
		end := min(i+10, len(answer))
		out := x.chunk(answer[i:end], end == len(answer))
		if end < len(answer) && out != "" {
			t.Fatalf("chunk %d passed on before the end: %q", i, out)
		}
		got += out
	}
	if n := names(t, got, "tools"); strings.Join(n, ",") != "search" {
		t.Errorf("visible %v, want [search]", n)
	}
}

func TestCacheScopePrivate(t *testing.T) {
	tests := map[string]struct {
		version, answer string
		want            bool
	}{
		"2026_filtered":    {version: "2026-07-28", answer: toolsList("search", "delete_repo"), want: true},
		"2026_unfiltered":  {version: "2026-07-28", answer: toolsList("search"), want: false},
		"2025_11_filtered": {version: "2025-11-25", answer: toolsList("search", "delete_repo"), want: false},
	}
	c := client(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			x := open(t, c)
			x.request("alice", listTools, "mcp-protocol-version", tc.version, "mcp-method", "tools/list")
			x.responseHeaders("application/json")
			out := x.chunk(tc.answer, true)
			if got := strings.Contains(out, `"cacheScope":"private"`); got != tc.want {
				t.Errorf("cacheScope private: %v, want %v: %s", got, tc.want, out)
			}
			if !strings.Contains(out, `"nextCursor":"c2"`) {
				t.Errorf("other result members lost: %s", out)
			}
		})
	}
}

// TestNonListUntouched: other methods, and notifications, are not filtered,
// and their bodies are not even asked for.
func TestNonListUntouched(t *testing.T) {
	c := client(t)
	for name, body := range map[string]string{
		"tools_call":    `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"delete_repo","arguments":{}}}`,
		"initialize":    `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`,
		"notification":  `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		"malformed":     `{"jsonrpc":"2.0","id":1,"method":"tools/list"`,
		"not_json":      `hello`,
		"empty":         ``,
		"duplicate_key": `{"jsonrpc":"2.0","id":1,"method":"tools/call","method":"tools/list"}`,
	} {
		t.Run(name, func(t *testing.T) {
			x := open(t, c)
			rb := x.request("alice", body)
			if rb.GetRequestBody().GetResponse() != nil {
				t.Errorf("request body changed: %v", rb)
			}
			rh := x.responseHeaders("text/event-stream")
			if got := rh.GetModeOverride().GetResponseBodyMode(); got != procfilterv3.ProcessingMode_NONE {
				t.Errorf("mode override %v, want NONE: the body is not needed", got)
			}
			if rh.GetResponseHeaders().GetResponse() != nil {
				t.Errorf("response headers changed: %v", rh)
			}
			// Envoy may still send a chunk already on its way.
			ev := "data: " + toolsList("delete_repo") + "\n\n"
			if out := x.chunk(ev, true); out != ev {
				t.Errorf("chunk changed: %q", out)
			}
		})
	}
}

func TestMalformedListAnswers(t *testing.T) {
	c := client(t)
	for name, answer := range map[string]string{
		"truncated":         toolsList("delete_repo")[:40],
		"duplicate_result":  `{"jsonrpc":"2.0","id":7,"result":{"tools":[]},"result":{"tools":[{"name":"delete_repo"}]}}`,
		"case_folded_key":   `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"search","Name":"delete_repo"}]}}`,
		"tools_not_array":   `{"jsonrpc":"2.0","id":7,"result":{"tools":{"name":"delete_repo"}}}`,
		"result_not_object": `{"jsonrpc":"2.0","id":7,"result":[{"name":"delete_repo"}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			x := open(t, c)
			x.request("alice", listTools)
			x.responseHeaders("application/json")
			out := x.chunk(answer, true)
			if strings.Contains(out, "delete_repo") {
				t.Fatalf("hidden tool passed: %s", out)
			}
			var m struct {
				ID    int `json:"id"`
				Error struct {
					Code int `json:"code"`
				} `json:"error"`
			}
			if err := json.Unmarshal([]byte(out), &m); err != nil || m.ID != 7 || m.Error.Code != -32603 {
				t.Errorf("answer %s, want a -32603 error for id 7", out)
			}
		})
	}
	t.Run("unreadable_items_hidden", func(t *testing.T) {
		x := open(t, c)
		x.request("admin", listTools)
		x.responseHeaders("application/json")
		out := x.chunk(`{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"search"},"delete_repo",{"name":7},{}]}}`, true)
		if got := names(t, out, "tools"); strings.Join(got, ",") != "search" {
			t.Errorf("visible %v, want [search]: %s", got, out)
		}
	})
	t.Run("error_answer_passes", func(t *testing.T) {
		x := open(t, c)
		x.request("alice", listTools)
		x.responseHeaders("application/json")
		in := `{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no tools"}}`
		if out := x.chunk(in, true); out != in {
			t.Errorf("error answer changed: %s", out)
		}
	})
	t.Run("content_coding_refused", func(t *testing.T) {
		x := open(t, c)
		x.request("alice", listTools)
		rh := x.responseHeaders("application/json", "content-encoding", "gzip")
		hm := rh.GetResponseHeaders().GetResponse().GetHeaderMutation()
		if !strings.Contains(strings.Join(hm.GetRemoveHeaders(), ","), "content-encoding") {
			t.Errorf("content-encoding kept: %v", hm)
		}
		if out := x.chunk("\x1f\x8b\x08binary", false); out != "" {
			t.Errorf("coded chunk passed on: %q", out)
		}
		if out := x.chunk("more", true); !strings.Contains(out, `"code":-32603`) {
			t.Errorf("end of a coded answer: %q, want a -32603 error", out)
		}
	})
}

// TestAnswerTooLarge: past the bound, what is held of a list answer is
// dropped and the answer is an error (never the unfiltered list).
func TestAnswerTooLarge(t *testing.T) {
	e := newEngine(t)
	cc := decisiontest.Dial(t, func(s *grpc.Server) {
		extproc.NewServer(decision.NewItemFilter(e), nil).WithMaxAnswerBytes(64).Register(s)
	})
	c := procClient(cc)
	answer := toolsList("search", "delete_repo", "read_file")
	t.Run("json", func(t *testing.T) {
		x := open(t, c)
		x.request("alice", listTools)
		x.responseHeaders("application/json")
		var got string
		for i := 0; i < len(answer); i += 50 {
			end := min(i+50, len(answer))
			got += x.chunk(answer[i:end], end == len(answer))
		}
		if strings.Contains(got, "delete_repo") || !strings.Contains(got, `"code":-32603`) {
			t.Errorf("got %q, want a -32603 error", got)
		}
	})
	t.Run("sse", func(t *testing.T) {
		x := open(t, c)
		x.request("alice", listTools)
		x.responseHeaders("text/event-stream")
		stream := evProgress[:60] + "\n\n" + "data: " + answer + "\n\n" + evComment
		var got string
		for i := 0; i < len(stream); i += 30 {
			end := min(i+30, len(stream))
			got += x.chunk(stream[i:end], end == len(stream))
		}
		if strings.Contains(got, "delete_repo") || strings.Count(got, `"code":-32603`) != 1 || !strings.HasSuffix(got, evComment) {
			t.Errorf("got %q, want one -32603 error and the later events", got)
		}
	})
}

// TestRouteContext: the per-route context Envoy sends as the stream's
// gRPC metadata (ExtProcPerRoute overrides.grpc_initial_metadata) reaches
// the visible rule as input.context.
func TestRouteContext(t *testing.T) {
	c := client(t)
	for name, tc := range map[string]struct {
		md   []string
		want string
	}{
		"files_route": {md: []string{extproc.ContextMetadataPrefix + "mcp_server", "files"}, want: "search,list_dir"},
		"other_route": {md: []string{extproc.ContextMetadataPrefix + "mcp_server", "payments"}, want: "search"},
		"no_context":  {want: "search"},
		"other_key":   {md: []string{"mcp_server", "files"}, want: "search"},
	} {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(metadata.AppendToOutgoingContext(context.Background(), tc.md...))
			t.Cleanup(cancel)
			s, err := c.Process(ctx)
			if err != nil {
				t.Fatal(err)
			}
			x := &exchange{t: t, stream: s}
			x.request("alice", listTools)
			x.responseHeaders("application/json")
			if got := strings.Join(names(t, x.chunk(toolsList("search", "list_dir", "delete_repo"), true), "tools"), ","); got != tc.want {
				t.Errorf("visible %s, want %s", got, tc.want)
			}
		})
	}
}

// TestOddStreams: messages out of Envoy's order, or empty, are answered
// (continue) and never end the stream.
func TestOddStreams(t *testing.T) {
	c := client(t)
	x := open(t, c)
	for i, req := range []*procv3.ProcessingRequest{
		{},
		{Request: &procv3.ProcessingRequest_ResponseBody{ResponseBody: &procv3.HttpBody{Body: []byte("data: x\n\n")}}},
		{Request: &procv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &procv3.HttpHeaders{}}},
		{Request: &procv3.ProcessingRequest_RequestBody{RequestBody: &procv3.HttpBody{Body: []byte(listTools), EndOfStream: true}}},
		{Request: &procv3.ProcessingRequest_RequestTrailers{RequestTrailers: &procv3.HttpTrailers{}}},
		{Request: &procv3.ProcessingRequest_ResponseHeaders{ResponseHeaders: &procv3.HttpHeaders{Headers: headers("content-type", "text/event-stream")}}},
		{Request: &procv3.ProcessingRequest_ResponseBody{ResponseBody: &procv3.HttpBody{Body: []byte("data: " + toolsList("search") + "\n\n"), EndOfStream: true}}},
		{Request: &procv3.ProcessingRequest_ResponseTrailers{ResponseTrailers: &procv3.HttpTrailers{}}},
	} {
		resp := x.send(req)
		if resp == nil {
			t.Fatalf("message %d: no answer", i)
		}
	}
	// The list answer above came with no credential: emptied, the stream alive.
	x.request("alice", listTools)
	x.responseHeaders("application/json")
	if got := names(t, x.chunk(toolsList("search", "delete_repo"), true), "tools"); strings.Join(got, ",") != "search" {
		t.Errorf("after odd messages: %v", got)
	}
}
