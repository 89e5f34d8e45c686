package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCLI runs one command line in process and returns its exit code and
// outputs.
func runCLI(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestHelpExitsZero: every command's help, asked any way, is printed on
// stdout with exit code 0 and lists that command's own flags only.
func TestHelpExitsZero(t *testing.T) {
	tests := map[string]struct {
		args    []string
		want    []string // in stdout
		wantNot []string
	}{
		"root_help":       {[]string{"--help"}, []string{"serve", "eval", "check", "test", "token", "apikey", "completion", "version"}, nil},
		"root_h":          {[]string{"-h"}, []string{"Available Commands"}, nil},
		"help_command":    {[]string{"help"}, []string{"Available Commands"}, nil},
		"serve_help":      {[]string{"serve", "--help"}, []string{"--config", "--grpc-addr", "--http-addr", "--bundle"}, []string{"--request"}},
		"help_serve":      {[]string{"help", "serve"}, []string{"--grpc-addr"}, []string{"Available Commands"}},
		"eval_help":       {[]string{"eval", "--help"}, []string{"--request", "--bearer", "--input", "--config"}, []string{"--grpc-addr", "--http-addr"}},
		"replay_help":     {[]string{"replay", "--help"}, []string{"--bundle", "--format", "--config"}, []string{"--grpc-addr"}},
		"check_help":      {[]string{"check", "-h"}, []string{"--config"}, []string{"--verbose", "--grpc-addr"}},
		"test_help":       {[]string{"help", "test"}, []string{"-v, --verbose", "--config"}, []string{"--grpc-addr"}},
		"token_help":      {[]string{"token", "--help"}, []string{"--sub", "--ttl", "--aud"}, []string{"--grpc-addr"}},
		"apikey_help":     {[]string{"apikey", "--help"}, []string{"create"}, nil},
		"apikey_create_h": {[]string{"apikey", "create", "--help"}, []string{"--sub", "--expires", "--team"}, nil},
		"help_after_args": {[]string{"test", "policies", "--help"}, []string{"--verbose"}, nil},
		"completion_help": {[]string{"completion", "--help"}, []string{"bash", "zsh", "fish"}, nil},
		"version_help":    {[]string{"version", "--help"}, []string{"version"}, nil},
		"pin_help":        {[]string{"pin", "--help"}, []string{"--upstream", "--header", "--from", "--schemas"}, []string{"--grpc-addr"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != 0 {
				t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("help lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.wantNot {
				if strings.Contains(out, w) {
					t.Errorf("help lists %q, which is not this command's:\n%s", w, out)
				}
			}
		})
	}
}

// TestUsageErrors: a command line mcpauthz cannot make sense of exits 2
// with a message saying what to do.
func TestUsageErrors(t *testing.T) {
	tests := map[string]struct {
		args []string
		want string // in stderr
	}{
		"no_command":           {nil, "Usage:"},
		"unknown_command":      {[]string{"frobnicate"}, `unknown command "frobnicate" for "mcpauthz"`},
		"unknown_flag":         {[]string{"serve", "--frobnicate"}, "unknown flag: --frobnicate"},
		"config_as_argument":   {[]string{"serve", "examples/config/dev.yaml"}, `mcpauthz serve: unexpected argument "examples/config/dev.yaml": serve takes no arguments, only flags; did you mean --config examples/config/dev.yaml?`},
		"request_as_argument":  {[]string{"eval", "req.json"}, `did you mean --request req.json?`},
		"subject_as_argument":  {[]string{"token", "alice"}, `did you mean --sub alice?`},
		"other_argument":       {[]string{"version", "now"}, `unexpected argument "now": version takes no arguments, only flags`},
		"eval_flag_of_serve":   {[]string{"check", "--grpc-addr", ":1", "policies"}, "unknown flag: --grpc-addr"},
		"apikey_no_subcommand": {[]string{"apikey"}, "name a subcommand: mcpauthz apikey create"},
		"points_at_help":       {[]string{"serve", "x.yml"}, "Run 'mcpauthz serve --help' for usage."},
		"pin_no_source":        {[]string{"pin"}, "give --upstream URL or --from FILE (one of them)"},
		"pin_two_sources":      {[]string{"pin", "--from", "a.json", "--upstream", "http://x"}, "one of them"},
		"pin_header_with_from": {[]string{"pin", "--from", "a.json", "--header", "A: b"}, "--header goes with --upstream"},
		"pin_bad_header":       {[]string{"pin", "--upstream", "http://x", "--header", "no colon"}, "not in the form 'Name: value'"},
		"pin_file_as_argument": {[]string{"pin", "tools.json"}, "did you mean --from tools.json?"},
		"check_config_as_path": {[]string{"check", "../../examples/config/dev.yaml"}, "../../examples/config/dev.yaml is a file, not a bundle (a directory or a .tar.gz); if it is a configuration, did you mean --config ../../examples/config/dev.yaml?"},
		"test_config_as_path":  {[]string{"test", "../../examples/config/dev.yaml"}, "did you mean --config ../../examples/config/dev.yaml?"},
		"bundle_flag_config":   {[]string{"eval", "--bundle", "../../examples/config/dev.yaml", "--request", "x.json"}, "../../examples/config/dev.yaml is a file, not a bundle (a directory or a .tar.gz); if it is a configuration, did you mean --config ../../examples/config/dev.yaml?"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != 2 {
				t.Fatalf("exit %d, want 2\nstdout: %s\nstderr: %s", code, out, errOut)
			}
			if !strings.Contains(errOut, tc.want) {
				t.Errorf("stderr lacks %q:\n%s", tc.want, errOut)
			}
		})
	}
}

// TestFlagsAfterArguments: flags may come before or after the arguments,
// and Go-style long flags with one dash still work.
func TestFlagsAfterArguments(t *testing.T) {
	failing := t.TempDir()
	if err := os.WriteFile(filepath.Join(failing, "authz.rego"), []byte("package mcp.authz\n\nallow := false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(failing, "authz_test.rego"), []byte("package mcp.authz_test\n\nimport data.mcp.authz\n\ntest_allowed if authz.allow\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	runCLICases(t, map[string]cliCase{
		"verbose_after_path":   {[]string{"test", "../../policies", "-v"}, 0, "PASS"},
		"verbose_before_path":  {[]string{"test", "-v", "../../policies"}, 0, "PASS"},
		"long_verbose_after":   {[]string{"test", "../../policies", "--verbose"}, 0, "PASS"},
		"config_after_path":    {[]string{"check", "../../policies", "--config", "../../examples/config/dev.yaml"}, 0, "compiled"},
		"one_dash_long_flag":   {[]string{"check", "-config", "../../examples/config/dev.yaml", "../../policies"}, 0, "compiled"},
		"one_dash_with_equals": {[]string{"check", "-config=../../examples/config/dev.yaml", "../../policies"}, 0, "compiled"},
		"failing_test_exit_2":  {[]string{"test", failing, "-v"}, 2, "FAIL"},
		"apikey_flags_after":   {[]string{"apikey", "create", "--sub", "ci-bot", "--team", "platform"}, 0, `"team": "platform"`},
		"eval_hidden_listener": {[]string{"eval", "--request", "../../examples/requests/tools-call-read-file-allowed.json", "--grpc-addr", ":1", "-f", "raw"}, 0, "true"},
	})
}

func TestVersion(t *testing.T) {
	for _, args := range [][]string{{"version"}, {"--version"}} {
		code, out, _ := runCLI(t, args...)
		if code != 0 {
			t.Fatalf("%v: exit %d", args, code)
		}
		for _, w := range []string{"mcpauthz ", "commit: ", "go:     go1.", "opa:    1."} {
			if !strings.Contains(out, w) {
				t.Errorf("%v: output lacks %q:\n%s", args, w, out)
			}
		}
	}
}

func TestCompletion(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		code, out, errOut := runCLI(t, "completion", shell)
		if code != 0 || !strings.Contains(out, "mcpauthz") {
			t.Errorf("completion %s: exit %d, %d bytes\n%s", shell, code, len(out), errOut)
		}
	}
}

// cliCase is one command line, the exit code it must end with and what
// its output (stdout and stderr) must hold.
type cliCase struct {
	args     []string
	wantCode int
	want     string
}

// runCLICases runs each case in process as a subtest.
func runCLICases(t *testing.T, tests map[string]cliCase) {
	t.Helper()
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("exit %d, want %d\nstdout: %s\nstderr: %s", code, tc.wantCode, out, errOut)
			}
			if !strings.Contains(out+errOut, tc.want) {
				t.Errorf("output lacks %q:\nstdout: %s\nstderr: %s", tc.want, out, errOut)
			}
		})
	}
}
