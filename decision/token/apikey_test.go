package token

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"
)

var apiKeyTestNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// apiKeyTestGenerate makes a key and fails the test on error.
func apiKeyTestGenerate(t testing.TB, sub string, scopes []string, team string, expires time.Time) (string, string, map[string]any) {
	t.Helper()
	key, hash, entry, err := GenerateAPIKey(sub, scopes, team, expires)
	if err != nil {
		t.Fatalf("GenerateAPIKey: %v", err)
	}
	return key, hash, entry
}

// apiKeyTestJSON round-trips v through JSON, as a bundle's data.json would.
func apiKeyTestJSON(t testing.TB, v any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestAPIKeyGenerateFormat(t *testing.T) {
	key, hash, entry := apiKeyTestGenerate(t, "alice", []string{"tools:read"}, "payments", time.Time{})
	if !strings.HasPrefix(key, APIKeyPrefix) || len(key) != len(APIKeyPrefix)+43 {
		t.Fatalf("key has wrong shape: prefix %q, length %d", key[:5], len(key))
	}
	sum := sha256.Sum256([]byte(key))
	if want := hex.EncodeToString(sum[:]); hash != want {
		t.Errorf("hash = %s, want lowercase hex SHA-256 %s", hash, want)
	}
	if strings.Contains(apiKeyTestJSON(t, entry).(map[string]any)["sub"].(string), key) {
		t.Error("entry carries key material")
	}
	other, _, _ := apiKeyTestGenerate(t, "alice", nil, "", time.Time{})
	if other == key {
		t.Error("two generated keys are equal")
	}
	if _, _, _, err := GenerateAPIKey("", nil, "", time.Time{}); err == nil {
		t.Error("GenerateAPIKey with empty subject: want error")
	}
	if _, _, _, err := GenerateAPIKey("bob", []string{"a b"}, "", time.Time{}); err == nil {
		t.Error("GenerateAPIKey with a scope containing a space: want error")
	}
}

func TestAPIKeyVerify(t *testing.T) {
	exp := apiKeyTestNow.Add(time.Hour)
	live, liveHash, liveEntry := apiKeyTestGenerate(t, "alice", []string{"tools:read", "tools:call"}, "payments", exp)
	liveEntry["client_id"] = "ci-bot"
	old, oldHash, oldEntry := apiKeyTestGenerate(t, "bob", nil, "", apiKeyTestNow.Add(-time.Second))
	off, offHash, offEntry := apiKeyTestGenerate(t, "carol", []string{"x"}, "", time.Time{})
	offEntry["disabled"] = true
	forever, foreverHash, foreverEntry := apiKeyTestGenerate(t, "dave", nil, "", time.Time{})
	unknown, _, _ := apiKeyTestGenerate(t, "mallory", nil, "", time.Time{})

	doc := map[string]any{liveHash: liveEntry, oldHash: oldEntry, offHash: offEntry, foreverHash: foreverEntry}
	forms := map[string]any{
		"go_map":    doc,
		"json":      apiKeyTestJSON(t, doc),
		"ast_value": ast.MustInterfaceToValue(apiKeyTestJSON(t, doc)),
	}
	for form, d := range forms {
		keys, err := ParseAPIKeys(d)
		if err != nil {
			t.Fatalf("%s: ParseAPIKeys: %v", form, err)
		}
		if keys.Len() != 4 {
			t.Fatalf("%s: Len = %d, want 4", form, keys.Len())
		}
		tests := map[string]struct {
			keys *APIKeys
			raw  string
			now  time.Time
			want Result
		}{
			"valid_with_expiry": {keys: keys, raw: live, now: apiKeyTestNow, want: Result{
				Present: true, Valid: true, Type: TypeAPIKey, Subject: "alice", ClientID: "ci-bot",
				Scopes: []string{"tools:read", "tools:call"}, Expiry: exp,
				Claims: map[string]any{"sub": "alice", "scope": "tools:read tools:call", "team": "payments", "client_id": "ci-bot", "exp": exp.Unix()},
			}},
			"valid_without_expiry": {keys: keys, raw: forever, now: apiKeyTestNow, want: Result{
				Present: true, Valid: true, Type: TypeAPIKey, Subject: "dave", Scopes: []string{},
				Claims: map[string]any{"sub": "dave", "scope": "", "team": ""},
			}},
			"expires_exactly_now":  {keys: keys, raw: live, now: exp, want: Result{Present: true, Error: ErrExpired, Type: TypeAPIKey}},
			"expired":              {keys: keys, raw: old, now: apiKeyTestNow, want: Result{Present: true, Error: ErrExpired, Type: TypeAPIKey}},
			"disabled":             {keys: keys, raw: off, now: apiKeyTestNow, want: Result{Present: true, Error: ErrInactive, Type: TypeAPIKey}},
			"unknown_key":          {keys: keys, raw: unknown, now: apiKeyTestNow, want: Result{Present: true, Error: ErrUnknownKey, Type: TypeAPIKey}},
			"nil_index":            {keys: nil, raw: live, now: apiKeyTestNow, want: Result{Present: true, Error: ErrUnknownKey, Type: TypeAPIKey}},
			"missing":              {keys: keys, raw: "", now: apiKeyTestNow, want: Result{Error: ErrMissing, Type: TypeAPIKey}},
			"wrong_prefix":         {keys: keys, raw: "mcpx_" + live[5:], now: apiKeyTestNow, want: Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}},
			"too_short":            {keys: keys, raw: live[:len(live)-1], now: apiKeyTestNow, want: Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}},
			"too_long":             {keys: keys, raw: live + "A", now: apiKeyTestNow, want: Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}},
			"bad_alphabet":         {keys: keys, raw: live[:10] + "+" + live[11:], now: apiKeyTestNow, want: Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}},
			"prefix_only":          {keys: keys, raw: APIKeyPrefix, now: apiKeyTestNow, want: Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}},
			"nil_index_malformed":  {keys: nil, raw: "mcpk_short", now: apiKeyTestNow, want: Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}},
			"other_case_same_size": {keys: keys, raw: strings.ToUpper(live[:5]) + live[5:], now: apiKeyTestNow, want: Result{Present: true, Error: ErrMalformed, Type: TypeAPIKey}},
		}
		for name, tc := range tests {
			t.Run(form+"/"+name, func(t *testing.T) {
				got := tc.keys.Verify(tc.raw, tc.now)
				if got.Value == nil {
					t.Fatal("Result not finished: Value is nil")
				}
				if diff := cmp.Diff(tc.want, *got, cmp.FilterPath(func(p cmp.Path) bool { return p.String() == "Value" }, cmp.Ignore())); diff != "" {
					t.Errorf("Verify mismatch (-want +got):\n%s", diff)
				}
				if len(tc.raw) > len(APIKeyPrefix)+8 && strings.Contains(got.Value.String(), tc.raw[len(APIKeyPrefix):]) {
					t.Error("policy value carries key material")
				}
			})
		}
	}
}

func TestAPIKeyValueForPolicies(t *testing.T) {
	key, hash, entry := apiKeyTestGenerate(t, "alice", []string{"tools:read"}, "payments", time.Time{})
	keys, err := ParseAPIKeys(map[string]any{hash: entry})
	if err != nil {
		t.Fatal(err)
	}
	got := keys.Verify(key, apiKeyTestNow).Value
	want := ast.MustParseTerm(`{"present": true, "valid": true, "type": "api_key", "subject": "alice",
		"scopes": ["tools:read"], "claims": {"sub": "alice", "scope": "tools:read", "team": "payments"}}`).Value
	if got.Compare(want) != 0 {
		t.Errorf("policy value = %v, want %v", got, want)
	}
}

func TestAPIKeyConstantTimeCompare(t *testing.T) {
	key, hash, entry := apiKeyTestGenerate(t, "alice", nil, "", time.Time{})
	keys, err := ParseAPIKeys(map[string]any{hash: entry})
	if err != nil {
		t.Fatal(err)
	}
	if reflect.ValueOf(keys.equal).Pointer() != reflect.ValueOf(apiKeyHashEqual).Pointer() {
		t.Fatal("index does not compare hashes with apiKeyHashEqual (subtle.ConstantTimeCompare)")
	}
	a := sha256.Sum256([]byte("a"))
	b := a
	b[sha256.Size-1] ^= 1
	if !apiKeyHashEqual(a, a) || apiKeyHashEqual(a, b) {
		t.Fatal("apiKeyHashEqual does not report equality of hashes")
	}

	tests := map[string]struct {
		corrupt   bool
		wantError string
	}{
		"stored_hash_matches": {wantError: ""},
		// The map finds the entry, but its stored hash differs: only the
		// constant-time compare can reject it.
		"stored_hash_differs": {corrupt: true, wantError: ErrUnknownKey},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			keys, err := ParseAPIKeys(map[string]any{hash: entry})
			if err != nil {
				t.Fatal(err)
			}
			calls := 0
			keys.equal = func(x, y [sha256.Size]byte) bool {
				calls++
				if x != sha256.Sum256([]byte(key)) {
					t.Error("compared something other than the presented key's hash")
				}
				return apiKeyHashEqual(x, y)
			}
			if tc.corrupt {
				for _, e := range keys.byHash {
					e.hash[0] ^= 0xff
				}
			}
			got := keys.Verify(key, apiKeyTestNow)
			if calls != 1 {
				t.Errorf("constant-time compare called %d times, want 1", calls)
			}
			if got.Error != tc.wantError || got.Valid != (tc.wantError == "") {
				t.Errorf("Verify = valid %v error %q, want error %q", got.Valid, got.Error, tc.wantError)
			}
		})
	}
}

func TestAPIKeyParseErrors(t *testing.T) {
	const h = "0000000000000000000000000000000000000000000000000000000000000000"
	tests := map[string]struct {
		doc  any
		want string // substring of the error
	}{
		"not_an_object":        {doc: []any{"x"}, want: "want an object"},
		"ast_array":            {doc: ast.NewArray(ast.StringTerm("x")), want: "want an object"},
		"hash_too_short":       {doc: map[string]any{"abc": map[string]any{"sub": "a"}}, want: `entry "abc"`},
		"hash_uppercase":       {doc: map[string]any{strings.ToUpper("ab" + h[2:]): map[string]any{"sub": "a"}}, want: "lowercase hex"},
		"hash_not_hex":         {doc: map[string]any{"zz" + h[2:]: map[string]any{"sub": "a"}}, want: "lowercase hex"},
		"entry_not_object":     {doc: map[string]any{h: "alice"}, want: "want an object"},
		"sub_missing":          {doc: map[string]any{h: map[string]any{"team": "x"}}, want: `"sub" is required`},
		"sub_not_string":       {doc: map[string]any{h: map[string]any{"sub": 7.0}}, want: `"sub": want a string`},
		"scopes_not_array":     {doc: map[string]any{h: map[string]any{"sub": "a", "scopes": "read write"}}, want: `"scopes": want an array`},
		"scope_not_string":     {doc: map[string]any{h: map[string]any{"sub": "a", "scopes": []any{"read", 1.0}}}, want: `"scopes"[1]`},
		"scope_with_space":     {doc: map[string]any{h: map[string]any{"sub": "a", "scopes": []any{"read write"}}}, want: "not allowed"},
		"scope_empty":          {doc: map[string]any{h: map[string]any{"sub": "a", "scopes": []any{""}}}, want: "empty scope"},
		"expires_not_rfc3339":  {doc: map[string]any{h: map[string]any{"sub": "a", "expires_at": "tomorrow"}}, want: `"expires_at"`},
		"disabled_not_bool":    {doc: map[string]any{h: map[string]any{"sub": "a", "disabled": "yes"}}, want: `"disabled": want a boolean`},
		"misspelt_field":       {doc: map[string]any{h: map[string]any{"sub": "a", "expires": "2030-01-01T00:00:00Z"}}, want: `unknown field "expires"`},
		"unsupported_go_value": {doc: 42, want: "got int"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			keys, err := ParseAPIKeys(tc.doc)
			if err == nil {
				t.Fatalf("ParseAPIKeys: want error containing %q, got index of %d keys", tc.want, keys.Len())
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if keys != nil {
				t.Error("ParseAPIKeys returned an index with an error")
			}
		})
	}
}

func TestAPIKeyParseEmpty(t *testing.T) {
	tests := map[string]any{
		"nil":          nil,
		"ast_null":     ast.Null{},
		"empty_map":    map[string]any{},
		"empty_object": ast.NewObject(),
	}
	for name, doc := range tests {
		t.Run(name, func(t *testing.T) {
			keys, err := ParseAPIKeys(doc)
			if err != nil {
				t.Fatalf("ParseAPIKeys: %v", err)
			}
			if keys.Len() != 0 {
				t.Errorf("Len = %d, want 0", keys.Len())
			}
			key, _, _ := apiKeyTestGenerate(t, "a", nil, "", time.Time{})
			if got := keys.Verify(key, apiKeyTestNow); got.Valid || got.Error != ErrUnknownKey {
				t.Errorf("Verify on empty index = valid %v error %q, want unknown_key", got.Valid, got.Error)
			}
		})
	}
}

func BenchmarkAPIKeyVerify(b *testing.B) {
	key, hash, entry := apiKeyTestGenerate(b, "alice", []string{"tools:read"}, "payments", time.Time{})
	keys, err := ParseAPIKeys(map[string]any{hash: entry})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if r := keys.Verify(key, apiKeyTestNow); !r.Valid {
			b.Fatal(r.Error)
		}
	}
}

// FuzzAPIKeyVerify checks that no presented string panics, every Result is
// finished, and only the registered key is valid.
func FuzzAPIKeyVerify(f *testing.F) {
	key, hash, entry := apiKeyTestGenerate(f, "alice", []string{"tools:read"}, "", time.Time{})
	keys, err := ParseAPIKeys(map[string]any{hash: entry})
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range []string{"", key, APIKeyPrefix, key[:len(key)-1] + "=", "mcpk_" + strings.Repeat("\xff", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		r := keys.Verify(raw, apiKeyTestNow)
		if r.Value == nil || r.Type != TypeAPIKey {
			t.Fatalf("unfinished or untyped Result for %q", raw)
		}
		if r.Valid != (raw == key) {
			t.Fatalf("Verify(%q).Valid = %v", raw, r.Valid)
		}
		if !r.Valid && r.Error == "" {
			t.Fatalf("invalid Result without a reason for %q", raw)
		}
	})
}
