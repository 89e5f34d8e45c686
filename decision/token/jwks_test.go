package token

import (
	"context"
	"fmt"
	"testing"
	"time"
)

func TestJWKSRotation(t *testing.T) {
	k := jwtTestKeys()
	ctx := context.Background()
	idp := newJWTTestIdP(t, jwtTestJWKS(t, k.rsa))
	clock := &jwtTestClock{now: jwtTestStart}
	v := jwtTestVerifier(t, Options{JWKSURL: idp.srv.URL + "/jwks", Now: clock.Now, MinRefreshInterval: time.Minute})

	oldTok := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, nil))
	if r := v.Verify(ctx, oldTok, nil); !r.Valid {
		t.Fatalf("token of the first key: %s", r.Error)
	}
	if n := idp.hitCount("/jwks"); n != 1 {
		t.Fatalf("JWKS fetched %d times at start, want 1", n)
	}

	// The IdP rotates: the old key is withdrawn, a new kid appears.
	idp.set(func(p *jwtTestIdP) { p.jwks = jwtTestJWKS(t, k.rsa2) })
	clock.Advance(2 * time.Minute)
	newTok := jwtTestSign(t, k.rsa2, "RS256", jwtTestClaims(clock.Now(), nil))
	if r := v.Verify(ctx, newTok, nil); !r.Valid {
		t.Fatalf("token of the rotated-in key: %s", r.Error)
	}
	if n := idp.hitCount("/jwks"); n != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (one refresh for the new kid)", n)
	}
	// The cached Result of the old token depended on the old set.
	if r := v.Verify(ctx, oldTok, nil); r.Valid || r.Error != ErrUnknownKey {
		t.Errorf("token of the withdrawn key: valid=%v error=%q, want unknown_key", r.Valid, r.Error)
	}
	if n := idp.hitCount("/jwks"); n != 2 {
		t.Errorf("JWKS fetched %d times, want still 2 (rate limit)", n)
	}
}

func TestJWKSDownAtStartAndLater(t *testing.T) {
	k := jwtTestKeys()
	ctx := context.Background()
	idp := newJWTTestIdP(t, jwtTestJWKS(t, k.rsa))
	idp.set(func(p *jwtTestIdP) { p.down = true })
	clock := &jwtTestClock{now: jwtTestStart}
	log := &jwtTestLog{}
	v := jwtTestVerifier(t, Options{
		JWKSURL: idp.srv.URL + "/jwks", Now: clock.Now, Logger: log.logger(),
		MinRefreshInterval: time.Minute,
	})
	hits := func() int { return idp.hitCount("/jwks") }
	if hits() != 1 {
		t.Fatalf("start: %d fetches, want 1", hits())
	}
	if !log.has("JWTs cannot be verified until keys arrive") {
		t.Errorf("no warning about missing keys in the log:\n%s", log)
	}

	tok := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, func(c map[string]any) { c["exp"] = jwtTestStart.Add(3 * time.Hour).Unix() }))
	for range 20 {
		if r := v.Verify(ctx, tok, nil); r.Valid || r.Error != ErrUnavailable {
			t.Fatalf("without keys: valid=%v error=%q, want unavailable", r.Valid, r.Error)
		}
	}
	if hits() != 1 {
		t.Errorf("20 tokens without keys caused %d fetches, want none beyond the first (rate limit)", hits()-1)
	}

	// The IdP comes up; once the rate limit allows, a token brings the keys.
	idp.set(func(p *jwtTestIdP) { p.down = false })
	clock.Advance(time.Minute)
	if r := v.Verify(ctx, tok, nil); !r.Valid {
		t.Fatalf("after the IdP came up: %s", r.Error)
	}
	if hits() != 2 {
		t.Errorf("%d fetches, want 2", hits())
	}

	// The IdP goes down again: a refresh fails, the last good keys stay.
	idp.set(func(p *jwtTestIdP) { p.down = true })
	clock.Advance(time.Minute)
	stranger := jwtTestSign(t, jwtTestKey{kid: "new-kid", priv: k.rsa2.priv}, "RS256", jwtTestClaims(clock.Now(), nil))
	if r := v.Verify(ctx, stranger, nil); r.Error != ErrUnknownKey {
		t.Errorf("unknown kid while the IdP is down: error %q, want unknown_key", r.Error)
	}
	if hits() != 3 {
		t.Errorf("%d fetches, want 3 (one refresh for the unknown kid)", hits())
	}
	if !log.has("keeping the last good key set") {
		t.Errorf("no warning about the failed refresh in the log:\n%s", log)
	}
	fresh := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(clock.Now(), nil))
	if r := v.Verify(ctx, fresh, nil); !r.Valid {
		t.Errorf("token of a known key after the failed refresh: %s, want valid (last good keys kept)", r.Error)
	}

	// A flood of made-up kids costs the IdP nothing within the interval.
	for i := range 100 {
		bad := jwtTestSign(t, jwtTestKey{kid: fmt.Sprintf("flood-%d", i), priv: k.ec.priv}, "ES256", jwtTestClaims(clock.Now(), nil))
		if r := v.Verify(ctx, bad, nil); r.Error != ErrUnknownKey {
			t.Fatalf("flood token %d: error %q, want unknown_key", i, r.Error)
		}
	}
	if hits() != 3 {
		t.Errorf("a flood of unknown kids caused %d fetches, want none", hits()-3)
	}
	clock.Advance(time.Minute)
	v.Verify(ctx, stranger, nil)
	if hits() != 4 {
		t.Errorf("%d fetches, want 4 (one more once the interval passed)", hits())
	}
}

func TestJWKSUnknownKeyNotCachedPastRefresh(t *testing.T) {
	k := jwtTestKeys()
	ctx := context.Background()
	idp := newJWTTestIdP(t, jwtTestJWKS(t, k.rsa))
	clock := &jwtTestClock{now: jwtTestStart}
	v := jwtTestVerifier(t, Options{JWKSURL: idp.srv.URL + "/jwks", Now: clock.Now, MinRefreshInterval: time.Minute})

	tok := jwtTestSign(t, k.ec, "ES256", jwtTestClaims(jwtTestStart, nil))
	first := v.Verify(ctx, tok, nil)
	if first.Error != ErrUnknownKey {
		t.Fatalf("error %q, want unknown_key", first.Error)
	}
	if again := v.Verify(ctx, tok, nil); again != first {
		t.Error("unknown_key not served from the cache within the refresh interval")
	}
	idp.set(func(p *jwtTestIdP) { p.jwks = jwtTestJWKS(t, k.rsa, k.ec) })
	clock.Advance(time.Minute)
	if r := v.Verify(ctx, tok, nil); !r.Valid {
		t.Errorf("after the key was published and the interval passed: %s, want valid", r.Error)
	}
}

func TestDiscovery(t *testing.T) {
	k := jwtTestKeys()
	tests := map[string]struct {
		path        string
		serveRFC    bool
		serveOpenID bool
		metaIssuer  string
		wantValid   bool
		wantError   string
		wantHit     string
	}{
		"rfc8414_root": {
			serveRFC: true, wantValid: true,
			wantHit: "/.well-known/oauth-authorization-server",
		},
		"rfc8414_path_insertion": {
			path: "/tenant1", serveRFC: true, wantValid: true,
			wantHit: "/.well-known/oauth-authorization-server/tenant1",
		},
		"openid_configuration_fallback": {
			path: "/tenant1", serveOpenID: true, wantValid: true,
			wantHit: "/tenant1/.well-known/openid-configuration",
		},
		"metadata_names_another_issuer": {
			serveRFC: true, serveOpenID: true, metaIssuer: "https://evil.example.com",
			wantError: ErrUnavailable,
		},
		"no_metadata": {
			wantError: ErrUnavailable,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			idp := newJWTTestIdP(t, jwtTestJWKS(t, k.rsa))
			idp.set(func(p *jwtTestIdP) {
				p.path, p.serveRFC, p.serveOpenID, p.metaIssuer = tc.path, tc.serveRFC, tc.serveOpenID, tc.metaIssuer
			})
			clock := &jwtTestClock{now: jwtTestStart}
			v := jwtTestVerifier(t, Options{Issuer: idp.issuer(), Now: clock.Now})
			tok := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, func(c map[string]any) { c["iss"] = idp.issuer() }))
			r := v.Verify(context.Background(), tok, nil)
			if r.Valid != tc.wantValid || r.Error != tc.wantError {
				t.Errorf("valid=%v error=%q, want valid=%v error=%q", r.Valid, r.Error, tc.wantValid, tc.wantError)
			}
			if tc.wantHit != "" && idp.hitCount(tc.wantHit) != 1 {
				t.Errorf("metadata at %s fetched %d times, want 1", tc.wantHit, idp.hitCount(tc.wantHit))
			}
			if tc.wantValid {
				other := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, func(c map[string]any) { c["iss"] = "https://idp.example.com" }))
				if r := v.Verify(context.Background(), other, nil); r.Error != ErrWrongIssuer {
					t.Errorf("token of another issuer: error %q, want wrong_issuer", r.Error)
				}
			}
		})
	}
}

func TestMetadataURLs(t *testing.T) {
	tests := map[string]struct {
		issuer string
		want   [2]string
	}{
		"root": {
			issuer: "https://idp.example.com",
			want:   [2]string{"https://idp.example.com/.well-known/oauth-authorization-server", "https://idp.example.com/.well-known/openid-configuration"},
		},
		"root_trailing_slash": {
			issuer: "https://idp.example.com/",
			want:   [2]string{"https://idp.example.com/.well-known/oauth-authorization-server", "https://idp.example.com/.well-known/openid-configuration"},
		},
		"with_path": {
			issuer: "https://idp.example.com/realms/mcp",
			want:   [2]string{"https://idp.example.com/.well-known/oauth-authorization-server/realms/mcp", "https://idp.example.com/realms/mcp/.well-known/openid-configuration"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got, err := metadataURLs(tc.issuer)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != 2 || got[0] != tc.want[0] || got[1] != tc.want[1] {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}
