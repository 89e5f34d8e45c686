package decision_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// listStream starts filtering the answer to a tools/list of id 7 for a
// verified caller, on the hidden-tools policy (search and search_limited
// are shown).
func listStream(t testing.TB, f *decision.ItemFilter, maxEvent int) *decision.ListEventStream {
	t.Helper()
	r := &decision.Request{Method: "POST", Path: "/mcp", Headers: map[string]string{},
		Credential: token.Claimed(map[string]any{"sub": "alice"}),
		Body:       []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)}
	lr := f.ListRequestOf(r)
	if lr == nil {
		t.Fatal("not a list request")
	}
	return decision.NewListEventStream(lr, maxEvent, nil, func(msg []byte) ([]byte, decision.ListOutcome) {
		return f.FilterResponse(context.Background(), r, lr, msg)
	})
}

// feedAll feeds stream in chunks of n bytes and returns what went on.
func feedAll(s *decision.ListEventStream, stream []byte, n int) []byte {
	var out []byte
	for i := 0; ; i += n {
		end := min(i+n, len(stream))
		chunk := stream[i:end]
		o, changed := s.Feed(chunk, end == len(stream))
		if !changed {
			o = chunk
		}
		out = append(out, o...)
		if end == len(stream) {
			return out
		}
	}
}

// TestListEventStream: the answer is filtered whatever the cuts; the
// events around it go on unchanged; an event that never ends is dropped
// for an error answer; a second answer is dropped.
func TestListEventStream(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, "testdata/hidden", nil))
	const (
		progress = "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n"
		answer   = "id: 3\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"debug\"},{\"name\":\"search\"}]}}\n\n"
		filtered = "id: 3\ndata: {\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[{\"name\":\"search\"}]}}\n\n"
		comment  = ": keep-alive\n\n"
	)
	tests := map[string]struct {
		in, want string
		max      int
		sizes    []int // chunk sizes; default the whole stream, 1, 2, 7 and 61
	}{
		"answer_between_events": {in: progress + answer + comment, want: progress + filtered + comment, max: 1 << 20},
		"second_answer_dropped": {in: answer + answer + comment, want: filtered + comment, max: 1 << 20},
		"no_answer":             {in: progress + comment, want: progress + comment, max: 1 << 20},
		// Cut before its end, an event past the bound is dropped, with
		// all of its rest (whole, it is read, and found unreadable); the
		// events after it go on.
		"event_too_large": {in: progress + "id: 9\ndata: " + strings.Repeat("x", 300) + "\nid: 10\ndata: " + strings.Repeat("y", 300) + "\n\n" + comment,
			max: 150, sizes: []int{1, 7, 61},
			want: progress + "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":-32603,\"message\":\"" + decision.ErrListTooLarge + "\"}}\n\n" + comment},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			sizes := tc.sizes
			if sizes == nil {
				sizes = []int{len(tc.in), 1, 2, 7, 61}
			}
			for _, n := range sizes {
				got := feedAll(listStream(t, f, tc.max), []byte(tc.in), n)
				if string(got) != tc.want {
					t.Fatalf("chunks of %d:\n got %q\nwant %q", n, got, tc.want)
				}
			}
		})
	}
}

// TestListEventStreamHolds: a complete event goes on at once; only an
// incomplete one is held.
func TestListEventStreamHolds(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, "testdata/hidden", nil))
	s := listStream(t, f, 1<<20)
	ev := "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":1}}\n\n"
	if out, changed := s.Feed([]byte(ev+"data: {\"jsonrpc\""), false); !changed || string(out) != ev || !s.Holding() {
		t.Fatalf("out %q changed %v holding %v: want the complete event, the rest held", out, changed, s.Holding())
	}
	if out, changed := s.Feed([]byte(ev[:0]), false); !changed || len(out) != 0 {
		t.Fatalf("empty chunk: out %q changed %v", out, changed)
	}
}

// FuzzListEventStream feeds an event stream to the filter of a list
// answer, whole and cut into chunks of every size the fuzzer picks, and
// requires the same output both ways (where the cuts fall never changes
// what goes on) and no panic.
func FuzzListEventStream(f *testing.F) {
	items := decision.NewItemFilter(decisiontest.NewEngine(f, "testdata/hidden", nil))
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"x\"}]}}\n\n"), uint8(1))
	f.Add([]byte("id: 1\r\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"method\":\"ping\"}\r\n\r\n: c\r\r"), uint8(3))
	f.Add([]byte("event: m\rdata:{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":1,\"message\":\"m\"}}\r\r"), uint8(2))
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\ndata: \n\n"), uint8(5))
	// The shapes of issues 27 and 28: a byte order mark, a JSON body, a
	// batch in an event, an answer to another id, a string id for 7.
	f.Add([]byte("\xef\xbb\xbfdata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"debug\"}]}}\n\n"), uint8(1))
	f.Add([]byte(" \r\n[{\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"debug\"}]}}]"), uint8(4))
	f.Add([]byte("data: [{\"jsonrpc\":\"2.0\",\"id\":7.0,\"result\":{\"tools\":[{\"name\":\"debug\"}]}},{\"jsonrpc\":\"2.0\",\"id\":8,\"result\":{\"prompts\":[]}}]\n\n"), uint8(9))
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":\"7\",\"result\":{\"tools\":[{\"name\":\"debug\"}],\"cacheScope\":\"public\"}}\n\n"), uint8(6))
	f.Fuzz(func(t *testing.T, stream []byte, size uint8) {
		whole := feedAll(listStream(t, items, 1<<20), stream, max(len(stream), 1))
		cut := feedAll(listStream(t, items, 1<<20), stream, int(size%64)+1)
		if !bytes.Equal(whole, cut) {
			t.Fatalf("output depends on the cuts:\nwhole %q\n  cut %q", whole, cut)
		}
	})
}

// TestFilterReplayed: on a replayed stream (a GET resuming a stream), a
// response holding a list is filtered as its first answer was, whatever
// its id; anything else goes on; what cannot be read strictly is dropped.
func TestFilterReplayed(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, "testdata/hidden", nil))
	r := &decision.Request{Method: "GET", Path: "/mcp", Headers: map[string]string{"mcp-protocol-version": "2026-07-28"},
		Credential: token.Claimed(map[string]any{"sub": "alice"})}
	tests := map[string]struct {
		msg, want string // want "" : dropped
		hidden    int
	}{
		"tools_list": {msg: `{"jsonrpc":"2.0","id":"a1","result":{"tools":[{"name":"debug"},{"name":"search"}]}}`,
			want: `{"id":"a1","jsonrpc":"2.0","result":{"cacheScope":"private","tools":[{"name":"search"}]}}`, hidden: 1},
		"all_visible":  {msg: `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"search"}]}}`, want: `{"jsonrpc":"2.0","id":3,"result":{"tools":[{"name":"search"}]}}`},
		"notification": {msg: `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`, want: `{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`},
		"call_result":  {msg: `{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"x"}]}}`, want: `{"jsonrpc":"2.0","id":4,"result":{"content":[{"type":"text","text":"x"}]}}`},
		"error":        {msg: `{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"m"}}`, want: `{"jsonrpc":"2.0","id":5,"error":{"code":-32601,"message":"m"}}`},
		"not_a_list":   {msg: `{"jsonrpc":"2.0","id":6,"result":{"tools":"none"}}`, want: `{"jsonrpc":"2.0","id":6,"result":{"tools":"none"}}`},
		"malformed":    {msg: `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"debug"}]}`},
		"duplicate":    {msg: `{"jsonrpc":"2.0","id":8,"result":{"tools":[{"name":"debug"}]},"result":{"tools":[]}}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, res := f.FilterReplayed(context.Background(), r, []byte(tc.msg))
			if string(got) != tc.want || res.Hidden != tc.hidden {
				t.Fatalf("got %s (hidden %d), want %s (hidden %d)", got, res.Hidden, tc.want, tc.hidden)
			}
		})
	}
	// Through the stream: the replayed answer filtered, the rest as sent.
	s := decision.NewReplayEventStream(1<<20, nil, func(msg []byte) ([]byte, decision.ListOutcome) {
		return f.FilterReplayed(context.Background(), r, msg)
	})
	in := "id: 1\ndata: " + tests["notification"].msg + "\n\nid: 2\ndata: " + tests["tools_list"].msg + "\n\nid: 3\ndata: {\"jsonrpc\":\n\n"
	want := "id: 1\ndata: " + tests["notification"].msg + "\n\nid: 2\ndata: " + tests["tools_list"].want + "\n\n"
	for _, n := range []int{len(in), 1, 5} {
		if got := feedAll(s, []byte(in), n); string(got) != want {
			t.Fatalf("chunks of %d:\n got %q\nwant %q", n, got, want)
		}
		s = decision.NewReplayEventStream(1<<20, nil, func(msg []byte) ([]byte, decision.ListOutcome) {
			return f.FilterReplayed(context.Background(), r, msg)
		})
	}
}

// TestListAnswerSniffed: what an answer is comes from its bytes, not from
// a content-type: a JSON body (a message or a batch, after white space or
// a byte order mark) is filtered whole at its end, an event stream (one
// starting with a byte order mark too, which readers drop) event by
// event, an event's data may be a batch; whatever the cuts. Issue 28 row
// 10, issue 27 row 1.
func TestListAnswerSniffed(t *testing.T) {
	f := decision.NewItemFilter(decisiontest.NewEngine(t, "testdata/hidden", nil))
	const (
		answer   = `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"debug"},{"name":"search"}]}}`
		filtered = `{"id":7,"jsonrpc":"2.0","result":{"tools":[{"name":"search"}]}}`
		bom      = "\xef\xbb\xbf"
	)
	tests := map[string]struct{ in, want string }{
		"json":              {in: answer, want: filtered},
		"json_space":        {in: "\r\n  " + answer + "\n", want: filtered},
		"json_bom":          {in: bom + answer, want: filtered},
		"json_batch":        {in: "[" + answer + "]", want: "[" + filtered + "]"},
		"sse_bom":           {in: bom + "data: " + answer + "\n\n", want: "data: " + filtered + "\n\n"},
		"sse_batch_event":   {in: "data: [" + answer + "]\n\n", want: "data: [" + filtered + "]\n\n"},
		"sse_leading_blank": {in: "\n\ndata: " + answer + "\n\n", want: "\n\ndata: " + filtered + "\n\n"},
		"empty":             {in: "", want: ""},
		"json_unreadable": {in: `{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"debug"}]}`,
			want: `{"jsonrpc":"2.0","id":7,"error":{"code":-32603,"message":"the list answer could not be read: `},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, n := range []int{max(len(tc.in), 1), 1, 2, 5} {
				got := string(feedAll(listStream(t, f, 1<<20), []byte(tc.in), n))
				if !strings.HasPrefix(got, tc.want) || (tc.want == "" && got != "") || strings.Contains(got, "debug") {
					t.Fatalf("chunks of %d:\n got %q\nwant %q", n, got, tc.want)
				}
			}
		})
	}
}
