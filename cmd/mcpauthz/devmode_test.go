package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestEvalDevTokenWithoutDevMode: a development token evaluated without
// tokens.dev is denied, and eval says what to change; with the dev
// config, the token is trusted and resource.uri (set there) is not
// called the placeholder.
func TestEvalDevTokenWithoutDevMode(t *testing.T) {
	t.Setenv("MCPAUTHZ_DEV_KEY", filepath.Join(t.TempDir(), "dev.pem"))
	code, tok, errOut := runCLI(t, "token", "--sub", "alice", "--scope", "mcp:tools")
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut)
	}
	tok = strings.TrimSpace(tok)
	req := "../../examples/requests/tools-call-read-file-allowed.json"

	code, out, errOut := runCLI(t, "eval", "--request", req, "--bearer", tok)
	if code != 0 || !strings.Contains(out, `"allow": false`) {
		t.Fatalf("eval without config: exit %d\n%s%s", code, out, errOut)
	}
	const hint = "hint: the bearer token is a development token (mcpauthz token), and development tokens are trusted only with tokens.dev: true in the config: use --config examples/config/dev.yaml, or --set tokens.dev=true (token error: unknown_key)"
	if !strings.Contains(errOut, hint) {
		t.Errorf("stderr lacks the hint:\n%s", errOut)
	}

	code, out, errOut = runCLI(t, "eval", "--config", "../../examples/config/dev.yaml", "--bundle", "../../examples/bundles/parameter-rules",
		"--request", req, "--bearer", tok, "--log-level", "info")
	if code != 0 || !strings.Contains(out, `"allow": true`) {
		t.Fatalf("eval with the dev config: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(errOut, "hint:") || strings.Contains(errOut, "placeholder") {
		t.Errorf("stderr with the dev config:\n%s", errOut)
	}

	// The default resource.uri, not given anywhere, is still called the
	// placeholder.
	_, _, errOut = runCLI(t, "eval", "--request", req, "--log-level", "info")
	if !strings.Contains(errOut, "placeholder") {
		t.Errorf("no placeholder warning for the default resource.uri:\n%s", errOut)
	}
}

// TestEvalWrongAudience: a token minted for another resource is refused
// with both audiences in the reason (the decision log's and eval's), a
// hint at mcpauthz token --config / --aud, and the expected resource in
// the public error_description.
func TestEvalWrongAudience(t *testing.T) {
	t.Setenv("MCPAUTHZ_DEV_KEY", filepath.Join(t.TempDir(), "dev.pem"))
	code, tok, errOut := runCLI(t, "token", "--sub", "alice", "--scope", "mcp:tools", "--aud", "https://other.example.com/mcp")
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut)
	}
	code, out, errOut := runCLI(t, "eval", "--config", "../../examples/config/dev.yaml", "--bundle", "../../examples/bundles/parameter-rules",
		"--request", "../../examples/requests/tools-call-read-file-allowed.json", "--bearer", strings.TrimSpace(tok))
	if code != 0 {
		t.Fatalf("eval: exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{
		`"reason": "authentication required: token wrong_audience: the token's audience (aud) is \"https://other.example.com/mcp\"; this resource (resource.uri) is \"https://mcp.example.com/mcp\"; mint a token for it with mcpauthz token --config FILE (the server's configuration) or --aud https://mcp.example.com/mcp"`,
		`error_description=\"the access token was not issued for this resource (https://mcp.example.com/mcp)\"`,
		`"detail": "the token's audience (aud) is \"https://other.example.com/mcp\"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("eval's output lacks %s:\n%s", want, out)
		}
	}
}

// TestEvalPlainMessageWithContext: a plain JSON-RPC message, with the
// token and the route context given as flags, is decided as the proxy of
// dev.yaml decides it.
func TestEvalPlainMessageWithContext(t *testing.T) {
	t.Setenv("MCPAUTHZ_DEV_KEY", filepath.Join(t.TempDir(), "dev.pem"))
	code, tok, errOut := runCLI(t, "token", "--config", "../../examples/config/dev.yaml", "--sub", "alice", "--scope", "mcp:tools")
	if code != 0 {
		t.Fatalf("token: exit %d: %s", code, errOut)
	}
	req := filepath.Join(t.TempDir(), "call.json")
	if err := os.WriteFile(req, []byte(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	args := []string{"eval", "--config", "../../examples/config/dev.yaml", "--bundle", "../../examples/bundles/parameter-rules", "--request", req, "--bearer", strings.TrimSpace(tok), "-f", "raw"}
	tests := map[string]struct {
		extra []string
		code  int
		want  string
	}{
		"with_context":    {[]string{"--context", "mcp_server=everything"}, 0, "true\n"},
		"without_context": {nil, 0, "false\n"},
		"bad_context":     {[]string{"--context", "mcp_server"}, 2, ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			code, out, errOut := runCLI(t, append(append([]string{}, args...), tc.extra...)...)
			if code != tc.code || (tc.want != "" && out != tc.want) {
				t.Fatalf("exit %d stdout %q, want %d %q\nstderr: %s", code, out, tc.code, tc.want, errOut)
			}
		})
	}
}
