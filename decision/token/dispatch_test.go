package token

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

func TestVerifyDispatch(t *testing.T) {
	k := jwtTestKeys()
	ctx := context.Background()
	clock := &jwtTestClock{now: jwtTestStart}

	// An introspection endpoint that knows no token.
	as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"active": false})
	}))
	t.Cleanup(as.Close)

	apiKey, hash, entry, err := GenerateAPIKey("svc-1", []string{"tools:call"}, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	keys, err := ParseAPIKeys(map[string]any{hash: entry})
	if err != nil {
		t.Fatal(err)
	}
	strangerKey, _, _, err := GenerateAPIKey("svc-2", nil, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	jwks := jwtTestWriteFile(t, "jwks.json", jwtTestJWKS(t, k.rsa))
	withIntro := jwtTestVerifier(t, Options{
		JWKSFile: jwks, Now: clock.Now,
		Introspection: &IntrospectionOptions{URL: as.URL, ClientID: "rs", ClientSecret: "s"},
	})
	withoutIntro := jwtTestVerifier(t, Options{JWKSFile: jwks, Now: clock.Now})
	jwtTok := jwtTestSign(t, k.rsa, "RS256", jwtTestClaims(jwtTestStart, nil))

	tests := map[string]struct {
		v         *Verifier
		raw       string
		keys      *APIKeys
		wantValid bool
		wantError string
		wantType  string
	}{
		"api_key":                       {v: withIntro, raw: apiKey, keys: keys, wantValid: true, wantType: TypeAPIKey},
		"api_key_unknown":               {v: withIntro, raw: strangerKey, keys: keys, wantError: ErrUnknownKey, wantType: TypeAPIKey},
		"api_key_without_index":         {v: withIntro, raw: apiKey, wantError: ErrMalformed, wantType: TypeAPIKey},
		"jwt_goes_to_jwt_path":          {v: withIntro, raw: jwtTok, wantValid: true, wantType: TypeJWT},
		"opaque_goes_to_introspection":  {v: withIntro, raw: "opaque-token", wantError: ErrInactive, wantType: TypeIntrospection},
		"opaque_without_introspection":  {v: withoutIntro, raw: "opaque-token", wantError: ErrMalformed},
		"two_dots_not_base64_is_opaque": {v: withIntro, raw: "a.b!.c", wantError: ErrInactive, wantType: TypeIntrospection},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := tc.v.Verify(ctx, tc.raw, tc.keys)
			if r.Valid != tc.wantValid || r.Type != tc.wantType || r.Error != tc.wantError {
				t.Errorf("valid=%v error=%q type=%q; want valid=%v error=%q type=%q",
					r.Valid, r.Error, r.Type, tc.wantValid, tc.wantError, tc.wantType)
			}
		})
	}
}

// TestJWKSRefreshSingleFlight sends many tokens with a newly published kid
// at once: one fetch serves them all, and every one of them waits for it
// rather than failing on the rate limit.
func TestJWKSRefreshSingleFlight(t *testing.T) {
	k := jwtTestKeys()
	idp := newJWTTestIdP(t, jwtTestJWKS(t, k.rsa))
	clock := &jwtTestClock{now: jwtTestStart}
	v := jwtTestVerifier(t, Options{JWKSURL: idp.srv.URL + "/jwks", Now: clock.Now, MinRefreshInterval: time.Minute})
	idp.set(func(p *jwtTestIdP) { p.jwks = jwtTestJWKS(t, k.rsa, k.ec) })
	clock.Advance(time.Minute)

	const n = 20
	toks := make([]string, n)
	for i := range toks {
		toks[i] = jwtTestSign(t, k.ec, "ES256", jwtTestClaims(jwtTestStart, func(c map[string]any) { c["jti"] = i }))
	}
	results := make([]*Result, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = v.Verify(context.Background(), toks[i], nil)
		}()
	}
	wg.Wait()
	for i, r := range results {
		if !r.Valid {
			t.Errorf("token %d: %s, want valid", i, r.Error)
		}
	}
	if got := idp.hitCount("/jwks"); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2 (start, one refresh)", got)
	}
}
