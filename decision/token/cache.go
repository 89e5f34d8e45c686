package token

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"time"
)

const (
	defaultCacheSize = 10_000
	// negativeTTL is how long a token found invalid after its signature was
	// checked stays cached: long enough that a client retrying one bad
	// token in a loop costs a hash lookup, short enough not to matter.
	negativeTTL = time.Minute
)

// cacheKey is the SHA-256 of the raw token: 32 bytes per entry whatever
// the token's size, and no token text kept in memory.
type cacheKey [sha256.Size]byte

// cacheEntry is one cached outcome.
type cacheEntry struct {
	res   *Result
	until time.Time // served only strictly before this instant
	// keys, when set, is the key set the outcome depends on (the set that
	// verified the token, or the one that lacked its kid): the entry dies
	// as soon as a refresh swaps the set, so a key withdrawn from the JWKS
	// stops vouching for cached tokens at the next refresh.
	keys *keySet
}

// resultCache holds verified Results and, apart, recent failures. Two
// caches so a flood of distinct bad tokens evicts failures, never the
// Results of good tokens in use.
type resultCache struct {
	good *genCache
	bad  *genCache
}

// newResultCache returns a cache of size good entries and size/4 (at least
// 16) failures, or nil when size is negative (caching off).
func newResultCache(size int) (*resultCache, error) {
	if size < 0 {
		return nil, nil
	}
	if size == 0 {
		size = defaultCacheSize
	}
	return &resultCache{good: newGenCache(size), bad: newGenCache(max(size/4, 16))}, nil
}

// lookupState says what a cache lookup found.
type lookupState int

const (
	cacheMiss    lookupState = iota
	cacheHit                 // the cached Result applies
	cacheExpired             // a verified token whose exp has now passed
)

// get looks k up at now. current is the key set in force, compared with an
// entry's keys. A verified entry past its deadline is removed and reported
// as cacheExpired: its signature was good, only time ran out.
func (c *resultCache) get(k cacheKey, now time.Time, current *keySet) (*Result, lookupState) {
	if e, ok := c.good.get(k); ok {
		if e.keys != nil && e.keys != current {
			c.good.remove(k) // verified by a set no longer in force: verify again
			return nil, cacheMiss
		}
		if now.Before(e.until) {
			return e.res, cacheHit
		}
		c.good.remove(k)
		return nil, cacheExpired
	}
	if e, ok := c.bad.get(k); ok {
		if now.Before(e.until) && (e.keys == nil || e.keys == current) {
			return e.res, cacheHit
		}
		c.bad.remove(k)
	}
	return nil, cacheMiss
}

// putGood caches a verified Result until the token's deadline, for as long
// as keys (nil for the static development key) stays the set in force.
func (c *resultCache) putGood(k cacheKey, r *Result, until time.Time, keys *keySet) {
	c.good.put(k, &cacheEntry{res: r, until: until, keys: keys})
}

// putBad caches a failure until the given instant, tied to keys if set.
func (c *resultCache) putBad(k cacheKey, r *Result, until time.Time, keys *keySet) {
	c.bad.put(k, &cacheEntry{res: r, until: until, keys: keys})
}

// genCache is a bounded map whose lookups take no lock, for the token
// cache that every request reads: two generations of sync.Map (whose Load
// is lock-free). New entries go into the young generation; when it holds
// its share of the size it becomes the old one and the old one is
// dropped. A hit in the old generation is copied into the young one, so
// the tokens in use survive and the rest age out: an approximation of
// least-recently-used eviction that holds at most size entries.
type genCache struct {
	perGen int64
	gens   atomic.Pointer[generations]
	rotate sync.Mutex // serialises rotations only; lookups never take it
}

type generations struct {
	young, old *sync.Map // cacheKey -> *cacheEntry
	n          atomic.Int64
}

func newGenCache(size int) *genCache {
	c := &genCache{perGen: int64(max(size/2, 1))}
	c.gens.Store(&generations{young: new(sync.Map), old: new(sync.Map)})
	return c
}

func (c *genCache) get(k cacheKey) (*cacheEntry, bool) {
	g := c.gens.Load()
	if v, ok := g.young.Load(k); ok {
		return v.(*cacheEntry), true
	}
	if v, ok := g.old.Load(k); ok {
		e := v.(*cacheEntry)
		c.put(k, e)
		return e, true
	}
	return nil, false
}

func (c *genCache) put(k cacheKey, e *cacheEntry) {
	g := c.gens.Load()
	if _, loaded := g.young.Swap(k, e); loaded || g.n.Add(1) < c.perGen {
		return
	}
	c.rotate.Lock()
	defer c.rotate.Unlock()
	if c.gens.Load() != g {
		return // another writer rotated first
	}
	c.gens.Store(&generations{young: new(sync.Map), old: g.young})
}

func (c *genCache) remove(k cacheKey) {
	g := c.gens.Load()
	g.young.Delete(k)
	g.old.Delete(k)
}

// len counts the entries (for tests).
func (c *genCache) len() int {
	n := 0
	g := c.gens.Load()
	for _, m := range []*sync.Map{g.young, g.old} {
		m.Range(func(any, any) bool {
			n++
			return true
		})
	}
	return n
}
