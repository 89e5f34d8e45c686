package session

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// clock is a settable time for a Binder.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

// op is one call at t0+at: a Bind of session by owner (owner set), or an
// Owner lookup (owner ""); want is the owner it must return.
type op struct {
	at      time.Duration
	session string
	owner   string
	want    string
}

func TestBindAndOwner(t *testing.T) {
	ctx := context.Background()
	tests := map[string][]op{
		"first_bind_binds": {
			{0, "s1", "", ""},
			{0, "s1", "alice", "alice"},
			{time.Minute, "s1", "", "alice"},
			{time.Minute, "s1", "alice", "alice"},
		},
		"other_owner_gets_the_holder": {
			{0, "s1", "alice", "alice"},
			{time.Second, "s1", "mallory", "alice"},
			{2 * time.Second, "s1", "", "alice"},
		},
		"sessions_independent": {
			{0, "s1", "alice", "alice"},
			{0, "s2", "bob", "bob"},
			{time.Second, "s2", "alice", "bob"},
			{time.Second, "s1", "bob", "alice"},
		},
		"idle_expiry_forgets": {
			{0, "s1", "alice", "alice"},
			{time.Hour, "s1", "", ""},
			{time.Hour, "s1", "mallory", "mallory"},
		},
		"owner_bind_keeps_alive": {
			{0, "s1", "alice", "alice"},
			{50 * time.Minute, "s1", "alice", "alice"},
			{100 * time.Minute, "s1", "mallory", "alice"},
		},
		"lookups_and_others_do_not_keep_alive": {
			{0, "s1", "alice", "alice"},
			{50 * time.Minute, "s1", "", "alice"},
			{55 * time.Minute, "s1", "mallory", "alice"},
			{61 * time.Minute, "s1", "mallory", "mallory"},
		},
		"just_before_ttl": {
			{0, "s1", "alice", "alice"},
			{time.Hour - time.Nanosecond, "s1", "mallory", "alice"},
		},
		"clock_going_backwards": {
			{time.Minute, "s1", "alice", "alice"},
			{0, "s1", "mallory", "alice"},
		},
		"empty_session_id_has_no_owner": {
			{0, "", "", ""},
		},
	}
	for name, ops := range tests {
		t.Run(name, func(t *testing.T) {
			c := &clock{t0}
			b := NewBinder(100, time.Hour, c.now)
			for i, o := range ops {
				c.t = t0.Add(o.at)
				var got string
				var err error
				if o.owner == "" {
					got, err = b.Owner(ctx, o.session)
				} else {
					got, err = b.Bind(ctx, o.session, o.owner)
				}
				if err != nil || got != o.want {
					t.Fatalf("op %d (%q, %q) = %q, %v; want %q", i, o.session, o.owner, got, err, o.want)
				}
			}
		})
	}
}

// TestFullRefusesNew: a full table refuses a new session and keeps every
// bound one (issue 28 row 3: a flood of fresh ids evicted real bindings);
// room comes back once a session has been idle for the TTL.
func TestFullRefusesNew(t *testing.T) {
	ctx := context.Background()
	tests := map[string]struct{ size, flood int }{
		"one_shard": {size: 4, flood: 100},
		"sharded":   {size: 64, flood: 10_000},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := &clock{t0}
			b := NewBinder(tc.size, time.Hour, c.now)
			if got, err := b.Bind(ctx, "alice-session", "alice"); err != nil || got != "alice" {
				t.Fatalf("Bind = %q, %v", got, err)
			}
			full := 0
			for i := range tc.flood {
				c.t = t0.Add(time.Duration(i) * time.Millisecond)
				_, err := b.Bind(ctx, fmt.Sprintf("s%d", i), "bob")
				switch {
				case errors.Is(err, ErrSessionsFull):
					full++
				case err != nil:
					t.Fatal(err)
				}
			}
			if full == 0 {
				t.Fatalf("%d new sessions in a table of %d: none refused", tc.flood, tc.size)
			}
			if n := b.Len(); n > tc.size+tc.size/shardCount+1 {
				t.Errorf("Len = %d, want at most about %d", n, tc.size)
			}
			if got, _ := b.Owner(ctx, "alice-session"); got != "alice" {
				t.Errorf("alice's session after the flood: owner %q, want alice", got)
			}
			if got, err := b.Bind(ctx, "alice-session", "alice"); err != nil || got != "alice" {
				t.Errorf("alice's own Bind when full = %q, %v; want alice", got, err)
			}
			// An hour later the flood's sessions have expired: room again.
			c.t = t0.Add(3 * time.Hour)
			if got, err := b.Bind(ctx, "new", "carol"); err != nil || got != "carol" {
				t.Errorf("Bind after the TTL = %q, %v; want carol", got, err)
			}
		})
	}
}

func TestBindNeedsOwner(t *testing.T) {
	b := NewBinder(10, time.Hour, nil)
	for name, args := range map[string][2]string{"no_owner": {"s", ""}, "no_session": {"", "alice"}} {
		if _, err := b.Bind(context.Background(), args[0], args[1]); err == nil {
			t.Errorf("%s: Bind(%q, %q) succeeded", name, args[0], args[1])
		}
	}
}

func TestDefaults(t *testing.T) {
	ctx := context.Background()
	b := NewBinder(0, 0, nil)
	if b.ttl != DefaultTTL {
		t.Errorf("ttl = %v, want %v", b.ttl, DefaultTTL)
	}
	// The default bound holds about DefaultSize sessions: each shard holds
	// its share, and hashing spreads ids unevenly by a little.
	for i := range DefaultSize + 1000 {
		_, _ = b.Bind(ctx, "id-"+strconv.Itoa(i), "u")
	}
	if n := b.Len(); n > DefaultSize || n < DefaultSize*9/10 {
		t.Errorf("Len after %d sessions = %d, want about %d", DefaultSize+1000, n, DefaultSize)
	}
}

func TestBindConcurrent(t *testing.T) {
	ctx := context.Background()
	b := NewBinder(1000, time.Hour, nil)
	const workers = 16
	var wg sync.WaitGroup
	owners := make([]string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			owner := fmt.Sprintf("u%d", w)
			for i := range 200 {
				got, err := b.Bind(ctx, fmt.Sprintf("s%d", i%50), owner)
				if err != nil {
					t.Error(err)
					return
				}
				if i%50 == 7 {
					owners[w] = got
				}
			}
		}()
	}
	wg.Wait()
	// Whoever won session s7, every worker saw that same owner.
	for w := range workers {
		if owners[w] != owners[0] || owners[w] == "" {
			t.Fatalf("workers saw owners %v, want one owner", owners)
		}
	}
}

func BenchmarkBind(b *testing.B) {
	ctx := context.Background()
	bd := NewBinder(0, 0, nil)
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("0b6a2c1e-3f1d-4c55-9a1e-%012d", i)
		_, _ = bd.Bind(ctx, ids[i], "alice")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if got, _ := bd.Bind(ctx, ids[i&1023], "alice"); got != "alice" {
			b.Fatal("owner changed")
		}
		i++
	}
}
