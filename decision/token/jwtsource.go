package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IssuerOptions configures the JWTs of one issuer.
type IssuerOptions struct {
	// Issuer is the expected iss. It selects this entry for a token whose
	// unverified payload names it, before any key is looked up. "" accepts
	// any iss (a token no other entry names), and checks none. With
	// neither JWKSFile nor JWKSURL, the JWKS is found through the issuer's
	// metadata (RFC 8414, then OpenID Connect Discovery).
	Issuer string
	// Audience is the resource URI a token's aud must name (RFC 8707).
	Audience string
	// JWKSFile or JWKSURL is where the signing keys are; at most one.
	JWKSFile, JWKSURL string
	// Discovery says the keys are found through the issuer's metadata,
	// as they are when neither JWKSFile nor JWKSURL is set; it cannot be
	// set with them.
	Discovery bool
	// Algorithms is the allowlist of JWS algorithms; default RS256, ES256.
	Algorithms []string
	// RequiredTyp, when set, is the media type typ must name (see
	// Options.RequiredTyp).
	RequiredTyp string
	// ClockSkew is the tolerance for exp, nbf and iat; default 30s.
	ClockSkew time.Duration
	// ClaimsMapping names the claims that hold this issuer's subject,
	// scopes and client id, when they are not the usual ones.
	ClaimsMapping ClaimsMapping
}

// ClaimsMapping names the claims that fill a verified JWT's subject,
// scopes and client id (input.token.subject, scopes and client_id), for an
// issuer whose tokens carry them elsewhere: {Subject: "client_id"} for
// machine tokens whose sub is a random id, {Scopes: "roles"} for an issuer
// that grants roles. "" keeps the usual claim. The claims themselves reach
// the policy unchanged either way.
type ClaimsMapping struct {
	// Subject is the claim holding the subject, a string; default "sub".
	Subject string
	// Scopes is the claim holding the scopes: a space-separated string or
	// an array of strings. Default "scope", else "scp".
	Scopes string
	// ClientID is the claim holding the client id, a string; default
	// "client_id", else "azp".
	ClientID string
}

// jwtIssuer verifies the JWTs of one issuer: its keys, its algorithms, its
// audience and its clock skew. It is one entry of a jwtSource.
type jwtIssuer struct {
	issuer      string // expected iss; "" checks none
	aud         audienceMatcher
	allowed     map[string]bool
	requiredTyp string // full media type (see fullTyp); "" when not checked
	skew        time.Duration
	parser      *jwt.Parser
	// src is the JWKS origin; static holds keys that never change (the
	// development key). Neither: every token has an unknown key.
	src    *keySource
	static *keySet
	claims ClaimsMapping

	malformed *Result
}

// newJWTIssuer builds the entry io describes, filling defaults into io.
// Its key source, if any, is not started.
func newJWTIssuer(io *IssuerOptions, parser *jwt.Parser) (*jwtIssuer, error) {
	j := &jwtIssuer{
		issuer:    io.Issuer,
		aud:       audienceMatcher{want: io.Audience},
		parser:    parser,
		claims:    io.ClaimsMapping,
		malformed: (&Result{Present: true, Error: ErrMalformed, Type: TypeJWT}).Finish(),
	}
	if io.JWKSFile != "" && io.JWKSURL != "" {
		return nil, errors.New("set JWKSFile or JWKSURL, not both")
	}
	if io.Discovery && (io.JWKSFile != "" || io.JWKSURL != "") {
		return nil, errors.New("Discovery finds the keys itself: set it without JWKSFile or JWKSURL")
	}
	if io.Discovery && io.Issuer == "" {
		return nil, errors.New("Discovery needs the Issuer whose metadata names the keys")
	}
	algs := io.Algorithms
	if len(algs) == 0 {
		algs = defaultAlgorithms
	}
	j.allowed = make(map[string]bool, len(algs))
	for _, a := range algs {
		if !supportedAlgorithms[a] {
			return nil, fmt.Errorf("algorithm %q cannot be allowed: only asymmetric JWS algorithms (RS*, PS*, ES*, EdDSA) are supported", a)
		}
		j.allowed[a] = true
	}
	if err := CheckRequiredTyp(io.RequiredTyp); err != nil {
		return nil, fmt.Errorf("RequiredTyp: %w", err)
	}
	if io.RequiredTyp != "" {
		j.requiredTyp = fullTyp(io.RequiredTyp)
	}
	if io.ClockSkew < 0 {
		return nil, errors.New("ClockSkew cannot be negative")
	}
	if io.ClockSkew == 0 {
		io.ClockSkew = DefaultClockSkew
	}
	j.skew = io.ClockSkew
	return j, nil
}

// hasKeys reports whether the entry can verify anything.
func (j *jwtIssuer) hasKeys() bool { return j.src != nil || j.static != nil }

// newKeySource returns the JWKS origin io names, or nil when there is none.
// The source is not loaded yet.
func (v *Verifier) newKeySource(baseCtx context.Context, io *IssuerOptions, opts *Options, client *http.Client) (*keySource, error) {
	src := &keySource{
		now:         v.now,
		minInterval: opts.MinRefreshInterval,
		logger:      v.logger,
		baseCtx:     baseCtx,
		wg:          &v.wg,
	}
	switch {
	case io.JWKSFile != "":
		src.name = io.JWKSFile
		src.fetch = fileFetcher(io.JWKSFile)
	case io.JWKSURL != "":
		if u, err := url.Parse(io.JWKSURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return nil, fmt.Errorf("JWKSURL %q is not an http(s) URL", io.JWKSURL)
		}
		src.name = io.JWKSURL
		src.fetch = urlFetcher(client, io.JWKSURL)
	case io.Issuer != "":
		if _, err := metadataURLs(io.Issuer); err != nil {
			return nil, fmt.Errorf("no JWKSFile or JWKSURL, and discovery is impossible: %w", err)
		}
		d := &discoveryFetcher{client: client, issuer: io.Issuer}
		src.name = "discovery of " + io.Issuer
		src.fetch = d.fetch
	default:
		return nil, nil
	}
	return src, nil
}

// Errors from the key function, mapped to reasons by classify.
var (
	errAlgNotAllowed = errors.New("algorithm not allowed")
	errUnknownKey    = errors.New("no key with this kid")
	errKeyMismatch   = errors.New("the key's type does not fit the algorithm")
	errNoKeys        = errors.New("no keys available yet")
	errBadHeader     = errors.New("malformed header")
)

// verify verifies a JWT that missed the cache, running the checks in the
// order that gives the most useful reason: structure, then algorithm, then
// key, then signature, and only for a verified token its claims (issuer,
// audience, then time). The policy says how long the outcome may be cached.
func (j *jwtIssuer) verify(ctx context.Context, raw string, now time.Time) (*Result, cachePolicy) {
	// Before jwt decodes the segments into maps, where a duplicate member
	// would silently lose to its twin.
	if err := checkSegments(j.parser, raw); err != nil {
		return j.malformed, cachePolicy{}
	}
	var keys *keySet
	tok, err := j.parser.Parse(raw, func(t *jwt.Token) (any, error) {
		return j.selectKey(ctx, t, &keys)
	})
	if err != nil {
		reason := j.classify(tok, err)
		var p cachePolicy
		switch reason {
		case ErrMalformed:
			return j.malformed, p
		case ErrUnknownKey:
			if j.src != nil {
				p = cachePolicy{until: j.src.nextAllowed(), keys: keys, src: j.src}
			}
		case ErrBadSignature, ErrAlgNotAllowed:
			p.until = now.Add(negativeTTL)
		}
		return (&Result{Present: true, Error: reason, Type: TypeJWT}).Finish(), p
	}
	claims, _ := tok.Claims.(jwt.MapClaims)
	reason, exp := j.checkClaims(claims, now)
	if reason != "" {
		var p cachePolicy
		if reason != ErrNotYetValid && reason != ErrMalformed {
			// Permanent for this token: cache so a retry loop is cheap.
			// not_yet_valid is left out as it will turn valid.
			p.until = now.Add(negativeTTL)
		}
		r := &Result{Present: true, Error: reason, Type: TypeJWT}
		if reason == ErrWrongAudience {
			r.Resource = j.aud.want
			r.Detail = WrongAudienceDetail(claims["aud"], j.aud.want, claims["iss"] == DevIssuer)
		}
		return r.Finish(), p
	}
	r := &Result{Present: true, Valid: true, Type: TypeJWT, Claims: claims, Expiry: exp, Issuer: j.issuer}
	fillMappedIdentity(r, claims, &j.claims)
	p := cachePolicy{good: true, until: exp.Add(j.skew)}
	if j.src != nil {
		p.keys, p.src = keys, j.src
	}
	return r.Finish(), p
}

// selectKey is the jwt key function: it checks the header (crit, typ),
// enforces the allowlist and finds the keys that may have signed t,
// refreshing the JWKS (rate-limited) when the kid is unknown. It records
// in *consulted the key set it looked in.
func (j *jwtIssuer) selectKey(ctx context.Context, t *jwt.Token, consulted **keySet) (any, error) {
	if err := j.checkHeader(t.Header); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadHeader, err)
	}
	// Only kid says which key to use. jku, x5u, jwk and x5c are never
	// read: a key, or a key's address, carried by the token itself would
	// let its signer choose the key that verifies it.
	alg := t.Method.Alg()
	if !j.allowed[alg] {
		return nil, errAlgNotAllowed
	}
	var kid string
	if k, ok := t.Header["kid"]; ok {
		if kid, ok = k.(string); !ok {
			return nil, errBadHeader
		}
	}
	set, err := j.keysFor(ctx, kid)
	*consulted = set
	if err != nil {
		return nil, err
	}
	cands, _ := set.lookup(kid)
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

// keysFor returns the key set holding kid, fetching the JWKS again (rate
// limited) when there is none yet or kid is not in it.
func (j *jwtIssuer) keysFor(ctx context.Context, kid string) (*keySet, error) {
	if j.static != nil {
		if _, found := j.static.lookup(kid); !found {
			return nil, errUnknownKey
		}
		return j.static, nil
	}
	if j.src == nil {
		return nil, errUnknownKey
	}
	set := j.src.current()
	if set == nil {
		j.src.refresh(ctx, "no keys yet")
		if set = j.src.current(); set == nil {
			return nil, errNoKeys
		}
	}
	if _, found := set.lookup(kid); !found {
		j.src.refresh(ctx, "unknown kid")
		set = j.src.current()
		if _, found = set.lookup(kid); !found {
			return set, errUnknownKey
		}
	}
	return set, nil
}

// classify maps a parse or signature error to a reason.
func (j *jwtIssuer) classify(tok *jwt.Token, err error) string {
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
		if alg, ok := tok.Header["alg"].(string); ok && alg != "" && !j.allowed[alg] {
			return ErrAlgNotAllowed
		}
	}
	return ErrMalformed
}

// checkClaims checks the claims of a verified token: issuer, then audience
// (both mean "not a token for us", which no refresh will fix), then exp,
// nbf and iat with the clock skew. exp is required: an access token without
// it would be valid (and cached) forever.
func (j *jwtIssuer) checkClaims(c map[string]any, now time.Time) (string, time.Time) {
	exp, hasExp, okExp := numericDate(c, "exp")
	nbf, hasNbf, okNbf := numericDate(c, "nbf")
	iat, hasIat, okIat := numericDate(c, "iat")
	if !okExp || !okNbf || !okIat || !hasExp {
		return ErrMalformed, time.Time{}
	}
	if j.issuer != "" {
		if iss, _ := c["iss"].(string); iss != j.issuer {
			return ErrWrongIssuer, time.Time{}
		}
	}
	if !j.aud.matches(c["aud"]) {
		return ErrWrongAudience, time.Time{}
	}
	switch {
	case !now.Before(exp.Add(j.skew)):
		return ErrExpired, time.Time{}
	case hasNbf && now.Add(j.skew).Before(nbf):
		return ErrNotYetValid, time.Time{}
	case hasIat && now.Add(j.skew).Before(iat):
		return ErrNotYetValid, time.Time{}
	}
	return "", exp
}

// jwtSource is the Source of JWTs: it owns every credential shaped as a
// JWS and hands it to the issuer entry its unverified iss names, before any
// key is looked up, so one issuer's keys never verify another's tokens.
type jwtSource struct {
	byIssuer map[string]*jwtIssuer
	// anyIssuer is the entry with no issuer, which takes a token no
	// other entry names; nil when every entry names its issuer.
	anyIssuer *jwtIssuer
	// only is the one entry when there is exactly one: it takes every
	// JWT without reading its payload first, and reports a foreign iss
	// after the signature, as a single-issuer Verifier always has.
	only        *jwtIssuer
	parser      *jwt.Parser
	now         func() time.Time
	wrongIssuer *Result
	malformed   *Result
}

func newJWTSource(entries []*jwtIssuer, parser *jwt.Parser, now func() time.Time) (*jwtSource, error) {
	s := &jwtSource{
		byIssuer:    make(map[string]*jwtIssuer, len(entries)),
		parser:      parser,
		now:         now,
		wrongIssuer: (&Result{Present: true, Error: ErrWrongIssuer, Type: TypeJWT}).Finish(),
		malformed:   (&Result{Present: true, Error: ErrMalformed, Type: TypeJWT}).Finish(),
	}
	for _, j := range entries {
		if j.issuer == "" {
			if s.anyIssuer != nil {
				return nil, errors.New("more than one JWT issuer entry without an issuer")
			}
			s.anyIssuer = j
			continue
		}
		if _, dup := s.byIssuer[j.issuer]; dup {
			return nil, fmt.Errorf("issuer %q is configured twice", j.issuer)
		}
		s.byIssuer[j.issuer] = j
	}
	if len(entries) == 1 {
		s.only = entries[0]
	}
	return s, nil
}

// entries returns every issuer entry, for Close.
func (s *jwtSource) entries() []*jwtIssuer {
	out := make([]*jwtIssuer, 0, len(s.byIssuer)+1)
	for _, j := range s.byIssuer {
		out = append(out, j)
	}
	if s.anyIssuer != nil {
		out = append(out, s.anyIssuer)
	}
	return out
}

func (*jwtSource) Name() string { return TypeJWT }

// Owns reports whether raw is shaped as a JWS compact serialization.
func (*jwtSource) Owns(raw string) bool { return looksLikeJWS(raw) }

// Verify verifies a JWT without the Verifier's cache.
func (s *jwtSource) Verify(ctx context.Context, raw string, _ *APIKeys) *Result {
	r, _ := s.verifyCacheable(ctx, raw, s.now())
	return r
}

func (s *jwtSource) verifyCacheable(ctx context.Context, raw string, now time.Time) (*Result, cachePolicy) {
	j, reason := s.route(raw)
	switch reason {
	case ErrMalformed:
		return s.malformed, cachePolicy{}
	case ErrWrongIssuer:
		// No key was consulted: the answer holds whatever the JWKS does.
		return s.wrongIssuer, cachePolicy{until: now.Add(negativeTTL)}
	}
	return j.verify(ctx, raw, now)
}

// route picks the entry for raw, or says why there is none.
func (s *jwtSource) route(raw string) (*jwtIssuer, string) {
	if s.only != nil {
		return s.only, ""
	}
	iss, ok := unverifiedIssuer(s.parser, raw)
	if !ok {
		return nil, ErrMalformed
	}
	if j, ok := s.byIssuer[iss]; ok {
		return j, ""
	}
	if s.anyIssuer != nil {
		return s.anyIssuer, ""
	}
	return nil, ErrWrongIssuer
}

// unverifiedIssuer reads iss from the payload of raw, a JWS, before its
// signature is checked: it only chooses whose keys verify the token, and
// the entry chosen checks iss again on the verified claims. ok is false
// when the payload is not a JSON object; an iss that is absent or not a
// string reads as "". Member names match exactly: "ISS" is not iss.
func unverifiedIssuer(parser *jwt.Parser, raw string) (iss string, ok bool) {
	_, rest, _ := strings.Cut(raw, ".")
	payload, _, _ := strings.Cut(rest, ".")
	data, err := parser.DecodeSegment(payload)
	if err != nil {
		return "", false
	}
	var members map[string]json.RawMessage
	if json.Unmarshal(data, &members) != nil || members == nil {
		return "", false
	}
	if v, found := members["iss"]; found {
		_ = json.Unmarshal(v, &iss) // not a string: no issuer
	}
	return iss, true
}
