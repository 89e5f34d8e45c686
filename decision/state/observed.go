package state

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// LogEvery is how often, at most, Observed logs a failing store: a Redis
// that is down fails every request, and one line a few seconds says so.
const LogEvery = 5 * time.Second

// Observed wraps a Store so that each failed operation is counted and
// logged, at most one line per LogEvery with the number of failures since
// the last line. ErrFull and a caller's own cancellation are failures too:
// a request that needed the store was refused.
type Observed struct {
	Store
	count func(op string)
	log   *slog.Logger
	now   func() time.Time

	mu      sync.Mutex
	last    time.Time
	dropped int
}

// Observe returns s with every error counted by count(op) (nil: not
// counted) and logged on log (nil: not logged).
func Observe(s Store, count func(op string), log *slog.Logger) *Observed {
	return &Observed{Store: s, count: count, log: log, now: time.Now}
}

// failed counts and perhaps logs one failed op.
func (o *Observed) failed(op string, err error) {
	if o.count != nil {
		o.count(op)
	}
	if o.log == nil {
		return
	}
	now := o.now()
	o.mu.Lock()
	// A clock that went back logs rather than going quiet.
	if d := now.Sub(o.last); !o.last.IsZero() && d >= 0 && d < LogEvery {
		o.dropped++
		o.mu.Unlock()
		return
	}
	n := o.dropped
	o.last, o.dropped = now, 0
	o.mu.Unlock()
	o.log.Warn("shared state failed: requests that need it are refused with state_unavailable",
		"op", op, "error", err, "failures_not_logged", n)
}

// Claim implements Store.
func (o *Observed) Claim(ctx context.Context, key, value string, ttl time.Duration) (string, error) {
	v, err := o.Store.Claim(ctx, key, value, ttl)
	if err != nil {
		o.failed(OpClaim, err)
	}
	return v, err
}

// Get implements Store.
func (o *Observed) Get(ctx context.Context, key string) (string, bool, error) {
	v, ok, err := o.Store.Get(ctx, key)
	if err != nil {
		o.failed(OpGet, err)
	}
	return v, ok, err
}

// Once implements Store.
func (o *Observed) Once(ctx context.Context, key string, ttl time.Duration) (bool, error) {
	first, err := o.Store.Once(ctx, key, ttl)
	if err != nil {
		o.failed(OpOnce, err)
	}
	return first, err
}

// Put implements Store.
func (o *Observed) Put(ctx context.Context, key, value string, ttl time.Duration) error {
	err := o.Store.Put(ctx, key, value, ttl)
	if err != nil {
		o.failed(OpPut, err)
	}
	return err
}

// Take implements Store.
func (o *Observed) Take(ctx context.Context, key string) (string, bool, error) {
	v, ok, err := o.Store.Take(ctx, key)
	if err != nil {
		o.failed(OpTake, err)
	}
	return v, ok, err
}

// CompareAndSwap implements Store.
func (o *Observed) CompareAndSwap(ctx context.Context, key, old, new string, ttl time.Duration) (bool, error) {
	ok, err := o.Store.CompareAndSwap(ctx, key, old, new, ttl)
	if err != nil {
		o.failed(OpCompareAndSwap, err)
	}
	return ok, err
}

// Delete implements Store.
func (o *Observed) Delete(ctx context.Context, key string) error {
	err := o.Store.Delete(ctx, key)
	if err != nil {
		o.failed(OpDelete, err)
	}
	return err
}

// Ping implements Store.
func (o *Observed) Ping(ctx context.Context) error {
	err := o.Store.Ping(ctx)
	if err != nil {
		o.failed(OpPing, err)
	}
	return err
}
