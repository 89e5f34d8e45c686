package oauth

import "testing"

const testMeta = "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"

func TestChallenge401(t *testing.T) {
	tests := map[string]struct {
		meta        string
		presented   bool
		description string
		want        string
	}{
		"no_token": {meta: testMeta,
			want: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		"no_token_description_ignored": {meta: testMeta, description: "token expired",
			want: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		"bad_token": {meta: testMeta, presented: true,
			want: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token"`},
		"bad_token_described": {meta: testMeta, presented: true, description: "token expired",
			want: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="token expired"`},
		"quotes_and_backslashes": {meta: testMeta, presented: true, description: `bad "aud" \ wrong`,
			want: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="bad \"aud\" \\ wrong"`},
		"control_chars_stripped": {meta: testMeta, presented: true, description: "line1\r\nSet-Cookie: x\x00\x7f\tend",
			want: `Bearer resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error="invalid_token", error_description="line1Set-Cookie: xend"`},
		"no_metadata_url": {presented: true,
			want: `Bearer error="invalid_token"`},
		"nothing": {want: `Bearer`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Challenge401(tc.meta, tc.presented, tc.description); got != tc.want {
				t.Errorf("Challenge401 =\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func TestChallenge403(t *testing.T) {
	tests := map[string]struct {
		meta        string
		scopes      []string
		description string
		want        string
	}{
		"full": {meta: testMeta, scopes: []string{"tools:read", "tools:call"}, description: "tools/call needs tools:call",
			want: `Bearer error="insufficient_scope", scope="tools:read tools:call", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error_description="tools/call needs tools:call"`},
		"one_scope_no_description": {meta: testMeta, scopes: []string{"admin"},
			want: `Bearer error="insufficient_scope", scope="admin", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		"duplicates_and_empty_dropped": {meta: testMeta, scopes: []string{"a", "", "b", "a", "c", "b"},
			want: `Bearer error="insufficient_scope", scope="a b c", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		"no_scopes": {meta: testMeta,
			want: `Bearer error="insufficient_scope", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		"quoted_description": {meta: testMeta, scopes: []string{"x"}, description: `need "x"`,
			want: `Bearer error="insufficient_scope", scope="x", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp", error_description="need \"x\""`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Challenge403(tc.meta, tc.scopes, tc.description); got != tc.want {
				t.Errorf("Challenge403 =\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}

func BenchmarkChallenge403(b *testing.B) {
	scopes := []string{"tools:read", "tools:call"}
	b.ReportAllocs()
	for b.Loop() {
		_ = Challenge403(testMeta, scopes, "tools/call needs tools:call")
	}
}

func TestChallengeControlOnlyValues(t *testing.T) {
	tests := map[string]struct{ got, want string }{
		"description_401": {got: Challenge401(testMeta, true, "\r\n"),
			want: `Bearer resource_metadata="` + testMeta + `", error="invalid_token"`},
		"description_403": {got: Challenge403(testMeta, []string{"\x00", "a"}, "\t"),
			want: `Bearer error="insufficient_scope", scope="a", resource_metadata="` + testMeta + `"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got\n  %s\nwant\n  %s", tc.got, tc.want)
			}
		})
	}
}

func TestChallengeDPoP(t *testing.T) {
	tests := map[string]struct {
		meta, algs, code, description string
		want                          string
	}{
		"invalid_proof": {meta: testMeta, algs: "ES256 EdDSA", code: "invalid_dpop_proof", description: "the proof is too old (iat)",
			want: `DPoP error="invalid_dpop_proof", error_description="the proof is too old (iat)", algs="ES256 EdDSA", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		"no_token": {meta: testMeta, algs: "ES256",
			want: `DPoP algs="ES256", resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		"control_chars_stripped": {algs: "ES256", code: "invalid_token", description: "a\r\nb\"",
			want: `DPoP error="invalid_token", error_description="ab\"", algs="ES256"`},
		"nothing": {want: `DPoP`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := ChallengeDPoP(tc.meta, tc.algs, tc.code, tc.description); got != tc.want {
				t.Errorf("ChallengeDPoP =\n  %s\nwant\n  %s", got, tc.want)
			}
		})
	}
}
