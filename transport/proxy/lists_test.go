package proxy_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// toolsList is the server's answer to tools/list id 7 with these tools.
func toolsList(names ...string) string {
	items := make([]string, len(names))
	for i, n := range names {
		items[i] = fmt.Sprintf(`{"name":%q}`, n)
	}
	return `{"jsonrpc":"2.0","id":7,"result":{"tools":[` + strings.Join(items, ",") + `]}}`
}

// alice sees echo, search and transfer, in the server's order.
var (
	serverTools = []string{"delete_repo", "search", "debug", "echo", "transfer"}
	aliceTools  = `"tools":[{"name":"search"},{"name":"echo"},{"name":"transfer"}]`
)

// TestListJSON: a JSON answer to a list request is filtered (the server's
// order kept, the length right), gzip or not; one the proxy cannot read is
// replaced by a JSON-RPC error; other answers pass untouched.
func TestListJSON(t *testing.T) {
	e := newEngine(t, nil)
	tests := map[string]struct {
		body, extra string // request body; a request header "name: value"
		answer      func(w http.ResponseWriter, r *http.Request)
		want        string // in the answer
		not         string // not in the answer
	}{
		"filtered": {body: listTools, answer: jsonAnswer(toolsList(serverTools...)), want: aliceTools, not: "delete_repo"},
		"gzip_when_asked": {body: listTools, answer: func(w http.ResponseWriter, r *http.Request) {
			if !strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
				jsonAnswer(toolsList(serverTools...))(w, r)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "gzip")
			zw := gzip.NewWriter(w)
			_, _ = io.WriteString(zw, toolsList(serverTools...))
			_ = zw.Close()
		}, want: aliceTools, not: "delete_repo"},
		"unknown_coding": {body: listTools, answer: func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Encoding", "br")
			_, _ = io.WriteString(w, "\x1b\x00binary")
		}, want: `"error":{"code":-32603,"message":"the list answer could not be read: its content coding is not supported"}`},
		"too_large": {body: listTools, answer: jsonAnswer(toolsList(strings.Split(strings.Repeat("x,", 200), ",")...)),
			want: `"message":"the list answer is too large to filter"`},
		"not_a_list":   {body: call(9, "echo", `{"text":"hi"}`), answer: jsonAnswer(toolsList(serverTools...)), want: "delete_repo"},
		"error_answer": {body: listTools, answer: jsonAnswer(`{"jsonrpc":"2.0","id":7,"error":{"code":-32601,"message":"no tools"}}`), want: `"message":"no tools"`},
		"revision_2026": {body: `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`, extra: "MCP-Protocol-Version: 2026-07-28",
			answer: jsonAnswer(toolsList(serverTools...)), want: `"cacheScope":"private"`, not: "delete_repo"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			url, _ := start(t, e, tc.answer, func(o *proxy.Options) { o.MaxAnswerBytes = 1024 })
			var hdr []string
			if k, v, ok := strings.Cut(tc.extra, ": "); ok {
				hdr = append(hdr, k, v, "Mcp-Method", "tools/list")
			}
			resp := post(t, url, "alice", tc.body, hdr...)
			got := readAll(t, resp.Body)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, got)
			}
			if !strings.Contains(got, tc.want) || (tc.not != "" && strings.Contains(got, tc.not)) {
				t.Errorf("answer %s\nwant %s, not %q", got, tc.want, tc.not)
			}
			if cl := resp.Header.Get("Content-Length"); cl != "" && cl != strconv.Itoa(len(got)) {
				t.Errorf("content-length %s for %d bytes", cl, len(got))
			}
			if resp.Header.Get("Content-Encoding") != "" {
				t.Errorf("content-encoding %q left on a rewritten answer", resp.Header.Get("Content-Encoding"))
			}
		})
	}
}

func jsonAnswer(body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, body)
	}
}

// The events of an SSE answer to tools/list: a priming event, a progress
// notification, the answer (data over three lines), a comment.
var (
	evPriming  = "id: ev-0\ndata:\n\n"
	evProgress = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n"
	evAnswer   = "event: message\nid: ev-3\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\n" +
		"data: \"result\":{\"tools\":[{\"name\":\"delete_repo\"},{\"name\":\"search\"},{\"name\":\"debug\"},\n" +
		"data:{\"name\":\"echo\"},{\"name\":\"transfer\"}]}}\n\n"
	evComment = ": keep-alive\n\n"
)

// TestListSSE: the stream is written in chunks cut at awkward places, each
// flushed; whatever the cuts, the answer is filtered and the other events
// arrive unchanged.
func TestListSSE(t *testing.T) {
	e := newEngine(t, nil)
	stream := evPriming + evProgress + evAnswer + evComment
	for _, size := range []int{1, 2, 7, 13, len(stream)} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			url, _ := start(t, e, func(w http.ResponseWriter, _ *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				for i := 0; i < len(stream); i += size {
					_, _ = io.WriteString(w, stream[i:min(i+size, len(stream))])
					w.(http.Flusher).Flush()
				}
			}, nil)
			resp := post(t, url, "alice", listTools)
			got := readAll(t, resp.Body)
			want := evPriming + evProgress +
				"event: message\nid: ev-3\ndata: {\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{" + aliceTools + "}}\n\n" + evComment
			if got != want {
				t.Fatalf("stream\n got %q\nwant %q", got, want)
			}
			if resp.Header.Get("Content-Length") != "" {
				t.Errorf("content-length %q on a filtered stream", resp.Header.Get("Content-Length"))
			}
		})
	}
}

// TestListSSENotDelayed: the events before the answer reach the caller
// while the server has not yet sent the answer, and the answer, once sent,
// too, while the stream stays open.
func TestListSSENotDelayed(t *testing.T) {
	e := newEngine(t, nil)
	sendAnswer, done := make(chan struct{}), make(chan struct{})
	url, _ := start(t, e, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, evPriming+evProgress)
		w.(http.Flusher).Flush()
		<-sendAnswer
		_, _ = io.WriteString(w, evAnswer)
		w.(http.Flusher).Flush()
		<-done
	}, nil)
	defer close(done)
	resp := post(t, url, "alice", listTools)
	for _, want := range []string{evPriming, evProgress} {
		if got := readEventTimeout(t, resp.Body); got != want {
			t.Fatalf("event %q, want %q", got, want)
		}
	}
	close(sendAnswer)
	if got := readEventTimeout(t, resp.Body); !strings.Contains(got, aliceTools) {
		t.Fatalf("answer %q", got)
	}
}

// readEventTimeout reads one event, failing after 10 seconds.
func readEventTimeout(t *testing.T, r io.Reader) string {
	t.Helper()
	c := make(chan string, 1)
	go func() {
		defer func() { _ = recover() }()
		c <- readEvent(t, r)
	}()
	select {
	case ev := <-c:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no event within 10s: it was held")
		return ""
	}
}

// TestResumedStream: a GET that resumes a stream (Last-Event-ID) gets the
// server's stored events again; a list answer among them is filtered as
// the first answer was, the other events go on as sent.
func TestResumedStream(t *testing.T) {
	e := newEngine(t, nil)
	url, up := start(t, e, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, evProgress+evAnswer+evComment)
	}, nil)
	resp := do(t, http.MethodGet, url, "", "Accept", "text/event-stream")
	defer resp.Body.Close()
	got := readAll(t, resp.Body)
	want := evProgress + "event: message\nid: ev-3\ndata: {\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{" + aliceTools + "}}\n\n" + evComment
	if got != want {
		t.Fatalf("stream\n got %q\nwant %q", got, want)
	}
	if s := up.seen(); len(s) != 1 || s[0].header.Get("Last-Event-ID") != "ev-0" {
		t.Fatalf("upstream saw %+v", s)
	}
}
