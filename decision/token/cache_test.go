package token

import (
	"crypto/sha256"
	"strconv"
	"sync"
	"testing"
)

func genKey(i int) cacheKey { return sha256.Sum256([]byte(strconv.Itoa(i))) }

// TestGenCacheBounded fills the cache far past its size: it never holds
// more than size entries, the entry read between insertions survives
// every rotation, and the oldest unread entries are gone.
func TestGenCacheBounded(t *testing.T) {
	const size = 100
	c := newGenCache(size)
	hot := &cacheEntry{}
	c.put(genKey(-1), hot)
	for i := range 10 * size {
		c.put(genKey(i), &cacheEntry{})
		if n := c.len(); n > size+1 {
			t.Fatalf("after %d puts the cache holds %d entries, more than %d", i+1, n, size)
		}
		if e, ok := c.get(genKey(-1)); !ok || e != hot {
			t.Fatalf("after %d puts the entry in use was evicted", i+1)
		}
	}
	if _, ok := c.get(genKey(0)); ok {
		t.Error("the first, never read entry is still cached")
	}
	if _, ok := c.get(genKey(10*size - 1)); !ok {
		t.Error("the last entry put is not cached")
	}
	c.remove(genKey(-1))
	if _, ok := c.get(genKey(-1)); ok {
		t.Error("a removed entry is still cached")
	}
}

// TestGenCacheConcurrent runs puts, gets and removals from many
// goroutines (for the race detector) and checks the bound after.
func TestGenCacheConcurrent(t *testing.T) {
	const size = 64
	c := newGenCache(size)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := genKey(g*10000 + i%300)
				if _, ok := c.get(k); !ok {
					c.put(k, &cacheEntry{})
				}
				if i%7 == 0 {
					c.remove(k)
				}
			}
		}()
	}
	wg.Wait()
	if n := c.len(); n > size+8 {
		t.Errorf("%d entries after concurrent use, bound %d (+1 per racing writer)", n, size)
	}
}
