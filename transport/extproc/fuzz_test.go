package extproc

import (
	"bytes"
	"context"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// FuzzSSEStream feeds an event stream to a list request's stream state,
// whole and cut into chunks of every size the fuzzer picks, and requires
// the same output both ways (where the cuts fall never changes what goes
// on) and no panic.
func FuzzSSEStream(f *testing.F) {
	e := decisiontest.NewEngine(f, "testdata/policy", nil)
	items := decision.NewItemFilter(e)
	srv := NewServer(items, nil)
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{\"tools\":[{\"name\":\"x\"}]}}\n\n"), uint8(1))
	f.Add([]byte("id: 1\r\ndata: {\"jsonrpc\":\"2.0\",\r\ndata: \"method\":\"ping\"}\r\n\r\n: c\r\r"), uint8(3))
	f.Add([]byte("event: m\rdata:{\"jsonrpc\":\"2.0\",\"id\":7,\"error\":{\"code\":1,\"message\":\"m\"}}\r\r"), uint8(2))
	f.Add([]byte("data: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\ndata: \n\n"), uint8(5))
	f.Fuzz(func(t *testing.T, stream []byte, size uint8) {
		run := func(n int) []byte {
			st := &streamState{srv: srv, ctx: context.Background(), mode: sseBody,
				req: decision.Request{Method: "POST", Headers: map[string]string{"authorization": "Bearer nobody"}, Body: []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)}}
			st.list = items.ListRequestOf(&st.req)
			var out []byte
			for i := 0; i < len(stream) || i == 0; i += n {
				end := min(i+n, len(stream))
				chunk := stream[i:end]
				o, changed := st.events(chunk, end == len(stream))
				if !changed {
					o = chunk
				}
				out = append(out, o...)
				if end == len(stream) {
					break
				}
			}
			return out
		}
		whole := run(max(len(stream), 1))
		cut := run(int(size%64) + 1)
		if !bytes.Equal(whole, cut) {
			t.Fatalf("output depends on the cuts:\nwhole %q\n  cut %q", whole, cut)
		}
	})
}
