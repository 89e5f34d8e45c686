package decision

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// TestListWaitsForWorkers holds the only evaluation worker busy while a
// list is filtered, longer than policy.eval_timeout: the list waits for
// the worker (its caller is still there) and is judged in full once the
// worker is free, since the time spent waiting is not evaluation time
// (issue 20 item 6: items were hidden for an evaluation that never ran).
func TestListWaitsForWorkers(t *testing.T) {
	const timeout = 100 * time.Millisecond
	src := &fixedSnapshots{}
	e, err := New(Options{Snapshots: src, MetadataURL: oauth.MetadataURL(workload.Audience), EvalWorkers: 1, EvalTimeout: timeout})
	if err != nil {
		t.Fatal(err)
	}
	rules, err := RulesIn("")
	if err != nil {
		t.Fatal(err)
	}
	if src.p, err = bundles.CompileWith(context.Background(), bundles.Options{Sources: []bundles.Source{bundles.DirSource("testdata/busyvisible")}, Queries: rules.Queries()}, rules.Activate); err != nil {
		t.Fatal(err)
	}
	f := NewItemFilter(e)

	release, held := make(chan struct{}), make(chan struct{})
	blocker := poolScratch(t, func() { close(held); <-release })
	freed := make(chan struct{})
	go func() { _ = e.pool.iter(context.Background(), blocker); close(freed) }()
	<-held // the worker is busy until release

	r := &Request{Method: "POST", Path: "/mcp", Headers: map[string]string{}, Credential: token.Claimed(map[string]any{"sub": "alice"}),
		Body: []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/list"}`)}
	type answer struct {
		out []byte
		res ListOutcome
	}
	done := make(chan answer, 1)
	go func() {
		out, res := f.FilterResponse(context.Background(), r, f.ListRequestOf(r),
			[]byte(`{"jsonrpc":"2.0","id":7,"result":{"tools":[{"name":"search"},{"name":"debug"}]}}`))
		done <- answer{out, res}
	}()
	select {
	case a := <-done:
		t.Fatalf("the list was answered while the only worker was busy: %s", a.out)
	case <-time.After(3 * timeout):
	}
	close(release)
	<-freed
	a := <-done
	if got := string(a.out); !strings.Contains(got, `"tools":[{"name":"search"}]`) || len(a.res.Errors) > 0 {
		t.Fatalf("got %s (errors %v), want search shown, debug hidden", got, a.res.Errors)
	}
}
