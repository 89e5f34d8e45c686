// Package state is the state replicas of mcpauthz share: session owners,
// single-use markers (request states, DPoP proof ids) and short-lived
// records (approvals). One interface, Store, has two backends: Memory, for
// one replica (the default), and Redis, for several replicas behind one
// Redis or Valkey (standalone or Cluster).
//
// Every write carries a TTL: nothing is kept forever. Every operation is
// atomic on its backend, so two replicas racing on one key never both win.
package state

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// ErrFull is returned by the memory backend when a new key does not fit:
// a caller refuses what needed the key instead of forgetting another.
var ErrFull = errors.New("state: the store is full")

// Store is the shared state. Keys are chosen by mcpauthz's code (a kind,
// ":", then an id that may come from a client: backends hash it); values
// are short strings. Every write takes a positive TTL.
//
// An error means the store could not answer (unreachable, too slow, full):
// a caller that needed the answer refuses the request (fail closed).
type Store interface {
	// Claim makes value the value of key unless key holds one, and returns
	// the value key holds after the call. When key already held value, its
	// TTL starts again (an owner's activity keeps its claim); another
	// value's TTL is left as it is.
	Claim(ctx context.Context, key, value string, ttl time.Duration) (string, error)
	// Get returns key's value and whether it has one.
	Get(ctx context.Context, key string) (string, bool, error)
	// Once reports whether this is the first call with key within ttl: of
	// any number of concurrent calls, on any replica, exactly one is first.
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
	// Put sets key to value for ttl.
	Put(ctx context.Context, key, value string, ttl time.Duration) error
	// Take returns key's value and deletes it in one step: of concurrent
	// callers, at most one gets the value (single-use records).
	Take(ctx context.Context, key string) (string, bool, error)
	// CompareAndSwap sets key to new for ttl if it holds old, and reports
	// whether it did.
	CompareAndSwap(ctx context.Context, key, old, new string, ttl time.Duration) (bool, error)
	// Delete removes key; removing a key that has no value is no error.
	Delete(ctx context.Context, key string) error
	// Ping reports whether the store answers (readiness).
	Ping(ctx context.Context) error
	// Close releases the store's connections.
	Close() error
}

// Operation names, the op label of mcpauthz_state_errors_total.
const (
	OpClaim          = "claim"
	OpGet            = "get"
	OpOnce           = "once"
	OpPut            = "put"
	OpTake           = "take"
	OpCompareAndSwap = "compare_and_swap"
	OpDelete         = "delete"
	OpPing           = "ping"
)

// Ops lists every operation name, for metrics that export each at zero.
func Ops() []string {
	return []string{OpClaim, OpGet, OpOnce, OpPut, OpTake, OpCompareAndSwap, OpDelete, OpPing}
}

// checkTTL refuses a write that would be kept forever.
func checkTTL(op string, ttl time.Duration) error {
	if ttl < time.Millisecond {
		return fmt.Errorf("state: %s needs a TTL of at least 1ms, got %v: every key expires", op, ttl)
	}
	return nil
}
