package decision

import (
	"fmt"
	"sync"
	"testing"
)

// TestPinMemoryFailsClosedWhenFull: a tool the memory has no room for
// counts as unknown-and-full, which checkPins refuses; tools it holds are
// still judged by their digest, and a full memory takes new digests of
// tools it already holds.
func TestPinMemoryFailsClosedWhenFull(t *testing.T) {
	var pm pinMemory
	for i := range maxPinMemory {
		pm.listed("s", fmt.Sprint("tool", i), "d")
	}
	if _, known, full := pm.lastListed("s", "tool0"); !known || full {
		t.Fatalf("tool0: known %v full %v, want known", known, full)
	}
	if _, known, full := pm.lastListed("s", "late"); known || full {
		t.Fatalf("before overflow: known %v full %v", known, full)
	}
	pm.listed("s", "late", "d")
	if _, known, full := pm.lastListed("s", "late"); known || !full {
		t.Fatalf("after overflow: known %v full %v, want unknown and full", known, full)
	}
	pm.listed("s", "tool0", "changed")
	if d, known, _ := pm.lastListed("s", "tool0"); !known || d != "changed" {
		t.Fatalf("tool0 after overflow: %q %v", d, known)
	}
}

// TestPinMemoryConcurrent: lists and calls at once (run with -race).
func TestPinMemoryConcurrent(t *testing.T) {
	var pm pinMemory
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				server := fmt.Sprint("s", g%2)
				pm.listed(server, fmt.Sprint("t", i%7), fmt.Sprint(i))
				pm.lastListed(server, fmt.Sprint("t", (i+3)%7))
			}
		}()
	}
	wg.Wait()
}
