package state_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/internal/redistest"
)

// backend is one Store under test, with a way to let time pass: the
// memory store's clock moves, Redis's TTLs run out in real time.
type backend struct {
	store   state.Store
	advance func(time.Duration)
}

// fakeClock is the memory store's clock in tests.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func memoryBackend(*testing.T) func(*testing.T) backend {
	return func(*testing.T) backend {
		c := &fakeClock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
		return backend{store: state.NewMemory(1000, c.now), advance: c.add}
	}
}

func newRedis(t testing.TB, o state.RedisOptions) *state.Redis {
	t.Helper()
	if o.ReadTimeout == 0 {
		// The loaded test machine: a decision's 50ms is not the point here.
		o.ReadTimeout = 2 * time.Second
	}
	r, err := state.NewRedis(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

func redisBackend(t *testing.T) func(*testing.T) backend {
	srv := redistest.Start(t, redistest.Config{})
	return redisBackendOn(state.RedisOptions{Addresses: []string{srv.Addr}})
}

// redisBackendOn gives each test a store of its own on one server: keys
// under a prefix of their own.
func redisBackendOn(o state.RedisOptions) func(*testing.T) backend {
	n := 0
	return func(t *testing.T) backend {
		n++
		o.KeyPrefix = fmt.Sprintf("test%d:", n)
		return backend{store: newRedis(t, o), advance: time.Sleep}
	}
}

// backends are the stores every primitive test runs on: each starts its
// server once and returns a fresh store for each test.
var backends = map[string]func(t *testing.T) func(*testing.T) backend{
	"memory":        memoryBackend,
	"redis":         redisBackend,
	"redis_cluster": clusterBackend,
}

const long = time.Minute

// primitiveTests are the same table for every backend.
var primitiveTests = map[string]func(t *testing.T, b backend){
	"once_first_then_not": func(t *testing.T, b backend) {
		ctx := context.Background()
		want(t, must(b.store.Once(ctx, "once:a", long)), true)
		want(t, must(b.store.Once(ctx, "once:a", long)), false)
		want(t, must(b.store.Once(ctx, "once:b", long)), true)
	},
	"once_again_after_ttl": func(t *testing.T, b backend) {
		ctx := context.Background()
		want(t, must(b.store.Once(ctx, "once:a", 100*time.Millisecond)), true)
		b.advance(300 * time.Millisecond)
		want(t, must(b.store.Once(ctx, "once:a", long)), true)
	},
	"claim_first_value_wins": func(t *testing.T, b backend) {
		ctx := context.Background()
		want(t, must(b.store.Claim(ctx, "session:s1", "alice", long)), "alice")
		want(t, must(b.store.Claim(ctx, "session:s1", "mallory", long)), "alice")
		want(t, must(b.store.Claim(ctx, "session:s1", "alice", long)), "alice")
		want(t, must(b.store.Claim(ctx, "session:s2", "mallory", long)), "mallory")
	},
	"claim_owner_renews": func(t *testing.T, b backend) {
		ctx := context.Background()
		ttl := 400 * time.Millisecond
		want(t, must(b.store.Claim(ctx, "session:s1", "alice", ttl)), "alice")
		b.advance(250 * time.Millisecond)
		want(t, must(b.store.Claim(ctx, "session:s1", "alice", ttl)), "alice")
		b.advance(250 * time.Millisecond)
		// 500ms after the first claim, 250ms after alice's renewal.
		want(t, must(b.store.Claim(ctx, "session:s1", "mallory", ttl)), "alice")
	},
	"claim_other_does_not_renew": func(t *testing.T, b backend) {
		ctx := context.Background()
		ttl := 200 * time.Millisecond
		want(t, must(b.store.Claim(ctx, "session:s1", "alice", ttl)), "alice")
		want(t, must(b.store.Claim(ctx, "session:s1", "mallory", long)), "alice")
		b.advance(400 * time.Millisecond)
		want(t, must(b.store.Claim(ctx, "session:s1", "mallory", long)), "mallory")
	},
	"get_put_delete": func(t *testing.T, b backend) {
		ctx := context.Background()
		v, ok, err := b.store.Get(ctx, "record:r")
		want(t, fmt.Sprintf("%q %v %v", v, ok, err), `"" false <nil>`)
		if err := b.store.Put(ctx, "record:r", "pending", long); err != nil {
			t.Fatal(err)
		}
		v, ok, err = b.store.Get(ctx, "record:r")
		want(t, fmt.Sprintf("%q %v %v", v, ok, err), `"pending" true <nil>`)
		if err := b.store.Delete(ctx, "record:r"); err != nil {
			t.Fatal(err)
		}
		if err := b.store.Delete(ctx, "record:r"); err != nil {
			t.Fatal(err)
		}
		_, ok, _ = b.store.Get(ctx, "record:r")
		want(t, ok, false)
	},
	"put_expires": func(t *testing.T, b backend) {
		ctx := context.Background()
		if err := b.store.Put(ctx, "record:r", "x", 100*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		b.advance(300 * time.Millisecond)
		_, ok, err := b.store.Get(ctx, "record:r")
		want(t, fmt.Sprint(ok, err), "false <nil>")
	},
	"take_once": func(t *testing.T, b backend) {
		ctx := context.Background()
		if err := b.store.Put(ctx, "record:r", "grant", long); err != nil {
			t.Fatal(err)
		}
		v, ok, err := b.store.Take(ctx, "record:r")
		want(t, fmt.Sprintf("%q %v %v", v, ok, err), `"grant" true <nil>`)
		v, ok, err = b.store.Take(ctx, "record:r")
		want(t, fmt.Sprintf("%q %v %v", v, ok, err), `"" false <nil>`)
	},
	"compare_and_swap": func(t *testing.T, b backend) {
		ctx := context.Background()
		want(t, must(b.store.CompareAndSwap(ctx, "record:r", "pending", "granted", long)), false)
		if err := b.store.Put(ctx, "record:r", "pending", long); err != nil {
			t.Fatal(err)
		}
		want(t, must(b.store.CompareAndSwap(ctx, "record:r", "denied", "granted", long)), false)
		want(t, must(b.store.CompareAndSwap(ctx, "record:r", "pending", "granted", long)), true)
		want(t, must(b.store.CompareAndSwap(ctx, "record:r", "pending", "granted", long)), false)
		v, _, _ := b.store.Get(ctx, "record:r")
		want(t, v, "granted")
	},
	"kinds_are_apart": func(t *testing.T, b backend) {
		ctx := context.Background()
		want(t, must(b.store.Once(ctx, "once:x", long)), true)
		want(t, must(b.store.Claim(ctx, "session:x", "alice", long)), "alice")
		_, ok, _ := b.store.Get(ctx, "record:x")
		want(t, ok, false)
	},
	"ttl_required": func(t *testing.T, b backend) {
		ctx := context.Background()
		for op, err := range map[string]error{
			"once":  second(b.store.Once(ctx, "once:a", 0)),
			"claim": second(b.store.Claim(ctx, "session:a", "x", -time.Second)),
			"put":   b.store.Put(ctx, "record:a", "x", 0),
			"cas":   second(b.store.CompareAndSwap(ctx, "record:a", "x", "y", 0)),
		} {
			if err == nil {
				t.Errorf("%s without a TTL: no error", op)
			}
		}
	},
	"sessions_binder": func(t *testing.T, b backend) {
		ctx := context.Background()
		s := state.NewSessions(b.store, long)
		want(t, must(s.Owner(ctx, "s1")), "")
		want(t, must(s.Bind(ctx, "s1", "iss|alice")), "iss|alice")
		want(t, must(s.Bind(ctx, "s1", "iss|mallory")), "iss|alice")
		want(t, must(s.Owner(ctx, "s1")), "iss|alice")
		want(t, must(s.Owner(ctx, "s2")), "")
	},
	"ping": func(t *testing.T, b backend) {
		if err := b.store.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
	},
}

func TestPrimitives(t *testing.T) {
	for name, newBackend := range backends {
		t.Run(name, func(t *testing.T) {
			newBackend := newBackend(t)
			for test, run := range primitiveTests {
				t.Run(test, func(t *testing.T) {
					run(t, newBackend(t))
				})
			}
		})
	}
}

// TestOnceRaces: 1,000 keys, each raced by two goroutines on two
// clients (two replicas): exactly one wins each.
func TestOnceRaces(t *testing.T) {
	clients := map[string]func(t *testing.T) [2]state.Store{
		"memory": func(t *testing.T) [2]state.Store {
			m := state.NewMemory(10_000, nil)
			return [2]state.Store{m, m}
		},
		"redis": func(t *testing.T) [2]state.Store {
			srv := redistest.Start(t, redistest.Config{})
			o := state.RedisOptions{Addresses: []string{srv.Addr}, PoolSize: 8}
			return [2]state.Store{newRedis(t, o), newRedis(t, o)}
		},
	}
	for name, newClients := range clients {
		t.Run(name, func(t *testing.T) {
			c := newClients(t)
			const keys = 1000
			var wins [keys]atomic.Int32
			var errs atomic.Int32
			var wg sync.WaitGroup
			for i := range keys {
				for _, s := range c {
					wg.Go(func() {
						first, err := s.Once(context.Background(), fmt.Sprintf("once:race-%d", i), long)
						if err != nil {
							errs.Add(1)
						}
						if first {
							wins[i].Add(1)
						}
					})
				}
			}
			wg.Wait()
			if n := errs.Load(); n > 0 {
				t.Fatalf("%d operations failed", n)
			}
			for i := range wins {
				if n := wins[i].Load(); n != 1 {
					t.Errorf("key %d: %d winners, want exactly 1", i, n)
				}
			}
		})
	}
}

func TestMemoryFull(t *testing.T) {
	c := &fakeClock{t: time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)}
	m := state.NewMemory(16, c.now) // one key per shard
	ctx := context.Background()
	full := 0
	for i := range 200 {
		if _, err := m.Once(ctx, fmt.Sprintf("once:%d", i), time.Minute); errors.Is(err, state.ErrFull) {
			full++
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if full == 0 || m.Len() > 16 {
		t.Fatalf("%d refused, %d held: a full store must refuse new keys, not grow", full, m.Len())
	}
	// Once the keys have expired (and a second has passed, for the sweep),
	// a new key fits again.
	c.add(2 * time.Minute)
	if _, err := m.Once(ctx, "once:after", time.Minute); err != nil {
		t.Fatalf("a new key after every key expired: %v", err)
	}
	if m.Len() == 0 {
		t.Fatal("nothing stored after the keys expired")
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func second[T any](_ T, err error) error { return err }

func want[T comparable](t *testing.T, got, w T) {
	t.Helper()
	if got != w {
		t.Fatalf("got %v, want %v", got, w)
	}
}

// quiet keeps go-redis's own logger (dial failures, by design in the
// down-and-back test) out of the test output; the store's errors are what
// the tests look at.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	redis.SetLogger(quiet{})
	os.Exit(m.Run())
}
