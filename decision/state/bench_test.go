package state_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/internal/redistest"
)

// benchStores are the stores the benchmarks measure: memory, and Redis
// over loopback (one round trip a call).
func benchStores(b *testing.B) map[string]state.Store {
	srv := redistest.Start(b, redistest.Config{})
	return map[string]state.Store{
		"memory": state.NewMemory(1<<20, nil),
		"redis":  newRedis(b, state.RedisOptions{Addresses: []string{srv.Addr}}),
	}
}

// BenchmarkOnce is the cost of one single-use check (a new key each call,
// as a request state or DPoP jti is).
func BenchmarkOnce(b *testing.B) {
	run := 0 // each run's keys are new: b.Run calls a function more than once
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			run++
			keys := make([]string, b.N)
			for i := range keys {
				keys[i] = "once:bench-" + strconv.Itoa(run) + "-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				if first, err := s.Once(ctx, keys[i], time.Minute); err != nil || !first {
					b.Fatal(first, err)
				}
			}
		})
	}
}

// BenchmarkSessionBind is what session binding adds to an allowed request
// of a bound session: the owner read before the policy, the owner's Bind
// (renewing the TTL) after it.
func BenchmarkSessionBind(b *testing.B) {
	for name, s := range benchStores(b) {
		b.Run(name, func(b *testing.B) {
			ctx := context.Background()
			sessions := state.NewSessions(s, time.Hour)
			const owner = "https://auth.example.com|alice"
			if _, err := sessions.Bind(ctx, "bench-session", owner); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				got, err := sessions.Owner(ctx, "bench-session")
				if err != nil || got != owner {
					b.Fatal(got, err)
				}
				if got, err = sessions.Bind(ctx, "bench-session", owner); err != nil || got != owner {
					b.Fatal(got, err)
				}
			}
		})
	}
}
