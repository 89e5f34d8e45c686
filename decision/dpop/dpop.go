// Package dpop checks DPoP proofs (RFC 9449): the JWT a client signs with
// its own key for each request, which makes a DPoP-bound access token
// (cnf.jkt) useless to anyone without that key. Checker.Check makes every
// check of RFC 9449 §4.3 and uses each proof's jti once within the window
// in which it is accepted, through a store that replicas can share
// (decision/state). It knows nothing of transports: the engine gives it
// the proof, the request's method and URI, the access token and the
// token's jkt.
package dpop

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// Defaults of Options.
const (
	DefaultMaxAge = 5 * time.Minute
	DefaultSkew   = 30 * time.Second
	// MaxProofBytes bounds a proof: an honest one is well under 2 KiB
	// (an RSA-4096 key in the header is the largest part).
	MaxProofBytes = 8 << 10
	// minRSABits is the smallest RSA key accepted for a proof.
	minRSABits = 2048
)

// DefaultAlgorithms are the proof algorithms accepted when
// tokens.dpop.algorithms is not set: asymmetric only, as RFC 9449 §4.2
// requires.
var DefaultAlgorithms = []string{"ES256", "PS256", "EdDSA", "RS256"}

// DefaultAlgorithmsString is DefaultAlgorithms as a challenge's algs
// parameter says them.
const DefaultAlgorithmsString = "ES256 PS256 EdDSA RS256"

// asymmetric are the JWS algorithms a proof may use at all.
var asymmetric = []string{"ES256", "ES384", "ES512", "PS256", "PS384", "PS512", "RS256", "RS384", "RS512", "EdDSA"}

// Onceer is the one operation of the shared state Check needs;
// state.Store is one.
type Onceer interface {
	// Once reports whether this is the first call with key within ttl,
	// across every replica sharing the store.
	Once(ctx context.Context, key string, ttl time.Duration) (bool, error)
}

// Options configure a Checker (tokens.dpop).
type Options struct {
	// Algorithms are the accepted proof algorithms; default
	// DefaultAlgorithms. Each must be asymmetric.
	Algorithms []string
	// MaxAge is how old a proof's iat may be; default DefaultMaxAge.
	MaxAge time.Duration
	// Skew is how far in the future a proof's iat may be, and how much
	// older than MaxAge; default DefaultSkew.
	Skew time.Duration
	// HTU, when set, is the URI every proof must name (the public URL of
	// the MCP endpoint) instead of the one built from the request.
	HTU string
	// Replay remembers used jtis. Required.
	Replay Onceer
	// Now is the clock; default time.Now.
	Now func() time.Time
	// Nonces, when set, makes every proof carry a nonce it issued
	// (RFC 9449 §8, tokens.dpop.nonce): a proof without one, or with a
	// stale or forged one, is refused with a UseNonce Error.
	Nonces *Nonces
}

// Checker checks DPoP proofs. It is safe for concurrent use.
type Checker struct {
	algs    []jose.SignatureAlgorithm
	names   []string
	maxAge  time.Duration
	skew    time.Duration
	htu     string // normalised; "" when the request's URI is used
	replay  Onceer
	now     func() time.Time
	algList string
	nonces  *Nonces
}

// New returns a Checker for opts.
func New(opts Options) (*Checker, error) {
	if opts.Replay == nil {
		return nil, errors.New("dpop: Options.Replay is required: proofs must be used once")
	}
	c := &Checker{maxAge: opts.MaxAge, skew: opts.Skew, replay: opts.Replay, now: opts.Now, nonces: opts.Nonces}
	if c.maxAge <= 0 {
		c.maxAge = DefaultMaxAge
	}
	if c.skew <= 0 {
		c.skew = DefaultSkew
	}
	if c.now == nil {
		c.now = time.Now
	}
	names := opts.Algorithms
	if len(names) == 0 {
		names = DefaultAlgorithms
	}
	for _, n := range names {
		if !slices.Contains(asymmetric, n) {
			return nil, fmt.Errorf("dpop: algorithm %q is not an asymmetric JWS algorithm; use some of %s", n, strings.Join(asymmetric, ", "))
		}
		if !slices.Contains(c.names, n) {
			c.names = append(c.names, n)
			c.algs = append(c.algs, jose.SignatureAlgorithm(n))
		}
	}
	c.algList = strings.Join(c.names, " ")
	if opts.HTU != "" {
		htu, err := NormalizeURI(opts.HTU)
		if err != nil {
			return nil, fmt.Errorf("dpop: htu %q: %w", opts.HTU, err)
		}
		c.htu = htu
	}
	return c, nil
}

// Algorithms returns the accepted algorithms, space-separated, as the
// algs parameter of a DPoP challenge says them.
func (c *Checker) Algorithms() string { return c.algList }

// AlgorithmList returns the accepted algorithms (the metadata's
// dpop_signing_alg_values_supported). The caller must not change it.
func (c *Checker) AlgorithmList() []string { return c.names }

// Request is what one proof is checked against.
type Request struct {
	// Proof is the DPoP header's value.
	Proof string
	// Method is the HTTP method.
	Method string
	// URI is the request's URI as the client sent it:
	// scheme://authority/path, query allowed (it is not compared). Not
	// read when Options.HTU is set.
	URI string
	// AccessToken is the access token the proof goes with (ath).
	AccessToken string
	// JKT is the token's cnf.jkt: the thumbprint the proof's key must have.
	JKT string
}

// Error is a proof that is refused: invalid_dpop_proof. Reason is
// public (the challenge's error_description): it says what is wrong in
// general terms and never quotes the proof.
type Error struct {
	Reason string
	// Nonce, when not "", is a fresh server nonce: the proof lacked a
	// valid one, and the answer is use_dpop_nonce with this nonce in the
	// DPoP-Nonce header (RFC 9449 §8).
	Nonce string
}

func (e *Error) Error() string { return "invalid DPoP proof: " + e.Reason }

// StoreError is a proof that could not be checked because the replay
// store failed: the request is refused, as unavailable (fail closed).
type StoreError struct{ Err error }

func (e *StoreError) Error() string {
	return "dpop: the replay store failed, the proof's jti could not be recorded: " + e.Err.Error()
}

func (e *StoreError) Unwrap() error { return e.Err }

func refuse(format string, args ...any) *Error { return &Error{Reason: fmt.Sprintf(format, args...)} }

// Proof is a parsed proof whose signature verified with its own key.
type Proof struct {
	// Thumbprint is the RFC 7638 SHA-256 thumbprint of the proof's key,
	// base64url without padding.
	Thumbprint string
	JTI        string
	HTM        string
	HTU        string
	IAT        int64
	ATH        string // "" when the proof has none
	Nonce      string // "" when the proof has none
}

// Check checks r's proof: every check of RFC 9449 §4.3, then records its
// jti. It returns nil, an *Error, or a *StoreError.
func (c *Checker) Check(ctx context.Context, r *Request) error {
	if r.Proof == "" {
		return refuse("the request has no DPoP proof: a DPoP-bound token needs one in the DPoP header")
	}
	p, err := c.Parse(r.Proof)
	if err != nil {
		return err
	}
	if p.HTM != r.Method {
		return refuse("the proof's htm is not the request's method")
	}
	want := c.htu
	if want == "" {
		want, err = NormalizeURI(r.URI)
		if err != nil {
			return refuse("the request's URI cannot be known, so no proof can match it (set tokens.dpop.htu)")
		}
	}
	if got, err := NormalizeURI(p.HTU); err != nil || got != want {
		return refuse("the proof's htu is not the request's URI")
	}
	now := c.now()
	iat := time.Unix(p.IAT, 0)
	if iat.After(now.Add(c.skew)) {
		return refuse("the proof's iat is in the future")
	}
	if iat.Before(now.Add(-c.maxAge - c.skew)) {
		return refuse("the proof is too old (iat)")
	}
	if p.ATH == "" {
		return refuse("the proof has no ath claim")
	}
	sum := sha256.Sum256([]byte(r.AccessToken))
	var ath [43]byte
	base64.RawURLEncoding.Encode(ath[:], sum[:])
	if subtle.ConstantTimeCompare(ath[:], []byte(p.ATH)) != 1 {
		return refuse("the proof's ath is not the hash of the access token")
	}
	if r.JKT == "" || subtle.ConstantTimeCompare([]byte(p.Thumbprint), []byte(r.JKT)) != 1 {
		return refuse("the proof's key is not the key the access token is bound to (cnf.jkt)")
	}
	if c.nonces != nil && !c.nonces.Valid(p.Nonce, now) {
		reason := "the proof has no nonce: sign a new proof with the nonce in the DPoP-Nonce header"
		if p.Nonce != "" {
			reason = "the proof's nonce is stale or was not issued here: sign a new proof with the nonce in the DPoP-Nonce header"
		}
		return &Error{Reason: reason, Nonce: c.nonces.Issue(now)}
	}
	// Last: a proof that fails a check above never uses up its jti. The
	// key holds the thumbprint so that one client's jtis cannot collide
	// with another's; the store hashes what it is given.
	first, err := c.replay.Once(ctx, "dpop:"+p.Thumbprint+":"+p.JTI, c.maxAge+2*c.skew)
	if err != nil {
		return &StoreError{Err: err}
	}
	if !first {
		return refuse("the proof was used before (jti)")
	}
	return nil
}

// privateMembers are the JWK members that only a private or symmetric key
// has (RFC 7518 §6.2.2, §6.3.2, §6.4; RFC 8037 §2).
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "oth", "k"}

// Parse reads a proof and verifies its signature with the key in its
// header. It checks the form of the proof (RFC 9449 §4.3 items 2 to 7,
// and that the claims are there with their types), not what it says about
// the request. Its header and claims are read with the one-reading rules
// of decision/mcp: a member sent twice, or two names equal under case
// folding, refuse it.
func (c *Checker) Parse(proof string) (*Proof, error) {
	if len(proof) > MaxProofBytes {
		return nil, refuse("the proof is larger than %d bytes", MaxProofBytes)
	}
	if strings.IndexByte(proof, ',') >= 0 {
		return nil, refuse("more than one DPoP proof: send exactly one DPoP header")
	}
	hseg, rest, ok1 := strings.Cut(proof, ".")
	pseg, sseg, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 || strings.IndexByte(sseg, '.') >= 0 || sseg == "" {
		return nil, refuse("the proof is not a JWS in compact serialization")
	}
	header, err := readObject(hseg)
	if err != nil {
		return nil, refuse("the proof's header: %v", err)
	}
	claims, err := readObject(pseg)
	if err != nil {
		return nil, refuse("the proof's claims: %v", err)
	}
	if typ, _ := stringMember(header, "typ"); typ != "dpop+jwt" {
		return nil, refuse("the proof's typ is not dpop+jwt")
	}
	alg, _ := stringMember(header, "alg")
	if !slices.Contains(c.names, alg) {
		return nil, refuse("the proof's alg is not one of %s", c.algList)
	}
	if header.Get(ast.InternedTerm("crit")) != nil {
		return nil, refuse("the proof has a crit header: no extension is understood")
	}
	jwkTerm := header.Get(ast.InternedTerm("jwk"))
	if jwkTerm == nil {
		return nil, refuse("the proof's header has no jwk")
	}
	jwkObj, ok := jwkTerm.Value.(ast.Object)
	if !ok {
		return nil, refuse("the proof's jwk is not a JSON object")
	}
	for _, m := range privateMembers {
		if jwkObj.Get(ast.StringTerm(m)) != nil {
			return nil, refuse("the proof's jwk holds a private or symmetric key (%s): send the public key only", m)
		}
	}
	jws, err := jose.ParseSignedCompact(proof, c.algs)
	if err != nil || len(jws.Signatures) != 1 {
		return nil, refuse("the proof is not a well-formed JWS")
	}
	key := jws.Signatures[0].Protected.JSONWebKey
	if key == nil || !key.IsPublic() || !key.Valid() {
		return nil, refuse("the proof's jwk is not a valid public key")
	}
	if rk, ok := key.Key.(*rsa.PublicKey); ok && rk.N.BitLen() < minRSABits {
		return nil, refuse("the proof's RSA key is shorter than %d bits", minRSABits)
	}
	if _, err := jws.Verify(key); err != nil {
		return nil, refuse("the proof's signature does not verify with its jwk")
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, refuse("the proof's jwk has no thumbprint")
	}
	p := &Proof{Thumbprint: base64.RawURLEncoding.EncodeToString(tp)}
	var missing string
	for _, m := range [...]struct {
		name string
		to   *string
	}{{"jti", &p.JTI}, {"htm", &p.HTM}, {"htu", &p.HTU}} {
		v, ok := stringMember(claims, m.name)
		if !ok || v == "" {
			missing = m.name
			break
		}
		*m.to = v
	}
	if missing != "" {
		return nil, refuse("the proof has no %s claim (a non-empty string)", missing)
	}
	if len(p.JTI) > 256 {
		return nil, refuse("the proof's jti is longer than 256 characters")
	}
	iat, ok := intMember(claims, "iat")
	if !ok {
		return nil, refuse("the proof has no iat claim (a whole number of seconds)")
	}
	p.IAT = iat
	if t := claims.Get(ast.InternedTerm("ath")); t != nil {
		s, ok := t.Value.(ast.String)
		if !ok {
			return nil, refuse("the proof's ath is not a string")
		}
		p.ATH = string(s)
	}
	if t := claims.Get(ast.InternedTerm("nonce")); t != nil {
		s, ok := t.Value.(ast.String)
		if !ok {
			return nil, refuse("the proof's nonce is not a string")
		}
		p.Nonce = string(s)
	}
	return p, nil
}

// readObject decodes one base64url segment (no padding) and reads it as
// one JSON object with mcp.ReadJSON.
func readObject(seg string) (ast.Object, error) {
	data, err := base64.RawURLEncoding.Strict().DecodeString(seg)
	if err != nil {
		return nil, errors.New("not base64url without padding")
	}
	v, err := mcp.ReadJSON(data)
	if err != nil {
		return nil, err
	}
	obj, ok := v.(ast.Object)
	if !ok {
		return nil, errors.New("not a JSON object")
	}
	return obj, nil
}

func stringMember(obj ast.Object, name string) (string, bool) {
	t := obj.Get(ast.StringTerm(name))
	if t == nil {
		return "", false
	}
	s, ok := t.Value.(ast.String)
	return string(s), ok
}

func intMember(obj ast.Object, name string) (int64, bool) {
	t := obj.Get(ast.StringTerm(name))
	if t == nil {
		return 0, false
	}
	n, ok := t.Value.(ast.Number)
	if !ok {
		return 0, false
	}
	return n.Int64()
}

// Thumbprint returns base64url(SHA-256(s)) without padding: ath of an
// access token, x5t#S256 of a DER certificate.
func Thumbprint(b []byte) string {
	sum := sha256.Sum256(b)
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
