package token

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// introspectTestAS is a fake authorization server: it answers introspection
// requests from a table of tokens and counts the requests it served.
type introspectTestAS struct {
	t       testing.TB
	srv     *httptest.Server
	hits    atomic.Int64
	mu      sync.Mutex
	answers map[string]map[string]any // token → response; absent → inactive
	raw     map[string]string         // token → response body as written, before answers
	status  int                       // when non-zero, answer with this status
	// gate, when set, holds every request until closed, so concurrent
	// callers pile up behind one request.
	gate chan struct{}
}

const (
	introspectTestClient = "mcpauthz"
	introspectTestSecret = "s3cret/with+chars"
)

func newIntrospectTestAS(t testing.TB) *introspectTestAS {
	as := &introspectTestAS{t: t, answers: map[string]map[string]any{}}
	as.srv = httptest.NewServer(http.HandlerFunc(as.serve))
	t.Cleanup(as.srv.Close)
	return as
}

func (as *introspectTestAS) set(token string, answer map[string]any) {
	as.mu.Lock()
	defer as.mu.Unlock()
	as.answers[token] = answer
}

func (as *introspectTestAS) serve(w http.ResponseWriter, r *http.Request) {
	as.hits.Add(1)
	if as.gate != nil {
		<-as.gate
	}
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "want a form POST", http.StatusBadRequest)
		return
	}
	// The client credentials arrive form-encoded inside Basic (RFC 6749
	// §2.3.1), so a secret with '/' and '+' is escaped on the wire.
	id, secret, ok := r.BasicAuth()
	if !ok || id != introspectTestClient || secret != "s3cret%2Fwith%2Bchars" {
		http.Error(w, `{"error":"invalid_client"}`, http.StatusUnauthorized)
		return
	}
	if err := r.ParseForm(); err != nil || r.PostForm.Get("token_type_hint") != "access_token" {
		http.Error(w, "bad form", http.StatusBadRequest)
		return
	}
	as.mu.Lock()
	status := as.status
	answer, known := as.answers[r.PostForm.Get("token")]
	as.mu.Unlock()
	if status != 0 {
		http.Error(w, "down", status)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	as.mu.Lock()
	raw, isRaw := as.raw[r.PostForm.Get("token")]
	as.mu.Unlock()
	if isRaw {
		_, _ = io.WriteString(w, raw)
		return
	}
	if !known {
		answer = map[string]any{"active": false}
	}
	_ = json.NewEncoder(w).Encode(answer)
}

// introspectTestClock is a settable clock.
type introspectTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *introspectTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *introspectTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func newIntrospectTest(t testing.TB, as *introspectTestAS, clock *introspectTestClock, secret string) *Introspector {
	return NewIntrospector(IntrospectionOptions{
		URL: as.srv.URL + "/introspect", ClientID: introspectTestClient, ClientSecret: secret,
		CacheSize: 100, Now: clock.Now,
	}, as.srv.Client(), nil)
}

const introspectTestAudience = "https://mcp.example.com/mcp"

func TestIntrospectVerify(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	exp := start.Add(time.Hour)
	active := map[string]any{
		"active": true, "sub": "alice", "client_id": "agent-7", "scope": "tools:read  tools:call",
		"aud": []any{"https://other.example.com", "HTTPS://MCP.Example.COM/mcp"}, "exp": float64(exp.Unix()),
	}
	tests := map[string]struct {
		token    string
		answer   map[string]any
		raw      string // the response body as written, instead of answer
		audience string
		secret   string
		down     bool
		want     Result
	}{
		"active": {token: "tok-active", answer: active, audience: introspectTestAudience, want: Result{
			Present: true, Valid: true, Type: TypeIntrospection, Subject: "alice", ClientID: "agent-7",
			Scopes: []string{"tools:read", "tools:call"}, Expiry: exp,
			Claims: map[string]any{"active": true, "sub": "alice", "client_id": "agent-7", "scope": "tools:read  tools:call",
				"aud": []any{"https://other.example.com", "HTTPS://MCP.Example.COM/mcp"}, "exp": float64(exp.Unix())},
		}},
		"audience_skipped": {token: "tok-skip", answer: map[string]any{"active": true, "sub": "bob", "aud": "https://elsewhere.example.com"}, want: Result{
			Present: true, Valid: true, Type: TypeIntrospection, Subject: "bob", Scopes: []string{},
			Claims: map[string]any{"active": true, "sub": "bob", "aud": "https://elsewhere.example.com"},
		}},
		"no_aud_in_response": {token: "tok-noaud", answer: map[string]any{"active": true, "sub": "bob"}, audience: introspectTestAudience, want: Result{
			Present: true, Valid: true, Type: TypeIntrospection, Subject: "bob", Scopes: []string{},
			Claims: map[string]any{"active": true, "sub": "bob"},
		}},
		"inactive":           {token: "tok-revoked", answer: map[string]any{"active": false}, audience: introspectTestAudience, want: Result{Present: true, Error: ErrInactive, Type: TypeIntrospection}},
		"unknown_to_server":  {token: "tok-never-issued", audience: introspectTestAudience, want: Result{Present: true, Error: ErrInactive, Type: TypeIntrospection}},
		"wrong_audience":     {token: "tok-aud", answer: map[string]any{"active": true, "sub": "x", "aud": "https://other.example.com/mcp"}, audience: introspectTestAudience, want: Result{Present: true, Error: ErrWrongAudience, Type: TypeIntrospection, Resource: introspectTestAudience, Detail: WrongAudienceDetail([]string{"https://other.example.com/mcp"}, introspectTestAudience, false)}},
		"audience_path_case": {token: "tok-path", answer: map[string]any{"active": true, "sub": "x", "aud": "https://mcp.example.com/MCP"}, audience: introspectTestAudience, want: Result{Present: true, Error: ErrWrongAudience, Type: TypeIntrospection, Resource: introspectTestAudience, Detail: WrongAudienceDetail([]string{"https://mcp.example.com/MCP"}, introspectTestAudience, false)}},
		"trailing_slash":     {token: "tok-slash", answer: map[string]any{"active": true, "sub": "x", "aud": "https://mcp.example.com/mcp/"}, audience: introspectTestAudience, want: Result{Present: true, Error: ErrWrongAudience, Type: TypeIntrospection, Resource: introspectTestAudience, Detail: WrongAudienceDetail([]string{"https://mcp.example.com/mcp/"}, introspectTestAudience, false)}},
		"expired_but_active": {token: "tok-exp", answer: map[string]any{"active": true, "sub": "x", "exp": float64(start.Add(-time.Second).Unix())}, want: Result{Present: true, Error: ErrExpired, Type: TypeIntrospection}},
		"not_yet_valid":      {token: "tok-nbf", answer: map[string]any{"active": true, "sub": "x", "nbf": float64(start.Add(time.Minute).Unix())}, want: Result{Present: true, Error: ErrNotYetValid, Type: TypeIntrospection}},
		"no_active_member":   {token: "tok-garbled", answer: map[string]any{"sub": "x"}, want: Result{Present: true, Error: ErrUnavailable, Type: TypeIntrospection}},
		"bad_scope_type":     {token: "tok-scope", answer: map[string]any{"active": true, "scope": []any{"a"}}, want: Result{Present: true, Error: ErrUnavailable, Type: TypeIntrospection}},
		"wrong_credentials":  {token: "tok-active", answer: active, secret: "wrong", want: Result{Present: true, Error: ErrUnavailable, Type: TypeIntrospection}},
		"server_error":       {token: "tok-active", answer: active, down: true, want: Result{Present: true, Error: ErrUnavailable, Type: TypeIntrospection}},
		"missing":            {token: "", want: Result{Error: ErrMissing, Type: TypeIntrospection}},
		// Claims read with the one-reading rules, as a JWT's are: a subject
		// encoding/json would turn into U+FFFD, or a duplicate, is no answer.
		"sub_lone_surrogate": {token: "tok-sur", raw: `{"active":true,"sub":"alice\ud800"}`, want: Result{Present: true, Error: ErrUnavailable, Type: TypeIntrospection}},
		"sub_invalid_utf8":   {token: "tok-utf8", raw: "{\"active\":true,\"sub\":\"alice\xff\"}", want: Result{Present: true, Error: ErrUnavailable, Type: TypeIntrospection}},
		"sub_duplicated":     {token: "tok-dup", raw: `{"active":true,"sub":"mallory","sub":"alice"}`, want: Result{Present: true, Error: ErrUnavailable, Type: TypeIntrospection}},
		"raw_control":        {token: "tok-raw", raw: `{"active":true,"sub":"alice\ud83d\ude00"}`, want: Result{Present: true, Valid: true, Type: TypeIntrospection, Subject: "alice\U0001F600", Scopes: []string{}, Claims: map[string]any{"active": true, "sub": "alice\U0001F600"}}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			as := newIntrospectTestAS(t)
			if tc.answer != nil {
				as.set(tc.token, tc.answer)
			}
			if tc.raw != "" {
				as.raw = map[string]string{tc.token: tc.raw}
			}
			if tc.down {
				as.status = http.StatusServiceUnavailable
			}
			secret := introspectTestSecret
			if tc.secret != "" {
				secret = tc.secret
			}
			in := newIntrospectTest(t, as, &introspectTestClock{now: start}, secret)
			got := in.Verify(context.Background(), tc.token, tc.audience)
			if got.Value == nil {
				t.Fatal("Result not finished: Value is nil")
			}
			if diff := cmp.Diff(tc.want, *got, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Value" }, cmp.Ignore())); diff != "" {
				t.Errorf("Verify mismatch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestIntrospectCache(t *testing.T) {
	start := time.Unix(1_800_000_000, 0)
	tests := map[string]struct {
		answer    map[string]any
		advance   time.Duration // between the second and the third call
		wantHits  int64         // server hits after three calls
		wantThird string        // Error of the third call ("" = valid)
	}{
		"active_cached_until_exp": {
			answer:  map[string]any{"active": true, "sub": "a", "exp": float64(start.Add(10 * time.Minute).Unix())},
			advance: 9 * time.Minute, wantHits: 1,
		},
		"active_refetched_after_exp": {
			// The server still says active with the old exp: the answer is
			// asked for again, and the token is expired by its own exp.
			answer:  map[string]any{"active": true, "sub": "a", "exp": float64(start.Add(10 * time.Minute).Unix())},
			advance: 10 * time.Minute, wantHits: 2, wantThird: ErrExpired,
		},
		"active_without_exp_cached_a_minute": {
			answer:  map[string]any{"active": true, "sub": "a"},
			advance: 61 * time.Second, wantHits: 2,
		},
		"inactive_cached_30s": {
			answer:  map[string]any{"active": false},
			advance: 29 * time.Second, wantHits: 1, wantThird: ErrInactive,
		},
		"inactive_refetched_after_30s": {
			answer:  map[string]any{"active": false},
			advance: 30 * time.Second, wantHits: 2, wantThird: ErrInactive,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			as := newIntrospectTestAS(t)
			as.set("tok", tc.answer)
			clock := &introspectTestClock{now: start}
			in := newIntrospectTest(t, as, clock, introspectTestSecret)
			first := in.Verify(context.Background(), "tok", "")
			second := in.Verify(context.Background(), "tok", "")
			if first != second {
				t.Error("second call did not return the cached Result")
			}
			if got := as.hits.Load(); got != 1 {
				t.Fatalf("server hits after two calls = %d, want 1", got)
			}
			clock.Advance(tc.advance)
			third := in.Verify(context.Background(), "tok", "")
			if third.Error != tc.wantThird || third.Valid != (tc.wantThird == "") {
				t.Errorf("third call: valid %v error %q, want error %q", third.Valid, third.Error, tc.wantThird)
			}
			if got := as.hits.Load(); got != tc.wantHits {
				t.Errorf("server hits after three calls = %d, want %d", got, tc.wantHits)
			}
		})
	}
}

func TestIntrospectUnavailableNotCached(t *testing.T) {
	as := newIntrospectTestAS(t)
	as.set("tok", map[string]any{"active": true, "sub": "a"})
	in := newIntrospectTest(t, as, &introspectTestClock{now: time.Unix(1_800_000_000, 0)}, introspectTestSecret)

	as.mu.Lock()
	as.status = http.StatusBadGateway
	as.mu.Unlock()
	if got := in.Verify(context.Background(), "tok", ""); got.Error != ErrUnavailable {
		t.Fatalf("server failing: error %q, want unavailable", got.Error)
	}
	as.mu.Lock()
	as.status = 0
	as.mu.Unlock()
	if got := in.Verify(context.Background(), "tok", ""); !got.Valid {
		t.Fatalf("server back: error %q, want valid (a failure must not be cached)", got.Error)
	}
	if got := as.hits.Load(); got != 2 {
		t.Errorf("server hits = %d, want 2", got)
	}
}

func TestIntrospectServerDown(t *testing.T) {
	tests := map[string]func(t *testing.T) string{
		"closed_server": func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			srv.Close()
			return srv.URL
		},
		"not_found": func(t *testing.T) string {
			srv := httptest.NewServer(http.NotFoundHandler())
			t.Cleanup(srv.Close)
			return srv.URL
		},
		"not_json": func(t *testing.T) string {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/html")
				_, _ = w.Write([]byte("<html>login</html>"))
			}))
			t.Cleanup(srv.Close)
			return srv.URL
		},
		"no_url": func(t *testing.T) string { return "" },
	}
	for name, endpoint := range tests {
		t.Run(name, func(t *testing.T) {
			in := NewIntrospector(IntrospectionOptions{URL: endpoint(t), ClientID: "c", ClientSecret: "s"}, nil, nil)
			got := in.Verify(context.Background(), "opaque-token", "")
			if got.Valid || got.Error != ErrUnavailable || !got.Present || got.Value == nil {
				t.Errorf("Verify = valid %v error %q present %v, want a finished unavailable Result", got.Valid, got.Error, got.Present)
			}
		})
	}
}

func TestIntrospectSingleFlight(t *testing.T) {
	as := newIntrospectTestAS(t)
	as.gate = make(chan struct{})
	as.set("tok", map[string]any{"active": true, "sub": "a"})
	in := newIntrospectTest(t, as, &introspectTestClock{now: time.Unix(1_800_000_000, 0)}, introspectTestSecret)

	const callers = 8
	results := make(chan *Result, callers)
	for range callers {
		go func() { results <- in.Verify(context.Background(), "tok", "") }()
	}
	// Wait until every caller waits on the one request, then let it answer.
	for {
		in.mu.Lock()
		c := in.inflight[sha256.Sum256([]byte("tok"))]
		joined := 0
		if c != nil {
			joined = c.waiters
		}
		in.mu.Unlock()
		if joined == callers {
			break
		}
		time.Sleep(time.Millisecond)
	}
	close(as.gate)
	var first *Result
	for range callers {
		r := <-results
		if !r.Valid {
			t.Fatalf("caller got error %q", r.Error)
		}
		if first == nil {
			first = r
		} else if r != first {
			t.Error("callers got different Results for one token")
		}
	}
	if got := as.hits.Load(); got != 1 {
		t.Errorf("server hits = %d, want 1 for %d concurrent callers", got, callers)
	}
}

func TestIntrospectCallerCancelled(t *testing.T) {
	as := newIntrospectTestAS(t)
	as.gate = make(chan struct{})
	as.set("tok", map[string]any{"active": true, "sub": "a"})
	in := newIntrospectTest(t, as, &introspectTestClock{now: time.Unix(1_800_000_000, 0)}, introspectTestSecret)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if got := in.Verify(ctx, "tok", ""); got.Error != ErrUnavailable {
		t.Errorf("cancelled caller: error %q, want unavailable", got.Error)
	}
	// The shared request carries on for others and fills the cache.
	close(as.gate)
	if got := in.Verify(context.Background(), "tok", ""); !got.Valid {
		t.Errorf("next caller: error %q, want valid", got.Error)
	}
	if got := as.hits.Load(); got != 1 {
		t.Errorf("server hits = %d, want 1", got)
	}
}

func BenchmarkIntrospectCached(b *testing.B) {
	as := newIntrospectTestAS(b)
	const tok = "2YotnFZFEjr1zCsicMWpAA.an-opaque-access-token-of-typical-length"
	as.set(tok, map[string]any{"active": true, "sub": "a", "scope": "tools:read", "aud": introspectTestAudience})
	in := newIntrospectTest(b, as, &introspectTestClock{now: time.Unix(1_800_000_000, 0)}, introspectTestSecret)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if r := in.Verify(ctx, tok, introspectTestAudience); !r.Valid {
			b.Fatal(r.Error)
		}
	}
	if got := as.hits.Load(); got != 1 {
		b.Errorf("server hits = %d, want 1", got)
	}
}
