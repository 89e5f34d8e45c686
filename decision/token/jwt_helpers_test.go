package token

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// Test fixtures for the JWT verifier: real keys generated once per test
// binary (RSA generation is slow), a fake clock, a token signer and an
// httptest identity provider serving JWKS and discovery metadata.

const (
	jwtTestAudience = "https://mcp.example.com/mcp"
	jwtTestIssuer   = "https://idp.example.com"
)

var jwtTestStart = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// jwtTestKey is one signing key with its kid.
type jwtTestKey struct {
	kid  string
	priv any // *rsa.PrivateKey or *ecdsa.PrivateKey
}

func (k jwtTestKey) public() any {
	switch p := k.priv.(type) {
	case *rsa.PrivateKey:
		return &p.PublicKey
	case *ecdsa.PrivateKey:
		return &p.PublicKey
	}
	panic("unknown key type")
}

type jwtTestKeyring struct {
	rsa, rsa2, ec jwtTestKey
}

var jwtTestKeys = sync.OnceValue(func() jwtTestKeyring {
	r1, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	r2, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	e, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err)
	}
	return jwtTestKeyring{
		rsa:  jwtTestKey{kid: "rsa-1", priv: r1},
		rsa2: jwtTestKey{kid: "rsa-2", priv: r2},
		ec:   jwtTestKey{kid: "ec-1", priv: e},
	}
})

// jwtTestJWKS returns the public JWKS of keys.
func jwtTestJWKS(t testing.TB, keys ...jwtTestKey) []byte {
	t.Helper()
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.public(), KeyID: k.kid, Use: "sig"})
	}
	data, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

// jwtTestClaims returns a valid claim set at now, changed by edit.
func jwtTestClaims(now time.Time, edit func(map[string]any)) map[string]any {
	c := map[string]any{
		"iss":       jwtTestIssuer,
		"aud":       jwtTestAudience,
		"sub":       "alice",
		"client_id": "agent-1",
		"scope":     "tools:read tools:call",
		"iat":       now.Unix(),
		"exp":       now.Add(time.Hour).Unix(),
	}
	if edit != nil {
		edit(c)
	}
	return c
}

// jwtTestSign signs claims with key using alg, putting kid in the header
// unless it is empty.
func jwtTestSign(t testing.TB, key jwtTestKey, alg string, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), jwt.MapClaims(claims))
	if key.kid != "" {
		tok.Header["kid"] = key.kid
	}
	s, err := tok.SignedString(key.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwtTestSignHeader is jwtTestSign with more header members: header is
// merged over {"alg", "typ": "JWT", "kid"}, and a nil value removes a member.
func jwtTestSignHeader(t testing.TB, key jwtTestKey, alg string, header, claims map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.GetSigningMethod(alg), jwt.MapClaims(claims))
	if key.kid != "" {
		tok.Header["kid"] = key.kid
	}
	for name, v := range header {
		if v == nil {
			delete(tok.Header, name)
			continue
		}
		tok.Header[name] = v
	}
	s, err := tok.SignedString(key.priv)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// jwtTestSignRaw signs header and claims as written, with key's private
// key and alg, for JSON no encoder would produce (duplicate members).
func jwtTestSignRaw(t testing.TB, key jwtTestKey, alg, header, claims string) string {
	t.Helper()
	enc := base64.RawURLEncoding
	input := enc.EncodeToString([]byte(header)) + "." + enc.EncodeToString([]byte(claims))
	sig, err := jwt.GetSigningMethod(alg).Sign(input, key.priv)
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + enc.EncodeToString(sig)
}

// jwtTestClock is a settable clock.
type jwtTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *jwtTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *jwtTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// jwtTestIdP is an identity provider: JWKS at /jwks, RFC 8414 and OpenID
// metadata for issuer URL+path. It counts the requests it gets per path.
type jwtTestIdP struct {
	srv *httptest.Server

	mu          sync.Mutex
	jwks        []byte
	down        bool
	metaIssuer  string // issuer written in metadata; "" means the real one
	serveRFC    bool
	serveOpenID bool
	path        string // issuer path, "" or "/tenant"
	hits        map[string]int
}

func newJWTTestIdP(t testing.TB, jwks []byte) *jwtTestIdP {
	idp := &jwtTestIdP{jwks: jwks, serveRFC: true, serveOpenID: true, hits: map[string]int{}}
	idp.srv = httptest.NewServer(http.HandlerFunc(idp.serve))
	t.Cleanup(idp.srv.Close)
	return idp
}

func (p *jwtTestIdP) issuer() string { return p.srv.URL + p.path }

func (p *jwtTestIdP) serve(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.hits[r.URL.Path]++
	if p.down {
		http.Error(w, "down", http.StatusServiceUnavailable)
		return
	}
	meta := func() {
		iss := p.metaIssuer
		if iss == "" {
			iss = p.srv.URL + p.path
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"issuer": iss, "jwks_uri": p.srv.URL + "/jwks"})
	}
	switch {
	case r.URL.Path == "/jwks":
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(p.jwks)
	case p.serveRFC && r.URL.Path == "/.well-known/oauth-authorization-server"+p.path:
		meta()
	case p.serveOpenID && r.URL.Path == p.path+"/.well-known/openid-configuration":
		meta()
	default:
		http.NotFound(w, r)
	}
}

func (p *jwtTestIdP) set(f func(p *jwtTestIdP)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *jwtTestIdP) hitCount(path string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hits[path]
}

// jwtTestWriteFile writes data to a file in a temporary directory.
func jwtTestWriteFile(t testing.TB, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// jwtTestVerifier builds a Verifier with test defaults and closes it at the
// end of the test. Refresh intervals are hours so the background loop
// never fires during a test: every fetch is one the test caused.
func jwtTestVerifier(t testing.TB, opts Options) *Verifier {
	t.Helper()
	if opts.Audience == "" {
		opts.Audience = jwtTestAudience
	}
	if opts.MinRefreshInterval == 0 {
		opts.MinRefreshInterval = time.Hour
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = 2 * time.Hour
	}
	v, err := New(context.Background(), opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

// jwtTestLog is a concurrency-safe log sink.
type jwtTestLog struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *jwtTestLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *jwtTestLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *jwtTestLog) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func (l *jwtTestLog) has(s string) bool { return strings.Contains(l.String(), s) }
