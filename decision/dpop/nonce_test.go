package dpop_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/dpop"
)

func nonceKey(id string, b byte) dpop.NonceKey {
	return dpop.NonceKey{ID: id, Secret: []byte(strings.Repeat(string(rune('a'+b)), 32))}
}

// TestNonces: a proof must carry a nonce issued in the current or the
// previous window, by any configured key; otherwise the refusal carries a
// fresh nonce from the first key (RFC 9449 §8).
func TestNonces(t *testing.T) {
	const window = 5 * time.Minute
	k1, k2, other := nonceKey("k1", 1), nonceKey("k2", 2), nonceKey("k3", 3)
	current := must(dpop.NewNonces([]dpop.NonceKey{k1}, window))
	// After a rotation: k2 issues, k1 still verifies.
	rotated := must(dpop.NewNonces([]dpop.NonceKey{k2, k1}, window))
	// A key id the checker knows, with another secret.
	forger := must(dpop.NewNonces([]dpop.NonceKey{{ID: "k1", Secret: other.Secret}}, window))
	stranger := must(dpop.NewNonces([]dpop.NonceKey{other}, window))
	cases := map[string]struct {
		checker *dpop.Nonces
		nonce   string // "-" for none
		ok      bool
	}{
		"fresh":                {current, current.Issue(testNow), true},
		"previous_window":      {current, current.Issue(testNow.Add(-window)), true},
		"missing":              {current, "-", false},
		"empty":                {current, "", false},
		"stale_two_windows":    {current, current.Issue(testNow.Add(-2 * window)), false},
		"future_window":        {current, current.Issue(testNow.Add(window)), false},
		"forged_same_key_id":   {current, forger.Issue(testNow), false},
		"forged_mac_changed":   {current, current.Issue(testNow)[:len(current.Issue(testNow))-1] + "A", false},
		"other_key_id":         {current, stranger.Issue(testNow), false},
		"no_key_id":            {current, strings.TrimPrefix(current.Issue(testNow), "k1."), false},
		"rotated_old_verifies": {rotated, current.Issue(testNow), true},
		"rotated_new_verifies": {rotated, rotated.Issue(testNow), true},
		"rotated_old_stale":    {rotated, current.Issue(testNow.Add(-2 * window)), false},
		"too_long":             {current, "k1." + strings.Repeat("A", 200), false},
	}
	client := newClient(t, "ES256")
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			c := newChecker(t, dpop.Options{Nonces: tc.checker})
			cl := claims(client, func(m map[string]any) {
				if tc.nonce != "-" {
					m["nonce"] = tc.nonce
				}
			})
			err := c.Check(context.Background(), &dpop.Request{Proof: client.SignJSON(client.Header(), cl),
				Method: "POST", URI: testURI, AccessToken: testToken, JKT: client.JKT})
			if tc.ok {
				if err != nil {
					t.Fatalf("Check: %v; want nil", err)
				}
				return
			}
			var pe *dpop.Error
			if !errors.As(err, &pe) || pe.Nonce == "" {
				t.Fatalf("Check: %#v; want an Error with a fresh nonce", err)
			}
			if want := tc.checker.Issue(testNow); pe.Nonce != want {
				t.Fatalf("fresh nonce %q; want %q (the first key's, this window)", pe.Nonce, want)
			}
			if !tc.checker.Valid(pe.Nonce, testNow) {
				t.Fatal("the fresh nonce does not verify")
			}
		})
	}
}

// TestNoncesOff: without Nonces a proof needs no nonce, and a refusal
// carries none.
func TestNoncesOff(t *testing.T) {
	client := newClient(t, "ES256")
	c := newChecker(t, dpop.Options{})
	if err := c.Check(context.Background(), &dpop.Request{Proof: client.SignJSON(client.Header(), claims(client, nil)),
		Method: "POST", URI: testURI, AccessToken: testToken, JKT: client.JKT}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	var pe *dpop.Error
	if err := c.Check(context.Background(), &dpop.Request{Method: "POST", URI: testURI, AccessToken: testToken, JKT: client.JKT}); !errors.As(err, &pe) || pe.Nonce != "" {
		t.Fatalf("Check without proof: %#v; want an Error without nonce", err)
	}
}

func TestNewNoncesRefuses(t *testing.T) {
	good := nonceKey("k1", 1)
	cases := map[string]struct {
		keys   []dpop.NonceKey
		window time.Duration
	}{
		"no_key":       {nil, 0},
		"short_secret": {[]dpop.NonceKey{{ID: "k", Secret: []byte("short")}}, 0},
		"id_with_dot":  {[]dpop.NonceKey{{ID: "k.1", Secret: good.Secret}}, 0},
		"empty_id":     {[]dpop.NonceKey{{Secret: good.Secret}}, 0},
		"id_twice":     {[]dpop.NonceKey{good, good}, 0},
		"negative":     {[]dpop.NonceKey{good}, -time.Minute},
		"sub_second":   {[]dpop.NonceKey{good}, time.Millisecond},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := dpop.NewNonces(tc.keys, tc.window); err == nil {
				t.Fatal("NewNonces: nil error")
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
