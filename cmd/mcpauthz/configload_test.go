package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestConfigErrorMessages holds the exact messages a person reads for a
// bad configuration: every unknown key and wrong type at once, each with
// its full path.
func TestConfigErrorMessages(t *testing.T) {
	tests := map[string]struct {
		yaml string
		sets []string
		want string // the error after "config FILE: "
	}{
		"three_misspelt_keys": {
			yaml: "listen: {htp: ':1'}\ntokens: {isuer: x, jwks_fle: y}\n",
			want: "3 errors:\n" +
				"  listen.htp: unknown key; did you mean listen.http?\n" +
				"  tokens.isuer: unknown key; did you mean tokens.issuer?\n" +
				"  tokens.jwks_fle: unknown key; did you mean tokens.jwks_file?",
		},
		"transposed_letters": {
			yaml: "listen: {grcp: ':1'}",
			want: "listen.grcp: unknown key; did you mean listen.grpc?",
		},
		"key_at_the_wrong_level": {
			yaml: "dev: true",
			want: "dev: unknown key; did you mean tokens.dev?",
		},
		"key_in_a_list_entry": {
			yaml: "bundles: [{path: p, polling: {min_delay: 1s}}]",
			want: "bundles[0].polling: unknown key",
		},
		"capitalised_section": {
			yaml: "Listen: {grpc: ':1'}",
			want: "Listen: unknown key; did you mean listen?",
		},
		"nothing_like_it": {
			yaml: "frobnicate: 1",
			want: "frobnicate: unknown key",
		},
		"types": {
			yaml: "limits: {max_body_bytes: big}\ntokens: {dev: 'yes', algorithms: RS256, clock_skew: soon}\nlisten: {grpc: 9191}\n",
			want: "5 errors:\n" +
				"  limits.max_body_bytes: is the string \"big\"; want an integer\n" +
				"  listen.grpc: is the number 9191; want a string (quote it)\n" +
				"  tokens.algorithms: is the string \"RS256\"; want a list\n" +
				"  tokens.clock_skew: not a duration: \"soon\" (want e.g. \"30s\")\n" +
				"  tokens.dev: is the string \"yes\"; want true or false",
		},
		"negative_unsigned": {
			yaml: "limits: {max_concurrent_streams: -1}",
			want: "limits.max_concurrent_streams: -1 is negative; want 0 or more",
		},
		"unknown_and_type_together": {
			yaml: "log: {levle: debug, format: [json]}",
			want: "2 errors:\n" +
				"  log.format: is a list; want a string (quote it)\n" +
				"  log.levle: unknown key; did you mean log.level?",
		},
		"unset_env": {
			yaml: "tokens: {issuer: '${MCPAUTHZ_TEST_UNSET}'}",
			want: "tokens.issuer: environment variable MCPAUTHZ_TEST_UNSET is not set (write ${MCPAUTHZ_TEST_UNSET:-default} for a default)",
		},
		"set_unknown_key": {
			sets: []string{"listen.htp=:1"},
			want: "listen.htp: unknown key; did you mean listen.http?",
		},
		"set_bad_bool": {
			sets: []string{"tokens.dev=maybe"},
			want: `tokens.dev: "maybe" is not true or false`,
		},
		"set_no_equals": {
			sets: []string{"tokens.dev"},
			want: "--set tokens.dev: want key.path=value",
		},
		"not_a_mapping": {
			yaml: "- listen",
			want: "the file must be a mapping of keys (listen, bundles, tokens, ...)",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			path := ""
			if tc.yaml != "" {
				path = writeConfig(t, tc.yaml)
			}
			_, err := LoadConfigWith(path, tc.sets)
			if err == nil {
				t.Fatal("no error")
			}
			source := path
			if source == "" {
				source = "(--set)"
			}
			want := "config " + source + ": " + tc.want
			if err.Error() != want {
				t.Errorf("error:\n%s\nwant:\n%s", err, want)
			}
		})
	}
}

// TestConfigEnvAndSet: ${ENV} in values (typed by the key they fill) and
// --set overrides over the file.
func TestConfigEnvAndSet(t *testing.T) {
	t.Setenv("MCPAUTHZ_TEST_ISSUER", "https://auth.example.com")
	t.Setenv("MCPAUTHZ_TEST_DEV", "true")
	t.Setenv("MCPAUTHZ_TEST_LIMIT", "2048")
	t.Setenv("MCPAUTHZ_TEST_PORT", "9300")
	p := writeConfig(t, `listen: {grpc: "127.0.0.1:${MCPAUTHZ_TEST_PORT}"}
tokens:
  issuer: ${MCPAUTHZ_TEST_ISSUER}
  dev: ${MCPAUTHZ_TEST_DEV}
  audience: ${MCPAUTHZ_TEST_AUDIENCE:-https://mcp.example.com/mcp}
  clock_skew: ${MCPAUTHZ_TEST_SKEW:-10s}
limits: {max_body_bytes: "${MCPAUTHZ_TEST_LIMIT}"}
bundles: [{path: a}]
`)
	cfg, err := LoadConfigWith(p, []string{
		"log.level=debug",
		"bundles[0].path=b",
		"bundles.1.url=https://bundles.example.com/b.tar.gz",
		"resource.scopes_supported=[mcp:tools, mcp:prompts]",
		"limits.max_concurrent_streams=10",
		"tokens.issuer=12345", // a string key keeps digits as a string
	})
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Listen.GRPC != "127.0.0.1:9300" || !cfg.Tokens.Dev || cfg.Tokens.Audience != "https://mcp.example.com/mcp" ||
		cfg.Tokens.ClockSkew.D() != 10*time.Second || cfg.Limits.MaxBodyBytes != 2048 {
		t.Errorf("env not expanded: listen=%+v tokens=%+v limits=%+v", cfg.Listen, cfg.Tokens, cfg.Limits)
	}
	if cfg.Log.Level != "debug" || cfg.Tokens.Issuer != "12345" || cfg.Limits.MaxConcurrentStreams != 10 {
		t.Errorf("--set not applied: log=%+v issuer=%q streams=%d", cfg.Log, cfg.Tokens.Issuer, cfg.Limits.MaxConcurrentStreams)
	}
	if len(cfg.Bundles) != 2 || cfg.Bundles[0].Path != "b" || cfg.Bundles[1].URL == "" {
		t.Errorf("bundles = %+v", cfg.Bundles)
	}
	if strings.Join(cfg.Resource.ScopesSupported, " ") != "mcp:tools mcp:prompts" {
		t.Errorf("scopes_supported = %v", cfg.Resource.ScopesSupported)
	}
	// Defaults stay where nothing is set.
	if cfg.Policy.Package != "mcp.authz" || cfg.Listen.HTTP != "127.0.0.1:8181" {
		t.Errorf("defaults lost: %+v %+v", cfg.Policy, cfg.Listen)
	}
}

// TestSetFlagOnTheCommandLine: --set reaches the configuration of every
// command that reads one, before or after other flags.
func TestSetFlagOnTheCommandLine(t *testing.T) {
	// A rule reading a field the input schema lacks fails the type check,
	// unless --set turns it off.
	broken := t.TempDir()
	if err := os.WriteFile(filepath.Join(broken, "authz.rego"), []byte("package mcp.authz\n\nallow if input.mcp.tool.argument == 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out, errOut := runCLI(t, "check", broken); code != 1 {
		t.Errorf("check with the type check: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, errOut := runCLI(t, "check", broken, "--set", "policy.type_check=false"); code != 0 {
		t.Errorf("check --set policy.type_check=false: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "check", "--set", "listen.htp=:1", "../../policies")
	if code != 1 || !strings.Contains(errOut, "listen.htp: unknown key; did you mean listen.http?") {
		t.Errorf("check --set unknown key: exit %d\n%s%s", code, out, errOut)
	}
}

// TestListenAddresses: addresses and ports are checked at validation, not
// when the listener fails to open.
func TestListenAddresses(t *testing.T) {
	tests := map[string]struct {
		grpc string
		want string // "": valid
	}{
		"loopback":       {"127.0.0.1:9191", ""},
		"any_host":       {":9191", ""},
		"ipv6":           {"[::1]:9191", ""},
		"host_name":      {"mcpauthz.internal:9191", ""},
		"ephemeral":      {"127.0.0.1:0", ""},
		"port_too_large": {"127.0.0.1:99999", `listen.grpc: port "99999" of "127.0.0.1:99999" is not a number from 0 to 65535`},
		"named_port":     {"127.0.0.1:http", `listen.grpc: port "http" of "127.0.0.1:http" is not a number from 0 to 65535`},
		"no_port":        {"127.0.0.1", `listen.grpc: "127.0.0.1" is not host:port (e.g. "127.0.0.1:9191" or ":9191")`},
		"bad_host":       {"local_host:9191", `listen.grpc: host "local_host" of "local_host:9191" is neither an IP address nor a host name`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			cfg := DefaultConfig()
			cfg.Listen.GRPC = tc.grpc
			err := cfg.Validate()
			got := ""
			if err != nil {
				got = err.Error()
			}
			if got != tc.want {
				t.Errorf("Validate() = %q, want %q", got, tc.want)
			}
		})
	}
}
