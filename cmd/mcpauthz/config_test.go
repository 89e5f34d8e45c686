package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision/token"
)

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestConfigDefaultsAreValid(t *testing.T) {
	cfg := DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Fatalf("defaults invalid: %v", err)
	}
	if cfg.Listen.GRPC != "127.0.0.1:9191" || cfg.Listen.HTTP != "127.0.0.1:8181" || cfg.Policy.Package != "mcp.authz" {
		t.Errorf("unexpected defaults: %+v", cfg)
	}
	if cfg.Tokens.ClockSkew.D() != 30*time.Second {
		t.Errorf("clock_skew default = %v", cfg.Tokens.ClockSkew.D())
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	tests := map[string]configErrorCase{
		"unknown_key":            {"listen: {grcp: ':1'}", "grcp"},
		"bad_grpc_addr":          {"listen: {grpc: 'nonsense'}", "listen.grpc"},
		"bundle_without_source":  {"bundles: [{name: x}]", "bundles[0]"},
		"bundle_bad_url":         {"bundles: [{url: 'ftp://x'}]", "bundles[0].url"},
		"bundle_path_and_oci":    {"bundles: [{path: p, oci: 'registry.example.com/p:v1'}]", "bundles[0]"},
		"bundle_oci_no_tag":      {"bundles: [{oci: 'registry.example.com/policies'}]", "bundles[0].oci"},
		"bundle_oci_as_url":      {"bundles: [{oci: 'https://registry.example.com/p:v1'}]", "bundles[0].oci"},
		"empty_package":          {"policy: {package: ''}", "policy.package"},
		"relative_resource":      {"resource: {uri: '/mcp'}", "resource.uri"},
		"no_auth_servers":        {"resource: {authorization_servers: []}", "resource.authorization_servers"},
		"hmac_algorithm":         {"tokens: {algorithms: [HS256]}", "tokens.algorithms"},
		"none_algorithm":         {"tokens: {algorithms: [none]}", "tokens.algorithms"},
		"bad_duration":           {"tokens: {clock_skew: soon}", "clock_skew"},
		"huge_skew":              {"tokens: {clock_skew: 1h}", "tokens.clock_skew"},
		"both_jwks":              {"tokens: {jwks_file: a, jwks_url: 'https://x'}", "tokens.jwks_file"},
		"typ_with_parameter":     {"tokens: {required_typ: 'at+jwt; charset=utf-8'}", "tokens.required_typ"},
		"typ_two_slashes":        {"tokens: {required_typ: application/at+jwt/x}", "tokens.required_typ"},
		"bad_log_level":          {"log: {level: loud}", "log.level"},
		"tls_half":               {"listen: {tls: {cert_file: a}}", "listen.tls"},
		"signature_without_key":  {"bundles: [{path: p, verification: {key_id: k}}]", "bundles[0].verification.public_key_file"},
		"zero_body_limit":        {"limits: {max_body_bytes: 0}", "limits.max_body_bytes"},
		"gc_percent_too_low":     {"limits: {gc_percent: -2}", "limits.gc_percent"},
		"gc_off_without_limit":   {"limits: {gc_percent: -1}", "limits.gc_percent"},
		"memory_limit_too_low":   {"limits: {memory_limit_bytes: 1000}", "limits.memory_limit_bytes"},
		"eval_workers_negative":  {"limits: {eval_workers: -1}", "limits.eval_workers"},
		"bad_proxy_addr":         {"listen: {proxy: 'nonsense'}", "listen.proxy"},
		"relative_upstream":      {"upstream: {url: '127.0.0.1:3001/mcp'}", "upstream.url"},
		"upstream_unknown_key":   {"upstream: {forward_tokens: true}", "upstream.forward_tokens"},
		"zero_body_timeout":      {"limits: {body_read_timeout: 0s}", "limits.body_read_timeout"},
		"inflight_below_body":    {"limits: {max_body_bytes: 2048, max_inflight_body_bytes: 1024}", "limits.max_inflight_body_bytes"},
		"zero_result_bytes":      {"limits: {max_result_bytes: 0}", "limits.max_result_bytes"},
		"strip_not_a_header":     {"upstream: {strip_request_headers: ['x mcp']}", "upstream.strip_request_headers"},
		"dpop_hmac_algorithm":    {"tokens: {dpop: {algorithms: [HS256]}}", "tokens.dpop.algorithms"},
		"dpop_huge_max_age":      {"tokens: {dpop: {max_age: 2h}}", "tokens.dpop"},
		"dpop_relative_htu":      {"tokens: {dpop: {htu: /mcp}}", "tokens.dpop.htu"},
		"dpop_unknown_key":       {"tokens: {dpop: {nonces: true}}", "tokens.dpop.nonces"},
		"dpop_nonce_no_keys":     {"tokens: {dpop: {nonce: {enabled: true}}}", "tokens.dpop.nonce.keys"},
		"dpop_nonce_tiny_window": {"tokens: {dpop: {nonce: {window: 10ms}}}", "tokens.dpop.nonce.window"},
	}
	checkConfigErrors(t, tests)
}

// TestConfigRequiredTyp follows tokens.required_typ from the YAML file to
// the verifier the app builds, with a development token (typ at+jwt).
func TestConfigRequiredTyp(t *testing.T) {
	tests := map[string]struct {
		typ       string
		wantError string // "": the token is valid
	}{
		"default_off":      {typ: "", wantError: ""},
		"at_jwt":           {typ: "at+jwt", wantError: ""},
		"with_prefix":      {typ: "application/at+jwt", wantError: ""},
		"jwt_refuses_it":   {typ: "JWT", wantError: token.ErrMalformed},
		"other_media_type": {typ: "application/jwt", wantError: token.ErrMalformed},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			keyPath := filepath.Join(t.TempDir(), "dev-key.pem")
			yaml := fmt.Sprintf("tokens: {dev: true, dev_key_file: %q}\n", keyPath)
			if tc.typ != "" {
				yaml = fmt.Sprintf("tokens: {dev: true, dev_key_file: %q, required_typ: %q}\n", keyPath, tc.typ)
			}
			cfg, err := LoadConfig(writeConfig(t, yaml))
			if err != nil {
				t.Fatal(err)
			}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			if cfg.Tokens.RequiredTyp != tc.typ {
				t.Fatalf("tokens.required_typ = %q, want %q", cfg.Tokens.RequiredTyp, tc.typ)
			}
			ctx := context.Background()
			a, err := buildApp(ctx, cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer a.close()
			raw, err := token.MintDev(token.DevOptions{KeyPath: keyPath, Audience: cfg.Resource.URI})
			if err != nil {
				t.Fatal(err)
			}
			r := a.tokens.Verify(ctx, raw, nil)
			if r.Valid != (tc.wantError == "") || r.Error != tc.wantError {
				t.Errorf("dev token: valid=%v error=%q, want error %q", r.Valid, r.Error, tc.wantError)
			}
		})
	}
}

func TestServeFlagsOverrideFile(t *testing.T) {
	p := writeConfig(t, "listen: {grpc: '127.0.0.1:1000', http: '127.0.0.1:1001'}\nbundles: [{path: a}]\n")
	f := serveFlags{config: p, grpcAddr: "127.0.0.1:2000", logLevel: "debug", bundles: stringList{"b", "https://bundles.example.com/b.tar.gz"}}
	cfg, err := f.load()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.GRPC != "127.0.0.1:2000" || cfg.Listen.HTTP != "127.0.0.1:1001" || cfg.Log.Level != "debug" {
		t.Errorf("flags not applied: %+v", cfg.Listen)
	}
	if len(cfg.Bundles) != 2 || cfg.Bundles[0].Path != "b" || cfg.Bundles[1].URL == "" {
		t.Errorf("bundles = %+v, want the flag's path and URL", cfg.Bundles)
	}
}

// TestPolicyCommands runs check and test as a policy author would.
func TestPolicyCommands(t *testing.T) {
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "authz.rego"), []byte("package mcp.authz\n\nallow if input.mcp.tool.argument == 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		args     []string
		wantCode int
		wantOut  string
	}{
		"check_shipped_policy":   {[]string{"check", "../../policies"}, 0, "compiled"},
		"check_schema_violation": {[]string{"check", broken}, 1, "authz.rego:3"},
		"test_shipped_policy":    {[]string{"test", "../../policies"}, 0, "PASS"},
		"test_example_bundle":    {[]string{"test", "-v", "--timeout", "2m", "../../examples/bundles/parameter-rules"}, 0, "PASS"},
		"unknown_command":        {[]string{"frobnicate"}, 2, "unknown command"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), tc.args, &out, &errb)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out.String(), errb.String())
			}
			if all := out.String() + errb.String(); !strings.Contains(all, tc.wantOut) {
				t.Errorf("output lacks %q:\n%s", tc.wantOut, all)
			}
		})
	}
}

func TestAPIKeyCreatePrintsHashOnly(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"apikey", "create", "--sub", "ci-bot", "--scope", "mcp:tools", "--team", "platform"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	s := out.String()
	if !strings.Contains(s, "mcpk_") || !strings.Contains(s, `"api_keys"`) || !strings.Contains(s, `"sub": "ci-bot"`) {
		t.Errorf("output:\n%s", s)
	}
}

func TestRuntimeLimits(t *testing.T) {
	tests := map[string]struct {
		cfg     LimitsConfig
		wantGC  int
		wantMem int64
	}{
		"defaults_leave_env_alone": {LimitsConfig{}, 0, 0},
		"gc_percent_set":           {LimitsConfig{GCPercent: 400}, 400, 0},
		"gc_off_with_limit":        {LimitsConfig{GCPercent: -1, MemoryLimitBytes: 64 << 20}, -1, 64 << 20},
		"gc_off_without_limit":     {LimitsConfig{GCPercent: -1}, 0, 0},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			gc, mem := runtimeLimits(tc.cfg)
			if gc != tc.wantGC || mem != tc.wantMem {
				t.Errorf("runtimeLimits = (%d, %d), want (%d, %d)", gc, mem, tc.wantGC, tc.wantMem)
			}
		})
	}
}

// configErrorCase is a configuration that must fail to load or to validate
// with an error naming key.
type configErrorCase struct {
	yaml string
	key  string
}

// checkConfigErrors loads and validates each case's YAML and requires an
// error that names its key.
func checkConfigErrors(t *testing.T, tests map[string]configErrorCase) {
	t.Helper()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg, err := LoadConfig(writeConfig(t, tc.yaml))
			if err == nil {
				err = cfg.Validate()
			}
			if err == nil || !strings.Contains(err.Error(), tc.key) {
				t.Fatalf("error = %v, want one naming %q", err, tc.key)
			}
		})
	}
}

// loadedApp builds the app of the YAML configuration yaml, as serve does,
// with its first bundle load done. The caller closes it.
func loadedApp(t *testing.T, yaml string) *app {
	t.Helper()
	cfg, err := LoadConfig(writeConfig(t, yaml))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildApp(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.bundles.Reload(context.Background()); err != nil {
		a.close()
		t.Fatal(err)
	}
	return a
}
