package extproc_test

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	procfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/serverversions"
	"github.com/mcpauthz/mcpauthz/transport/extproc"
)

// TestVersionsLearned: the answer to server/discover, an event stream in
// two chunks, passes unchanged and teaches the engine the revisions the
// upstream supports, which its -32022 answers then list (ext_authz
// decides with the same engine), when the stream's caller is trusted
// (Envoy); the answer to another request is not asked for.
func TestVersionsLearned(t *testing.T) {
	versions := &serverversions.Memory{}
	var trusted atomic.Bool
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) {
		o.Tokens = tokens
		o.ServerVersions = versions
	})
	cc := decisiontest.Dial(t, func(s *grpc.Server) {
		extproc.NewServer(decision.NewItemFilter(e), nil).WithVersions(versions).
			WithTrustedCallers(func(ctx context.Context) bool { return trusted.Load() }).Register(s)
	})
	c := procClient(cc)
	discover := func() {
		t.Helper()
		x := open(t, c)
		x.request("alice", `{"jsonrpc":"2.0","id":1,"method":"server/discover","params":{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`,
			"mcp-protocol-version", "2026-07-28", "mcp-method", "server/discover")
		rh := x.responseHeaders("text/event-stream")
		if mo := rh.GetModeOverride(); trusted.Load() && mo != nil {
			t.Fatalf("mode override %v: the discover answer must be read as the configuration streams it", mo)
		}
		answer := "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":1,\"result\":{\"supportedVersions\":[\"2026-07-28\",\"2025-11-25\"],\"capabilities\":{}}}\n\n"
		half := len(answer) / 2
		for i, part := range []string{answer[:half], answer[half:]} {
			if out := x.chunk(part, i == 1); out != part {
				t.Fatalf("chunk %d changed: %q", i, out)
			}
		}
	}

	// An untrusted stream (not Envoy's) teaches nothing.
	discover()
	if got := versions.Versions(""); got != nil {
		t.Fatalf("learned %q from an untrusted stream", got)
	}
	trusted.Store(true)
	discover()

	if got, want := versions.Versions(""), []string{"2025-11-25", "2026-07-28"}; !slices.Equal(got, want) {
		t.Fatalf("learned %q, want %q", got, want)
	}

	d := e.Decide(context.Background(), &decision.Request{Method: "POST", Path: "/mcp",
		Headers: map[string]string{"content-type": "application/json", "mcp-protocol-version": "v999.0.0"},
		Body:    []byte(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)})
	want := `"supported":["2025-11-25","2026-07-28"],"requested":"v999.0.0"`
	if d.Status != 400 || !strings.Contains(string(d.Body), want) {
		t.Errorf("unsupported version answered %d %s, want 400 with %s", d.Status, d.Body, want)
	}

	// Another request's answer is not asked for.
	x := open(t, c)
	x.request("alice", `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"initialize","arguments":{}}}`)
	if mo := x.responseHeaders("text/event-stream").GetModeOverride(); mo == nil || mo.GetResponseBodyMode() != procfilterv3.ProcessingMode_NONE {
		got := mo.GetResponseBodyMode()
		t.Errorf("mode override %v for a tools/call answer, want NONE", got)
	}
}
