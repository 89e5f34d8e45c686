// Package session binds MCP session ids to the subject that opened them.
//
// Sessions are not authentication: every request is verified on its own. But
// a session id that leaks (logs, a shared proxy) must not let someone else
// continue another user's session, so the first authenticated subject seen
// with a session id becomes its owner, and a later request with the same id
// from anyone else is a hijack the policy can deny.
package session

import (
	"hash/maphash"
	"sync"
	"time"

	"github.com/hashicorp/golang-lru/v2/simplelru"
)

// Defaults of NewBinder.
const (
	DefaultSize = 100_000
	DefaultTTL  = 24 * time.Hour
)

// shardCount spreads the lock: every request touches the binder.
const shardCount = 16

// Binder remembers the owner of each session id, for at most about size
// sessions (least recently used forgotten first, within each of its lock
// shards) and until a session has been idle
// for the TTL. It is safe for concurrent use. Session ids are kept as 128-bit
// keyed hashes, so memory does not depend on what clients send.
type Binder struct {
	seeds  [2]maphash.Seed
	ttl    time.Duration
	shards []shard
}

// sessionKey is a session id's keyed 128-bit hash.
type sessionKey [2]uint64

type binding struct {
	owner    string
	lastSeen int64 // UnixNano of the owner's last request
}

type shard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[sessionKey, binding]
}

// NewBinder returns a Binder for at most size sessions (default 100,000 when
// size <= 0) that forgets a session idle for ttl (default 24h when ttl <= 0).
func NewBinder(size int, ttl time.Duration) *Binder {
	if size <= 0 {
		size = DefaultSize
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	n := shardCount
	if size < n {
		n = 1
	}
	per := (size + n - 1) / n
	b := &Binder{
		seeds:  [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		ttl:    ttl,
		shards: make([]shard, n),
	}
	for i := range b.shards {
		l, err := simplelru.NewLRU[sessionKey, binding](per, nil)
		if err != nil {
			// Unreachable: per is positive.
			panic("session binder: " + err.Error())
		}
		b.shards[i].lru = l
	}
	return b
}

// Owner returns the owner of sessionID as of now. On first sight of the id
// (or once its binding has expired) subject becomes the owner, unless subject
// is "" (an unauthenticated request binds nothing). The returned owner may
// differ from subject: that request is not from the user who opened the
// session. An empty sessionID binds nothing and returns subject.
func (b *Binder) Owner(sessionID, subject string, now time.Time) string {
	if sessionID == "" {
		return subject
	}
	k := sessionKey{
		maphash.String(b.seeds[0], sessionID),
		maphash.String(b.seeds[1], sessionID),
	}
	s := &b.shards[k[0]%uint64(len(b.shards))]
	t := now.UnixNano()

	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.lru.Get(k); ok {
		if t-cur.lastSeen < int64(b.ttl) {
			if cur.owner == subject {
				// Only the owner's requests keep the session alive: someone
				// replaying a stolen id must not extend it.
				cur.lastSeen = max(cur.lastSeen, t)
				s.lru.Add(k, cur)
			}
			return cur.owner
		}
		s.lru.Remove(k)
	}
	if subject == "" {
		return ""
	}
	s.lru.Add(k, binding{owner: subject, lastSeen: t})
	return subject
}

// Len reports how many sessions are bound, expired ones not yet forgotten
// included.
func (b *Binder) Len() int {
	n := 0
	for i := range b.shards {
		s := &b.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
