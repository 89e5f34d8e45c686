package policies_test

import (
	"context"
	"regexp"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/mcpauthz/mcpauthz/policies"
)

// TestSecretsLibrary: each pattern of data.mcpauthz.lib.secrets finds a
// real-shaped secret of its kind and leaves a look-alike alone; redact
// lists every pattern, named.
func TestSecretsLibrary(t *testing.T) {
	src, err := policies.Library(policies.LibraryPackages()["data.mcpauthz.lib.secrets"])
	if err != nil {
		t.Fatal(err)
	}
	m, err := ast.ParseModuleWithOpts("secrets.rego", string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
	if err != nil {
		t.Fatal(err)
	}
	rs, err := rego.New(rego.Query("data.mcpauthz.lib.secrets"), rego.ParsedModule(m)).Eval(context.Background())
	if err != nil || len(rs) != 1 {
		t.Fatalf("evaluating the library: %v %v", rs, err)
	}
	lib := rs[0].Expressions[0].Value.(map[string]any)
	patterns := lib["patterns"].(map[string]any)
	pem := "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA\n-----END RSA PRIVATE KEY-----"
	tests := map[string]struct{ hit, miss string }{
		"aws_access_key": {"key=AKIAIOSFODNN7EXAMPLE;", "AKIAIOSFODNN7EXAMPL (19 characters) or XAKIAIOSFODNN7EXAMPLE"},
		"github_token":   {"ghp_" + strings.Repeat("a1B2", 9), "ghp_short and ghx_" + strings.Repeat("a1B2", 9)},
		"gitlab_token":   {"glpat-xxxxxxxxxxxxxxxxxxxx", "glpat-tooshort"},
		"slack_token":    {"xoxb-1234567890-abcdefghij", "xoxz-1234567890-abcdefghij"},
		"google_api_key": {"AIzaSyA1234567890abcdefghijklmnopqrstuv", "AIzaSyA123 is too short"},
		"jwt":            {"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLWJ5dGVzLWhlcmU", "eyJhbGciOiJIUzI1NiJ9 alone"},
		"private_key":    {"x\n" + pem + "\ny", "-----BEGIN PUBLIC KEY-----\nMIIB\n-----END PUBLIC KEY-----"},
		"mcpk_key":       {"mcpk_0123456789abcdefXYZ", "mcpk_short"},
	}
	if len(patterns) != len(tests) {
		t.Errorf("%d patterns, %d tested", len(patterns), len(tests))
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p, ok := patterns[name].(string)
			if !ok {
				t.Fatalf("no pattern %s", name)
			}
			re := regexp.MustCompile(p)
			if !re.MatchString(tc.hit) {
				t.Errorf("%s does not match %q", name, tc.hit)
			}
			if re.MatchString(tc.miss) {
				t.Errorf("%s matches %q", name, tc.miss)
			}
		})
	}
	redact := lib["redact"].([]any)
	if len(redact) != len(patterns) {
		t.Fatalf("redact has %d entries, want %d", len(redact), len(patterns))
	}
	for _, r := range redact {
		e := r.(map[string]any)
		if e["with"] != "[REDACTED:"+e["name"].(string)+"]" || e["pattern"] != patterns[e["name"].(string)] {
			t.Errorf("redact entry %v", e)
		}
	}
}
