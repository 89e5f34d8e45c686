package extproc_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
)

// BenchmarkSSEToolsList50 measures what filtering adds to one tools/list
// answer of 50 tools over SSE: the request and its headers, the answer's
// headers, and the answer as one event in one chunk, each a real
// ProcessingRequest over gRPC (bufconn), as Envoy drives a stream. The
// caller (alice) sees 2 of the 50 tools. BenchmarkSSEPassThrough is the
// same stream whose event does not answer the list request: the cost of
// an event that is only looked at.
func BenchmarkSSEToolsList50(b *testing.B) {
	benchSSE(b, 7)
}

func BenchmarkSSEPassThrough(b *testing.B) {
	benchSSE(b, 8)
}

func benchSSE(b *testing.B, id int) {
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("tool_%02d", i)
	}
	names[10], names[40] = "search", "read_file"
	answer := strings.Replace(toolsList(names...), `"id":7`, fmt.Sprintf(`"id":%d`, id), 1)
	event := "event: message\ndata: " + answer + "\n\n"
	c := client(b)
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		x := open(b, c)
		x.request("alice", listTools)
		x.responseHeaders("text/event-stream")
		if out := x.chunk(event, true); id == 7 && strings.Contains(out, "tool_00") {
			b.Fatalf("not filtered: %q", out)
		}
		_ = x.stream.CloseSend()
	}
}

// BenchmarkFilterToolsList50 is the filtering alone, without gRPC or SSE
// framing: the engine reading one tools/list answer of 50 tools, verifying
// the caller (the verifier's cache: here a map), evaluating the visible
// rule 50 times and writing the answer with 2 tools.
func BenchmarkFilterToolsList50(b *testing.B) {
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("tool_%02d", i)
	}
	names[10], names[40] = "search", "read_file"
	answer := []byte(toolsList(names...))
	f := decision.NewItemFilter(newEngine(b))
	r := &decision.Request{Method: "POST", Path: "/mcp", Body: []byte(listTools),
		Headers: map[string]string{"authorization": "Bearer alice"}}
	lr := f.ListRequestOf(r)
	b.SetBytes(int64(len(answer)))
	b.ReportAllocs()
	for b.Loop() {
		out, res := f.FilterResponse(context.Background(), r, lr, answer)
		if res.Hidden != 48 || len(out) == 0 {
			b.Fatalf("hidden %d", res.Hidden)
		}
	}
}
