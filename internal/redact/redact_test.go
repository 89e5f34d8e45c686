package redact

import (
	"bytes"
	"errors"
	"log/slog"
	"net/url"
	"strings"
	"testing"
)

// A JWT and an API key for the value checks; neither is valid anywhere.
const (
	testJWT    = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	testAPIKey = "mcpk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	// testBasic is "deploy:hunter2" in base64.
	testBasic = "ZGVwbG95Omh1bnRlcjI="
)

func TestQuery(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"empty":                 {"", ""},
		"no_credential":         {"x=1&x=2&trace=on", "x=1&x=2&trace=on"},
		"access_token":          {"access_token=SECRET", "access_token=REDACTED"},
		"access_token_amid":     {"a=1&access_token=SECRET&b=2", "a=1&access_token=REDACTED&b=2"},
		"semicolon_separator":   {"a=1;access_token=SECRET", "a=1;access_token=REDACTED"},
		"percent_encoded_name":  {"access%5Ftoken=SECRET", "access%5Ftoken=REDACTED"},
		"upper_case_name":       {"Access_Token=SECRET", "Access_Token=REDACTED"},
		"api_key":               {"api_key=SECRET", "api_key=REDACTED"},
		"apikey":                {"apiKey=SECRET", "apiKey=REDACTED"},
		"api_dash_key":          {"api-key=SECRET", "api-key=REDACTED"},
		"key":                   {"key=SECRET", "key=REDACTED"},
		"token":                 {"token=SECRET", "token=REDACTED"},
		"id_token":              {"id_token=SECRET", "id_token=REDACTED"},
		"client_secret":         {"client_id=app&client_secret=SECRET", "client_id=app&client_secret=REDACTED"},
		"password":              {"password=SECRET", "password=REDACTED"},
		"secret":                {"secret=SECRET", "secret=REDACTED"},
		"oauth_code":            {"code=SECRET&state=s", "code=REDACTED&state=s"},
		"pw":                    {"pw=SECRET", "pw=REDACTED"},
		"azure_sas_sig":         {"sv=2024&sig=SECRET", "sv=2024&sig=REDACTED"},
		"signature":             {"X-Amz-Signature=SECRET&X-Amz-Date=20260101", "X-Amz-Signature=REDACTED&X-Amz-Date=20260101"},
		"goog_signature":        {"X-Goog-Credential=SECRET1&X-Goog-Signature=SECRET2", "X-Goog-Credential=REDACTED&X-Goog-Signature=REDACTED"},
		"repeated":              {"token=S1&token=S2", "token=REDACTED&token=REDACTED"},
		"empty_value_kept":      {"access_token=&a=1", "access_token=&a=1"},
		"bare_name_kept":        {"access_token", "access_token"},
		"monkey_is_not_a_key":   {"monkey=1&keyboard=2", "monkey=1&keyboard=2"},
		"author_is_data":        {"author=bob&bypass=1", "author=bob&bypass=1"},
		"jwt_under_other_name":  {"state=" + testJWT, "state=REDACTED"},
		"api_key_value":         {"q=" + testAPIKey, "q=REDACTED"},
		"bare_api_key":          {testAPIKey + "&a=1", "REDACTED&a=1"},
		"encoded_api_key_value": {"q=" + url.QueryEscape(" "+testAPIKey), "q=REDACTED"},
		"basic_value":           {"h=" + url.QueryEscape("Basic "+testBasic), "h=REDACTED"},
		"malformed_escape":      {"access_token=%zzSECRET&a=%", "access_token=REDACTED&a=%"},
		"trailing_separators":   {"&&access_token=SECRET&", "&&access_token=REDACTED&"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Query(tc.in); got != tc.want {
				t.Errorf("Query(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestHeader(t *testing.T) {
	tests := map[string]struct {
		name, value, want string
	}{
		"content_type":         {"content-type", "application/json", "application/json"},
		"cookie":               {"cookie", "sid=SECRET", Redacted},
		"proxy_authorization":  {"proxy-authorization", "Basic SECRET", Redacted},
		"forwarded_authz":      {"x-forwarded-authorization", "Bearer SECRET", Redacted},
		"x_api_key":            {"x-api-key", "SECRET", Redacted},
		"x_goog_api_key":       {"x-goog-api-key", "SECRET", Redacted},
		"x_auth_token":         {"x-auth-token", "SECRET", Redacted},
		"x_amz_security_token": {"x-amz-security-token", "SECRET", Redacted},
		"subscription_key":     {"ocp-apim-subscription-key", "SECRET", Redacted},
		"x_upstream_auth":      {"x-upstream-auth", "Basic " + testBasic, Redacted},
		"x_auth":               {"x-auth", "SECRET", Redacted},
		"x_passphrase":         {"x-passphrase", "SECRET", Redacted},
		"basic_any_name":       {"x-creds", "Basic " + testBasic, Redacted},
		"basic_lowercase":      {"x-creds", "basic SECRET", Redacted},
		"bearer_any_name":      {"x-forward", "Bearer SECRET", Redacted},
		"scheme_alone_kept":    {"x-mode", "Basic", "Basic"},
		"empty_value_kept":     {"cookie", "", ""},
		"session_id_kept":      {"mcp-session-id", "sess-1", "sess-1"},
		"partial_body_kept":    {"x-envoy-auth-partial-body", "true", "true"},
		"failure_mode_kept":    {"x-envoy-auth-failure-mode-allowed", "true", "true"},
		"idempotency_key_kept": {"idempotency-key", "k1", "k1"},
		"jwt_value":            {"x-custom", "Bearer " + testJWT, Redacted},
		"jwt_session_id":       {"mcp-session-id", testJWT, Redacted},
		"api_key_value":        {"x-custom", testAPIKey, Redacted},
		"url_query":            {"referer", "https://app.example.com/cb?state=1&access_token=SECRET", "https://app.example.com/cb?state=1&access_token=REDACTED"},
		"url_user_info":        {"referer", "https://deploy:hunter2@app.example.com/cb", "https://REDACTED@app.example.com/cb"},
		"original_path":        {"x-envoy-original-path", "/mcp?token=SECRET", "/mcp?token=REDACTED"},
		"url_without_secret":   {"referer", "https://app.example.com/?a=1", "https://app.example.com/?a=1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Header(tc.name, tc.value); got != tc.want {
				t.Errorf("Header(%q, %q) = %q, want %q", tc.name, tc.value, got, tc.want)
			}
		})
	}
}

// TestURL covers issue 28 row 6: a bundle URL is shown without its user
// info and without the values of a signed URL's parameters.
func TestURL(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"plain":          {"https://bundles.example.com/b.tar.gz", "https://bundles.example.com/b.tar.gz"},
		"user_info":      {"http://deploy:hunter2@bundles.example.com/b.tar.gz", "http://REDACTED@bundles.example.com/b.tar.gz"},
		"user_only":      {"https://ghp_SECRET@github.com/b", "https://REDACTED@github.com/b"},
		"at_in_path":     {"https://h.example.com/a@b", "https://h.example.com/a@b"},
		"amz_signed":     {"https://s3.example.com/b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIA%2F2026&X-Amz-Signature=abc123&X-Amz-Security-Token=tok", "https://s3.example.com/b?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=REDACTED&X-Amz-Signature=REDACTED&X-Amz-Security-Token=REDACTED"},
		"goog_signed":    {"https://storage.googleapis.com/b?X-Goog-Signature=abc&X-Goog-Date=1", "https://storage.googleapis.com/b?X-Goog-Signature=REDACTED&X-Goog-Date=1"},
		"both":           {"http://u:p@h/b?sig=abc#frag", "http://REDACTED@h/b?sig=REDACTED#frag"},
		"fragment_token": {"https://h/cb#access_token=abc&x=1", "https://h/cb#access_token=REDACTED&x=1"},
		"jwt_in_path":    {"https://h/" + testJWT + "/b", "https://h/REDACTED/b"},
		"not_a_url":      {"bundle.tar.gz", "bundle.tar.gz"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := URL(tc.in)
			if got != tc.want {
				t.Errorf("URL(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := URL(got); again != got {
				t.Errorf("URL is not idempotent: %q then %q", got, again)
			}
		})
	}
}

// TestString covers issue 27 row 10: a credential-shaped value inside free
// text (a reason quoting a header, a session id, an error) is erased.
func TestString(t *testing.T) {
	tests := map[string]struct {
		in, want string
	}{
		"plain":            {"tool \"echo\" is hidden from this caller", "tool \"echo\" is hidden from this caller"},
		"origin_jwt":       {`origin "` + testJWT + `" is not allowed`, `origin "REDACTED" is not allowed`},
		"version_jwt":      {`unsupported protocol version "` + testJWT + `"`, `unsupported protocol version "REDACTED"`},
		"api_key":          {"key " + testAPIKey + " refused", "key REDACTED refused"},
		"two_jwts":         {testJWT + " and " + testJWT, "REDACTED and REDACTED"},
		"basic":            {"header was Basic " + testBasic + " here", "header was Basic REDACTED here"},
		"basic_word_kept":  {"basic checks failed", "basic checks failed"},
		"bearer_opaque":    {"sent Bearer 0123456789abcdefXYZ", "sent Bearer REDACTED"},
		"bearer_word_kept": {"a Bearer challenge", "a Bearer challenge"},
		"url_in_error":     {`bundle x: downloading: Get "http://deploy:hunter2@h/b?X-Amz-Signature=abc": refused`, `bundle x: downloading: Get "http://REDACTED@h/b?X-Amz-Signature=REDACTED": refused`},
		"query_in_text":    {"path /mcp?code=abc&x=1 refused", "path /mcp?code=REDACTED&x=1 refused"},
		"pair_in_text":     {"dsn password=hunter2 host=db", "dsn password=REDACTED host=db"},
		"ordinary_pair":    {"limit n=3", "limit n=3"},
		"redacted_stays":   {"Basic REDACTED", "Basic REDACTED"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			got := String(tc.in)
			if got != tc.want {
				t.Errorf("String(%q) = %q, want %q", tc.in, got, tc.want)
			}
			if again := String(got); again != got {
				t.Errorf("String is not idempotent: %q then %q", got, again)
			}
		})
	}
}

// TestLogAttr checks a service log line as written: message, string
// values and errors are erased, other values kept.
func TestLogAttr(t *testing.T) {
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: LogAttr}))
	log.Warn("token "+testJWT+" seen",
		"bundle", "http://deploy:hunter2@h/b",
		"error", errors.New(`Get "https://h/b?X-Goog-Signature=abc": EOF`),
		slog.Group("g", "session", testJWT),
		"code", "forbidden", "n", 3)
	out := buf.String()
	for _, secret := range []string{testJWT, "hunter2", "=abc"} {
		if strings.Contains(out, secret) {
			t.Errorf("log line holds %q: %s", secret, out)
		}
	}
	for _, want := range []string{`"code":"forbidden"`, `"n":3`, `"bundle":"http://REDACTED@h/b"`, `"g":{"session":"REDACTED"}`} {
		if !strings.Contains(out, want) {
			t.Errorf("log line lacks %s: %s", want, out)
		}
	}
}

// BenchmarkString measures the cost for a reason without anything to
// erase (the common case, on every denial) and with a JWT.
func BenchmarkString(b *testing.B) {
	for name, s := range map[string]string{
		"plain": `tool "read_file" is hidden from this caller (visible rule, basis policy)`,
		"jwt":   `origin "` + testJWT + `" is not allowed`,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = String(s)
			}
		})
	}
}

// FuzzQuery checks on any query that no credential parameter keeps its
// value and that every other parameter is read as before.
func FuzzQuery(f *testing.F) {
	for _, seed := range []string{"a=1&access_token=x", "access%5Ftoken=x;b=2", "key=%zz", "q=" + testJWT, testAPIKey, "&&=&"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := Query(q)
		if Query(got) != got {
			t.Fatalf("Query is not idempotent on %q: %q", q, got)
		}
		before, _ := url.ParseQuery(q)
		after, _ := url.ParseQuery(got)
		// A bare item that is a credential ("?mcpk_…", or "%mcpk_" which
		// url.ParseQuery cannot even read) is erased to a parameter named
		// Redacted: found by this fuzzer ("mcpk_&mcpk_", "%mcpk_&%mcpk_").
		erased := got != q
		for k, vs := range after {
			if k == Redacted && erased {
				continue
			}
			for _, v := range vs {
				if v != "" && v != Redacted && (Name(k) || Value(v)) {
					t.Fatalf("%q: parameter %q kept its value %q in %q", q, k, v, got)
				}
			}
			if Value(k) {
				t.Fatalf("%q: a credential is a parameter name in %q", q, got)
			}
			if !Name(k) && strings.Join(vs, "&") != strings.Join(before[k], "&") && !strings.Contains(strings.Join(vs, "&"), Redacted) {
				t.Fatalf("%q: parameter %q changed from %q to %q", q, k, before[k], vs)
			}
		}
	})
}

// FuzzString checks on any text that String keeps no JWT and no API key,
// is idempotent, and leaves text without a marker untouched.
func FuzzString(f *testing.F) {
	for _, seed := range []string{"origin \"" + testJWT + "\"", testAPIKey + testAPIKey, "Basic " + testBasic, "http://u:p@h/?sig=1#token=2", "a=b c?d=e", "eyJ.eyJ.", "bearer bearer 0123456789abcdefghij"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := String(s)
		if containsJWS(got) || strings.Contains(got, APIKeyPrefix) {
			t.Fatalf("String(%q) = %q keeps a credential", s, got)
		}
		if again := String(got); again != got {
			t.Fatalf("String is not idempotent on %q: %q then %q", s, got, again)
		}
		if !mayHold(s) && got != s {
			t.Fatalf("String(%q) = %q changed text without a marker", s, got)
		}
	})
}
