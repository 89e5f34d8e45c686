package confirm

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/state"
)

var (
	testNow   = time.Date(2026, 7, 28, 12, 0, 0, 0, time.UTC)
	secretOld = bytes.Repeat([]byte{1}, 32)
	secretNew = bytes.Repeat([]byte{2}, 32)
)

// testRing returns a ring of keys whose clock reads *now.
func testRing(t testing.TB, now *time.Time, keys ...Key) *Ring {
	t.Helper()
	r, err := NewRing(keys, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	r.now = func() time.Time { return *now }
	return r
}

func mustDigest(t testing.TB, params string) []byte {
	t.Helper()
	d, err := Digest([]byte(params))
	if err != nil {
		t.Fatal(err)
	}
	return d
}

const (
	alice  = "22:https://idp.example:alice"
	params = `{"name":"delete","arguments":{"path":"/etc/passwd"}}`
)

func TestOpen(t *testing.T) {
	now := testNow
	ring := testRing(t, &now, Key{ID: "k2", Secret: secretNew}, Key{ID: "k1", Secret: secretOld})
	want := Binding{Owner: alice, Method: "tools/call", Digest: mustDigest(t, params)}
	sealWith := func(r *Ring, s State) string {
		out, err := r.Seal(s)
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	issued := State{Owner: alice, Method: "tools/call", Digest: want.Digest, DecisionID: "d-1", ServerState: "srv1"}
	good := sealWith(ring, issued)
	flip := func(s string, i int) string {
		raw, _ := base64.RawURLEncoding.DecodeString(s)
		raw[i] ^= 1
		return base64.RawURLEncoding.EncodeToString(raw)
	}
	// A state sealed by the ring's previous first key still opens (rotation
	// with overlap); one sealed by a key the ring dropped does not.
	old := sealWith(testRing(t, &now, Key{ID: "k1", Secret: secretOld}), issued)
	retired := sealWith(testRing(t, &now, Key{ID: "k0", Secret: bytes.Repeat([]byte{9}, 32)}), issued)
	// Same id, another secret: someone who guessed the id.
	forged := sealWith(testRing(t, &now, Key{ID: "k2", Secret: bytes.Repeat([]byte{9}, 32)}), issued)
	// The same bytes spelled otherwise: a '=' pad, and spare bits in the
	// last character (a lenient decoder reads the same bytes).
	padded := good + "=="
	if len(good)%4 == 0 {
		t.Fatalf("the issued state's encoding (%d characters) has no spare bits: change the test's state", len(good))
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, good[len(good)-1])
	spare := good[:len(good)-1] + string(alphabet[last^1])

	tests := map[string]struct {
		sealed string
		want   Binding
		at     time.Time
		err    error
	}{
		"issued":                     {sealed: good, want: want},
		"previous_key_opens":         {sealed: old, want: want},
		"retired_key":                {sealed: retired, want: want, err: ErrUnknownKey},
		"forged_with_guessed_key_id": {sealed: forged, want: want, err: ErrForged},
		"tampered_ciphertext":        {sealed: flip(good, len(mustDecode(t, good))-20), want: want, err: ErrForged},
		"tampered_tag":               {sealed: flip(good, len(mustDecode(t, good))-1), want: want, err: ErrForged},
		"tampered_nonce":             {sealed: flip(good, 5), want: want, err: ErrForged},
		"tampered_version":           {sealed: flip(good, 0), want: want, err: ErrMalformed},
		"truncated_base64":           {sealed: good[:len(good)-(len(good)-1)%4], want: want, err: ErrMalformed},
		"truncated_bytes":            {sealed: base64.RawURLEncoding.EncodeToString(mustDecode(t, good)[:30]), want: want, err: ErrMalformed},
		"truncated_last_byte":        {sealed: base64.RawURLEncoding.EncodeToString(mustDecode(t, good)[:len(mustDecode(t, good))-1]), want: want, err: ErrForged},
		"truncated_to_header":        {sealed: good[:4], want: want, err: ErrMalformed},
		"reencoded_padded":           {sealed: padded, want: want, err: ErrMalformed},
		"reencoded_spare_bits":       {sealed: spare, want: want, err: ErrMalformed},
		"reencoded_std_alphabet":     {sealed: strings.NewReplacer("-", "+", "_", "/").Replace(good) + "+", want: want, err: ErrMalformed},
		"line_break_inside":          {sealed: good[:10] + "\n" + good[10:], want: want, err: ErrMalformed},
		"empty":                      {sealed: "", want: want, err: ErrMalformed},
		"too_long":                   {sealed: strings.Repeat("A", MaxSealedLen+1), want: want, err: ErrMalformed},
		"another_principal":          {sealed: good, want: Binding{Owner: "22:https://idp.example:mallory", Method: want.Method, Digest: want.Digest}, err: ErrOtherPrincipal},
		"same_subject_other_issuer":  {sealed: good, want: Binding{Owner: "20:https://evil.example:alice", Method: want.Method, Digest: want.Digest}, err: ErrOtherPrincipal},
		"unauthenticated_retry":      {sealed: good, want: Binding{Method: want.Method, Digest: want.Digest}, err: ErrOtherPrincipal},
		"same_tool_other_arguments":  {sealed: good, want: Binding{Owner: alice, Method: want.Method, Digest: mustDigest(t, `{"name":"delete","arguments":{"path":"/"}}`)}, err: ErrOtherRequest},
		"other_method":               {sealed: good, want: Binding{Owner: alice, Method: "resources/read", Digest: want.Digest}, err: ErrOtherRequest},
		"expired":                    {sealed: good, want: want, at: testNow.Add(time.Minute), err: ErrExpired},
		"just_before_expiry":         {sealed: good, want: want, at: testNow.Add(time.Minute - time.Second)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			now = testNow
			if !tc.at.IsZero() {
				now = tc.at
			}
			got, err := ring.Open(tc.sealed, tc.want)
			if !errors.Is(err, tc.err) || (tc.err == nil) != (err == nil) {
				t.Fatalf("Open: error %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				if got.Owner != "" || got.DecisionID != "" {
					t.Errorf("Open refused but returned a state: %+v", got)
				}
				return
			}
			if got.DecisionID != "d-1" || got.ServerState != "srv1" || got.Owner != alice || got.Expires != testNow.Add(time.Minute).Unix() {
				t.Errorf("Open = %+v, want the issued state", got)
			}
		})
	}
}

func mustDecode(t testing.TB, s string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

type failingStore struct{}

func (failingStore) Once(context.Context, string, time.Duration) (bool, error) {
	return false, errors.New("redis: connection refused")
}

func TestRedeem(t *testing.T) {
	now := testNow
	ring := testRing(t, &now, Key{ID: "k1", Secret: secretOld})
	want := Binding{Owner: alice, Method: "tools/call", Digest: mustDigest(t, params)}
	sealed, err := ring.Seal(State{Owner: alice, Method: "tools/call", Digest: want.Digest, DecisionID: "d-1"})
	if err != nil {
		t.Fatal(err)
	}
	store := state.NewMemory(0, nil)
	ctx := context.Background()
	if _, err := ring.Redeem(ctx, store, sealed, want); err != nil {
		t.Fatalf("first Redeem: %v", err)
	}
	if _, err := ring.Redeem(ctx, store, sealed, want); !errors.Is(err, ErrReplayed) {
		t.Fatalf("replayed Redeem: error %v, want %v", err, ErrReplayed)
	}
	// A refused state is not consumed: Open runs before Once.
	other, _ := ring.Seal(State{Owner: alice, Method: "tools/call", Digest: want.Digest})
	if _, err := ring.Redeem(ctx, store, other, Binding{Owner: "x", Method: want.Method, Digest: want.Digest}); !errors.Is(err, ErrOtherPrincipal) {
		t.Fatalf("Redeem by another principal: %v", err)
	}
	if _, err := ring.Redeem(ctx, store, other, want); err != nil {
		t.Fatalf("Redeem by its principal after another's attempt: %v", err)
	}
	third, _ := ring.Seal(State{Owner: alice, Method: "tools/call", Digest: want.Digest})
	if _, err := ring.Redeem(ctx, failingStore{}, third, want); !errors.Is(err, ErrStore) {
		t.Fatalf("Redeem with the store down: error %v, want %v", err, ErrStore)
	}
}

func TestRedeemConcurrent(t *testing.T) {
	now := testNow
	ring := testRing(t, &now, Key{ID: "k1", Secret: secretOld})
	want := Binding{Owner: alice, Method: "tools/call", Digest: mustDigest(t, params)}
	sealed, _ := ring.Seal(State{Owner: alice, Method: "tools/call", Digest: want.Digest})
	store := state.NewMemory(0, nil)
	const n = 8
	errs := make(chan error, n)
	for range n {
		go func() {
			_, err := ring.Redeem(context.Background(), store, sealed, want)
			errs <- err
		}()
	}
	won := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			won++
		case !errors.Is(err, ErrReplayed):
			t.Errorf("Redeem: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d concurrent retries won, want exactly 1", won)
	}
}

func TestDigest(t *testing.T) {
	base := mustDigest(t, params)
	tests := map[string]struct {
		params string
		same   bool
	}{
		"same_call":                {params: params, same: true},
		"members_reordered":        {params: `{"arguments":{"path":"/etc/passwd"},"name":"delete"}`, same: true},
		"whitespace":               {params: " {\"name\": \"delete\", \"arguments\": {\"path\": \"/etc/passwd\"}} ", same: true},
		"retry_members_ignored":    {params: `{"name":"delete","arguments":{"path":"/etc/passwd"},"inputResponses":{"a":{}},"requestState":"x","_meta":{"progressToken":1}}`, same: true},
		"other_argument":           {params: `{"name":"delete","arguments":{"path":"/tmp/x"}}`},
		"extra_argument":           {params: `{"name":"delete","arguments":{"path":"/etc/passwd","force":true}}`},
		"other_tool":               {params: `{"name":"remove","arguments":{"path":"/etc/passwd"}}`},
		"nested_meta_is_bound":     {params: `{"name":"delete","arguments":{"path":"/etc/passwd","_meta":1}}`},
		"number_spelled_otherwise": {params: `{"name":"delete","arguments":{"path":"/etc/passwd"},"n":1.0}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := mustDigest(t, tc.params)
			if bytes.Equal(got, base) != tc.same {
				t.Fatalf("Digest(%s) equal to the call's: %v, want %v", tc.params, !tc.same, tc.same)
			}
		})
	}
	if _, err := Digest([]byte(`[1]`)); err == nil {
		t.Error("Digest of an array: no error")
	}
}

func TestNewRing(t *testing.T) {
	tests := map[string]struct {
		keys []Key
		ttl  time.Duration
	}{
		"no_key":       {},
		"short_secret": {keys: []Key{{ID: "a", Secret: make([]byte, 16)}}},
		"empty_id":     {keys: []Key{{Secret: secretOld}}},
		"long_id":      {keys: []Key{{ID: strings.Repeat("a", MaxKeyIDLen+1), Secret: secretOld}}},
		"duplicate_id": {keys: []Key{{ID: "a", Secret: secretOld}, {ID: "a", Secret: secretNew}}},
		"negative_ttl": {keys: []Key{{ID: "a", Secret: secretOld}}, ttl: -time.Second},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if _, err := NewRing(tc.keys, tc.ttl); err == nil {
				t.Fatal("NewRing: no error")
			}
		})
	}
}
