package decisionlog_test

import (
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
)

// logService is a decision log service that fails, stalls or accepts, as
// the test sets it, and keeps what it accepted.
type logService struct {
	mode    atomic.Value // "fail", "stall" or "ok"
	release chan struct{}

	mu       sync.Mutex
	ids      []string
	problems []string
}

func (s *logService) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch s.mode.Load().(string) {
	case "fail":
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	case "stall":
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r.Method != http.MethodPost || r.URL.Path != "/logs" || r.Header.Get("Content-Encoding") != "gzip" ||
		r.Header.Get("Authorization") != "Bearer sekrit" {
		s.problems = append(s.problems, fmt.Sprintf("%s %s encoding %q authorization %q", r.Method, r.URL.Path,
			r.Header.Get("Content-Encoding"), r.Header.Get("Authorization")))
	}
	zr, err := gzip.NewReader(r.Body)
	if err != nil {
		s.problems = append(s.problems, "not gzip: "+err.Error())
		return
	}
	var events []map[string]any
	if err := json.NewDecoder(zr).Decode(&events); err != nil {
		s.problems = append(s.problems, "not a JSON array of events: "+err.Error())
		return
	}
	for _, e := range events {
		id, _ := e["decision_id"].(string)
		s.ids = append(s.ids, id)
	}
}

func (s *logService) received() ([]string, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.ids...), append([]string(nil), s.problems...)
}

func newService(t *testing.T, limit int64) (*logService, *decisionlog.Log, *httptest.Server) {
	t.Helper()
	svc := &logService{release: make(chan struct{})}
	svc.mode.Store("fail")
	srv := httptest.NewServer(svc)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(svc.release) })
	tok := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tok, []byte("sekrit\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := decisionlog.New(decisionlog.Options{Service: decisionlog.ServiceOptions{
		URL: srv.URL + "/", BearerTokenFile: tok, Client: &http.Client{Timeout: 100 * time.Millisecond},
		MinDelay: 10 * time.Millisecond, MaxDelay: 40 * time.Millisecond, BufferSizeLimitBytes: limit,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return svc, l, srv
}

func observe(l *decisionlog.Log, from, to int) time.Duration {
	start := time.Now()
	for i := from; i < to; i++ {
		l.Observe(context.Background(), nil, &decision.Decision{ID: fmt.Sprintf("d%d", i), Allow: true, Code: decision.CodeAllowed}, nil, 0)
	}
	return time.Since(start)
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestServiceFailsStallsRecovers: events decided while the service fails
// and while it stalls are uploaded once it recovers, each once, in gzip
// JSON arrays to /logs with the bearer token; deciding never waits.
func TestServiceFailsStallsRecovers(t *testing.T) {
	svc, l, _ := newService(t, 1<<20)
	if d := observe(l, 0, 100); d > time.Second {
		t.Errorf("observing 100 decisions took %v while the service fails", d)
	}
	time.Sleep(100 * time.Millisecond) // several failed attempts
	svc.mode.Store("stall")
	if d := observe(l, 100, 200); d > time.Second {
		t.Errorf("observing 100 decisions took %v while the service stalls", d)
	}
	time.Sleep(300 * time.Millisecond) // attempts time out
	svc.mode.Store("ok")
	waitFor(t, "200 events uploaded", func() bool { return l.Uploaded() == 200 })
	ids, problems := svc.received()
	if len(problems) > 0 {
		t.Fatalf("uploads were not OPA's protocol: %v", problems)
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("event %s uploaded twice", id)
		}
		seen[id] = true
	}
	if len(seen) != 200 || l.Dropped() != 0 {
		t.Errorf("service has %d distinct events, dropped %d; want 200 and 0", len(seen), l.Dropped())
	}
	observe(l, 200, 210)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if l.Uploaded() != 210 {
		t.Errorf("after Close %d events uploaded, want 210 (Close uploads what is left)", l.Uploaded())
	}
}

// TestServiceBufferDropsOldest: past buffer_size_limit_bytes the oldest
// events go, counted; the newest reach the service when it recovers.
func TestServiceBufferDropsOldest(t *testing.T) {
	svc, l, _ := newService(t, 2000) // about ten events
	observe(l, 0, 100)
	waitFor(t, "drops counted", func() bool { return l.Dropped() >= 80 })
	svc.mode.Store("ok")
	waitFor(t, "the rest uploaded", func() bool { return l.Uploaded()+l.Dropped() == 100 })
	ids, _ := svc.received()
	if len(ids) == 0 || ids[len(ids)-1] != "d99" {
		t.Fatalf("uploaded %v: want the newest events, ending with d99", ids)
	}
	for _, id := range ids {
		var n int
		fmt.Sscanf(id, "d%d", &n)
		if n < int(l.Dropped()) {
			t.Errorf("event %s uploaded although %d older ones were dropped: the oldest must go first", id, l.Dropped())
		}
	}
	_ = l.Close()
}
