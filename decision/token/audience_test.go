package token

import "testing"

// TestWrongAudienceDetail: the detail of a wrong_audience names the
// token's audience, whatever its shape, and the resource expected, with
// the hint that fits the token.
func TestWrongAudienceDetail(t *testing.T) {
	const want = "https://mcp.example.com/mcp"
	tests := map[string]struct {
		aud  any
		dev  bool
		text string
	}{
		"string_dev": {"https://other/mcp", true, `the token's audience (aud) is "https://other/mcp"; this resource (resource.uri) is "https://mcp.example.com/mcp"; mint a token for it with mcpauthz token --config FILE (the server's configuration) or --aud https://mcp.example.com/mcp`},
		"array":      {[]any{"a", "b"}, false, `the token's audience (aud) is ["a","b"]; this resource (resource.uri) is "https://mcp.example.com/mcp"; ask the authorization server for a token with resource=https://mcp.example.com/mcp (RFC 8707), or set resource.uri to the URL clients use`},
		"absent":     {nil, false, `the token's audience (aud) is no audience; this resource (resource.uri) is "https://mcp.example.com/mcp"; ask the authorization server for a token with resource=https://mcp.example.com/mcp (RFC 8707), or set resource.uri to the URL clients use`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := WrongAudienceDetail(tc.aud, want, tc.dev); got != tc.text {
				t.Errorf("got  %s\nwant %s", got, tc.text)
			}
		})
	}
}
