package decision

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Policy evaluation runs on a few long-lived goroutines, not on the
// goroutine of the call that asked for it.
//
// Why: OPA's evaluator recurses deeply (tens of kilobytes of stack for an
// ordinary decision). A goroutine starts with a small stack and grows it
// by copying, so an evaluation on a fresh goroutine pays that copying
// every time. gRPC runs a call on one of its stream workers (long-lived,
// their stacks already grown) only while one is free; past that, at high
// concurrency, every call gets a new goroutine: with 512 concurrent
// callers on two cores, growing stacks (runtime.newstack/copystack) took
// 29% of the CPU, against under 1% at 32 callers. Evaluations are
// CPU-bound (builtins that reach the network are refused at load), so a
// pool of a few workers per core runs them as fast as the cores allow, on
// stacks grown once; the calls' own goroutines only wait. It also bounds
// how many evaluations hold their intermediate garbage at once.

// evalPool hands evaluations to its workers. The zero value runs them on
// the caller's goroutine.
type evalPool struct {
	jobs chan *evalScratch
}

// defaultEvalWorkers is the pool size when Options.EvalWorkers is 0: two
// per core, so that a worker waiting to be scheduled does not leave a core
// idle.
func defaultEvalWorkers() int { return 2 * runtime.GOMAXPROCS(0) }

// newEvalPool starts n workers (none when n < 0). They stop once the pool
// is closed.
func newEvalPool(n int) *evalPool {
	if n < 0 {
		return &evalPool{}
	}
	if n == 0 {
		n = defaultEvalWorkers()
	}
	p := &evalPool{jobs: make(chan *evalScratch)}
	for range n {
		go p.work(p.jobs)
	}
	return p
}

// close stops the workers. Evaluations asked for afterwards run on the
// caller's goroutine.
func (p *evalPool) close() {
	if p.jobs != nil {
		close(p.jobs)
	}
}

func (p *evalPool) work(jobs <-chan *evalScratch) {
	for sc := range jobs {
		sc.iterOnWorker()
		sc.done <- struct{}{}
	}
}

// iterOnWorker runs the scratch's query, keeping a panic to be raised
// again on the caller's goroutine, whose recovery turns it into a failsafe
// denial (a panic here would end the process).
func (sc *evalScratch) iterOnWorker() {
	defer func() {
		if p := recover(); p != nil {
			sc.panicked = p
			sc.stack = debug.Stack()
		}
	}()
	sc.cancel.restart()
	sc.err = sc.q.Iter(sc.ctx, sc.collect)
}

// iter evaluates sc's query (set up by the caller) and returns its error.
// It waits for a free worker unless ctx ends first; once a worker has the
// scratch, it waits for the end of the evaluation, which stops soon after
// ctx ends (the scratch's cancel watches ctx) or after the evaluation
// timeout, counted from when the worker took it.
func (p *evalPool) iter(ctx context.Context, sc *evalScratch) (err error) {
	if p == nil || p.jobs == nil {
		return sc.q.Iter(ctx, sc.collect)
	}
	sc.ctx = ctx
	defer func() { sc.ctx = nil }()
	select {
	case p.jobs <- sc:
	case <-ctx.Done():
		return fmt.Errorf("waiting for a policy evaluation worker: %w", ctx.Err())
	}
	<-sc.done
	if sc.panicked != nil {
		v, stack := sc.panicked, sc.stack
		sc.panicked, sc.stack = nil, nil
		panic(workerPanic{value: v, stack: stack})
	}
	return sc.err
}

// workerPanic is a panic raised while a worker evaluated, raised again on
// the caller's goroutine with the worker's stack.
type workerPanic struct {
	value any
	stack []byte
}

func (w workerPanic) String() string {
	return fmt.Sprintf("%v (in a policy evaluation worker)\n%s", w.value, w.stack)
}
