package decision

import (
	"strings"
	"testing"
)

// TestRedactedInput checks input.http as a policy sees it: credentials
// erased from the query, its parameters and the headers, the flag that a
// token came in the query kept, and the authorization header left out.
func TestRedactedInput(t *testing.T) {
	r := &Request{
		Method: "GET", Path: "/mcp?a=1&access_token=SECRET1&api_key=SECRET4&code=SECRET9&pw=SECRETA&password=SECRETB&secret=SECRETC", Host: "mcp.example.com",
		Headers: map[string]string{
			"authorization": "Bearer SECRET0", "cookie": "sid=SECRET2",
			"proxy-authorization": "Basic SECRET3", "x-api-key": "SECRET5", "accept": "text/event-stream",
			// Issue 28 row 12: names holding "auth" or "pass", and a Basic
			// value under any name.
			"x-upstream-auth": "Basic SECRET6", "x-auth": "SECRET7", "x-passphrase": "SECRET8",
			"x-forwarded-creds": "Basic SECRETD",
		},
	}
	got := httpInput(r).String()
	for _, secret := range []string{"SECRET0", "SECRET1", "SECRET2", "SECRET3", "SECRET4", "SECRET5",
		"SECRET6", "SECRET7", "SECRET8", "SECRET9", "SECRETA", "SECRETB", "SECRETC", "SECRETD", `"authorization":`} {
		if strings.Contains(got, secret) {
			t.Errorf("input.http holds %q: %s", secret, got)
		}
	}
	for _, want := range []string{
		`"access_token_in_query": true`,
		`"query": "a=1&access_token=REDACTED&api_key=REDACTED&code=REDACTED&pw=REDACTED&password=REDACTED&secret=REDACTED"`,
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
