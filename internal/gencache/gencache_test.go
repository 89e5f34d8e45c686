package gencache

import (
	"crypto/sha256"
	"strconv"
	"sync"
	"testing"
)

// entry has a field: pointers to distinct zero-size values may be equal.
type entry struct{ n int }

func genKey(i int) [32]byte { return sha256.Sum256([]byte(strconv.Itoa(i))) }

// TestBounded fills the cache far past its size: it never holds
// more than size entries, the entry read between insertions survives
// every rotation, and the oldest unread entries are gone.
func TestBounded(t *testing.T) {
	const size = 100
	c := New[[32]byte, *entry](size)
	hot := &entry{n: -1}
	c.Put(genKey(-1), hot)
	for i := range 10 * size {
		c.Put(genKey(i), &entry{})
		if n := c.Len(); n > size+1 {
			t.Fatalf("after %d puts the cache holds %d entries, more than %d", i+1, n, size)
		}
		if e, ok := c.Get(genKey(-1)); !ok || e != hot {
			t.Fatalf("after %d puts the entry in use was evicted", i+1)
		}
	}
	if _, ok := c.Get(genKey(0)); ok {
		t.Error("the first, never read entry is still cached")
	}
	if _, ok := c.Get(genKey(10*size - 1)); !ok {
		t.Error("the last entry put is not cached")
	}
	c.Remove(genKey(-1))
	if _, ok := c.Get(genKey(-1)); ok {
		t.Error("a removed entry is still cached")
	}
}

// TestConcurrent runs puts, gets and removals from many
// goroutines (for the race detector) and checks the bound after.
func TestConcurrent(t *testing.T) {
	const size = 64
	c := New[[32]byte, *entry](size)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				k := genKey(g*10000 + i%300)
				if _, ok := c.Get(k); !ok {
					c.Put(k, &entry{})
				}
				if i%7 == 0 {
					c.Remove(k)
				}
			}
		}()
	}
	wg.Wait()
	if n := c.Len(); n > size+8 {
		t.Errorf("%d entries after concurrent use, bound %d (+1 per racing writer)", n, size)
	}
}
