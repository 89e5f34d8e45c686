package token

import (
	"crypto/sha256"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/gencache"
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
	// stops vouching for cached tokens at the next refresh. src is the
	// origin whose current set it is compared with.
	keys *keySet
	src  *keySource
}

// resultCache holds verified Results and, apart, recent failures. Two
// caches so a flood of distinct bad tokens evicts failures, never the
// Results of good tokens in use.
type resultCache struct {
	good *gencache.Cache[cacheKey, *cacheEntry]
	bad  *gencache.Cache[cacheKey, *cacheEntry]
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
	return &resultCache{
		good: gencache.New[cacheKey, *cacheEntry](size),
		bad:  gencache.New[cacheKey, *cacheEntry](max(size/4, 16)),
	}, nil
}

// lookupState says what a cache lookup found.
type lookupState int

const (
	cacheMiss    lookupState = iota
	cacheHit                 // the cached Result applies
	cacheExpired             // a verified token whose exp has now passed
)

// inForce reports whether the key set e depends on, if any, is still the
// one its origin holds.
func (e *cacheEntry) inForce() bool {
	return e.keys == nil || e.src == nil || e.keys == e.src.current()
}

// get looks k up at now. An entry whose key set its origin has since
// replaced is dropped. A verified entry past its deadline is removed and
// reported as cacheExpired: its signature was good, only time ran out.
func (c *resultCache) get(k cacheKey, now time.Time) (*Result, lookupState) {
	if e, ok := c.good.Get(k); ok {
		if !e.inForce() {
			c.good.Remove(k) // verified by a set no longer in force: verify again
			return nil, cacheMiss
		}
		if now.Before(e.until) {
			return e.res, cacheHit
		}
		c.good.Remove(k)
		return nil, cacheExpired
	}
	if e, ok := c.bad.Get(k); ok {
		if now.Before(e.until) && e.inForce() {
			return e.res, cacheHit
		}
		c.bad.Remove(k)
	}
	return nil, cacheMiss
}

// putGood caches a verified Result until the token's deadline, for as long
// as keys (nil for the static development key) stays the set src holds.
func (c *resultCache) putGood(k cacheKey, r *Result, until time.Time, keys *keySet, src *keySource) {
	c.good.Put(k, &cacheEntry{res: r, until: until, keys: keys, src: src})
}

// putBad caches a failure until the given instant, tied to keys if set.
func (c *resultCache) putBad(k cacheKey, r *Result, until time.Time, keys *keySet, src *keySource) {
	c.bad.Put(k, &cacheEntry{res: r, until: until, keys: keys, src: src})
}
