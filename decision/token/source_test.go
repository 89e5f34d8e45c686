package token

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
)

// prefixSource is a kind of credential added through Options.Sources: it
// owns credentials with its prefix and counts its verifications.
type prefixSource struct {
	prefix string
	calls  atomic.Int32
}

func (s *prefixSource) Name() string { return "prefix " + s.prefix }

func (s *prefixSource) Owns(raw string) bool { return strings.HasPrefix(raw, s.prefix) }

func (s *prefixSource) Verify(_ context.Context, raw string, _ *APIKeys) *Result {
	s.calls.Add(1)
	r := &Result{Present: true, Valid: true, Type: "custom", Subject: strings.TrimPrefix(raw, s.prefix)}
	return r.Finish()
}

// TestSourceChain: the first source that owns a credential verifies it,
// API keys and JWTs come before added sources, and a credential nobody
// owns is malformed.
func TestSourceChain(t *testing.T) {
	k := jwtTestKeys()
	clock := &jwtTestClock{now: jwtTestStart}
	first, second := &prefixSource{prefix: "ghp_"}, &prefixSource{prefix: "ghp_"}
	v := jwtTestVerifier(t, Options{
		JWKSFile: jwtTestWriteFile(t, "jwks.json", jwtTestJWKS(t, k.rsa)),
		Now:      clock.Now,
		Sources:  []Source{first, second},
	})
	jwtTok := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, nil))

	tests := map[string]struct {
		raw         string
		wantValid   bool
		wantError   string
		wantType    string
		wantSubject string
	}{
		"added_source_owns_its_prefix": {raw: "ghp_octocat", wantValid: true, wantType: "custom", wantSubject: "octocat"},
		"api_key_before_added_sources": {raw: APIKeyPrefix + "x", wantError: ErrMalformed, wantType: TypeAPIKey},
		"jwt_before_added_sources":     {raw: jwtTok, wantValid: true, wantType: TypeJWT, wantSubject: "alice"},
		"nobody_owns_it":               {raw: "opaque-token", wantError: ErrMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := v.Verify(context.Background(), tc.raw, nil)
			if r.Valid != tc.wantValid || r.Error != tc.wantError || r.Type != tc.wantType || r.Subject != tc.wantSubject {
				t.Errorf("valid=%v error=%q type=%q subject=%q; want valid=%v error=%q type=%q subject=%q",
					r.Valid, r.Error, r.Type, r.Subject, tc.wantValid, tc.wantError, tc.wantType, tc.wantSubject)
			}
		})
	}
	if n := second.calls.Load(); n != 0 {
		t.Errorf("the second source owning ghp_ verified %d credentials, want 0: the first owner verifies", n)
	}
}

// TestClaimed: trusted claims are a VerifiedClaims credential, and a
// trusted party that verified nothing leaves no credential at all.
func TestClaimed(t *testing.T) {
	tests := map[string]struct {
		claims map[string]any
		want   CredentialKind
	}{
		"claims":       {claims: map[string]any{"sub": "alice"}, want: VerifiedClaims},
		"empty_claims": {claims: map[string]any{}, want: VerifiedClaims},
		"nil":          {claims: nil, want: NoCredential},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Claimed(tc.claims); got.Kind != tc.want {
				t.Errorf("kind %d, want %d", got.Kind, tc.want)
			}
		})
	}
	var zero Credential
	if zero.Kind != FromHeader {
		t.Errorf("the zero Credential has kind %d, want FromHeader", zero.Kind)
	}
}
