package session

import (
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// step is one request: at t0+at, session id with subject; want is the owner
// Owner must return.
type step struct {
	at      time.Duration
	session string
	subject string
	want    string
}

func TestOwner(t *testing.T) {
	tests := map[string][]step{
		"first_sight_binds": {
			{0, "s1", "alice", "alice"},
			{time.Minute, "s1", "alice", "alice"},
		},
		"hijack_reports_owner": {
			{0, "s1", "alice", "alice"},
			{time.Second, "s1", "mallory", "alice"},
			{2 * time.Second, "s1", "alice", "alice"},
		},
		"unauthenticated_binds_nothing": {
			{0, "s1", "", ""},
			{time.Second, "s1", "bob", "bob"},
			{2 * time.Second, "s1", "alice", "bob"},
		},
		"unauthenticated_on_bound_session": {
			{0, "s1", "alice", "alice"},
			{time.Second, "s1", "", "alice"},
		},
		"no_session_id": {
			{0, "", "alice", "alice"},
			{time.Second, "", "bob", "bob"},
		},
		"sessions_independent": {
			{0, "s1", "alice", "alice"},
			{0, "s2", "bob", "bob"},
			{time.Second, "s2", "alice", "bob"},
			{time.Second, "s1", "bob", "alice"},
		},
		"idle_expiry_rebinds": {
			{0, "s1", "alice", "alice"},
			{time.Hour, "s1", "mallory", "mallory"},
		},
		"owner_activity_keeps_alive": {
			{0, "s1", "alice", "alice"},
			{50 * time.Minute, "s1", "alice", "alice"},
			{100 * time.Minute, "s1", "mallory", "alice"},
		},
		"hijacker_activity_does_not_keep_alive": {
			{0, "s1", "alice", "alice"},
			{50 * time.Minute, "s1", "mallory", "alice"},
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
	}
	for name, steps := range tests {
		t.Run(name, func(t *testing.T) {
			b := NewBinder(100, time.Hour)
			for i, s := range steps {
				if got := b.Owner(s.session, s.subject, t0.Add(s.at)); got != s.want {
					t.Fatalf("step %d: Owner(%q, %q) = %q, want %q", i, s.session, s.subject, got, s.want)
				}
			}
		})
	}
}

func TestOwnerBounded(t *testing.T) {
	tests := map[string]struct {
		size, sessions int
	}{
		"one_shard": {size: 4, sessions: 10},
		"sharded":   {size: 64, sessions: 1000},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			b := NewBinder(tc.size, time.Hour)
			for i := range tc.sessions {
				b.Owner(fmt.Sprintf("s%d", i), fmt.Sprintf("u%d", i), t0)
			}
			if n := b.Len(); n > tc.size || n == 0 {
				t.Errorf("Len = %d, want 1..%d", n, tc.size)
			}
			// The most recent session is still bound.
			last := tc.sessions - 1
			if got := b.Owner(fmt.Sprintf("s%d", last), "mallory", t0); got != fmt.Sprintf("u%d", last) {
				t.Errorf("newest session owner = %q, want u%d", got, last)
			}
		})
	}
	b := NewBinder(4, time.Hour)
	for i := range 5 {
		b.Owner(fmt.Sprintf("s%d", i), fmt.Sprintf("u%d", i), t0)
	}
	// s0 was the least recently used of five in a binder of four.
	if got := b.Owner("s0", "mallory", t0); got != "mallory" {
		t.Errorf("evicted session: owner %q, want it forgotten and rebound to mallory", got)
	}
}

func TestOwnerDefaults(t *testing.T) {
	b := NewBinder(0, 0)
	if b.ttl != DefaultTTL {
		t.Errorf("ttl = %v, want %v", b.ttl, DefaultTTL)
	}
	// The default bound holds about DefaultSize sessions: each shard holds
	// its share, and hashing spreads ids unevenly by a little.
	for i := range DefaultSize + 1000 {
		b.Owner("id-"+strconv.Itoa(i), "u", t0)
	}
	if n := b.Len(); n > DefaultSize || n < DefaultSize*9/10 {
		t.Errorf("Len after %d sessions = %d, want about %d", DefaultSize+1000, n, DefaultSize)
	}
	b.Owner("s", "alice", t0)
	if got := b.Owner("s", "bob", t0.Add(DefaultTTL-time.Second)); got != "alice" {
		t.Errorf("owner within default TTL = %q, want alice", got)
	}
}

func TestOwnerConcurrent(t *testing.T) {
	b := NewBinder(1000, time.Hour)
	const workers = 16
	var wg sync.WaitGroup
	owners := make([]string, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			subject := fmt.Sprintf("u%d", w)
			for i := range 200 {
				owner := b.Owner(fmt.Sprintf("s%d", i%50), subject, t0)
				if i%50 == 7 {
					owners[w] = owner
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

func BenchmarkOwner(b *testing.B) {
	bd := NewBinder(0, 0)
	ids := make([]string, 1024)
	for i := range ids {
		ids[i] = fmt.Sprintf("0b6a2c1e-3f1d-4c55-9a1e-%012d", i)
		bd.Owner(ids[i], "alice", t0)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if bd.Owner(ids[i&1023], "alice", t0) != "alice" {
			b.Fatal("owner changed")
		}
		i++
	}
}
