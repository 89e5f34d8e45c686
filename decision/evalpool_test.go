package decision

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// poolScratch is a scratch whose query makes its result callback run fn,
// so a test can block or panic inside an evaluation on a worker.
func poolScratch(t *testing.T, fn func()) *evalScratch {
	t.Helper()
	sc := getScratch(ast.NewObject(), time.Minute, nil)
	collect := sc.collect
	t.Cleanup(func() { sc.collect = collect; putScratch(sc) })
	sc.q = *topdown.NewQuery(ast.MustParseBody("true")).WithCompiler(ast.NewCompiler())
	sc.collect = func(qr topdown.QueryResult) error { fn(); return collect(qr) }
	return sc
}

// TestEvalPoolRunsOnWorkers: evaluations run and return their result, many
// at once; a panic on a worker is raised again on the caller's goroutine
// (where Decide's recovery turns it into a failsafe denial) instead of
// ending the process; a caller whose context ends while every worker is
// busy gives up with an error instead of waiting.
func TestEvalPoolRunsOnWorkers(t *testing.T) {
	p := newEvalPool(2)
	t.Cleanup(p.close)

	t.Run("many", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				sc := poolScratch(t, func() {})
				if err := p.iter(context.Background(), sc); err != nil || sc.n != 1 {
					t.Errorf("iter: err %v, %d results; want nil, 1", err, sc.n)
				}
			})
		}
		wg.Wait()
	})

	t.Run("panic", func(t *testing.T) {
		sc := poolScratch(t, func() { panic("boom") })
		defer func() {
			p := recover()
			w, ok := p.(workerPanic)
			if !ok || w.value != "boom" || !strings.Contains(w.String(), "evaluation worker") {
				t.Fatalf("recovered %#v, want the worker's panic", p)
			}
		}()
		_ = p.iter(context.Background(), sc)
		t.Fatal("iter returned after a panic")
	})

	t.Run("gone_while_waiting", func(t *testing.T) {
		release := make(chan struct{})
		started := make(chan struct{}, 2)
		var wg sync.WaitGroup
		for range 2 { // occupy both workers
			wg.Go(func() {
				sc := poolScratch(t, func() { started <- struct{}{}; <-release })
				_ = p.iter(context.Background(), sc)
			})
		}
		<-started
		<-started
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		err := p.iter(ctx, poolScratch(t, func() {}))
		close(release)
		wg.Wait()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("iter with an ended context: %v, want context.Canceled", err)
		}
	})

	t.Run("closed", func(t *testing.T) {
		q := newEvalPool(-1)
		sc := poolScratch(t, func() {})
		if err := q.iter(context.Background(), sc); err != nil || sc.n != 1 {
			t.Fatalf("inline iter: %v, %d results", err, sc.n)
		}
	})
}
