// Package gencache is a bounded map whose lookups take no lock, for caches
// that every request reads (verified tokens, decisions): two generations
// of sync.Map, whose Load is lock-free. New entries go into the young
// generation; when it holds half the size it becomes the old one and the
// old one is dropped. A hit in the old generation is copied into the young
// one, so the entries in use survive and the rest age out: an
// approximation of least-recently-used eviction that holds at most size
// entries (a few more while writers race a rotation).
package gencache

import (
	"sync"
	"sync/atomic"
)

// Cache maps K to V. The zero value is not usable; call New.
type Cache[K comparable, V any] struct {
	perGen int64
	gens   atomic.Pointer[generations]
	rotate sync.Mutex // serialises rotations only; lookups never take it
}

type generations struct {
	young, old *sync.Map
	n          atomic.Int64 // entries added to young
}

// New returns a cache of at most size entries (at least 2).
func New[K comparable, V any](size int) *Cache[K, V] {
	c := &Cache[K, V]{perGen: int64(max(size/2, 1))}
	c.gens.Store(&generations{young: new(sync.Map), old: new(sync.Map)})
	return c
}

// Get returns the value of k.
func (c *Cache[K, V]) Get(k K) (V, bool) {
	g := c.gens.Load()
	if v, ok := g.young.Load(k); ok {
		return v.(V), true
	}
	if v, ok := g.old.Load(k); ok {
		c.Put(k, v.(V))
		return v.(V), true
	}
	var zero V
	return zero, false
}

// Put sets the value of k.
func (c *Cache[K, V]) Put(k K, v V) {
	g := c.gens.Load()
	if _, loaded := g.young.Swap(k, v); loaded || g.n.Add(1) < c.perGen {
		return
	}
	c.rotate.Lock()
	defer c.rotate.Unlock()
	if c.gens.Load() != g {
		return // another writer rotated first
	}
	c.gens.Store(&generations{young: new(sync.Map), old: g.young})
}

// Remove drops k.
func (c *Cache[K, V]) Remove(k K) {
	g := c.gens.Load()
	g.young.Delete(k)
	g.old.Delete(k)
}

// Len counts the entries; an entry in both generations counts twice. It
// walks the cache: for tests and metrics, not for the request path.
func (c *Cache[K, V]) Len() int {
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
