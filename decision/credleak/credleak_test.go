package credleak

import (
	"net/url"
	"strings"
	"testing"
)

const tok = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJl"

// TestAccessToken: issue 27 row 7's spellings are found; only the literal
// one after '&' can be removed by name.
func TestAccessToken(t *testing.T) {
	tests := map[string]struct {
		q                string
		found, removable bool
	}{
		"none":             {q: "x=1&y=2"},
		"empty":            {q: ""},
		"literal":          {q: "x=1&access_token=" + tok, found: true, removable: true},
		"first":            {q: "access_token=" + tok + "&x=1", found: true, removable: true},
		"name_only":        {q: "access_token", found: true, removable: true},
		"after_semicolon":  {q: "x=1;access_token=" + tok, found: true},
		"escaped_low_line": {q: "access%5Ftoken=" + tok, found: true},
		"escaped_letter":   {q: "%61ccess_token=" + tok, found: true},
		"two_one_escaped":  {q: "access_token=a&access%5ftoken=" + tok, found: true},
		"longer_name":      {q: "access_token2=x&my_access_token=y"},
		"value_only":       {q: "x=access_token"},
		"bad_escape":       {q: "access_token%zz=1"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			found, removable := AccessToken(tc.q)
			if found != tc.found || removable != tc.removable {
				t.Fatalf("AccessToken(%q) = %v, %v; want %v, %v", tc.q, found, removable, tc.found, tc.removable)
			}
			// Go's own form parser finds the literal and escaped names
			// after '&'; AccessToken finds at least those.
			if vals, err := url.ParseQuery(tc.q); err == nil {
				if _, ok := vals[AccessTokenParam]; ok && !found {
					t.Errorf("url.ParseQuery finds access_token in %q, AccessToken does not", tc.q)
				}
			}
		})
	}
}

func TestWithout(t *testing.T) {
	names := []string{AccessTokenParam}
	tests := map[string]struct{ q, want string }{
		"nothing_to_remove": {q: "a=1;b=%zz&c", want: "a=1;b=%zz&c"},
		"middle":            {q: "a=1&access_token=T&b=2", want: "a=1&b=2"},
		"first":             {q: "access_token=T&b=2", want: "b=2"},
		"last":              {q: "a=1&access_token=T", want: "a=1"},
		"only":              {q: "access_token=T", want: ""},
		"semicolons_kept":   {q: "a=1;access_token=T;b=2&c=3", want: "a=1;b=2&c=3"},
		"escaped":           {q: "a=%41&access%5Ftoken=T", want: "a=%41"},
		"every_one":         {q: "access_token=1&access_token=2&a=b", want: "a=b"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Without(tc.q, names); got != tc.want {
				t.Fatalf("Without(%q) = %q, want %q", tc.q, got, tc.want)
			}
		})
	}
}

// TestFind: the token is found wherever issue 27 rows 7 and 8 put it, in
// any percent-encoding, and nowhere it is not.
func TestFind(t *testing.T) {
	pct := func(s string) string { // every byte escaped
		var b strings.Builder
		for i := range len(s) {
			b.WriteString("%" + strings.ToUpper(string("0123456789abcdef"[s[i]>>4])+string("0123456789abcdef"[s[i]&15])))
		}
		return b.String()
	}
	tests := map[string]struct {
		cred         string // default tok
		target, host string
		headers      map[string]string
		body         string
		want         string
	}{
		"nowhere":         {target: "/mcp?x=1", headers: map[string]string{"authorization": "Bearer " + tok, "accept": "*/*"}},
		"query_semicolon": {target: "/mcp?x=1;access_token=" + tok, want: "the query string"},
		"query_escaped":   {target: "/mcp?a=" + pct(tok), want: "the query string"},
		"query_twice":     {target: "/mcp?a=" + strings.ReplaceAll(pct(tok), "%", "%25"), want: "the query string"},
		"path":            {target: "/mcp/" + tok, want: "the path"},
		"host":            {target: "/mcp", host: tok + ".example", want: "the host"},
		"cookie":          {target: "/mcp", headers: map[string]string{"cookie": "session=" + tok}, want: "header cookie"},
		"referer":         {target: "/mcp", headers: map[string]string{"referer": "https://x/?t=" + url.QueryEscape(tok)}, want: "header referer"},
		"any_header":      {target: "/mcp", headers: map[string]string{"x-other": tok}, want: "header x-other"},
		"header_name":     {cred: "abcdefghijklmnopqrstu", target: "/mcp", headers: map[string]string{"x-abcdefghijklmnopqrstu": "1"}, want: "a header name"},
		"body":            {target: "/mcp", body: `{"t":"` + tok + `"}`, want: "the body"},
		"prefix_only":     {target: "/mcp?a=" + tok[:len(tok)-1], headers: map[string]string{"x": tok[1:]}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cred := tc.cred
			if cred == "" {
				cred = tok
			}
			if got := Find(cred, tc.target, tc.host, tc.headers, []byte(tc.body)); got != tc.want {
				t.Fatalf("Find = %q, want %q", got, tc.want)
			}
		})
	}
	if got := Find("short", "/mcp?short", "", nil, nil); got != "" {
		t.Errorf("a credential shorter than MinSearched was searched: %q", got)
	}
}

// FuzzQuery: whatever the query, Without removes every parameter
// AccessToken finds, keeps a query it has nothing to remove from as it is,
// and never adds a parameter.
func FuzzQuery(f *testing.F) {
	for _, q := range []string{"x=1;access_token=T", "access%5Ftoken=T", "%61ccess_token=T", "a=1&access_token=T&b=2", "&&;;", "access_token", "a=%zz;access_token=%"} {
		f.Add(q)
	}
	f.Fuzz(func(t *testing.T, q string) {
		found, removable := AccessToken(q)
		if removable && !found {
			t.Fatalf("%q: removable but not found", q)
		}
		out := Without(q, []string{AccessTokenParam})
		if again, _ := AccessToken(out); again {
			t.Fatalf("Without(%q) = %q still has access_token", q, out)
		}
		if !found && out != q {
			t.Fatalf("Without(%q) = %q changed a query without access_token", q, out)
		}
		if len(out) > len(q) {
			t.Fatalf("Without(%q) = %q grew", q, out)
		}
	})
}

// BenchmarkFind is the search every request with a bearer token pays: a
// JWT-sized token, the headers of an MCP client, a small tools/call body.
// It allocates nothing unless a value holds a percent escape.
func BenchmarkFind(b *testing.B) {
	cred := strings.Repeat("eyJhbGciOiJSUzI1NiJ9", 40)
	headers := map[string]string{
		"authorization": "Bearer " + cred, "content-type": "application/json", "accept": "application/json, text/event-stream",
		"mcp-protocol-version": "2025-06-18", "mcp-session-id": "3f1c9a7e-5b2d-4c8e-9f0a-1b2c3d4e5f60", "user-agent": "node",
		"x-request-id": "abc", "x-forwarded-for": "10.0.0.1", "host": "mcp.example.com",
	}
	body := []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{"text":"` + strings.Repeat("hello ", 150) + `"}}}`)
	b.ReportAllocs()
	for b.Loop() {
		if Find(cred, "/mcp?x=1", "mcp.example.com", headers, body) != "" {
			b.Fatal("found")
		}
	}
}
