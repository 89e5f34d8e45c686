package token

import (
	"context"
	"strings"
	"time"
)

// Source is one kind of credential the Verifier accepts: API keys, the
// JWTs of the configured issuers, introspected opaque tokens, or a kind
// added through Options.Sources. The Verifier is an ordered chain of
// Sources: the first that owns a credential verifies it, and a credential
// no Source owns is malformed. A new kind of credential is one more value
// in that chain, not one more branch in Verify.
type Source interface {
	// Name says what the source verifies, for logs ("api_key", "jwt").
	Name() string
	// Owns reports whether raw is this source's to verify. It looks at the
	// credential's shape only (a prefix, a JWS's three parts), never at a
	// network or a key: a cheap answer, the same for the same raw, so the
	// Verifier's cache can sit in front of the chain.
	Owns(raw string) bool
	// Verify verifies raw, which Owns accepted, and returns its finished
	// Result (see Result.Finish). keys is the API key index of the current
	// policy snapshot (nil when it holds none); most sources ignore it.
	Verify(ctx context.Context, raw string, keys *APIKeys) *Result
}

// cachingSource is a Source whose outcomes the Verifier's cache may hold,
// because verifying them costs a signature check. verifyCacheable returns
// the Result with how long, and tied to which key set, it may be cached.
// The Verifier looks the cache up before asking any source, so a hit costs
// neither Owns nor the routing to an issuer.
type cachingSource interface {
	Source
	verifyCacheable(ctx context.Context, raw string, now time.Time) (*Result, cachePolicy)
}

// cachePolicy says whether and how long a Result may be cached.
type cachePolicy struct {
	good  bool      // a verified token: cached in the good cache until until
	until time.Time // zero: do not cache
	// keys, when set, is the key set the outcome depends on, and src the
	// origin that set came from: the entry dies when src swaps its set.
	keys *keySet
	src  *keySource
}

// apiKeySource verifies API keys (APIKeyPrefix) against the index of the
// current policy snapshot, which the caller passes to Verify.
type apiKeySource struct {
	now func() time.Time
}

func (apiKeySource) Name() string { return TypeAPIKey }

func (apiKeySource) Owns(raw string) bool { return strings.HasPrefix(raw, APIKeyPrefix) }

// Verify checks raw against keys. Without an index (no snapshot holds API
// keys) an API key is malformed: no key can be known.
func (s apiKeySource) Verify(_ context.Context, raw string, keys *APIKeys) *Result {
	if keys == nil {
		return (&Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}).Finish()
	}
	return keys.Verify(raw, s.now())
}

// introspectionSource sends every credential that reaches it to an RFC
// 7662 endpoint: it comes last in the chain, after the sources that
// recognise their credentials by shape.
type introspectionSource struct {
	in       *Introspector
	audience string
}

func (introspectionSource) Name() string { return TypeIntrospection }

func (introspectionSource) Owns(string) bool { return true }

func (s introspectionSource) Verify(ctx context.Context, raw string, _ *APIKeys) *Result {
	return s.in.Verify(ctx, raw, s.audience)
}
