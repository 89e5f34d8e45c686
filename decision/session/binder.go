// Package session binds MCP session ids to the owner that opened them.
//
// Sessions are not authentication: every request is verified on its own. But
// a session id that leaks (logs, a shared proxy) must not let someone else
// continue another user's session, so the engine binds a session id to the
// owner (issuer and subject) of the first request with it that the policy
// allowed, and refuses the id to anyone else.
package session

import (
	"context"
	"errors"
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

// ErrSessionsFull is the error of a Bind of a new session when the table
// holds as many live sessions as it may: the new session is refused and
// no bound one is forgotten to make room (a flood of fresh ids would
// otherwise evict the bindings of real sessions).
var ErrSessionsFull = errors.New("the session table is full: a new session can be bound once another has been idle for the TTL (sessions.max_sessions)")

// shardCount spreads the lock: every request with a session touches the
// binder.
const shardCount = 16

// Binder remembers the owner of each session id in memory, for at most
// about size sessions (each of its lock shards holds a share) and until a
// session has been idle for the TTL. It is safe for concurrent use.
// Session ids are kept as 128-bit keyed hashes, so memory does not depend
// on what clients send. It implements decision.SessionBinder.
type Binder struct {
	seeds  [2]maphash.Seed
	ttl    time.Duration
	now    func() time.Time
	shards []shard
}

// sessionKey is a session id's keyed 128-bit hash.
type sessionKey [2]uint64

type binding struct {
	owner    string
	lastSeen int64 // UnixNano of the owner's last Bind
}

// shard's LRU is ordered by the owners' last Binds: lookups Peek, so the
// oldest entry is the one idle longest.
type shard struct {
	mu  sync.Mutex
	lru *simplelru.LRU[sessionKey, binding]
	per int // the most sessions it holds
}

// NewBinder returns a Binder for at most size sessions (default 100,000 when
// size <= 0) that forgets a session idle for ttl (default 24h when ttl <= 0),
// on the clock now (time.Now when nil).
func NewBinder(size int, ttl time.Duration, now func() time.Time) *Binder {
	if size <= 0 {
		size = DefaultSize
	}
	if ttl <= 0 {
		ttl = DefaultTTL
	}
	if now == nil {
		now = time.Now
	}
	n := shardCount
	if size < n {
		n = 1
	}
	per := (size + n - 1) / n
	b := &Binder{
		seeds:  [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		ttl:    ttl,
		now:    now,
		shards: make([]shard, n),
	}
	for i := range b.shards {
		// One more than per: Bind refuses a new session at per, so the
		// LRU never evicts on its own.
		l, err := simplelru.NewLRU[sessionKey, binding](per+1, nil)
		if err != nil {
			// Unreachable: per is positive.
			panic("session binder: " + err.Error())
		}
		b.shards[i].lru = l
		b.shards[i].per = per
	}
	return b
}

// shardOf returns sessionID's key and shard.
func (b *Binder) shardOf(sessionID string) (sessionKey, *shard) {
	k := sessionKey{
		maphash.String(b.seeds[0], sessionID),
		maphash.String(b.seeds[1], sessionID),
	}
	return k, &b.shards[k[0]%uint64(len(b.shards))]
}

// live returns the binding of k unless it has none or it has expired at t
// (an expired one is forgotten). The caller holds s.mu.
func (b *Binder) live(s *shard, k sessionKey, t int64) (binding, bool) {
	cur, ok := s.lru.Peek(k)
	if !ok {
		return binding{}, false
	}
	if t-cur.lastSeen >= int64(b.ttl) {
		s.lru.Remove(k)
		return binding{}, false
	}
	return cur, true
}

// Owner returns the owner bound to sessionID, or "" when it has none (never
// bound, or idle for the TTL). Looking a session up does not keep it alive.
// The error is always nil: the table is in memory.
func (b *Binder) Owner(_ context.Context, sessionID string) (string, error) {
	if sessionID == "" {
		return "", nil
	}
	k, s := b.shardOf(sessionID)
	t := b.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, _ := b.live(s, k, t)
	return cur.owner, nil
}

// Bind makes owner the owner of sessionID unless a live binding has
// another, and returns the owner that holds it after the call: owner, or
// the other one. The owner's own Bind keeps its session alive for another
// TTL; nobody else's does. A new session when the table is full is
// refused with ErrSessionsFull, unless the session idle longest has
// expired (it is forgotten to make room).
func (b *Binder) Bind(_ context.Context, sessionID, owner string) (string, error) {
	if sessionID == "" || owner == "" {
		return "", errors.New("session binder: Bind needs a session id and an owner")
	}
	k, s := b.shardOf(sessionID)
	t := b.now().UnixNano()
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := b.live(s, k, t); ok {
		if cur.owner != owner {
			return cur.owner, nil
		}
		cur.lastSeen = max(cur.lastSeen, t)
		s.lru.Add(k, cur) // to the front: the owner was here
		return owner, nil
	}
	if s.lru.Len() >= s.per {
		if _, oldest, ok := s.lru.GetOldest(); ok && t-oldest.lastSeen >= int64(b.ttl) {
			s.lru.RemoveOldest()
		} else {
			return "", ErrSessionsFull
		}
	}
	s.lru.Add(k, binding{owner: owner, lastSeen: t})
	return owner, nil
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
