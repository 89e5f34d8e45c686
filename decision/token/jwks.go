package token

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// minRSABits is the smallest RSA modulus a published key may have; smaller
// keys are skipped when the set is loaded (RFC 7518 §3.3 requires 2048).
const minRSABits = 2048

// fetchTimeout bounds one JWKS (or discovery) fetch, whatever the HTTP
// client's own timeout.
const fetchTimeout = 10 * time.Second

// verificationKey is one public key usable for signatures.
type verificationKey struct {
	kid string
	alg string // the JWK's "alg", "" when it names none
	pub crypto.PublicKey
}

// keySet is an immutable, parsed JWKS. The Verifier holds the current one
// behind an atomic pointer; a refresh swaps in a new value, so a pointer
// comparison tells whether the set changed.
type keySet struct {
	byKID map[string][]verificationKey
	all   []verificationKey
}

// lookup returns the keys a token with the given kid may have been signed
// with. A token without kid may have been signed with any key.
func (s *keySet) lookup(kid string) ([]verificationKey, bool) {
	if kid == "" {
		return s.all, len(s.all) > 0
	}
	k, ok := s.byKID[kid]
	return k, ok
}

// parseJWKS parses a JWK Set (RFC 7517 §5). Each key is parsed on its own
// with go-jose, so one key of a type we do not know (a new curve, an
// encryption key) does not take the whole set down: it is skipped with a
// log line. Symmetric keys are always skipped: a public JWKS holding an
// "oct" key is a misconfiguration, and HMAC with a published secret would
// let anyone mint tokens. The set must hold at least one usable key.
func parseJWKS(data []byte, logger *slog.Logger) (*keySet, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parsing JWKS: %w", err)
	}
	if doc.Keys == nil {
		return nil, errors.New("parsing JWKS: no \"keys\" array")
	}
	var set jose.JSONWebKeySet
	for i, raw := range doc.Keys {
		var k jose.JSONWebKey
		if err := json.Unmarshal(raw, &k); err != nil {
			logger.Warn("skipping a JWKS key that cannot be parsed", "index", i, "error", err)
			continue
		}
		set.Keys = append(set.Keys, k)
	}
	ks := &keySet{byKID: make(map[string][]verificationKey, len(set.Keys))}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue // an encryption key
		}
		pub, err := publicKeyOf(k)
		if err != nil {
			logger.Warn("skipping a JWKS key", "kid", k.KeyID, "error", err)
			continue
		}
		vk := verificationKey{kid: k.KeyID, alg: k.Algorithm, pub: pub}
		ks.all = append(ks.all, vk)
		ks.byKID[k.KeyID] = append(ks.byKID[k.KeyID], vk)
	}
	if len(ks.all) == 0 {
		return nil, fmt.Errorf("parsing JWKS: none of its %d keys is a usable public signing key", len(doc.Keys))
	}
	return ks, nil
}

// publicKeyOf returns the public half of an asymmetric JWK, refusing
// symmetric keys, weak RSA keys and unknown curves.
func publicKeyOf(k jose.JSONWebKey) (crypto.PublicKey, error) {
	switch key := k.Key.(type) {
	case *rsa.PrivateKey:
		return publicKeyOf(jose.JSONWebKey{Key: &key.PublicKey})
	case *ecdsa.PrivateKey:
		return publicKeyOf(jose.JSONWebKey{Key: &key.PublicKey})
	case ed25519.PrivateKey:
		return key.Public(), nil
	case *rsa.PublicKey:
		if key.N.BitLen() < minRSABits {
			return nil, fmt.Errorf("RSA key of %d bits is too small (minimum %d)", key.N.BitLen(), minRSABits)
		}
		return key, nil
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256(), elliptic.P384(), elliptic.P521():
			return key, nil
		}
		return nil, errors.New("unsupported EC curve")
	case ed25519.PublicKey:
		return key, nil
	case []byte:
		return nil, errors.New("symmetric (oct) keys are never used")
	}
	return nil, fmt.Errorf("unsupported key type %T", k.Key)
}

// keyFits reports whether a key may verify a signature made with alg: the
// key's type (and curve) must be the one the algorithm uses, and a JWK that
// names its algorithm must name this one. This is what stops algorithm
// confusion: an RSA key is never handed to an ECDSA verifier or vice versa,
// and no HMAC algorithm ever gets here (the allowlist refuses them).
func keyFits(k verificationKey, alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		_, ok := k.pub.(*rsa.PublicKey)
		return ok
	case "ES256":
		return ecCurve(k.pub) == elliptic.P256()
	case "ES384":
		return ecCurve(k.pub) == elliptic.P384()
	case "ES512":
		return ecCurve(k.pub) == elliptic.P521()
	case "EdDSA":
		_, ok := k.pub.(ed25519.PublicKey)
		return ok
	}
	return false
}

func ecCurve(pub crypto.PublicKey) elliptic.Curve {
	if k, ok := pub.(*ecdsa.PublicKey); ok {
		return k.Curve
	}
	return nil
}

// keySource keeps the current key set of one origin (a file, a URL, or a
// URL found by discovery) and refreshes it. Every fetch, scheduled or asked
// for by a token with an unknown kid, goes through one gate: at most one
// fetch runs at a time (callers that arrive meanwhile wait for it), and a
// new one starts only when minInterval has passed since the last attempt,
// so a flood of tokens with made-up kids costs the IdP one request a
// minute. A failed fetch keeps the last good set.
type keySource struct {
	name        string
	fetch       func(ctx context.Context) ([]byte, error)
	now         func() time.Time
	minInterval time.Duration
	logger      *slog.Logger
	baseCtx     context.Context // the Verifier's lifetime; fetches outlive requests
	wg          *sync.WaitGroup

	keys atomic.Pointer[keySet]

	mu          sync.Mutex
	lastAttempt time.Time
	inflight    chan struct{} // closed when the running fetch ends; nil when none runs
	closed      bool          // set by close: no fetch starts after it
}

// close stops new fetches from starting; the caller then waits on wg.
func (s *keySource) close() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
}

// current returns the last good key set, nil before the first success.
func (s *keySource) current() *keySet { return s.keys.Load() }

// markAttempt records a fetch made outside refresh, for the rate limit.
func (s *keySource) markAttempt() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastAttempt = s.now()
}

// nextAllowed returns when the rate limit lets the next fetch start.
func (s *keySource) nextAllowed() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastAttempt.Add(s.minInterval)
}

// refresh fetches the key set if the rate limit allows, or joins the fetch
// already running, and waits for it to end or for ctx. It reports whether
// a fetch was started or joined.
func (s *keySource) refresh(ctx context.Context, reason string) bool {
	s.mu.Lock()
	ch := s.inflight
	if ch == nil {
		if s.closed {
			s.mu.Unlock()
			return false
		}
		now := s.now()
		if !s.lastAttempt.IsZero() && now.Sub(s.lastAttempt) < s.minInterval {
			s.mu.Unlock()
			return false
		}
		s.lastAttempt = now
		ch = make(chan struct{})
		s.inflight = ch
		s.wg.Add(1)
		// The fetch runs on the Verifier's context, not the caller's: a
		// request that gives up must not abort the fetch others wait for.
		go s.run(ch, reason)
	}
	s.mu.Unlock()
	select {
	case <-ch:
	case <-ctx.Done():
	}
	return true
}

func (s *keySource) run(done chan struct{}, reason string) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		s.inflight = nil
		s.mu.Unlock()
		close(done)
	}()
	err := s.load(reason)
	if err == nil {
		return
	}
	if s.current() != nil {
		s.logger.Warn("JWKS refresh failed; keeping the last good key set",
			"source", s.name, "reason", reason, "error", err)
	} else {
		s.logger.Warn("JWKS fetch failed; JWTs cannot be verified until keys arrive",
			"source", s.name, "reason", reason, "error", err, "retry_after", s.minInterval)
	}
}

// load fetches and parses the set and swaps it in.
func (s *keySource) load(reason string) error {
	ctx, cancel := context.WithTimeout(s.baseCtx, fetchTimeout)
	defer cancel()
	data, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	ks, err := parseJWKS(data, s.logger)
	if err != nil {
		return err // the caller names the source
	}
	s.keys.Store(ks)
	s.logger.Info("JWKS loaded", "source", s.name, "reason", reason, "keys", len(ks.all))
	return nil
}

// loop refreshes on schedule until ctx ends: every interval once keys are
// there, every minInterval while none have arrived yet.
func (s *keySource) loop(ctx context.Context, interval time.Duration) {
	defer s.wg.Done()
	for {
		wait := interval
		if s.current() == nil {
			wait = s.minInterval
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		s.refresh(ctx, "scheduled")
	}
}
