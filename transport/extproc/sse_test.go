package extproc_test

import (
	"strings"
	"testing"

	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
)

// An SSE answer to tools/list as servers send it: a priming event, a
// progress notification, a server request, the answer (data split over
// three lines), then a comment.
var (
	evPriming  = "id: ev-0\ndata:\n\n"
	evProgress = "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":1,\"progress\":1}}\n\n"
	evOtherID  = "data: {\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"roots/list\"}\n\n"
	evAnswer   = "event: message\nid: ev-3\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\n" +
		"data: \"result\":{\"tools\":[{\"name\":\"search\"},{\"name\":\"delete_repo\"},\n" +
		"data:{\"name\":\"read_file\"}]}}\n\n"
	evComment = ": keep-alive\n\n"
)

// wantAnswer is evAnswer filtered for alice: the other lines kept, the
// data on one line.
const wantAnswer = "event: message\nid: ev-3\ndata: {\"id\":7,\"jsonrpc\":\"2.0\",\"result\":{\"tools\":[{\"name\":\"search\"},{\"name\":\"read_file\"}]}}\n\n"

func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }
func cr(s string) string   { return strings.ReplaceAll(s, "\n", "\r") }

// TestSSEListFiltered sends the stream cut at awkward places and requires
// the same filtered stream whatever the cuts.
func TestSSEListFiltered(t *testing.T) {
	stream := evPriming + evProgress + evOtherID + evAnswer + evComment
	want := evPriming + evProgress + evOtherID + wantAnswer + evComment
	at := func(sub string, off int) int { return strings.Index(stream, sub) + off }
	tests := map[string]struct {
		in, want string
		cuts     []int // offsets where a chunk ends; 0 entries: one chunk
		every    int   // or chunks of this many bytes
	}{
		"one_chunk":          {in: stream, want: want},
		"one_byte_chunks":    {in: stream, want: want, every: 1},
		"two_byte_chunks":    {in: stream, want: want, every: 2},
		"seven_byte_chunks":  {in: stream, want: want, every: 7},
		"mid_data_name":      {in: stream, want: want, cuts: []int{at("data: {\"jsonrpc\":\"2.0\",\"id\":7", 2)}},
		"after_data_colon":   {in: stream, want: want, cuts: []int{at("data: {\"jsonrpc\":\"2.0\",\"id\":7", 5)}},
		"mid_json_line":      {in: stream, want: want, cuts: []int{at("delete_repo\"},\n", 4)}},
		"before_blank_line":  {in: stream, want: want, cuts: []int{at("]}}\n\n", 4)}},
		"between_events":     {in: stream, want: want, cuts: []int{at(evAnswer, 0), at(evComment, 0)}},
		"crlf_one_chunk":     {in: crlf(stream), want: crlf(evPriming+evProgress+evOtherID) + crlf(wantAnswer[:strings.Index(wantAnswer, "data:")]) + wantAnswer[strings.Index(wantAnswer, "data:"):len(wantAnswer)-1] + "\r\n" + crlf(evComment)},
		"crlf_one_byte":      {in: crlf(stream), every: 1},
		"crlf_between_cr_lf": {in: crlf(stream), cuts: []int{strings.Index(crlf(stream), "]}}\r\n") + 4}},
		"cr_only":            {in: cr(stream), every: 3},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := client(t)
			x := open(t, c)
			x.request("alice", listTools)
			rh := x.responseHeaders("text/event-stream")
			if rh.GetModeOverride() != nil {
				t.Errorf("mode override %v for an event stream: it streams", rh.GetModeOverride())
			}
			chunks := split(tc.in, tc.cuts, tc.every)
			var got strings.Builder
			for i, ch := range chunks {
				got.WriteString(x.chunk(ch, i == len(chunks)-1))
			}
			out := got.String()
			if tc.want != "" && out != tc.want {
				t.Fatalf("stream\n got %q\nwant %q", out, tc.want)
			}
			// With every line ending, the answer is filtered and every
			// other event is there, unchanged.
			if strings.Contains(out, `"name":"delete_repo"}]`) || !strings.Contains(out, `{"name":"search"},{"name":"read_file"}`) {
				t.Errorf("answer not filtered: %q", out)
			}
			for _, ev := range []string{evPriming, evProgress, evOtherID, evComment} {
				if !strings.Contains(out, lineEndings(tc.in, ev)) {
					t.Errorf("event %q lost or changed in %q", ev, out)
				}
			}
		})
	}
}

// lineEndings writes ev with the line endings of stream.
func lineEndings(stream, ev string) string {
	switch {
	case strings.Contains(stream, "\r\n"):
		return crlf(ev)
	case strings.Contains(stream, "\r"):
		return cr(ev)
	}
	return ev
}

func split(s string, cuts []int, every int) []string {
	if every > 0 {
		for i := every; i < len(s); i += every {
			cuts = append(cuts, i)
		}
	}
	var out []string
	prev := 0
	for _, c := range cuts {
		out = append(out, s[prev:c])
		prev = c
	}
	return append(out, s[prev:])
}

// TestSSEOtherEventsImmediate: each event that is not the answer goes on
// in the answer to the chunk that completes it, before the next chunk is
// sent, unchanged; so do events after the answer.
func TestSSEOtherEventsImmediate(t *testing.T) {
	x := open(t, client(t))
	x.request("alice", listTools)
	x.responseHeaders("text/event-stream")
	for i, ev := range []string{evPriming, evProgress, evOtherID, evComment} {
		if out := x.chunk(ev, false); out != ev {
			t.Fatalf("event %d: got %q, want it unchanged at once", i, out)
		}
	}
	// An event cut in two: nothing of it before its end, all of it then.
	half := len(evProgress) / 2
	if out := x.chunk(evProgress[:half], false); out != "" {
		t.Errorf("half an event went on: %q", out)
	}
	if out := x.chunk(evProgress[half:], false); out != evProgress {
		t.Errorf("completed event: %q", out)
	}
	if out := x.chunk(evAnswer, false); out != wantAnswer {
		t.Errorf("answer: %q", out)
	}
	// After the answer: a second answer is dropped, everything else goes on.

	if out := x.chunk(evAnswer, false); out != "" {
		t.Errorf("second answer to the same id went on: %q", out)
	}
	if out := x.chunk(evProgress+evComment, true); out != evProgress+evComment {
		t.Errorf("after the answer: %q", out)
	}
}

func TestSSEMalformed(t *testing.T) {
	c := client(t)
	tests := map[string]struct {
		stream string
		check  func(t *testing.T, out string)
	}{
		"bad_json_replaced_by_error": {
			stream: "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"delete_repo\"}]}\n\n",
			check: func(t *testing.T, out string) {
				if strings.Contains(out, "delete_repo") || !strings.Contains(out, `"code":-32603`) {
					t.Errorf("got %q, want a -32603 error", out)
				}
			},
		},
		"duplicate_result_replaced": {
			stream: "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[]},\"result\":{\"tools\":[{\"name\":\"delete_repo\"}]}}\n\n" + evAnswer,
			check: func(t *testing.T, out string) {
				if strings.Contains(out, "delete_repo") || strings.Count(out, `"id":7`) != 1 {
					t.Errorf("got %q, want one error answer and the later answer dropped", out)
				}
			},
		},
		"garbage_then_eof_without_blank_line": {
			stream: evProgress + "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"delete_repo\"}]}}",
			check: func(t *testing.T, out string) {
				if strings.Contains(out, "delete_repo") || !strings.HasPrefix(out, evProgress) {
					t.Errorf("got %q: the last, unterminated event must be filtered too", out)
				}
			},
		},
		"binary_noise": {
			stream: "\x00\xff\xfe:\n\n" + evAnswer,
			check: func(t *testing.T, out string) {
				if !strings.Contains(out, wantAnswer) {
					t.Errorf("got %q", out)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			for _, every := range []int{0, 1, 5} {
				x := open(t, c)
				x.request("alice", listTools)
				x.responseHeaders("text/event-stream")
				chunks := split(tc.stream, nil, every)
				var got strings.Builder
				for i, ch := range chunks {
					got.WriteString(x.chunk(ch, i == len(chunks)-1))
				}
				tc.check(t, got.String())
			}
		})
	}
}

// TestResumedStream: a GET's event stream may replay earlier answers (a
// stream resumed with Last-Event-ID): a list answer in it is filtered as
// its first answer was, whatever its id, and the other events go on.
func TestResumedStream(t *testing.T) {
	c := client(t)
	x := open(t, c)
	hr := x.send(&procv3.ProcessingRequest{Request: &procv3.ProcessingRequest_RequestHeaders{RequestHeaders: &procv3.HttpHeaders{
		Headers: headers(":method", "GET", ":path", "/mcp", ":authority", "mcp.example.com", "authorization", "Bearer alice",
			"accept", "text/event-stream", "accept-encoding", "gzip", "last-event-id", "ev-0"), EndOfStream: true}}})
	if rm := hr.GetRequestHeaders().GetResponse().GetHeaderMutation().GetRemoveHeaders(); len(rm) != 1 || rm[0] != "accept-encoding" {
		t.Errorf("request headers: removed %v, want accept-encoding", rm)
	}
	if rh := x.responseHeaders("text/event-stream"); rh.GetModeOverride() != nil {
		t.Errorf("mode override %v for a GET's event stream: it streams", rh.GetModeOverride())
	}
	stream := evProgress + evAnswer + evComment
	var got strings.Builder
	for i := 0; i < len(stream); i += 9 {
		end := min(i+9, len(stream))
		got.WriteString(x.chunk(stream[i:end], end == len(stream)))
	}
	if want := evProgress + wantAnswer + evComment; got.String() != want {
		t.Fatalf("stream\n got %q\nwant %q", got.String(), want)
	}
}
