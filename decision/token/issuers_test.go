package token

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

// issuersTestAudienceB is the resource issuer B issues its tokens for.
const issuersTestAudienceB = "https://mcp.example.com/b"

// TestSeveralIssuers configures issuer A (jwtTestIssuer, RSA key rsa-1 in a
// JWKS file) and issuer B (an httptest IdP found by discovery, with keys
// ec-1 and rsa-2, its own audience and a claims mapping). The token's iss
// picks the entry before any key is looked up, so one issuer's keys never
// verify the other's tokens.
func TestSeveralIssuers(t *testing.T) {
	k := jwtTestKeys()
	idp := newJWTTestIdP(t, jwtTestJWKS(t, k.ec, k.rsa2))
	issuerB := idp.issuer()
	clock := &jwtTestClock{now: jwtTestStart}
	v := jwtTestVerifier(t, Options{
		Audience: jwtTestAudience,
		Now:      clock.Now,
		Issuers: []IssuerOptions{
			{Issuer: jwtTestIssuer, JWKSFile: jwtTestWriteFile(t, "a.json", jwtTestJWKS(t, k.rsa))},
			{
				Issuer: issuerB, Discovery: true, Audience: issuersTestAudienceB,
				ClaimsMapping: ClaimsMapping{Subject: "client_id", Scopes: "roles"},
			},
		},
	})
	claimsA := func(edit func(map[string]any)) map[string]any { return jwtTestClaims(jwtTestStart, edit) }
	claimsB := func(edit func(map[string]any)) map[string]any {
		return jwtTestClaims(jwtTestStart, func(c map[string]any) {
			c["iss"], c["aud"], c["client_id"] = issuerB, issuersTestAudienceB, "svc-b"
			c["roles"] = []any{"files:read", "files:write"}
			if edit != nil {
				edit(c)
			}
		})
	}

	tests := map[string]struct {
		token       func(t *testing.T) string
		wantError   string // "" means valid
		wantIssuer  string
		wantSubject string
		wantScopes  []string
	}{
		"issuer_a": {
			token:      func(t *testing.T) string { return jwtTestSign(t, k.rsa, "RS256", claimsA(nil)) },
			wantIssuer: jwtTestIssuer, wantSubject: "alice", wantScopes: []string{"tools:read", "tools:call"},
		},
		"issuer_b_with_claims_mapping": {
			token:      func(t *testing.T) string { return jwtTestSign(t, k.ec, "ES256", claimsB(nil)) },
			wantIssuer: issuerB, wantSubject: "svc-b", wantScopes: []string{"files:read", "files:write"},
		},
		"issuer_b_rsa_key": {
			token:      func(t *testing.T) string { return jwtTestSign(t, k.rsa2, "RS256", claimsB(nil)) },
			wantIssuer: issuerB, wantSubject: "svc-b", wantScopes: []string{"files:read", "files:write"},
		},
		"issuer_a_signed_with_b_key": {
			token:     func(t *testing.T) string { return jwtTestSign(t, k.ec, "ES256", claimsA(nil)) },
			wantError: ErrUnknownKey,
		},
		"issuer_a_signed_with_b_key_under_a_kid": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, jwtTestKey{kid: k.rsa.kid, priv: k.rsa2.priv}, "RS256", claimsA(nil))
			},
			wantError: ErrBadSignature,
		},
		"claiming_issuer_b_with_a_kid_and_key": {
			token:     func(t *testing.T) string { return jwtTestSign(t, k.rsa, "RS256", claimsB(nil)) },
			wantError: ErrUnknownKey,
		},
		"claiming_issuer_b_with_a_kid_and_b_key": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, jwtTestKey{kid: k.rsa.kid, priv: k.rsa2.priv}, "RS256", claimsB(nil))
			},
			wantError: ErrUnknownKey,
		},
		"audience_of_a_in_token_of_b": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.ec, "ES256", claimsB(func(c map[string]any) { c["aud"] = jwtTestAudience }))
			},
			wantError: ErrWrongAudience,
		},
		"unknown_issuer": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claimsA(func(c map[string]any) { c["iss"] = "https://evil.example.com" }))
			},
			wantError: ErrWrongIssuer,
		},
		"issuer_case_differs": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claimsA(func(c map[string]any) { c["iss"] = strings.ToUpper(jwtTestIssuer) }))
			},
			wantError: ErrWrongIssuer,
		},
		"no_issuer": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claimsA(func(c map[string]any) { delete(c, "iss") }))
			},
			wantError: ErrWrongIssuer,
		},
		"issuer_not_a_string": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claimsA(func(c map[string]any) { c["iss"] = []any{jwtTestIssuer} }))
			},
			wantError: ErrWrongIssuer,
		},
		"upper_case_iss_member_is_not_iss": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claimsA(func(c map[string]any) { delete(c, "iss"); c["ISS"] = jwtTestIssuer }))
			},
			wantError: ErrWrongIssuer,
		},
		"payload_not_json": {
			token: func(t *testing.T) string {
				return jwtTestSignRaw(t, k.rsa, "RS256", `{"alg":"RS256","kid":"rsa-1"}`, `not json`)
			},
			wantError: ErrMalformed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := v.Verify(context.Background(), tc.token(t), nil)
			if got.Type != TypeJWT {
				t.Errorf("type %q, want jwt", got.Type)
			}
			if tc.wantError != "" {
				if got.Valid || got.Error != tc.wantError {
					t.Fatalf("valid=%v error=%q, want %s", got.Valid, got.Error, tc.wantError)
				}
				if got.Issuer != "" || got.Claims != nil {
					t.Errorf("a refused token names issuer %q and claims %v", got.Issuer, got.Claims)
				}
				return
			}
			if !got.Valid {
				t.Fatalf("refused: %s", got.Error)
			}
			if got.Issuer != tc.wantIssuer || got.Subject != tc.wantSubject {
				t.Errorf("issuer %q subject %q, want %q %q", got.Issuer, got.Subject, tc.wantIssuer, tc.wantSubject)
			}
			if diff := cmp.Diff(tc.wantScopes, got.Scopes); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
			iss := got.Value.(ast.Object).Get(ast.StringTerm("issuer"))
			if iss == nil || !iss.Equal(ast.StringTerm(tc.wantIssuer)) {
				t.Errorf("input.token.issuer is %v, want %q", iss, tc.wantIssuer)
			}
		})
	}

	t.Run("unknown_issuer_fetches_no_keys", func(t *testing.T) {
		before := idp.hitCount("/jwks")
		tok := jwtTestSign(t, jwtTestKey{kid: "made-up", priv: k.rsa.priv}, "RS256",
			claimsA(func(c map[string]any) { c["iss"] = "https://other.example.com" }))
		if r := v.Verify(context.Background(), tok, nil); r.Error != ErrWrongIssuer {
			t.Fatalf("error %q, want wrong_issuer", r.Error)
		}
		if after := idp.hitCount("/jwks"); after != before {
			t.Errorf("a token of no configured issuer made %d JWKS fetches", after-before)
		}
	})
	t.Run("each_issuer_cached", func(t *testing.T) {
		a := jwtTestSign(t, k.rsa, "RS256", claimsA(func(c map[string]any) { c["jti"] = "cache-a" }))
		b := jwtTestSign(t, k.ec, "ES256", claimsB(func(c map[string]any) { c["jti"] = "cache-b" }))
		for _, raw := range []string{a, b} {
			first := v.Verify(context.Background(), raw, nil)
			if again := v.Verify(context.Background(), raw, nil); !first.Valid || again != first {
				t.Errorf("valid=%v, second Verify %p, want the cached %p", first.Valid, again, first)
			}
		}
	})
}

// TestIssuersOptionErrors: every entry names its issuer once, and the
// list does not mix with the single-issuer shorthand.
func TestIssuersOptionErrors(t *testing.T) {
	k := jwtTestKeys()
	jwks := jwtTestWriteFile(t, "jwks.json", jwtTestJWKS(t, k.rsa))
	tests := map[string]struct {
		opts Options
		want string
	}{
		"with_shorthand_issuer": {
			opts: Options{Issuer: jwtTestIssuer, Issuers: []IssuerOptions{{Issuer: "https://b.example.com", JWKSFile: jwks}}},
			want: "not both",
		},
		"with_shorthand_jwks_file": {
			opts: Options{JWKSFile: jwks, Issuers: []IssuerOptions{{Issuer: "https://b.example.com", JWKSFile: jwks}}},
			want: "not both",
		},
		"entry_without_issuer": {
			opts: Options{Issuers: []IssuerOptions{{JWKSFile: jwks}}},
			want: "Issuers[0]: Issuer is required",
		},
		"issuer_twice": {
			opts: Options{Issuers: []IssuerOptions{{Issuer: jwtTestIssuer, JWKSFile: jwks}, {Issuer: jwtTestIssuer, JWKSFile: jwks}}},
			want: "configured twice",
		},
		"development_issuer": {
			opts: Options{Issuers: []IssuerOptions{{Issuer: DevIssuer, JWKSFile: jwks}}},
			want: "development issuer",
		},
		"discovery_with_jwks_file": {
			opts: Options{Issuers: []IssuerOptions{{Issuer: jwtTestIssuer, JWKSFile: jwks, Discovery: true}}},
			want: "Discovery",
		},
		"bad_algorithm_names_the_issuer": {
			opts: Options{Issuers: []IssuerOptions{{Issuer: jwtTestIssuer, JWKSFile: jwks, Algorithms: []string{"HS256"}}}},
			want: `issuer "` + jwtTestIssuer + `"`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.Audience = jwtTestAudience
			v, err := New(context.Background(), tc.opts)
			if err == nil {
				v.Close()
				t.Fatalf("New succeeded, want an error with %q", tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to contain %q", err, tc.want)
			}
		})
	}
}
