package token

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestFromClaims(t *testing.T) {
	now := jwtTestStart
	tests := map[string]struct {
		claims       map[string]any
		wantPresent  bool
		wantValid    bool
		wantError    string
		wantSubject  string
		wantClientID string
		wantScopes   string
	}{
		"nil_is_missing": {wantError: ErrMissing},
		"valid": {
			claims:      map[string]any{"sub": "alice", "azp": "agent", "scope": "a b", "exp": float64(now.Add(time.Hour).Unix())},
			wantPresent: true, wantValid: true, wantSubject: "alice", wantClientID: "agent", wantScopes: "a b",
		},
		"valid_without_exp": {
			claims:      map[string]any{"sub": "alice", "scp": []any{"x"}},
			wantPresent: true, wantValid: true, wantSubject: "alice", wantScopes: "x",
		},
		"json_number_exp": {
			claims:      map[string]any{"sub": "alice", "exp": json.Number("4102444800")},
			wantPresent: true, wantValid: true, wantSubject: "alice",
		},
		"expired": {
			claims:      map[string]any{"sub": "alice", "exp": float64(now.Add(-time.Second).Unix())},
			wantPresent: true, wantError: ErrExpired,
		},
		"expires_now": {
			claims:      map[string]any{"exp": float64(now.Unix())},
			wantPresent: true, wantError: ErrExpired,
		},
		"not_yet_valid": {
			claims:      map[string]any{"nbf": float64(now.Add(time.Minute).Unix())},
			wantPresent: true, wantError: ErrNotYetValid,
		},
		"exp_wrong_type": {
			claims:      map[string]any{"exp": "soon"},
			wantPresent: true, wantError: ErrMalformed,
		},
		"exp_huge": {
			claims:      map[string]any{"exp": 1e300},
			wantPresent: true, wantError: ErrMalformed,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := FromClaims(tc.claims, now)
			if r.Present != tc.wantPresent || r.Valid != tc.wantValid || r.Error != tc.wantError {
				t.Fatalf("present=%v valid=%v error=%q; want %v %v %q", r.Present, r.Valid, r.Error, tc.wantPresent, tc.wantValid, tc.wantError)
			}
			if r.Subject != tc.wantSubject || r.ClientID != tc.wantClientID || strings.Join(r.Scopes, " ") != tc.wantScopes {
				t.Errorf("subject %q client %q scopes %q", r.Subject, r.ClientID, r.Scopes)
			}
			if r.Value == nil {
				t.Error("Result not finished")
			}
			if r.Present && r.Type != TypeEnvoy {
				t.Errorf("type %q, want %q", r.Type, TypeEnvoy)
			}
			if r.Valid != (r.Claims != nil) {
				t.Errorf("claims %v on a Result with valid=%v", r.Claims, r.Valid)
			}
		})
	}
}

func TestSameResource(t *testing.T) {
	tests := map[string]struct {
		a, b string
		want bool
	}{
		"identical":           {"https://mcp.example.com/mcp", "https://mcp.example.com/mcp", true},
		"host_case":           {"https://MCP.example.com/mcp", "https://mcp.example.com/mcp", true},
		"scheme_case":         {"HTTPS://mcp.example.com/mcp", "https://mcp.example.com/mcp", true},
		"port_kept":           {"https://mcp.example.com:8443/mcp", "https://MCP.example.com:8443/mcp", true},
		"no_path":             {"https://MCP.example.com", "https://mcp.example.com", true},
		"path_case":           {"https://mcp.example.com/MCP", "https://mcp.example.com/mcp", false},
		"trailing_slash":      {"https://mcp.example.com/mcp/", "https://mcp.example.com/mcp", false},
		"query_differs":       {"https://mcp.example.com/mcp?a=1", "https://mcp.example.com/mcp", false},
		"other_host":          {"https://other.example.com/mcp", "https://mcp.example.com/mcp", false},
		"other_scheme":        {"http://mcp.example.com/mcp", "https://mcp.example.com/mcp", false},
		"other_port":          {"https://mcp.example.com:444/mcp", "https://mcp.example.com/mcp", false},
		"not_url_exact":       {"my-api", "my-api", true},
		"not_url_case":        {"My-API", "my-api", false},
		"userinfo_never_fold": {"https://u@MCP.example.com/", "https://u@mcp.example.com/", false},
		"host_prefix_trick":   {"https://mcp.example.com.evil/mcp", "https://mcp.example.com/mcp", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := sameResource(tc.a, tc.b); got != tc.want {
				t.Errorf("sameResource(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.want)
			}
		})
	}
}
