package token

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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
	// HTTPClient fetches JWKS and metadata; default a client with a 10s
	// timeout.
	HTTPClient *http.Client
	// Logger receives warnings (failed refreshes, Dev mode); default discards.
	Logger *slog.Logger
	// Now is the clock, for tests; default time.Now.
	Now func() time.Time
}

// Verifier verifies bearer credentials. It is safe for concurrent use.
type Verifier struct {
	issuer       string
	aud          audienceMatcher
	allowed      map[string]bool
	requiredTyp  string // full media type (see fullTyp); "" when not checked
	skew         time.Duration
	logger       *slog.Logger
	now          func() time.Time
	parser       *jwt.Parser
	src          *keySource // nil without a JWKS origin
	dev          *devKey    // nil unless Options.Dev
	introspector *Introspector
	cache        *resultCache // nil when off

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once

	missing, malformed, malformedJWT, expired *Result
}

// New builds a Verifier. A JWKS file that cannot be read or parsed is an
// error. A JWKS URL (or discovery) that is down is not: the Verifier logs,
// keeps retrying in the background, and JWTs verify as ErrUnavailable
// until keys arrive. Close releases the background work.
func New(ctx context.Context, opts Options) (*Verifier, error) {
	v := &Verifier{
		issuer: opts.Issuer,
		aud:    audienceMatcher{want: opts.Audience},
		skew:   opts.ClockSkew,
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
	if opts.Introspection != nil {
		intro := *opts.Introspection
		if intro.Now == nil {
			intro.Now = v.now // one clock for every kind of token
		}
		v.introspector = NewIntrospector(intro, client, v.logger)
	}
	if opts.Dev {
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
		v.dev = dk
		v.logger.Warn("DEVELOPMENT MODE: tokens signed by the local development key are accepted; never run this in production",
			"issuer", DevIssuer, "key", path, "kid", dk.kid)
	}

	baseCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	v.cancel = cancel
	src, err := v.newKeySource(baseCtx, &opts, client)
	if err != nil {
		cancel()
		return nil, err
	}
	v.src = src
	if (v.src != nil || v.dev != nil) && opts.Audience == "" {
		cancel()
		return nil, errors.New("verifying JWTs needs Options.Audience, the resource URI of this server")
	}
	if v.src != nil {
		if opts.JWKSFile != "" {
			// A bad key file is a configuration mistake: report it now.
			v.src.markAttempt()
			if err := v.src.load("start"); err != nil {
				cancel()
				return nil, fmt.Errorf("loading JWKS file %s: %w", opts.JWKSFile, err)
			}
		} else {
			v.src.refresh(ctx, "start")
		}
		v.wg.Add(1)
		go v.src.loop(baseCtx, opts.RefreshInterval)
	}
	return v, nil
}

// configure validates opts, fills defaults into it and sets the fixed
// parts of v.
func (v *Verifier) configure(opts *Options) error {
	if opts.JWKSFile != "" && opts.JWKSURL != "" {
		return errors.New("set JWKSFile or JWKSURL, not both")
	}
	algs := opts.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgorithms
	}
	v.allowed = make(map[string]bool, len(algs))
	for _, a := range algs {
		if !supportedAlgorithms[a] {
			return fmt.Errorf("algorithm %q cannot be allowed: only asymmetric JWS algorithms (RS*, PS*, ES*, EdDSA) are supported", a)
		}
		v.allowed[a] = true
	}
	if err := CheckRequiredTyp(opts.RequiredTyp); err != nil {
		return fmt.Errorf("RequiredTyp: %w", err)
	}
	if opts.RequiredTyp != "" {
		v.requiredTyp = fullTyp(opts.RequiredTyp)
	}
	if opts.ClockSkew < 0 || opts.RefreshInterval < 0 || opts.MinRefreshInterval < 0 {
		return errors.New("ClockSkew, RefreshInterval and MinRefreshInterval cannot be negative")
	}
	if opts.ClockSkew == 0 {
		opts.ClockSkew = DefaultClockSkew
	}
	v.skew = opts.ClockSkew
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
	v.malformedJWT = (&Result{Present: true, Error: ErrMalformed, Type: TypeJWT}).Finish()
	v.expired = (&Result{Present: true, Error: ErrExpired, Type: TypeJWT}).Finish()
	return nil
}

// newKeySource returns the JWKS origin opts name, or nil when there is none.
func (v *Verifier) newKeySource(baseCtx context.Context, opts *Options, client *http.Client) (*keySource, error) {
	src := &keySource{
		now:         v.now,
		minInterval: opts.MinRefreshInterval,
		logger:      v.logger,
		baseCtx:     baseCtx,
		wg:          &v.wg,
	}
	switch {
	case opts.JWKSFile != "":
		src.name = opts.JWKSFile
		src.fetch = fileFetcher(opts.JWKSFile)
	case opts.JWKSURL != "":
		if u, err := url.Parse(opts.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("JWKSURL %q is not an http(s) URL", opts.JWKSURL)
		}
		src.name = opts.JWKSURL
		src.fetch = urlFetcher(client, opts.JWKSURL)
	case opts.Issuer != "":
		if _, err := metadataURLs(opts.Issuer); err != nil {
			return nil, fmt.Errorf("no JWKSFile or JWKSURL, and discovery is impossible: %w", err)
		}
		d := &discoveryFetcher{client: client, issuer: opts.Issuer}
		src.name = "discovery of " + opts.Issuer
		src.fetch = d.fetch
	default:
		return nil, nil
	}
	return src, nil
}

// Close stops the background refresh and waits for it. The Verifier must
// not be used afterwards.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		v.cancel()
		if v.src != nil {
			v.src.close()
		}
		v.wg.Wait()
	})
}

// Verify checks one credential as it came from the Authorization header
// (see BearerToken) and returns its finished Result. keys verifies API keys
// (those starting with APIKeyPrefix); nil means API keys are not accepted.
// A JWS compact serialization goes through JWT verification, anything else
// to introspection when it is configured, else it is malformed.
func (v *Verifier) Verify(ctx context.Context, raw string, keys *APIKeys) *Result {
	switch {
	case raw == "":
		return v.missing
	case strings.HasPrefix(raw, APIKeyPrefix):
		if keys == nil {
			return (&Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}).Finish()
		}
		return keys.Verify(raw, v.now())
	}
	now := v.now()
	var k cacheKey
	if v.cache != nil && strings.Count(raw, ".") == 2 {
		// The cache holds only tokens that took the JWT path, so a hit
		// needs no shape check: the same bytes had passed it.
		k = tokenHash(raw)
		if r, ok := v.cachedJWT(k, now); ok {
			return r
		}
	}
	switch {
	case looksLikeJWS(raw):
		return v.verifyJWT(ctx, raw, now, k)
	case v.introspector != nil:
		return v.introspector.Verify(ctx, raw, v.aud.want)
	default:
		return v.malformed
	}
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

// cachedJWT returns the cached Result of the JWT with hash k, if any. A
// verified token whose deadline has passed is expired, and cached as such.
func (v *Verifier) cachedJWT(k cacheKey, now time.Time) (*Result, bool) {
	var current *keySet
	if v.src != nil {
		current = v.src.current()
	}
	r, state := v.cache.get(k, now, current)
	switch state {
	case cacheHit:
		return r, true
	case cacheExpired:
		v.cache.putBad(k, v.expired, now.Add(negativeTTL), nil)
		return v.expired, true
	}
	return nil, false
}

// verifyJWT verifies a JWT that missed the cache, and caches the outcome
// under k.
func (v *Verifier) verifyJWT(ctx context.Context, raw string, now time.Time, k cacheKey) *Result {
	r, p := v.verifyJWTUncached(ctx, raw, now)
	if v.cache == nil {
		return r
	}
	switch {
	case r.Valid:
		v.cache.putGood(k, r, r.Expiry.Add(v.skew), p.keys)
	case p.cacheUntil.After(now):
		v.cache.putBad(k, r, p.cacheUntil, p.keys)
	}
	return r
}

// tokenHash is the cache key of raw. It hashes the string's bytes in place:
// []byte(raw) would copy the token to the heap on every request, the only
// allocation of a cache hit. Sum256 only reads its argument, so the bytes
// are never written through the slice.
func tokenHash(raw string) cacheKey {
	return sha256.Sum256(unsafe.Slice(unsafe.StringData(raw), len(raw)))
}

// cachePolicy says whether and how long a failure may be cached.
type cachePolicy struct {
	cacheUntil time.Time // zero: do not cache
	keys       *keySet
}

// Errors from the key function, mapped to reasons by classify.
var (
	errAlgNotAllowed = errors.New("algorithm not allowed")
	errUnknownKey    = errors.New("no key with this kid")
	errKeyMismatch   = errors.New("the key's type does not fit the algorithm")
	errNoKeys        = errors.New("no keys available yet")
	errBadHeader     = errors.New("malformed header")
)

// keyChoice records what the key function decided, for the claim checks.
type keyChoice struct {
	issuer string  // expected iss, "" to skip the check
	keys   *keySet // the JWKS consulted; nil for the development key
}

// verifyJWTUncached runs the checks in the order that gives the most useful
// reason: structure, then algorithm, then key, then signature, and only for
// a verified token its claims (issuer, audience, then time).
func (v *Verifier) verifyJWTUncached(ctx context.Context, raw string, now time.Time) (*Result, cachePolicy) {
	// Before jwt decodes the segments into maps, where a duplicate member
	// would silently lose to its twin.
	if err := v.checkSegments(raw); err != nil {
		return v.malformedJWT, cachePolicy{}
	}
	var choice keyChoice
	tok, err := v.parser.Parse(raw, func(t *jwt.Token) (any, error) {
		return v.selectKey(ctx, t, &choice)
	})
	if err != nil {
		reason := v.classify(tok, err)
		var p cachePolicy
		switch reason {
		case ErrMalformed:
			return v.malformedJWT, p
		case ErrUnknownKey:
			if v.src != nil {
				p = cachePolicy{cacheUntil: v.src.nextAllowed(), keys: choice.keys}
			}
		case ErrBadSignature, ErrAlgNotAllowed:
			p.cacheUntil = now.Add(negativeTTL)
		}
		return (&Result{Present: true, Error: reason, Type: TypeJWT}).Finish(), p
	}
	claims, _ := tok.Claims.(jwt.MapClaims)
	reason, exp := v.checkClaims(claims, now, choice.issuer)
	if reason != "" {
		var p cachePolicy
		if reason != ErrNotYetValid && reason != ErrMalformed {
			// Permanent for this token: cache so a retry loop is cheap.
			// not_yet_valid is left out as it will turn valid.
			p.cacheUntil = now.Add(negativeTTL)
		}
		return (&Result{Present: true, Error: reason, Type: TypeJWT}).Finish(), p
	}
	r := &Result{Present: true, Valid: true, Type: TypeJWT, Claims: claims, Expiry: exp}
	fillIdentity(r, claims)
	return r.Finish(), cachePolicy{keys: choice.keys}
}

// selectKey is the jwt key function: it checks the header (crit, typ),
// enforces the allowlist and finds the keys that may have signed t,
// refreshing the JWKS (rate-limited) when the kid is unknown.
func (v *Verifier) selectKey(ctx context.Context, t *jwt.Token, choice *keyChoice) (any, error) {
	if err := v.checkHeader(t.Header); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadHeader, err)
	}
	// Only kid says which key to use. jku, x5u, jwk and x5c are never
	// read: a key, or a key's address, carried by the token itself would
	// let its signer choose the key that verifies it.
	alg := t.Method.Alg()
	if !v.allowed[alg] {
		return nil, errAlgNotAllowed
	}
	var kid string
	if k, ok := t.Header["kid"]; ok {
		if kid, ok = k.(string); !ok {
			return nil, errBadHeader
		}
	}
	if v.dev != nil && kid == v.dev.kid {
		choice.issuer = DevIssuer
		if alg != "RS256" {
			return nil, errKeyMismatch
		}
		return &v.dev.priv.PublicKey, nil
	}
	if v.src == nil {
		return nil, errUnknownKey
	}
	set := v.src.current()
	if set == nil {
		v.src.refresh(ctx, "no keys yet")
		if set = v.src.current(); set == nil {
			return nil, errNoKeys
		}
	}
	cands, found := set.lookup(kid)
	if !found {
		v.src.refresh(ctx, "unknown kid")
		set = v.src.current()
		if cands, found = set.lookup(kid); !found {
			choice.keys = set
			return nil, errUnknownKey
		}
	}
	choice.issuer = v.issuer
	choice.keys = set
	var fit jwt.VerificationKeySet
	for _, k := range cands {
		if keyFits(k, alg) {
			fit.Keys = append(fit.Keys, k.pub)
		}
	}
	switch len(fit.Keys) {
	case 0:
		return nil, errKeyMismatch
	case 1:
		return fit.Keys[0], nil
	}
	return fit, nil
}

// classify maps a parse or signature error to a reason.
func (v *Verifier) classify(tok *jwt.Token, err error) string {
	switch {
	case errors.Is(err, errAlgNotAllowed):
		return ErrAlgNotAllowed
	case errors.Is(err, errUnknownKey):
		return ErrUnknownKey
	case errors.Is(err, errNoKeys):
		return ErrUnavailable
	case errors.Is(err, errKeyMismatch):
		return ErrBadSignature
	case errors.Is(err, errBadHeader):
		return ErrMalformed
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return ErrBadSignature
	}
	// jwt refuses an alg it does not know before calling the key function:
	// that is still a disallowed algorithm, not a malformed token.
	if tok != nil && tok.Header != nil {
		if alg, ok := tok.Header["alg"].(string); ok && alg != "" && !v.allowed[alg] {
			return ErrAlgNotAllowed
		}
	}
	return ErrMalformed
}

// checkClaims checks the claims of a verified token: issuer, then audience
// (both mean "not a token for us", which no refresh will fix), then exp,
// nbf and iat with the clock skew. exp is required: an access token without
// it would be valid (and cached) forever.
func (v *Verifier) checkClaims(c map[string]any, now time.Time, issuer string) (string, time.Time) {
	exp, hasExp, okExp := numericDate(c, "exp")
	nbf, hasNbf, okNbf := numericDate(c, "nbf")
	iat, hasIat, okIat := numericDate(c, "iat")
	if !okExp || !okNbf || !okIat || !hasExp {
		return ErrMalformed, time.Time{}
	}
	if issuer != "" {
		if iss, _ := c["iss"].(string); iss != issuer {
			return ErrWrongIssuer, time.Time{}
		}
	}
	if !v.aud.matches(c["aud"]) {
		return ErrWrongAudience, time.Time{}
	}
	switch {
	case !now.Before(exp.Add(v.skew)):
		return ErrExpired, time.Time{}
	case hasNbf && now.Add(v.skew).Before(nbf):
		return ErrNotYetValid, time.Time{}
	case hasIat && now.Add(v.skew).Before(iat):
		return ErrNotYetValid, time.Time{}
	}
	return "", exp
}
