package token

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/golang-jwt/jwt/v5"
)

// Defaults of Options.
const (
	DefaultClockSkew          = 30 * time.Second
	DefaultRefreshInterval    = 10 * time.Minute
	DefaultMinRefreshInterval = time.Minute
)

// defaultAlgorithms is the JWS algorithm allowlist when Options.Algorithms
// is empty. Read-only.
var defaultAlgorithms = []string{"RS256", "ES256"}

// supportedAlgorithms are the algorithms the allowlist may name: asymmetric
// ones only (read-only). HS* is refused outright: with keys from a public JWKS, HMAC
// means anyone holding the JWKS can mint tokens.
var supportedAlgorithms = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
	"EdDSA": true,
}

// Options configures a Verifier.
type Options struct {
	// Issuer is the expected iss of JWTs (checked when set). With neither
	// JWKSFile nor JWKSURL, the JWKS is found through the issuer's metadata
	// (RFC 8414, then OpenID Connect Discovery).
	Issuer string
	// Audience is the resource URI of the protected MCP server; a JWT's aud
	// must name it (RFC 8707). Required when JWTs are verified.
	Audience string
	// JWKSFile or JWKSURL is where the signing keys are; at most one.
	JWKSFile, JWKSURL string
	// Algorithms is the allowlist of JWS algorithms; default RS256, ES256.
	// Only asymmetric algorithms may be named.
	Algorithms []string
	// RequiredTyp, when set, is the media type a JWT's typ header must
	// name, such as "at+jwt" for RFC 9068 access tokens, so that an ID
	// token or another JWT from the same issuer is not taken for an access
	// token. It compares without regard to case, with the "application/"
	// prefix optional on either side (RFC 7515 §4.1.9). "" checks no typ.
	RequiredTyp string
	// ClockSkew is the tolerance for exp, nbf and iat; default 30s.
	ClockSkew time.Duration
	// Issuers configures several issuers, each with its keys and checks;
	// a JWT goes to the entry its iss names, and one naming none is
	// wrong_issuer. Exclusive with Issuer, JWKSFile and JWKSURL, which
	// are the shorthand for one entry. Audience, Algorithms, RequiredTyp
	// and ClockSkew are the defaults of every entry.
	Issuers []IssuerOptions
	// RefreshInterval is how often the JWKS is fetched again; default 10m.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two fetches, whatever
	// triggers them (scheduled, unknown kid, no keys yet); default 1m.
	MinRefreshInterval time.Duration
	// CacheSize is how many verified tokens are cached; 0 means 10,000, a
	// negative value turns the cache off.
	CacheSize int
	// Dev makes the Verifier also trust the local development key (see
	// MintDev) for issuer DevIssuer. Never in production.
	Dev bool
	// DevKeyPath overrides where the development key is; "" means
	// DevKeyPath().
	DevKeyPath string
	// Introspection, when set, verifies opaque (non-JWT) tokens at an RFC
	// 7662 endpoint; nil makes opaque tokens malformed.
	Introspection *IntrospectionOptions
	// Sources are further kinds of credential, tried in order after API
	// keys and JWTs and before introspection (which takes any credential
	// that reaches it).
	Sources []Source
	// HTTPClient fetches JWKS and metadata; default a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// Logger receives warnings (failed refreshes, Dev mode); default discards.
	Logger *slog.Logger
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

// Verifier verifies bearer credentials. It is an ordered chain of Sources
// (API keys, JWTs, the sources of Options.Sources, then introspection)
// behind a cache of verified JWTs. It is safe for concurrent use.
type Verifier struct {
	sources []Source
	logger  *slog.Logger
	now     func() time.Time
	parser  *jwt.Parser
	jwt     *jwtSource
	cache   *resultCache // nil when off

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	missing, malformed, expired *Result
}

// New builds a Verifier. A JWKS file that cannot be read or parsed is an
// error. A JWKS URL (or discovery) that is down is not: the Verifier logs,
// keeps retrying in the background, and JWTs verify as ErrUnavailable
// until keys arrive. Close releases the background work.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	v := &Verifier{
		logger: opts.Logger,
		now:    opts.Now,
		// JSON numbers stay exact (json.Number) so claims reach policies
		// as written; claim checks are ours, for their order and for the
		// RFC 8707 audience comparison.
		parser: jwt.NewParser(jwt.WithoutClaimsValidation(), jwt.WithJSONNumber()),
	}
	if v.logger == nil {
		v.logger = slog.New(slog.DiscardHandler)
	}
	if v.now == nil {
		v.now = time.Now
	}
	if err := v.configure(&opts); err != nil {
		return nil, err
	}
	client := opts.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: fetchTimeout}
	}
	baseCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.cancel = cancel
	entries, err := v.jwtIssuers(ctx, baseCtx, &opts, client)
	if err != nil {
		cancel()
		v.wg.Wait()
		return nil, err
	}
	if v.jwt, err = newJWTSource(entries, v.parser, v.now); err != nil {
		v.Close()
		return nil, err
	}
	// The order is the chain's: sources that know their credentials by
	// shape first, introspection (which takes anything) last.
	v.sources = append(v.sources, apiKeySource{now: v.now}, v.jwt)
	v.sources = append(v.sources, opts.Sources...)
	if opts.Introspection != nil {
		intro := *opts.Introspection
		if intro.Now == nil {
			intro.Now = v.now // one clock for every kind of token
		}
		v.sources = append(v.sources, introspectionSource{in: NewIntrospector(intro, client, v.logger), audience: opts.Audience})
	}
	return v, nil
}

// singleIssuer is the issuer entry the top-level JWT options describe.
func singleIssuer(opts *Options) IssuerOptions {
	return IssuerOptions{
		Issuer: opts.Issuer, Audience: opts.Audience,
		JWKSFile: opts.JWKSFile, JWKSURL: opts.JWKSURL,
		Algorithms: opts.Algorithms, RequiredTyp: opts.RequiredTyp, ClockSkew: opts.ClockSkew,
	}
}

// issuerList returns the issuer entries opts configure: Options.Issuers,
// each filled with the top-level Audience, Algorithms, RequiredTyp and
// ClockSkew it leaves unset, or else the one entry of the top-level
// fields. Every entry of Options.Issuers names its issuer, once.
func issuerList(opts *Options) ([]IssuerOptions, error) {
	if len(opts.Issuers) == 0 {
		return []IssuerOptions{singleIssuer(opts)}, nil
	}
	if opts.Issuer != "" || opts.JWKSFile != "" || opts.JWKSURL != "" {
		return nil, errors.New("set Options.Issuers or the single-issuer Issuer, JWKSFile and JWKSURL, not both")
	}
	out := make([]IssuerOptions, len(opts.Issuers))
	seen := make(map[string]bool, len(opts.Issuers))
	for i, io := range opts.Issuers {
		switch {
		case io.Issuer == "":
			return nil, fmt.Errorf("Issuers[%d]: Issuer is required when several issuers are configured", i)
		case io.Issuer == DevIssuer:
			return nil, fmt.Errorf("Issuers[%d]: %q is the development issuer (Options.Dev)", i, DevIssuer)
		case seen[io.Issuer]:
			return nil, fmt.Errorf("Issuers[%d]: issuer %q is configured twice", i, io.Issuer)
		}
		seen[io.Issuer] = true
		if io.Audience == "" {
			io.Audience = opts.Audience
		}
		if len(io.Algorithms) == 0 {
			io.Algorithms = opts.Algorithms
		}
		if io.RequiredTyp == "" {
			io.RequiredTyp = opts.RequiredTyp
		}
		if io.ClockSkew == 0 {
			io.ClockSkew = opts.ClockSkew
		}
		out[i] = io
	}
	return out, nil
}

// jwtIssuers builds the JWT issuer entries opts describe and loads their
// keys: the configured issuers, then the development key. With neither,
// one entry without keys answers every JWT with unknown_key.
func (v *Verifier) jwtIssuers(ctx, baseCtx context.Context, opts *Options, client *http.Client) ([]*jwtIssuer, error) {
	list, err := issuerList(opts)
	if err != nil {
		return nil, err
	}
	var entries []*jwtIssuer
	var keyless *jwtIssuer
	for i := range list {
		io := &list[i]
		j, err := newJWTIssuer(io, v.parser)
		if err == nil {
			j.src, err = v.newKeySource(baseCtx, io, opts, client)
		}
		if err == nil && j.src != nil && io.Audience == "" {
			err = errors.New("verifying JWTs needs Options.Audience, the resource URI of this server")
		}
		if err == nil && j.src != nil {
			err = v.start(ctx, j.src, io, opts)
		}
		if err != nil {
			if len(opts.Issuers) > 0 {
				return nil, fmt.Errorf("issuer %q: %w", io.Issuer, err)
			}
			return nil, err
		}
		if j.src == nil {
			keyless = j // the shorthand with no issuer and no JWKS
			continue
		}
		entries = append(entries, j)
	}
	if opts.Dev {
		if opts.Audience == "" {
			return nil, errors.New("verifying JWTs needs Options.Audience, the resource URI of this server")
		}
		dev, err := v.devIssuer(opts)
		if err != nil {
			return nil, err
		}
		entries = append(entries, dev)
	}
	if len(entries) == 0 {
		entries = append(entries, keyless) // no keys: unknown_key
	}
	return entries, nil
}

// start loads src once (a JWKS file that does not load is a configuration
// mistake, reported now; a URL is retried) and starts its refresh loop.
func (v *Verifier) start(ctx context.Context, src *keySource, io *IssuerOptions, opts *Options) error {
	if io.JWKSFile != "" {
		src.markAttempt()
		if err := src.load("start"); err != nil {
			return fmt.Errorf("loading JWKS file %s: %w", io.JWKSFile, err)
		}
	} else {
		src.refresh(ctx, "start")
	}
	v.wg.Add(1)
	go src.loop(src.baseCtx, opts.RefreshInterval)
	return nil
}

// devIssuer is the entry of the local development key, for DevIssuer
// only: the checks of the configured issuer, with one RS256 key that never
// changes.
func (v *Verifier) devIssuer(opts *Options) (*jwtIssuer, error) {
	path := opts.DevKeyPath
	if path == "" {
		var err error
		if path, err = DevKeyPath(); err != nil {
			return nil, err
		}
	}
	dk, err := loadOrCreateDevKey(path)
	if err != nil {
		return nil, fmt.Errorf("loading the development key: %w", err)
	}
	io := singleIssuer(opts)
	io.Issuer, io.JWKSFile, io.JWKSURL = DevIssuer, "", ""
	j, err := newJWTIssuer(&io, v.parser)
	if err != nil {
		return nil, err
	}
	key := verificationKey{kid: dk.kid, alg: "RS256", pub: &dk.priv.PublicKey}
	j.static = &keySet{byKID: map[string][]verificationKey{dk.kid: {key}}, all: []verificationKey{key}}
	v.logger.Warn("DEVELOPMENT MODE: tokens signed by the local development key are accepted; never run this in production",
		"issuer", DevIssuer, "key", path, "kid", dk.kid)
	return j, nil
}

// configure validates the options every source shares, fills defaults
// into opts and sets the fixed parts of v.
func (v *Verifier) configure(opts *Options) error {
	if opts.RefreshInterval < 0 || opts.MinRefreshInterval < 0 {
		return errors.New("RefreshInterval and MinRefreshInterval cannot be negative")
	}
	if opts.RefreshInterval == 0 {
		opts.RefreshInterval = DefaultRefreshInterval
	}
	if opts.MinRefreshInterval == 0 {
		opts.MinRefreshInterval = DefaultMinRefreshInterval
	}
	cache, err := newResultCache(opts.CacheSize)
	if err != nil {
		return fmt.Errorf("creating the token cache: %w", err)
	}
	v.cache = cache
	v.missing = (&Result{Error: ErrMissing}).Finish()
	v.malformed = (&Result{Present: true, Error: ErrMalformed}).Finish()
	v.expired = (&Result{Present: true, Error: ErrExpired, Type: TypeJWT}).Finish()
	return nil
}

// Close stops the background refresh and waits for it. The Verifier must
// not be used afterwards.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		v.cancel()
		if v.jwt != nil {
			for _, j := range v.jwt.entries() {
				if j.src != nil {
					j.src.close()
				}
			}
		}
		v.wg.Wait()
	})
}

// Verify checks one credential as it came from the Authorization header
// (see BearerToken) and returns its finished Result. keys verifies API keys
// (those starting with APIKeyPrefix); nil means API keys are not accepted.
// The cache of JWT outcomes answers first; on a miss, the first source of
// the chain that owns raw verifies it, and a credential no source owns is
// malformed.
func (v *Verifier) Verify(ctx context.Context, raw string, keys *APIKeys) *Result {
	if raw == "" {
		return v.missing
	}
	var (
		k      cacheKey
		hashed bool
		now    time.Time
	)
	if v.cache != nil && strings.Count(raw, ".") == 2 {
		// The cache holds only tokens a caching source verified, so a hit
		// needs no shape check: the same bytes had passed it.
		now = v.now()
		k, hashed = tokenHash(raw), true
		if r, ok := v.cached(k, now); ok {
			return r
		}
	}
	for _, s := range v.sources {
		if !s.Owns(raw) {
			continue
		}
		if cs, ok := s.(cachingSource); ok && hashed {
			r, p := cs.verifyCacheable(ctx, raw, now)
			v.store(k, r, p, now)
			return r
		}
		return s.Verify(ctx, raw, keys)
	}
	return v.malformed
}

// looksLikeJWS reports whether raw has the shape of a JWS compact
// serialization: three base64url parts (the third may be empty, as with
// alg "none", so such tokens are reported as alg_not_allowed).
func looksLikeJWS(raw string) bool {
	dots := 0
	prev := byte('.')
	for i := 0; i < len(raw); i++ {
		c := raw[i]
		if c == '.' {
			if prev == '.' {
				return false
			}
			dots++
		} else if !base64URLChar[c] {
			return false
		}
		prev = c
	}
	return dots == 2
}

// base64URLChar marks the bytes of the base64url alphabet. Read-only.
var base64URLChar = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['_'] = true, true
	return t
}()

// cached returns the cached Result of the token with hash k, if any. A
// verified token whose deadline has passed is expired, and cached as such.
func (v *Verifier) cached(k cacheKey, now time.Time) (*Result, bool) {
	r, state := v.cache.get(k, now)
	switch state {
	case cacheHit:
		return r, true
	case cacheExpired:
		v.cache.putBad(k, v.expired, now.Add(negativeTTL), nil, nil)
		return v.expired, true
	}
	return nil, false
}

// store caches r under k as p allows.
func (v *Verifier) store(k cacheKey, r *Result, p cachePolicy, now time.Time) {
	switch {
	case p.good && r.Valid:
		v.cache.putGood(k, r, p.until, p.keys, p.src)
	case !p.good && p.until.After(now):
		v.cache.putBad(k, r, p.until, p.keys, p.src)
	}
}

// tokenHash is the cache key of raw. It hashes the string's bytes in place:
// []byte(raw) would copy the token to the heap on every request, the only
// allocation of a cache hit. Sum256 only reads its argument, so the bytes
// are never written through the slice.
func tokenHash(raw string) cacheKey {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}
