package extproc_test

import (
	"context"
	"testing"

	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/extproc"
)

// TestPinsFromTrustedCallersOnly: a tools/list answer sent on a stream
// whose caller the server does not trust (anyone reaching the gRPC port)
// neither sets a pin mismatch nor clears one; on a trusted stream (Envoy,
// authenticated) it does both. Issue 28 row 4, item 3.
func TestPinsFromTrustedCallersOnly(t *testing.T) {
	pinned, pulled := decisiontest.PinnedReadFile, decisiontest.PulledReadFile
	e := decisiontest.NewEngine(t, decisiontest.PinBundle(t, "read_file", pinned), func(o *decision.Options) { o.Tokens = tokens })
	// lister lists def through an ext_proc server that trusts its callers
	// as trust says.
	lister := func(trust func(context.Context) bool) func(def string) {
		c := procClient(decisiontest.Dial(t, func(s *grpc.Server) {
			extproc.NewServer(decision.NewItemFilter(e), nil).WithTrustedCallers(trust).Register(s)
		}))
		return func(def string) {
			x := open(t, c)
			x.request("alice", listTools)
			x.responseHeaders("application/json")
			x.chunk(`{"jsonrpc":"2.0","id":7,"result":{"tools":[`+def+`]}}`, true)
		}
	}
	anonymous := lister(func(context.Context) bool { return false })
	envoy := lister(func(context.Context) bool { return true })
	callAllowed := func() bool {
		r := &decision.Request{Method: "POST", Path: "/mcp", Headers: map[string]string{"authorization": "Bearer alice"},
			Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{}}}`)}
		return e.Decide(context.Background(), r).Allow
	}
	anonymous(pulled)
	if !callAllowed() {
		t.Fatal("an untrusted stream set a pin mismatch: read_file is blocked for everyone")
	}
	envoy(pulled)
	if callAllowed() {
		t.Fatal("a trusted stream listing a changed definition did not block read_file")
	}
	anonymous(pinned)
	if callAllowed() {
		t.Fatal("an untrusted stream cleared a pin mismatch")
	}
	envoy(pinned)
	if !callAllowed() {
		t.Fatal("a trusted listing of the pinned definition did not clear the mismatch")
	}
}
