package proxy_test

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
)

// BenchmarkSSEToolsList50 measures one tools/list through the proxy whose
// answer is one SSE event listing 50 tools, of which the caller (alice)
// sees 2: the request decided, forwarded to a local upstream, the event
// cut from the stream, filtered and written back, over loopback HTTP.
// BenchmarkSSEPassThrough is the same exchange whose event holds no list
// (another id, its items under "content"): read and passed on unchanged
// (an answer to another id holding a list would be emptied). Their
// difference is what filtering a list over SSE adds to one answer;
// BenchmarkSSENotAList, the answer to a tools/call (never read as a list),
// is the proxy's own cost.
func BenchmarkSSEToolsList50(b *testing.B) { benchSSE(b, listTools, 7) }

func BenchmarkSSEPassThrough(b *testing.B) { benchSSE(b, listTools, 8) }

func BenchmarkSSENotAList(b *testing.B) { benchSSE(b, call(7, "echo", `{"text":"hi"}`), 7) }

func benchSSE(b *testing.B, request string, id int) {
	names := make([]string, 50)
	for i := range names {
		names[i] = fmt.Sprintf("tool_%02d", i)
	}
	names[10], names[40] = "search", "echo"
	answer := strings.Replace(toolsList(names...), `"id":7`, fmt.Sprintf(`"id":%d`, id), 1)
	if id != 7 {
		answer = strings.Replace(answer, `"tools":`, `"content":`, 1) // no list in it
	}
	event := "event: message\ndata: " + answer + "\n\n"
	url, _ := start(b, newEngine(b, nil), func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, event)
	}, nil)
	filtered := id == 7 && strings.Contains(request, "tools/list")
	b.SetBytes(int64(len(event)))
	b.ReportAllocs()
	for b.Loop() {
		resp := send(b, url, "alice", request)
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			b.Fatalf("status %d: %v", resp.StatusCode, err)
		}
		if got := strings.Contains(string(out), "tool_00"); got == filtered {
			b.Fatalf("filtered %v: %.200s", filtered, out)
		}
	}
}
