package decision_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// lockedBuffer is a bytes.Buffer that a logger and a decision log goroutine
// may write to at once.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// leakPolicy is a policy written carelessly on purpose: it echoes the query
// into its reason, and a bug makes it read the cookie as a number, so that
// the evaluation error quotes the value. Neither may leak a credential.
const leakPolicy = `package mcp.authz

decision := {"allow": false, "reason": sprintf("tokens in the query string are refused (query %s, params %v)", [input.http.query, input.http.query_params])} if {
	input.http.access_token_in_query
} else := {"allow": to_number(input.http.headers.cookie) > 0} if {
	input.mcp.method == "custom/error"
} else := {"allow": input.token.valid, "reason": sprintf("token %v; headers %v", [input.token.valid, input.http.headers])}
`

// TestCredentialsNeverLogged runs requests that carry credentials in every
// place a client may put one (the authorization header as a JWT and as an
// API key, the query, cookie, proxy-authorization, x-api-key, a URL in a
// header) through the engine, allowed and refused, with decision logs and a
// debug logger on, and looks for each secret in every line written.
func TestCredentialsNeverLogged(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	verifier, toks, err := workload.NewVerified(ctx, dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(verifier.Close)
	jwt := toks[0]
	apiKey, hash, entry, err := token.GenerateAPIKey("bot", []string{"mcp:tools"}, "", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	bundle := filepath.Join(dir, "bundle")
	data, err := json.Marshal(map[string]any{"mcpauthz": map[string]any{"api_keys": map[string]any{hash: entry}}})
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, bundle, map[string][]byte{"authz.rego": []byte(leakPolicy), "data.json": data})

	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	logFile := filepath.Join(dir, "decisions.jsonl")
	fileLog, err := decisionlog.New(decisionlog.Options{File: logFile, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	var events lockedBuffer
	writerLog, err := decisionlog.New(decisionlog.Options{Writer: &events, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	e := engineWithAPIKeys(t, bundle, decision.Options{
		Tokens:   verifier,
		Observer: decision.Observers(metrics.New(prometheus.NewRegistry()), fileLog, writerLog),
		Logger:   logger,
	})

	const (
		queryToken  = "QueryAccessToken5ecret1"
		cookie      = "Cookie5ecret2"
		proxyAuthz  = "ProxyAuthz5ecret3"
		xAPIKey     = "XApiKey5ecret4"
		queryAPIKey = "QueryApiKey5ecret5"
		badBearer   = "BadBearer5ecret6"
	)
	secrets := map[string]string{
		"query_access_token": queryToken, "cookie": cookie, "proxy_authorization": proxyAuthz,
		"x_api_key": xAPIKey, "query_api_key": queryAPIKey, "bad_bearer": badBearer,
		"jwt": jwt, "jwt_signature": jwt[strings.LastIndexByte(jwt, '.')+1:],
		"api_key": apiKey, "api_key_body": strings.TrimPrefix(apiKey, token.APIKeyPrefix),
	}
	request := func(method, path, authz, body string) *decision.Request {
		h := map[string]string{
			"content-type":          "application/json",
			"cookie":                "session=" + cookie,
			"proxy-authorization":   "Basic " + proxyAuthz,
			"x-api-key":             xAPIKey,
			"x-envoy-original-path": path,
		}
		if authz != "" {
			h["authorization"] = authz
		}
		return &decision.Request{Method: method, Path: path, Host: "mcp.example.com", Headers: h, Body: []byte(body)}
	}
	const toolsList = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	tests := map[string]struct {
		req        *decision.Request
		allow      bool
		code       string
		status     int
		wantErrors bool
	}{
		"allowed_bearer_jwt": {
			req:   request("POST", "/mcp?api_key="+queryAPIKey, "Bearer "+jwt, toolsList),
			allow: true, code: decision.CodeAllowed,
		},
		"allowed_api_key": {
			req:   request("POST", "/mcp?trace=1", "Bearer "+apiKey, toolsList),
			allow: true, code: decision.CodeAllowed,
		},
		"refused_token_in_query": {
			req:  request("POST", "/mcp?access_token="+queryToken+"&api_key="+queryAPIKey, "Bearer "+jwt, toolsList),
			code: decision.CodePolicyDenied,
		},
		"refused_get_token_in_query": {
			req:  request("GET", "/mcp?access_token="+queryToken, "", ""),
			code: decision.CodeUnauthenticated, status: 401,
		},
		"malformed_body": {
			req:  request("POST", "/mcp?access_token="+queryToken, "Bearer "+jwt, `{"jsonrpc":"2.0","id":1,"method":`),
			code: decision.CodeParseError, status: 400,
		},
		"no_token_401": {
			req:  request("POST", "/mcp?api_key="+queryAPIKey, "", toolsList),
			code: decision.CodeUnauthenticated, status: 401,
		},
		"malformed_bearer_401": {
			req:  request("POST", "/mcp", "Bearer "+badBearer+"*", toolsList),
			code: decision.CodeUnauthenticated, status: 401,
		},
		"eval_error_reading_cookie": {
			req:  request("POST", "/mcp", "Bearer "+jwt, `{"jsonrpc":"2.0","id":1,"method":"custom/error"}`),
			code: decision.CodeEvalError, wantErrors: true,
		},
	}
	decided := 0
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := e.Decide(ctx, tc.req)
			decided++
			if d.Allow != tc.allow || d.Code != tc.code || (tc.status != 0 && d.Status != tc.status) {
				t.Fatalf("decision = allow %v code %s status %d (%s), want allow %v code %s status %d",
					d.Allow, d.Code, d.Status, d.Reason, tc.allow, tc.code, tc.status)
			}
			if tc.wantErrors && len(d.Errors) == 0 {
				t.Errorf("no evaluation error recorded")
			}
			// What goes back to the client and the errors kept for logs.
			answer := fmt.Sprintf("%s\n%s\n%v\n%v\n%v", d.Reason, d.Body, d.ResponseHeaders, d.UpstreamHeaders, d.Errors)
			for what, s := range secrets {
				if strings.Contains(answer, s) {
					t.Errorf("the decision holds the %s: %s", what, answer)
				}
			}
		})
	}
	if err := fileLog.Close(); err != nil {
		t.Fatal(err)
	}
	if err := writerLog.Close(); err != nil {
		t.Fatal(err)
	}
	fileEvents, err := os.ReadFile(logFile)
	if err != nil {
		t.Fatal(err)
	}
	written := map[string]string{"file decision log": string(fileEvents), "writer decision log": events.String(), "slog": logs.String()}
	for sink, text := range written {
		lines := strings.Split(strings.TrimSpace(text), "\n")
		if sink != "slog" && len(lines) != decided {
			t.Errorf("%s has %d events, want %d", sink, len(lines), decided)
		}
		for i, line := range lines {
			for what, s := range secrets {
				if strings.Contains(line, s) {
					t.Errorf("%s line %d holds the %s: %s", sink, i+1, what, line)
				}
			}
		}
	}
	// The logs are not empty of what matters: the erased credentials are
	// named, and the evaluation error was logged.
	if !strings.Contains(string(fileEvents), `"access_token_in_query":true`) || !strings.Contains(string(fileEvents), decision.Redacted) {
		t.Errorf("the decision log lacks the erased credentials:\n%s", fileEvents)
	}
	if !strings.Contains(logs.String(), "policy evaluation failed") {
		t.Errorf("the evaluation error was not logged:\n%s", logs.String())
	}
}

// engineWithAPIKeys builds an engine on the bundle at dir, with the API keys
// of its data indexed as the server indexes them.
func engineWithAPIKeys(t *testing.T, dir string, opts decision.Options) *decision.Engine {
	t.Helper()
	src := &decisiontest.Snapshots{}
	opts.Snapshots = src
	e, err := decision.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	rules, err := decision.RulesIn(opts.Package)
	if err != nil {
		t.Fatal(err)
	}
	// Activate indexes the API keys of the bundle's data.
	src.P, err = bundles.CompileWith(context.Background(), bundles.Options{
		Sources: []bundles.Source{bundles.DirSource(dir)},
		Queries: rules.Queries(),
	}, rules.Activate)
	if err != nil {
		t.Fatalf("compiling %s: %v", dir, err)
	}
	return e
}

func writeFiles(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}
