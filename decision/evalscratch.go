package decision

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/topdown"
)

// evalScratch is the per-evaluation state OPA would otherwise allocate on
// every call (its rule cache, its data cache, a cancellation flag, the
// input term), pooled and reset between evaluations.
type evalScratch struct {
	cancel deadlineCancel
	vc     flatVirtualCache
	bc     flatBaseCache
	input  ast.Term
	q      topdown.Query
	// meta is OPA's request metadata map, which it allocates per call
	// when given none; emptied between evaluations.
	meta map[string]any
	// collect is the result callback, bound once to this scratch so that
	// no closure is allocated per evaluation; it counts the results and
	// keeps the last value of resultVar.
	collect func(topdown.QueryResult) error
	result  *ast.Term
	n       int

	// Set while a pool worker evaluates (evalpool.go): the caller's
	// context, the evaluation's error or panic, and the signal that the
	// worker is done with this scratch.
	ctx      context.Context
	err      error
	panicked any
	stack    []byte
	done     chan struct{}
}

var scratchPool = sync.Pool{New: func() any {
	s := &evalScratch{meta: map[string]any{}, done: make(chan struct{}, 1)}
	s.collect = func(qr topdown.QueryResult) error {
		s.n++
		s.result = qr[resultVar]
		return nil
	}
	return s
}}

// getScratch returns a scratch for one evaluation of input that stops
// after timeout, or once done (the caller's context) is closed.
func getScratch(input ast.Value, timeout time.Duration, done <-chan struct{}) *evalScratch {
	s := scratchPool.Get().(*evalScratch)
	s.cancel.reset(timeout, done)
	s.vc.reset()
	s.bc.reset()
	s.input = ast.Term{Value: input}
	s.result, s.n = nil, 0
	return s
}

// putScratch returns s to the pool, dropping what it references so that a
// pooled scratch keeps no request data alive.
func putScratch(s *evalScratch) {
	s.vc.reset()
	s.bc.reset()
	s.input = ast.Term{}
	s.q = topdown.Query{}
	s.cancel.done = nil
	clear(s.meta)
	s.result = nil
	s.err = nil
	scratchPool.Put(s)
}

// deadlineCancel is a topdown.Cancel that reports cancellation once a
// deadline has passed or the caller's context has ended (a gRPC client
// that went away: its answer would be thrown away, so evaluating on only
// holds a handler and a core). OPA asks before every expression; the clock
// and the context are read only every 64th time, which bounds the overrun
// to 64 expressions. It replaces a context deadline watched by a
// goroutine, or a runtime timer, per evaluation. Cancelled is called by
// the one goroutine evaluating.
type deadlineCancel struct {
	deadline  time.Time
	timeout   time.Duration
	done      <-chan struct{} // nil when the context cannot end
	calls     uint32
	cancelled atomic.Bool
}

func (c *deadlineCancel) reset(timeout time.Duration, done <-chan struct{}) {
	c.timeout = timeout
	c.deadline = time.Now().Add(timeout)
	c.done = done
	c.calls = 0
	c.cancelled.Store(false)
}

// restart starts the timeout again, when the evaluation really starts: a
// worker took it after it waited in the pool's queue, and waiting for a
// worker is not evaluating (a list of 25 items queued behind busy workers
// had each evaluation stopped by a timeout spent waiting, and its items
// hidden). The wait is bounded by the caller's context alone.
func (c *deadlineCancel) restart() {
	c.deadline = time.Now().Add(c.timeout)
	c.calls = 0
}

// Cancel cancels the evaluation.
func (c *deadlineCancel) Cancel() { c.cancelled.Store(true) }

// Cancelled reports whether the evaluation should stop.
func (c *deadlineCancel) Cancelled() bool {
	if c.cancelled.Load() {
		return true
	}
	c.calls++
	if c.calls&63 != 0 {
		return false
	}
	select {
	case <-c.done:
		c.cancelled.Store(true)
		return true
	default:
	}
	if time.Now().After(c.deadline) {
		c.cancelled.Store(true)
		return true
	}
	return false
}

// flatVirtualCache is OPA's cache of rule values within one evaluation
// (topdown.VirtualCache), as flat slices reused across evaluations instead
// of a tree of hash maps allocated per evaluation. A decision evaluates a
// handful of rules, so a linear scan beats hashing.
type flatVirtualCache struct {
	entries []vcEntry
	frames  []int // start of each pushed frame in entries
	terms   []*ast.Term
}

type vcEntry struct {
	ref       ast.Ref // a copy, in terms
	value     *ast.Term
	undefined bool
}

func (c *flatVirtualCache) reset() {
	clear(c.entries)
	clear(c.terms)
	c.entries, c.frames, c.terms = c.entries[:0], c.frames[:0], c.terms[:0]
}

// Push opens a frame (evaluation under a with modifier).
func (c *flatVirtualCache) Push() { c.frames = append(c.frames, len(c.entries)) }

// Pop drops the top frame and its entries.
func (c *flatVirtualCache) Pop() {
	if len(c.frames) == 0 {
		return
	}
	n := c.frames[len(c.frames)-1]
	c.frames = c.frames[:len(c.frames)-1]
	clear(c.entries[n:])
	c.entries = c.entries[:n]
}

func (c *flatVirtualCache) frameStart() int {
	if len(c.frames) == 0 {
		return 0
	}
	return c.frames[len(c.frames)-1]
}

// Get returns the cached value of ref: (value, false) when defined,
// (nil, true) when known undefined, (nil, false) when not cached.
func (c *flatVirtualCache) Get(ref ast.Ref) (*ast.Term, bool) {
	for i := len(c.entries) - 1; i >= c.frameStart(); i-- {
		if e := &c.entries[i]; e.ref.Equal(ref) {
			return e.value, e.undefined
		}
	}
	return nil, false
}

// Put records the value of ref; nil records it as undefined.
func (c *flatVirtualCache) Put(ref ast.Ref, value *ast.Term) {
	for i := len(c.entries) - 1; i >= c.frameStart(); i-- {
		if e := &c.entries[i]; e.ref.Equal(ref) {
			e.value, e.undefined = value, value == nil
			return
		}
	}
	// The caller may reuse its ref's backing array: keep a copy, carved
	// from one growing slice.
	start := len(c.terms)
	c.terms = append(c.terms, ref...)
	c.entries = append(c.entries, vcEntry{ref: ast.Ref(c.terms[start:len(c.terms):len(c.terms)]), value: value, undefined: value == nil})
}

// Keys returns the refs with a defined value in the top frame.
func (c *flatVirtualCache) Keys() []ast.Ref {
	var out []ast.Ref
	for i := c.frameStart(); i < len(c.entries); i++ {
		if c.entries[i].value != nil {
			out = append(out, c.entries[i].ref)
		}
	}
	return out
}

// flatBaseCache is OPA's cache of data reads within one evaluation
// (topdown.BaseCache), flat and reused like flatVirtualCache.
type flatBaseCache struct {
	entries []bcEntry
	terms   []*ast.Term
}

type bcEntry struct {
	ref   ast.Ref
	value ast.Value
}

func (c *flatBaseCache) reset() {
	clear(c.entries)
	clear(c.terms)
	c.entries, c.terms = c.entries[:0], c.terms[:0]
}

// Get returns the cached document at ref or below: OPA caches whole
// documents and reads into them.
func (c *flatBaseCache) Get(ref ast.Ref) ast.Value {
	for i := range c.entries {
		e := &c.entries[i]
		if len(e.ref) <= len(ref) && ref[:len(e.ref)].Equal(e.ref) {
			if len(e.ref) == len(ref) {
				return e.value
			}
			v, err := e.value.Find(ref[len(e.ref):])
			if err != nil {
				return nil
			}
			return v
		}
	}
	return nil
}

// Put caches the document at ref.
func (c *flatBaseCache) Put(ref ast.Ref, value ast.Value) {
	start := len(c.terms)
	c.terms = append(c.terms, ref...)
	c.entries = append(c.entries, bcEntry{ref: ast.Ref(c.terms[start:len(c.terms):len(c.terms)]), value: value})
}
