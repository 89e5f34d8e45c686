package token

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// Faults of a JWKS endpoint: down, slow past the HTTP client's timeout, or
// serving something that is not a usable key set. Whatever the fault, the
// last good keys stay and tokens they signed keep verifying; before the
// first good set, tokens are unavailable (fail closed) until keys arrive.

// faultClientTimeout is the HTTP client timeout of these tests: short, so
// a hanging endpoint costs a test a fraction of a second.
const faultClientTimeout = 100 * time.Millisecond

// jwksFault breaks one answer of the JWKS endpoint. good is the JWKS the
// endpoint would have served; stop is closed when the test ends.
type jwksFault func(w http.ResponseWriter, r *http.Request, good []byte, stop <-chan struct{})

// jwksFaults are the faults both tests inject. "connection_refused" is not
// here: it needs the listener closed, which faultyJWKS.refuse does.
var jwksFaults = map[string]jwksFault{
	"connection_reset": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		// The server dies mid-request: the connection closes before any
		// answer.
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	},
	"http_500": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		http.Error(w, "internal error", http.StatusInternalServerError)
	},
	"slow_headers": func(_ http.ResponseWriter, r *http.Request, _ []byte, stop <-chan struct{}) {
		// Longer than the client's timeout: only the client giving up
		// ends the request.
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	},
	"slow_body": func(w http.ResponseWriter, r *http.Request, good []byte, stop <-chan struct{}) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(good[:len(good)/2])
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	},
	"not_json": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		// A captive portal or a misrouted proxy answers 200 with a page.
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>Sign in to continue</body></html>"))
	},
	"truncated_json": func(w http.ResponseWriter, _ *http.Request, good []byte, _ <-chan struct{}) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(good[:len(good)/2])
	},
	"json_without_keys": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"issuer": "https://idp.example.com"}`))
	},
	"empty_key_set": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys": []}`))
	},
	"only_unusable_keys": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		// A symmetric key is never used, so the set has no usable key.
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys": [{"kty": "oct", "kid": "rsa-1", "k": "c2VjcmV0LXNlY3JldC1zZWNyZXQ"}]}`))
	},
	"oversized": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"keys": [], "pad": "`))
		_, _ = w.Write(bytes.Repeat([]byte("x"), maxDocumentBytes))
		_, _ = w.Write([]byte(`"}`))
	},
}

// faultyJWKS serves a JWKS at /jwks until a fault is set, and counts the
// requests that reached it.
type faultyJWKS struct {
	srv  *httptest.Server
	stop chan struct{}
	hits atomic.Int64

	mu    sync.Mutex
	jwks  []byte
	fault jwksFault
}

func newFaultyJWKS(t *testing.T, jwks []byte) *faultyJWKS {
	f := &faultyJWKS{jwks: jwks, stop: make(chan struct{})}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	// Cleanups run last first: hanging handlers are released before
	// Close waits for them.
	t.Cleanup(func() { close(f.stop) })
	return f
}

func (f *faultyJWKS) serve(w http.ResponseWriter, r *http.Request) {
	f.hits.Add(1)
	f.mu.Lock()
	jwks, fault := f.jwks, f.fault
	f.mu.Unlock()
	if fault != nil {
		fault(w, r, jwks, f.stop)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(jwks)
}

func (f *faultyJWKS) url() string { return f.srv.URL + "/jwks" }

func (f *faultyJWKS) set(jwks []byte, fault jwksFault) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.jwks, f.fault = jwks, fault
}

// refuse takes the endpoint down: its port refuses connections.
func (f *faultyJWKS) refuse(t *testing.T) {
	t.Helper()
	f.srv.Close()
	if c, err := net.DialTimeout("tcp", f.srv.Listener.Addr().String(), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the closed endpoint still accepts connections")
	}
}

// faultVerifier is a Verifier on the endpoint with a fake clock, a short
// HTTP timeout and a one-minute rate limit.
func faultVerifier(t *testing.T, jwksURL string, clock *jwtTestClock, log *jwtTestLog) *Verifier {
	return jwtTestVerifier(t, Options{
		JWKSURL: jwksURL, Now: clock.Now, Logger: log.logger(),
		MinRefreshInterval: time.Minute,
		HTTPClient:         &http.Client{Timeout: faultClientTimeout},
	})
}

// TestJWKSFaultKeepsLastGoodKeys loads a good key set, breaks the endpoint,
// and makes a token with an unknown kid force a refresh (the same fetch
// and swap a scheduled refresh makes). The refresh fails; the keys loaded
// before keep verifying tokens, old (cached) and new; and once the
// endpoint is good again, a rotated-in key is picked up, so the fault left
// nothing behind.
func TestJWKSFaultKeepsLastGoodKeys(t *testing.T) {
	k := jwtTestKeys()
	cases := map[string]jwksFault{"connection_refused": nil}
	for name, fault := range jwksFaults {
		cases[name] = fault
	}
	for name, fault := range cases {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			idp := newFaultyJWKS(t, jwtTestJWKS(t, k.rsa))
			clock := &jwtTestClock{now: jwtTestStart}
			log := &jwtTestLog{}
			v := faultVerifier(t, idp.url(), clock, log)

			before := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(clock.Now(), nil))
			if r := v.Verify(ctx, before, nil); !r.Valid {
				t.Fatalf("before the fault: %s", r.Error)
			}

			if fault == nil {
				idp.refuse(t)
			} else {
				idp.set(jwtTestJWKS(t, k.rsa), fault)
			}
			clock.Advance(time.Minute)
			hits := idp.hits.Load()
			stranger := jwtTestSign(t, k.rsa2, "RS256", jwtTestClaims(clock.Now(), nil))
			if r := v.Verify(ctx, stranger, nil); r.Valid || r.Error != ErrUnknownKey {
				t.Errorf("token of an unpublished key during the fault: valid=%v error=%q, want unknown_key", r.Valid, r.Error)
			}
			// At least one: Go's client retries a GET once when a reused
			// connection is reset.
			if fault != nil && idp.hits.Load() == hits {
				t.Error("the forced refresh never reached the endpoint")
			}
			if !log.has("keeping the last good key set") {
				t.Errorf("no warning about the failed refresh in the log:\n%s", log)
			}

			if r := v.Verify(ctx, before, nil); !r.Valid {
				t.Errorf("token verified before the fault: %s, want still valid", r.Error)
			}
			during := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(clock.Now(), func(c map[string]any) { c["jti"] = "during-" + name }))
			if r := v.Verify(ctx, during, nil); !r.Valid || r.Subject != "alice" {
				t.Errorf("new token of a known key during the fault: valid=%v error=%q, want valid (last good keys kept)", r.Valid, r.Error)
			}

			if fault == nil {
				return // the port stays closed
			}
			idp.set(jwtTestJWKS(t, k.rsa, k.rsa2), nil)
			clock.Advance(time.Minute)
			if r := v.Verify(ctx, stranger, nil); !r.Valid {
				t.Errorf("after the endpoint recovered with the new key: %s, want valid", r.Error)
			}
			if r := v.Verify(ctx, during, nil); !r.Valid {
				t.Errorf("token of the old key after recovery: %s, want valid", r.Error)
			}
		})
	}
}

// TestJWKSFaultBeforeFirstKeys starts the Verifier on a broken endpoint:
// no key set has ever loaded, so tokens are unavailable (never accepted),
// start-up does not wait past the client's timeout, and the first good
// answer once the rate limit allows brings the keys.
func TestJWKSFaultBeforeFirstKeys(t *testing.T) {
	k := jwtTestKeys()
	for name, fault := range jwksFaults {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			idp := newFaultyJWKS(t, jwtTestJWKS(t, k.rsa))
			idp.set(jwtTestJWKS(t, k.rsa), fault)
			clock := &jwtTestClock{now: jwtTestStart}
			log := &jwtTestLog{}
			v := faultVerifier(t, idp.url(), clock, log)
			if n := idp.hits.Load(); n != 1 {
				t.Errorf("start-up made %d requests, want 1", n)
			}
			if !log.has("JWTs cannot be verified until keys arrive") {
				t.Errorf("no warning about missing keys in the log:\n%s", log)
			}

			tok := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(clock.Now(), nil))
			if r := v.Verify(ctx, tok, nil); r.Valid || r.Error != ErrUnavailable {
				t.Errorf("without keys: valid=%v error=%q, want unavailable", r.Valid, r.Error)
			}

			idp.set(jwtTestJWKS(t, k.rsa), nil)
			clock.Advance(time.Minute)
			if r := v.Verify(ctx, tok, nil); !r.Valid {
				t.Errorf("after the endpoint recovered: %s, want valid", r.Error)
			}
			if strings.Count(log.String(), "JWKS loaded") != 1 {
				t.Errorf("want one successful load in the log:\n%s", log)
			}
		})
	}
}
