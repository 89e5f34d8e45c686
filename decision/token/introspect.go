package token

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// Defaults of IntrospectionOptions.
const (
	DefaultIntrospectionTimeout   = 2 * time.Second
	DefaultIntrospectionCacheSize = 10000
)

const (
	// introspectInactiveTTL is how long an inactive answer is remembered: long
	// enough that a flood of one revoked token costs the authorization server
	// little, short enough that a mistake heals itself.
	introspectInactiveTTL = 30 * time.Second
	// introspectNoExpTTL bounds the caching of an active answer without
	// "exp", so that a revocation is seen within a minute.
	introspectNoExpTTL = time.Minute
	// introspectMaxBody bounds what is read of a response.
	introspectMaxBody = 1 << 20
)

// IntrospectionOptions configures token introspection (RFC 7662) for opaque
// access tokens.
type IntrospectionOptions struct {
	// URL is the authorization server's introspection endpoint.
	URL string
	// ClientID and ClientSecret authenticate this resource server to the
	// endpoint with HTTP Basic.
	ClientID, ClientSecret string
	// CacheSize bounds the number of remembered answers (default 10,000).
	CacheSize int
	// Timeout bounds one introspection request (default 2s).
	Timeout time.Duration
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

// Introspector verifies opaque tokens by asking the authorization server.
// Answers are cached by the SHA-256 of the token (active ones until their
// "exp", inactive ones for 30 seconds) and concurrent lookups of one token
// share one request. An Introspector is safe for concurrent use.
type Introspector struct {
	url          string
	clientID     string
	clientSecret string
	timeout      time.Duration
	now          func() time.Time
	client       *http.Client
	logger       *slog.Logger
	cache        *lru.Cache[[sha256.Size]byte, introspectEntry]

	mu       sync.Mutex
	inflight map[[sha256.Size]byte]*introspectCall
}

// introspectEntry is one cached answer: an active result (whose audience is
// checked per call, as the audience is a parameter of Verify) or an inactive
// one.
type introspectEntry struct {
	result *Result
	aud    []string // the response's "aud", nil when it had none
	until  time.Time
}

// introspectCall is one request in flight, shared by every caller asking
// about the same token meanwhile.
type introspectCall struct {
	done    chan struct{}
	waiters int // callers waiting, guarded by Introspector.mu
	entry   introspectEntry
	err     error
}

// NewIntrospector builds an Introspector. A nil client means a client that
// does not follow redirects (the request carries client credentials); a nil
// logger discards. A configuration without a URL yields an Introspector that
// answers every token "unavailable", and says so in the log.
func NewIntrospector(opts IntrospectionOptions, client *http.Client, logger *slog.Logger) *Introspector {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if client == nil {
		client = &http.Client{
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultIntrospectionTimeout
	}
	if opts.CacheSize <= 0 {
		opts.CacheSize = DefaultIntrospectionCacheSize
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	cache, err := lru.New[[sha256.Size]byte, introspectEntry](opts.CacheSize)
	if err != nil {
		// Unreachable: the size is positive.
		panic(fmt.Sprintf("introspection cache: %v", err))
	}
	if opts.URL == "" {
		logger.Error("token introspection has no endpoint URL: opaque tokens will be rejected as unavailable")
	}
	return &Introspector{
		url:          opts.URL,
		clientID:     opts.ClientID,
		clientSecret: opts.ClientSecret,
		timeout:      opts.Timeout,
		now:          opts.Now,
		client:       client,
		logger:       logger,
		cache:        cache,
		inflight:     map[[sha256.Size]byte]*introspectCall{},
	}
}

// Verify introspects raw and checks that the token was issued for audience
// (RFC 8707; "" skips the check; compared with scheme and host
// case-insensitive). The Result has Type "introspection". Invalid reasons:
// "missing" (empty raw), "inactive" (active=false), "expired" or
// "not_yet_valid" (by the response's exp/nbf), "wrong_audience", and
// "unavailable" when the endpoint could not give an answer: the service fails
// closed and logs why.
func (i *Introspector) Verify(ctx context.Context, raw, audience string) *Result {
	if raw == "" {
		return introspectFailure(ErrMissing, false)
	}
	key := introspectKey(raw)
	now := i.now()
	e, ok := i.cache.Get(key)
	if !ok || !now.Before(e.until) {
		var err error
		e, err = i.lookup(ctx, key, raw)
		if err != nil {
			return introspectFailure(ErrUnavailable, true)
		}
	}
	if !e.result.Valid {
		return e.result
	}
	if !e.result.Expiry.IsZero() && !now.Before(e.result.Expiry) {
		return introspectFailure(ErrExpired, true)
	}
	if audience != "" && e.aud != nil && !introspectAudienceNamed(e.aud, audience) {
		r := &Result{Present: true, Error: ErrWrongAudience, Type: TypeIntrospection,
			Resource: audience, Detail: WrongAudienceDetail(e.aud, audience, false)}
		return r.Finish()
	}
	return e.result
}

// introspectKey is the cache key of a token: its SHA-256, so that the cache
// holds no token. Typical tokens are hashed from a stack copy, without
// allocating.
func introspectKey(raw string) [sha256.Size]byte {
	var buf [512]byte
	if len(raw) <= len(buf) {
		n := copy(buf[:], raw)
		return sha256.Sum256(buf[:n])
	}
	return sha256.Sum256([]byte(raw))
}

// lookup asks the endpoint about one token, joining a request already in
// flight for it. The shared request runs on a context detached from any one
// caller's cancellation, so a caller that gives up does not fail the others;
// each caller still stops waiting when its own context ends.
func (i *Introspector) lookup(ctx context.Context, key [sha256.Size]byte, raw string) (introspectEntry, error) {
	i.mu.Lock()
	c, joined := i.inflight[key]
	if !joined {
		c = &introspectCall{done: make(chan struct{})}
		i.inflight[key] = c
		go i.run(context.WithoutCancel(ctx), key, raw, c)
	}
	c.waiters++
	i.mu.Unlock()

	select {
	case <-c.done:
		return c.entry, c.err
	case <-ctx.Done():
		return introspectEntry{}, fmt.Errorf("waiting for token introspection: %w", ctx.Err())
	}
}

// run performs one shared request and publishes its outcome.
func (i *Introspector) run(ctx context.Context, key [sha256.Size]byte, raw string, c *introspectCall) {
	ctx, cancel := context.WithTimeout(ctx, i.timeout)
	defer cancel()
	c.entry, c.err = i.introspect(ctx, raw)
	if c.err != nil {
		i.logger.Warn("token introspection failed; rejecting the token as unavailable",
			slog.String("endpoint", i.url), slog.Any("error", c.err))
	} else {
		i.cache.Add(key, c.entry)
	}
	i.mu.Lock()
	delete(i.inflight, key)
	i.mu.Unlock()
	close(c.done)
}

// introspect sends the RFC 7662 request and turns the answer into a cache
// entry. Errors never contain the token.
func (i *Introspector) introspect(ctx context.Context, raw string) (introspectEntry, error) {
	if i.url == "" {
		return introspectEntry{}, errors.New("no introspection endpoint configured")
	}
	form := url.Values{"token": {raw}, "token_type_hint": {"access_token"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, i.url, strings.NewReader(form.Encode()))
	if err != nil {
		return introspectEntry{}, fmt.Errorf("building introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if i.clientID != "" {
		// RFC 6749 §2.3.1: the client id and secret are form-encoded before
		// they are put in the Basic credentials.
		req.SetBasicAuth(url.QueryEscape(i.clientID), url.QueryEscape(i.clientSecret))
	}
	resp, err := i.client.Do(req)
	if err != nil {
		return introspectEntry{}, fmt.Errorf("calling introspection endpoint: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return introspectEntry{}, fmt.Errorf("introspection endpoint answered HTTP %d", resp.StatusCode)
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return introspectEntry{}, fmt.Errorf("introspection endpoint answered content type %q, want application/json", resp.Header.Get("Content-Type"))
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, introspectMaxBody))
	if err != nil {
		return introspectEntry{}, fmt.Errorf("reading introspection response: %w", err)
	}
	// The claims reach the policy: read with the rules of every MCP body
	// (no duplicate or fold-equal names, no invalid UTF-8 or lone
	// surrogate, which encoding/json would turn into U+FFFD, the number
	// rule), as a JWT's claims are.
	if _, err := mcp.ReadJSON(data); err != nil {
		return introspectEntry{}, fmt.Errorf("decoding introspection response: %w", err)
	}
	var body map[string]any
	if err := json.Unmarshal(data, &body); err != nil {
		return introspectEntry{}, fmt.Errorf("decoding introspection response: %w", err)
	}
	if body == nil {
		return introspectEntry{}, errors.New("introspection response is not a JSON object")
	}
	return i.entryFrom(body)
}

// entryFrom reads an introspection response.
func (i *Introspector) entryFrom(body map[string]any) (introspectEntry, error) {
	now := i.now()
	active, ok := body["active"].(bool)
	if !ok {
		return introspectEntry{}, errors.New(`introspection response has no boolean "active"`)
	}
	if !active {
		return introspectEntry{result: introspectFailure(ErrInactive, true), until: now.Add(introspectInactiveTTL)}, nil
	}
	r := &Result{Present: true, Valid: true, Type: TypeIntrospection, Claims: body, Scopes: []string{}}
	var err error
	if r.Subject, err = introspectString(body, "sub"); err != nil {
		return introspectEntry{}, err
	}
	if r.ClientID, err = introspectString(body, "client_id"); err != nil {
		return introspectEntry{}, err
	}
	scope, err := introspectString(body, "scope")
	if err != nil {
		return introspectEntry{}, err
	}
	if f := strings.Fields(scope); len(f) > 0 {
		r.Scopes = f
	}
	exp, err := introspectTime(body, "exp")
	if err != nil {
		return introspectEntry{}, err
	}
	r.Expiry = exp
	nbf, err := introspectTime(body, "nbf")
	if err != nil {
		return introspectEntry{}, err
	}
	aud, err := introspectAudience(body["aud"])
	if err != nil {
		return introspectEntry{}, err
	}
	until := now.Add(introspectNoExpTTL)
	if !exp.IsZero() {
		until = exp
	}
	if !nbf.IsZero() && now.Before(nbf) {
		// Not usable yet: remember briefly, as for an inactive token.
		return introspectEntry{result: introspectFailure(ErrNotYetValid, true), until: now.Add(introspectInactiveTTL)}, nil
	}
	return introspectEntry{result: r.Finish(), aud: aud, until: until}, nil
}

// introspectFailure builds an invalid introspection Result.
func introspectFailure(reason string, present bool) *Result {
	return (&Result{Present: present, Valid: false, Error: reason, Type: TypeIntrospection}).Finish()
}

// introspectString reads an optional string member of the response.
func introspectString(body map[string]any, name string) (string, error) {
	v, ok := body[name]
	if !ok || v == nil {
		return "", nil
	}
	s, ok := v.(string)
	if !ok {
		return "", fmt.Errorf("introspection response %q: want a string, got %T", name, v)
	}
	return s, nil
}

// introspectTime reads an optional NumericDate member of the response.
func introspectTime(body map[string]any, name string) (time.Time, error) {
	v, ok := body[name]
	if !ok || v == nil {
		return time.Time{}, nil
	}
	f, ok := v.(float64)
	if !ok || math.IsNaN(f) || math.IsInf(f, 0) || f < 0 || f > 1<<40 {
		return time.Time{}, fmt.Errorf("introspection response %q: want seconds since the epoch, got %v", name, v)
	}
	sec, frac := math.Modf(f)
	return time.Unix(int64(sec), int64(frac*1e9)), nil
}

// introspectAudience reads "aud": a string or an array of strings.
func introspectAudience(v any) ([]string, error) {
	switch a := v.(type) {
	case nil:
		return nil, nil
	case string:
		return []string{a}, nil
	case []any:
		out := make([]string, 0, len(a))
		for _, x := range a {
			s, ok := x.(string)
			if !ok {
				return nil, fmt.Errorf(`introspection response "aud": want strings, got %T`, x)
			}
			out = append(out, s)
		}
		return out, nil
	default:
		return nil, fmt.Errorf(`introspection response "aud": want a string or an array, got %T`, v)
	}
}

// introspectAudienceNamed reports whether one of aud names want: equal
// strings, or URLs equal but for the case of scheme and host.
func introspectAudienceNamed(aud []string, want string) bool {
	for _, a := range aud {
		if a == want || introspectSameResource(a, want) {
			return true
		}
	}
	return false
}

// introspectSameResource compares two resource URIs with scheme and host
// case-insensitive and everything else exact (a trailing slash matters).
func introspectSameResource(a, b string) bool {
	if !strings.EqualFold(a, b) {
		// Differences in other than case can never be forgiven.
		return false
	}
	ua, err := url.Parse(a)
	if err != nil || ua.Host == "" {
		return false
	}
	ub, err := url.Parse(b)
	if err != nil || ub.Host == "" {
		return false
	}
	return strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host) &&
		ua.User.String() == ub.User.String() && ua.EscapedPath() == ub.EscapedPath() &&
		ua.RawQuery == ub.RawQuery && ua.Fragment == ub.Fragment
}
