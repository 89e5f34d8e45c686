package decision

import (
	"net/url"
	"strings"
	"testing"
)

// A JWT and an API key for the value checks; neither is valid anywhere.
const (
	testJWT    = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"
	testAPIKey = "mcpk_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
)

func TestRedactQuery(t *testing.T) {
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
		"signature":             {"X-Amz-Signature=SECRET&X-Amz-Date=20260101", "X-Amz-Signature=REDACTED&X-Amz-Date=20260101"},
		"repeated":              {"token=S1&token=S2", "token=REDACTED&token=REDACTED"},
		"empty_value_kept":      {"access_token=&a=1", "access_token=&a=1"},
		"bare_name_kept":        {"access_token", "access_token"},
		"monkey_is_not_a_key":   {"monkey=1&keyboard=2", "monkey=1&keyboard=2"},
		"jwt_under_other_name":  {"state=" + testJWT, "state=REDACTED"},
		"api_key_value":         {"q=" + testAPIKey, "q=REDACTED"},
		"bare_api_key":          {testAPIKey + "&a=1", "REDACTED&a=1"},
		"encoded_api_key_value": {"q=" + url.QueryEscape(" "+testAPIKey), "q=REDACTED"},
		"malformed_escape":      {"access_token=%zzSECRET&a=%", "access_token=REDACTED&a=%"},
		"trailing_separators":   {"&&access_token=SECRET&", "&&access_token=REDACTED&"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := redactQuery(tc.in); got != tc.want {
				t.Errorf("redactQuery(%q) = %q, want %q", tc.in, got, tc.want)
			}
		})
	}
}

func TestRedactHeader(t *testing.T) {
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
		"empty_value_kept":     {"cookie", "", ""},
		"session_id_kept":      {"mcp-session-id", "sess-1", "sess-1"},
		"partial_body_kept":    {"x-envoy-auth-partial-body", "true", "true"},
		"idempotency_key_kept": {"idempotency-key", "k1", "k1"},
		"jwt_value":            {"x-custom", "Bearer " + testJWT, Redacted},
		"api_key_value":        {"x-custom", testAPIKey, Redacted},
		"url_query":            {"referer", "https://app.example.com/cb?code=1&access_token=SECRET", "https://app.example.com/cb?code=1&access_token=REDACTED"},
		"original_path":        {"x-envoy-original-path", "/mcp?token=SECRET", "/mcp?token=REDACTED"},
		"url_without_secret":   {"referer", "https://app.example.com/?a=1", "https://app.example.com/?a=1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := redactHeader(tc.name, tc.value); got != tc.want {
				t.Errorf("redactHeader(%q, %q) = %q, want %q", tc.name, tc.value, got, tc.want)
			}
		})
	}
}

// TestRedactedInput checks input.http as a policy sees it: credentials
// erased from the query, its parameters and the headers, the flag that a
// token came in the query kept, and the authorization header left out.
func TestRedactedInput(t *testing.T) {
	r := &Request{
		Method: "GET", Path: "/mcp?a=1&access_token=SECRET1&api_key=SECRET4", Host: "mcp.example.com",
		Headers: map[string]string{
			"authorization": "Bearer SECRET0", "cookie": "sid=SECRET2",
			"proxy-authorization": "Basic SECRET3", "x-api-key": "SECRET5", "accept": "text/event-stream",
		},
	}
	got := httpInput(r).String()
	for _, secret := range []string{"SECRET0", "SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5", `"authorization":`} {
		if strings.Contains(got, secret) {
			t.Errorf("input.http holds %q: %s", secret, got)
		}
	}
	for _, want := range []string{
		`"access_token_in_query": true`,
		`"query": "a=1&access_token=REDACTED&api_key=REDACTED"`,
		`"access_token": ["REDACTED"]`,
		`"a": ["1"]`,
		`"cookie": "REDACTED"`,
		`"proxy-authorization": "REDACTED"`,
		`"x-api-key": "REDACTED"`,
		`"accept": "text/event-stream"`,
	} {
		if !strings.Contains(got, want) {
			t.Errorf("input.http lacks %s: %s", want, got)
		}
	}
}

// FuzzRedactQuery checks on any query that no credential parameter keeps
// its value and that every other parameter is read as before.
func FuzzRedactQuery(f *testing.F) {
	for _, seed := range []string{"a=1&access_token=x", "access%5Ftoken=x;b=2", "key=%zz", "q=" + testJWT, testAPIKey, "&&=&"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, q string) {
		got := redactQuery(q)
		if redactQuery(got) != got {
			t.Fatalf("redactQuery is not idempotent on %q: %q", q, got)
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
				if v != "" && v != Redacted && (credentialName(k) || credentialValue(v)) {
					t.Fatalf("%q: parameter %q kept its value %q in %q", q, k, v, got)
				}
			}
			if credentialValue(k) {
				t.Fatalf("%q: a credential is a parameter name in %q", q, got)
			}
			if !credentialName(k) && strings.Join(vs, "&") != strings.Join(before[k], "&") && !strings.Contains(strings.Join(vs, "&"), Redacted) {
				t.Fatalf("%q: parameter %q changed from %q to %q", q, k, before[k], vs)
			}
		}
	})
}
