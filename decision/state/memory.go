package state

import (
	"context"
	"hash/maphash"
	"sync"
	"time"
)

// DefaultMemoryEntries is the memory store's size when NewMemory is given 0.
const DefaultMemoryEntries = 100_000

// memoryShards spreads the lock: Once and Claim run on the decision path.
const memoryShards = 16

// sweepEvery is how often a full shard may be swept for expired keys:
// a client filling the store must not make every insert walk a shard.
const sweepEvery = time.Second

// Memory is the store of a single replica: keys live in this process. It
// holds at most about its size of keys (per lock shard) and refuses a new
// key when full (ErrFull) rather than forgetting a live one. Keys are kept
// as keyed 128-bit hashes, so memory does not depend on what clients send.
type Memory struct {
	seeds  [2]maphash.Seed
	now    func() time.Time
	per    int
	shards [memoryShards]memShard
}

type memKey [2]uint64

type memEntry struct {
	value   string
	expires int64 // UnixNano
}

type memShard struct {
	mu        sync.Mutex
	m         map[memKey]memEntry
	lastSweep int64
}

// NewMemory returns a memory store for about size keys (DefaultMemoryEntries
// when size <= 0); now is its clock (time.Now when nil).
func NewMemory(size int, now func() time.Time) *Memory {
	if size <= 0 {
		size = DefaultMemoryEntries
	}
	if now == nil {
		now = time.Now
	}
	m := &Memory{
		seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		now:   now,
		per:   max(1, (size+memoryShards-1)/memoryShards),
	}
	for i := range m.shards {
		m.shards[i].m = make(map[memKey]memEntry)
	}
	return m
}

var _ Store = (*Memory)(nil)

// lock returns key's shard, locked, its hash and the time now.
func (m *Memory) lock(key string) (*memShard, memKey, int64) {
	k := memKey{maphash.String(m.seeds[0], key), maphash.String(m.seeds[1], key)}
	s := &m.shards[k[0]%memoryShards]
	s.mu.Lock()
	return s, k, m.now().UnixNano()
}

// live returns k's entry if it has one that has not expired at t.
func (s *memShard) live(k memKey, t int64) (memEntry, bool) {
	e, ok := s.m[k]
	if !ok {
		return e, false
	}
	if t >= e.expires {
		delete(s.m, k)
		return e, false
	}
	return e, true
}

// set stores e under k, making room by sweeping expired keys when the
// shard is full; ErrFull when there is none.
func (s *memShard) set(k memKey, e memEntry, t int64, per int) error {
	if _, ok := s.m[k]; !ok && len(s.m) >= per {
		if t-s.lastSweep >= int64(sweepEvery) || t < s.lastSweep {
			s.lastSweep = t
			for k, e := range s.m {
				if t >= e.expires {
					delete(s.m, k)
				}
			}
		}
		if len(s.m) >= per {
			return ErrFull
		}
	}
	s.m[k] = e
	return nil
}

// Claim implements Store.
func (m *Memory) Claim(_ context.Context, key, value string, ttl time.Duration) (string, error) {
	if err := checkTTL(OpClaim, ttl); err != nil {
		return "", err
	}
	s, k, t := m.lock(key)
	defer s.mu.Unlock()
	if e, ok := s.live(k, t); ok {
		if e.value == value {
			e.expires = max(e.expires, t+int64(ttl))
			s.m[k] = e
		}
		return e.value, nil
	}
	if err := s.set(k, memEntry{value: value, expires: t + int64(ttl)}, t, m.per); err != nil {
		return "", err
	}
	return value, nil
}

// Get implements Store.
func (m *Memory) Get(_ context.Context, key string) (string, bool, error) {
	s, k, t := m.lock(key)
	defer s.mu.Unlock()
	e, ok := s.live(k, t)
	return e.value, ok, nil
}

// Once implements Store.
func (m *Memory) Once(_ context.Context, key string, ttl time.Duration) (bool, error) {
	if err := checkTTL(OpOnce, ttl); err != nil {
		return false, err
	}
	s, k, t := m.lock(key)
	defer s.mu.Unlock()
	if _, ok := s.live(k, t); ok {
		return false, nil
	}
	if err := s.set(k, memEntry{value: "1", expires: t + int64(ttl)}, t, m.per); err != nil {
		return false, err
	}
	return true, nil
}

// Put implements Store.
func (m *Memory) Put(_ context.Context, key, value string, ttl time.Duration) error {
	if err := checkTTL(OpPut, ttl); err != nil {
		return err
	}
	s, k, t := m.lock(key)
	defer s.mu.Unlock()
	s.live(k, t) // an expired entry does not hold a place
	return s.set(k, memEntry{value: value, expires: t + int64(ttl)}, t, m.per)
}

// Take implements Store.
func (m *Memory) Take(_ context.Context, key string) (string, bool, error) {
	s, k, t := m.lock(key)
	defer s.mu.Unlock()
	e, ok := s.live(k, t)
	if ok {
		delete(s.m, k)
	}
	return e.value, ok, nil
}

// CompareAndSwap implements Store.
func (m *Memory) CompareAndSwap(_ context.Context, key, old, new string, ttl time.Duration) (bool, error) {
	if err := checkTTL(OpCompareAndSwap, ttl); err != nil {
		return false, err
	}
	s, k, t := m.lock(key)
	defer s.mu.Unlock()
	e, ok := s.live(k, t)
	if !ok || e.value != old {
		return false, nil
	}
	s.m[k] = memEntry{value: new, expires: t + int64(ttl)}
	return true, nil
}

// Delete implements Store.
func (m *Memory) Delete(_ context.Context, key string) error {
	s, k, _ := m.lock(key)
	defer s.mu.Unlock()
	delete(s.m, k)
	return nil
}

// Ping implements Store: memory always answers.
func (m *Memory) Ping(context.Context) error { return nil }

// Close implements Store.
func (m *Memory) Close() error { return nil }

// Len reports how many keys are held, expired ones not yet swept included.
func (m *Memory) Len() int {
	n := 0
	for i := range m.shards {
		s := &m.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
