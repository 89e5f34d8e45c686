package token

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

// jwtTestFileVerifier returns a Verifier trusting the RSA and EC test keys
// from a JWKS file, with issuer checks on and the given clock.
func jwtTestFileVerifier(t testing.TB, clock *jwtTestClock, cacheSize int) *Verifier {
	t.Helper()
	k := jwtTestKeys()
	return jwtTestVerifier(t, Options{
		Issuer:    jwtTestIssuer,
		JWKSFile:  jwtTestWriteFile(t, "jwks.json", jwtTestJWKS(t, k.rsa, k.ec)),
		Now:       clock.Now,
		CacheSize: cacheSize,
	})
}

// jwtTestCraft builds a compact JWS from a raw header and claims with the
// given signature bytes, for tokens no honest signer would produce.
func jwtTestCraft(t testing.TB, header, claims map[string]any, sig []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(h) + "." + enc.EncodeToString(c) + "." + enc.EncodeToString(sig)
}

func TestVerifyJWTReasons(t *testing.T) {
	k := jwtTestKeys()
	now := jwtTestStart
	claims := func(edit func(map[string]any)) map[string]any { return jwtTestClaims(now, edit) }

	tests := map[string]struct {
		token     func(t *testing.T) string
		wantValid bool
		wantError string
		wantType  string
	}{
		"valid_rs256": {
			token:     func(t *testing.T) string { return jwtTestSign(t, k.rsa, "RS256", claims(nil)) },
			wantValid: true, wantType: TypeJWT,
		},
		"valid_es256": {
			token:     func(t *testing.T) string { return jwtTestSign(t, k.ec, "ES256", claims(nil)) },
			wantValid: true, wantType: TypeJWT,
		},
		"valid_without_kid_tries_fitting_keys": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, jwtTestKey{priv: k.rsa.priv}, "RS256", claims(nil))
			},
			wantValid: true, wantType: TypeJWT,
		},
		"missing": {
			token:     func(t *testing.T) string { return "" },
			wantError: ErrMissing,
		},
		"opaque_without_introspection": {
			token:     func(t *testing.T) string { return "opaque-token-value" },
			wantError: ErrMalformed,
		},
		"api_key_without_keys": {
			token:     func(t *testing.T) string { return APIKeyPrefix + "abcdef" },
			wantError: ErrMalformed, wantType: TypeAPIKey,
		},
		"three_garbage_parts": {
			token:     func(t *testing.T) string { return "abc.def.ghi" },
			wantError: ErrMalformed, wantType: TypeJWT,
		},
		"kid_not_a_string": {
			token: func(t *testing.T) string {
				return jwtTestCraft(t, map[string]any{"alg": "RS256", "kid": 5}, claims(nil), []byte("sig"))
			},
			wantError: ErrMalformed, wantType: TypeJWT,
		},
		"no_alg": {
			token: func(t *testing.T) string {
				return jwtTestCraft(t, map[string]any{"kid": "rsa-1"}, claims(nil), []byte("sig"))
			},
			wantError: ErrMalformed, wantType: TypeJWT,
		},
		"exp_missing": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { delete(c, "exp") }))
			},
			wantError: ErrMalformed, wantType: TypeJWT,
		},
		"exp_not_a_number": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["exp"] = "tomorrow" }))
			},
			wantError: ErrMalformed, wantType: TypeJWT,
		},
		"expired": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["exp"] = now.Add(-time.Minute).Unix() }))
			},
			wantError: ErrExpired, wantType: TypeJWT,
		},
		"expired_within_skew": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["exp"] = now.Add(-10 * time.Second).Unix() }))
			},
			wantValid: true, wantType: TypeJWT,
		},
		"not_yet_valid_nbf": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }))
			},
			wantError: ErrNotYetValid, wantType: TypeJWT,
		},
		"nbf_within_skew": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["nbf"] = now.Add(20 * time.Second).Unix() }))
			},
			wantValid: true, wantType: TypeJWT,
		},
		"iat_in_the_future": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["iat"] = now.Add(time.Hour).Unix() }))
			},
			wantError: ErrNotYetValid, wantType: TypeJWT,
		},
		"bad_signature_tampered_payload": {
			token: func(t *testing.T) string {
				good := jwtTestSign(t, k.rsa, "RS256", claims(nil))
				parts := strings.Split(good, ".")
				evil, _ := json.Marshal(claims(func(c map[string]any) { c["sub"] = "mallory" }))
				return parts[0] + "." + base64.RawURLEncoding.EncodeToString(evil) + "." + parts[2]
			},
			wantError: ErrBadSignature, wantType: TypeJWT,
		},
		"bad_signature_other_key_same_kid": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, jwtTestKey{kid: k.rsa.kid, priv: k.rsa2.priv}, "RS256", claims(nil))
			},
			wantError: ErrBadSignature, wantType: TypeJWT,
		},
		"bad_signature_es256_with_rsa_kid": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, jwtTestKey{kid: k.rsa.kid, priv: k.ec.priv}, "ES256", claims(nil))
			},
			wantError: ErrBadSignature, wantType: TypeJWT,
		},
		"bad_signature_hides_claim_errors": {
			token: func(t *testing.T) string {
				c := claims(func(c map[string]any) {
					c["exp"] = now.Add(-time.Hour).Unix()
					c["aud"] = "https://other.example.com"
					c["iss"] = "https://evil.example.com"
				})
				return jwtTestSign(t, jwtTestKey{kid: k.rsa.kid, priv: k.rsa2.priv}, "RS256", c)
			},
			wantError: ErrBadSignature, wantType: TypeJWT,
		},
		"unknown_key": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, jwtTestKey{kid: "nobody", priv: k.rsa.priv}, "RS256", claims(nil))
			},
			wantError: ErrUnknownKey, wantType: TypeJWT,
		},
		"alg_none": {
			token: func(t *testing.T) string {
				tok := jwt.NewWithClaims(jwt.SigningMethodNone, jwt.MapClaims(claims(nil)))
				tok.Header["kid"] = k.rsa.kid
				s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			wantError: ErrAlgNotAllowed, wantType: TypeJWT,
		},
		"alg_hs256_with_rsa_public_key_as_secret": {
			token: func(t *testing.T) string {
				der, err := x509.MarshalPKIXPublicKey(k.rsa.public())
				if err != nil {
					t.Fatal(err)
				}
				secret := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
				tok := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(claims(nil)))
				tok.Header["kid"] = k.rsa.kid
				s, err := tok.SignedString(secret)
				if err != nil {
					t.Fatal(err)
				}
				return s
			},
			wantError: ErrAlgNotAllowed, wantType: TypeJWT,
		},
		"alg_rs384_not_in_allowlist": {
			token:     func(t *testing.T) string { return jwtTestSign(t, k.rsa, "RS384", claims(nil)) },
			wantError: ErrAlgNotAllowed, wantType: TypeJWT,
		},
		"alg_unknown_to_jwt": {
			token: func(t *testing.T) string {
				return jwtTestCraft(t, map[string]any{"alg": "XY999", "kid": "rsa-1"}, claims(nil), []byte("sig"))
			},
			wantError: ErrAlgNotAllowed, wantType: TypeJWT,
		},
		"wrong_issuer": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["iss"] = "https://evil.example.com" }))
			},
			wantError: ErrWrongIssuer, wantType: TypeJWT,
		},
		"wrong_audience_other_resource": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["aud"] = "https://other.example.com/mcp" }))
			},
			wantError: ErrWrongAudience, wantType: TypeJWT,
		},
		"wrong_audience_reported_before_expiry": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) {
					c["aud"] = "https://other.example.com/mcp"
					c["exp"] = now.Add(-time.Hour).Unix()
				}))
			},
			wantError: ErrWrongAudience, wantType: TypeJWT,
		},
		"wrong_audience_trailing_slash": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["aud"] = jwtTestAudience + "/" }))
			},
			wantError: ErrWrongAudience, wantType: TypeJWT,
		},
		"wrong_audience_path_case": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["aud"] = "https://mcp.example.com/MCP" }))
			},
			wantError: ErrWrongAudience, wantType: TypeJWT,
		},
		"wrong_audience_absent": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { delete(c, "aud") }))
			},
			wantError: ErrWrongAudience, wantType: TypeJWT,
		},
		"audience_uppercase_host": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) { c["aud"] = "HTTPS://MCP.Example.COM/mcp" }))
			},
			wantValid: true, wantType: TypeJWT,
		},
		"audience_in_array": {
			token: func(t *testing.T) string {
				return jwtTestSign(t, k.rsa, "RS256", claims(func(c map[string]any) {
					c["aud"] = []any{"https://other.example.com", jwtTestAudience}
				}))
			},
			wantValid: true, wantType: TypeJWT,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clock := &jwtTestClock{now: now}
			v := jwtTestFileVerifier(t, clock, 0)
			got := v.Verify(context.Background(), tc.token(t), nil)
			if got.Valid != tc.wantValid || got.Error != tc.wantError || got.Type != tc.wantType {
				t.Errorf("got valid=%v error=%q type=%q, want valid=%v error=%q type=%q",
					got.Valid, got.Error, got.Type, tc.wantValid, tc.wantError, tc.wantType)
			}
			if got.Value == nil {
				t.Error("Result was not finished")
			}
			if !got.Valid && got.Claims != nil {
				t.Errorf("invalid Result carries claims: %v", got.Claims)
			}
		})
	}
}

func TestVerifyJWTIdentity(t *testing.T) {
	k := jwtTestKeys()
	tests := map[string]struct {
		edit         func(map[string]any)
		wantScopes   []string
		wantClientID string
	}{
		"scope_string": {
			edit:         func(c map[string]any) { c["scope"] = "a b  c" },
			wantScopes:   []string{"a", "b", "c"},
			wantClientID: "agent-1",
		},
		"scp_array": {
			edit: func(c map[string]any) {
				delete(c, "scope")
				c["scp"] = []any{"files.read", "files.write", 7}
			},
			wantScopes:   []string{"files.read", "files.write"},
			wantClientID: "agent-1",
		},
		"scp_string": {
			edit: func(c map[string]any) {
				delete(c, "scope")
				c["scp"] = "files.read files.write"
			},
			wantScopes:   []string{"files.read", "files.write"},
			wantClientID: "agent-1",
		},
		"scope_wins_over_scp": {
			edit:         func(c map[string]any) { c["scope"] = "a"; c["scp"] = []any{"b"} },
			wantScopes:   []string{"a"},
			wantClientID: "agent-1",
		},
		"no_scopes": {
			edit:         func(c map[string]any) { delete(c, "scope") },
			wantClientID: "agent-1",
		},
		"azp_when_no_client_id": {
			edit:         func(c map[string]any) { delete(c, "client_id"); c["azp"] = "agent-2"; c["scope"] = "x" },
			wantScopes:   []string{"x"},
			wantClientID: "agent-2",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			clock := &jwtTestClock{now: jwtTestStart}
			v := jwtTestFileVerifier(t, clock, 0)
			c := jwtTestClaims(jwtTestStart, tc.edit)
			got := v.Verify(context.Background(), jwtTestSign(t, k.rsa, "RS256", c), nil)
			if !got.Valid {
				t.Fatalf("not valid: %s", got.Error)
			}
			if diff := cmp.Diff(tc.wantScopes, got.Scopes, cmp.Comparer(func(a, b []string) bool {
				return strings.Join(a, " ") == strings.Join(b, " ")
			})); diff != "" {
				t.Errorf("scopes (-want +got):\n%s", diff)
			}
			if got.ClientID != tc.wantClientID {
				t.Errorf("client id %q, want %q", got.ClientID, tc.wantClientID)
			}
			if got.Subject != "alice" {
				t.Errorf("subject %q, want alice", got.Subject)
			}
			if want := jwtTestStart.Add(time.Hour); !got.Expiry.Equal(want) {
				t.Errorf("expiry %v, want %v", got.Expiry, want)
			}
			if got.Claims["sub"] != "alice" {
				t.Errorf("claims lack sub: %v", got.Claims)
			}
			obj, ok := got.Value.(ast.Object)
			if !ok {
				t.Fatalf("Value is %T, want an object", got.Value)
			}
			exp := obj.Get(ast.StringTerm("claims")).Value.(ast.Object).Get(ast.StringTerm("exp"))
			if want := ast.IntNumberTerm(int(jwtTestStart.Add(time.Hour).Unix())); !exp.Equal(want) {
				t.Errorf("claims.exp in the policy value is %v, want %v", exp, want)
			}
		})
	}
}

func TestVerifyCache(t *testing.T) {
	k := jwtTestKeys()
	ctx := context.Background()

	t.Run("hit_returns_same_result_until_exp", func(t *testing.T) {
		clock := &jwtTestClock{now: jwtTestStart}
		v := jwtTestFileVerifier(t, clock, 0)
		raw := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, nil))
		first := v.Verify(ctx, raw, nil)
		if !first.Valid {
			t.Fatalf("not valid: %s", first.Error)
		}
		clock.Advance(59 * time.Minute)
		if again := v.Verify(ctx, raw, nil); again != first {
			t.Errorf("second Verify returned a new Result %p, want the cached %p", again, first)
		}
		// exp is start+1h; with 30s skew the token dies at start+1h30s.
		clock.Advance(time.Minute + 30*time.Second)
		late := v.Verify(ctx, raw, nil)
		if late.Valid || late.Error != ErrExpired {
			t.Errorf("after exp: valid=%v error=%q, want expired", late.Valid, late.Error)
		}
		if again := v.Verify(ctx, raw, nil); again.Valid {
			t.Error("expired token served as valid on the next call")
		}
	})

	t.Run("bad_signature_cached_briefly", func(t *testing.T) {
		clock := &jwtTestClock{now: jwtTestStart}
		v := jwtTestFileVerifier(t, clock, 0)
		raw := jwtTestSign(t, jwtTestKey{kid: k.rsa.kid, priv: k.rsa2.priv}, "RS256", jwtTestClaims(jwtTestStart, nil))
		first := v.Verify(ctx, raw, nil)
		if first.Error != ErrBadSignature {
			t.Fatalf("error %q, want bad_signature", first.Error)
		}
		if again := v.Verify(ctx, raw, nil); again != first {
			t.Error("bad signature was not served from the cache")
		}
		clock.Advance(negativeTTL)
		again := v.Verify(ctx, raw, nil)
		if again == first {
			t.Error("bad signature still served from the cache after its TTL")
		}
		if again.Error != ErrBadSignature {
			t.Errorf("error %q, want bad_signature", again.Error)
		}
	})

	t.Run("off", func(t *testing.T) {
		clock := &jwtTestClock{now: jwtTestStart}
		v := jwtTestFileVerifier(t, clock, -1)
		raw := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, nil))
		if a, b := v.Verify(ctx, raw, nil), v.Verify(ctx, raw, nil); a == b || !a.Valid || !b.Valid {
			t.Errorf("cache off: got %p and %p (valid %v, %v), want two distinct valid Results", a, b, a.Valid, b.Valid)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		clock := &jwtTestClock{now: jwtTestStart}
		v := jwtTestFileVerifier(t, clock, 2)
		var raws []string
		for i := range 3 {
			raws = append(raws, jwtTestSign(t, k.ec, "ES256", jwtTestClaims(jwtTestStart, func(c map[string]any) { c["jti"] = i })))
		}
		first := v.Verify(ctx, raws[0], nil)
		v.Verify(ctx, raws[1], nil)
		v.Verify(ctx, raws[2], nil) // evicts raws[0]
		if n := v.cache.good.Len(); n > 2 || n == 0 {
			t.Errorf("cache holds %d entries, want 1 or 2", n)
		}
		if again := v.Verify(ctx, raws[0], nil); again == first || !again.Valid {
			t.Error("evicted entry was served from the cache")
		}
	})
}

func TestNewErrors(t *testing.T) {
	k := jwtTestKeys()
	goodJWKS := func(t *testing.T) string { return jwtTestWriteFile(t, "jwks.json", jwtTestJWKS(t, k.rsa)) }
	tests := map[string]func(t *testing.T) Options{
		"file_and_url": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: goodJWKS(t), JWKSURL: "https://idp.example.com/jwks"}
		},
		"hmac_in_allowlist": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: goodJWKS(t), Algorithms: []string{"RS256", "HS256"}}
		},
		"none_in_allowlist": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: goodJWKS(t), Algorithms: []string{"none"}}
		},
		"jwks_file_missing": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: t.TempDir() + "/absent.json"}
		},
		"jwks_file_not_json": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: jwtTestWriteFile(t, "jwks.json", []byte("{not json"))}
		},
		"jwks_file_only_symmetric_key": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: jwtTestWriteFile(t, "jwks.json",
				[]byte(`{"keys":[{"kty":"oct","kid":"h","k":"c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0"}]}`))}
		},
		"jwks_file_without_keys_array": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: jwtTestWriteFile(t, "jwks.json", []byte(`{}`))}
		},
		"no_audience": func(t *testing.T) Options {
			return Options{JWKSFile: goodJWKS(t)}
		},
		"jwks_url_not_http": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSURL: "file:///etc/jwks.json"}
		},
		"issuer_not_discoverable": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, Issuer: "my-idp"}
		},
		"required_typ_with_parameter": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: goodJWKS(t), RequiredTyp: "at+jwt; charset=utf-8"}
		},
		"negative_skew": func(t *testing.T) Options {
			return Options{Audience: jwtTestAudience, JWKSFile: goodJWKS(t), ClockSkew: -time.Second}
		},
	}
	for name, opts := range tests {
		t.Run(name, func(t *testing.T) {
			v, err := New(context.Background(), opts(t))
			if err == nil {
				v.Close()
				t.Fatal("New succeeded, want an error")
			}
		})
	}
}

func TestJWKSSkipsUnusableKeys(t *testing.T) {
	k := jwtTestKeys()
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(jwtTestJWKS(t, k.rsa), &doc); err != nil {
		t.Fatal(err)
	}
	doc.Keys = append([]json.RawMessage{
		json.RawMessage(`{"kty":"oct","kid":"h","k":"c2VjcmV0"}`),
		json.RawMessage(`{"kty":"XYZ","kid":"future"}`),
		json.RawMessage(`{"kty":"RSA","kid":"enc","use":"enc","n":"AQAB","e":"AQAB"}`),
	}, doc.Keys...)
	data, _ := json.Marshal(doc)
	log := &jwtTestLog{}
	ks, err := parseJWKS(data, log.logger())
	if err != nil {
		t.Fatalf("parseJWKS: %v", err)
	}
	if len(ks.all) != 1 || ks.all[0].kid != k.rsa.kid {
		t.Errorf("usable keys %v, want only %s", ks.all, k.rsa.kid)
	}
	if _, ok := ks.byKID["h"]; ok {
		t.Error("symmetric key was kept")
	}
}
