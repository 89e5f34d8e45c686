// Package requests_test checks the sample requests for `mcpauthz eval
// --request`: each is well formed, and each gets the decision its name
// promises from the default policy and from the parameter-rules example.
//
// The input is built here by a small stand-in for the engine's own input
// builder, following the input contract in docs/policies.md; it exists so
// that the samples and the example policies cannot drift apart.
package requests_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/mcpauthz/mcpauthz/policies"
)

// sample is the --request file format.
type sample struct {
	HTTP struct {
		Method  string            `json:"method"`
		Path    string            `json:"path"`
		Host    string            `json:"host"`
		Headers map[string]string `json:"headers"`
	} `json:"http"`
	Body    json.RawMessage   `json:"body"`
	RawBody *string           `json:"raw_body"`
	Claims  map[string]any    `json:"claims"`
	Context map[string]string `json:"context"`
}

func readSample(t *testing.T, path string) sample {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v", path, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var s sample
	if err := dec.Decode(&s); err != nil {
		t.Fatalf("decoding %s: %v", path, err)
	}
	if s.HTTP.Method == "" || s.HTTP.Path == "" || s.HTTP.Host == "" {
		t.Fatalf("%s: http.method, http.path and http.host are required", path)
	}
	if s.Body != nil && s.RawBody != nil {
		t.Fatalf("%s: body and raw_body are exclusive", path)
	}
	return s
}

// input builds the policy input for s, as the engine would.
func input(t *testing.T, s sample) map[string]any {
	t.Helper()
	headers := map[string]any{}
	for k, v := range s.HTTP.Headers {
		if k != strings.ToLower(k) {
			t.Fatalf("header %q is not lower-case", k)
		}
		if k != "authorization" {
			headers[k] = v
		}
	}
	in := map[string]any{
		"http": map[string]any{
			"method": s.HTTP.Method, "path": s.HTTP.Path, "query": "",
			"host": s.HTTP.Host, "headers": headers,
		},
		"token":   token(s.Claims),
		"source":  map[string]any{"address": "127.0.0.1"},
		"context": map[string]any{},
	}
	for k, v := range s.Context {
		in["context"].(map[string]any)[k] = v
	}
	body := []byte(s.Body)
	if s.RawBody != nil {
		body = []byte(*s.RawBody)
	}
	if len(body) == 0 {
		if s.HTTP.Method == "POST" {
			t.Fatal("a POST sample needs a body")
		}
		return in
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var msg map[string]any
	if err := dec.Decode(&msg); err != nil {
		t.Fatalf("body is not one JSON-RPC object: %v", err)
	}
	if msg["jsonrpc"] != "2.0" {
		t.Fatalf("body is not JSON-RPC 2.0: %v", msg["jsonrpc"])
	}
	m := map[string]any{}
	method, hasMethod := msg["method"].(string)
	id, hasID := msg["id"]
	switch {
	case hasMethod && hasID:
		m["kind"], m["method"], m["id"] = "request", method, id
	case hasMethod:
		m["kind"], m["method"] = "notification", method
	case hasID:
		m["kind"], m["id"] = "response", id
	default:
		t.Fatal("body has neither method nor id")
	}
	params, _ := msg["params"].(map[string]any)
	if params != nil {
		m["params"] = params
	}
	switch method {
	case "tools/call", "prompts/get":
		named := map[string]any{"name": params["name"]}
		if a, ok := params["arguments"]; ok {
			named["arguments"] = a
		}
		m[map[string]string{"tools/call": "tool", "prompts/get": "prompt"}[method]] = named
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		m["resource"] = map[string]any{"uri": params["uri"]}
	}
	if v, ok := headers["mcp-session-id"]; ok {
		m["session_id"] = v
	}
	if v, ok := headers["mcp-protocol-version"]; ok {
		m["protocol_version"] = v
	}
	in["mcp"] = m
	return in
}

// token treats claims as an already verified JWT.
func token(claims map[string]any) map[string]any {
	if claims == nil {
		return map[string]any{"present": false, "valid": false, "error": "missing", "scopes": []any{}}
	}
	scopes := []any{}
	if s, ok := claims["scope"].(string); ok {
		for _, f := range strings.Fields(s) {
			scopes = append(scopes, f)
		}
	}
	tok := map[string]any{"present": true, "valid": true, "type": "jwt", "claims": claims, "scopes": scopes}
	if sub, ok := claims["sub"].(string); ok {
		tok["subject"] = sub
	}
	if cid, ok := claims["client_id"].(string); ok {
		tok["client_id"] = cid
	}
	return tok
}

type decision struct {
	Allow   bool              `json:"allow"`
	Reason  string            `json:"reason"`
	Scopes  []string          `json:"scopes"`
	Status  int               `json:"status"`
	Headers map[string]string `json:"headers"`
}

func prepare(t *testing.T, name string, loader bundle.DirectoryLoader) rego.PreparedEvalQuery {
	t.Helper()
	b, err := bundle.NewCustomReader(loader).Read()
	if err != nil {
		t.Fatalf("reading bundle %s: %v", name, err)
	}
	pq, err := rego.New(
		rego.Query("data.mcp.authz.decision"),
		rego.ParsedBundle(name, &b),
		rego.StrictBuiltinErrors(true),
	).PrepareForEval(context.Background())
	if err != nil {
		t.Fatalf("preparing %s: %v", name, err)
	}
	return pq
}

func decide(t *testing.T, pq rego.PreparedEvalQuery, in map[string]any) decision {
	t.Helper()
	rs, err := pq.Eval(context.Background(), rego.EvalInput(in))
	if err != nil {
		t.Fatalf("evaluating: %v", err)
	}
	if len(rs) != 1 || len(rs[0].Expressions) != 1 {
		t.Fatalf("want one decision, got %v", rs)
	}
	raw, err := json.Marshal(rs[0].Expressions[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	var d decision
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("decision %s: %v", raw, err)
	}
	return d
}

// outcome is what a sample should get from one policy.
type outcome struct {
	allow  bool
	reason string   // substring of the deny reason
	scopes []string // nil: not checked
}

func (o outcome) check(d decision) error {
	if d.Allow != o.allow {
		return fmt.Errorf("allow = %v (reason %q), want %v", d.Allow, d.Reason, o.allow)
	}
	if !o.allow && !strings.Contains(d.Reason, o.reason) {
		return fmt.Errorf("reason %q does not contain %q", d.Reason, o.reason)
	}
	if !o.allow && d.Reason == "" {
		return fmt.Errorf("deny without a reason")
	}
	if o.scopes != nil && !slices.Equal(d.Scopes, o.scopes) {
		return fmt.Errorf("scopes = %v, want %v", d.Scopes, o.scopes)
	}
	if o.allow && d.Headers["x-mcp-subject"] != "alice" {
		return fmt.Errorf("headers = %v, want x-mcp-subject: alice", d.Headers)
	}
	return nil
}

func TestSamples(t *testing.T) {
	defaultPolicy, err := bundle.NewFSLoader(policies.FS())
	if err != nil {
		t.Fatal(err)
	}
	def := prepare(t, "policies", defaultPolicy)
	params := prepare(t, "parameter-rules", bundle.NewDirectoryLoader("../bundles/parameter-rules"))

	allow := outcome{allow: true}
	tests := map[string]struct {
		defaultPolicy, parameterRules outcome
	}{
		"initialize":                      {allow, allow},
		"tools-list":                      {allow, allow},
		"notification-initialized":        {allow, allow},
		"raw-body-ping":                   {allow, allow},
		"get-stream":                      {allow, allow},
		"delete-session":                  {allow, allow},
		"tools-call-read-file-allowed":    {outcome{allow: true, scopes: []string{"mcp:tools"}}, allow},
		"tools-call-read-file-denied":     {allow, outcome{reason: `read_file: path "/etc/passwd" is not a plain path under /data/`}},
		"tools-call-query-select-allowed": {allow, allow},
		"tools-call-query-drop-denied":    {allow, outcome{reason: "statements may not be chained"}},
		"tools-call-transfer-over-limit":  {allow, outcome{reason: `amount 750 exceeds the limit of 500 for team "support"`}},
		"tools-call-step-up":              {allow, outcome{reason: "needs scope(s) mcp:tools payments:write", scopes: []string{"mcp:tools", "payments:write"}}},
		"tools-call-no-token":             {outcome{reason: "authentication required", scopes: []string{"mcp:tools"}}, outcome{reason: "authentication required", scopes: []string{"mcp:tools"}}},
		"resources-read-no-scope":         {outcome{reason: "needs scope(s) mcp:resources", scopes: []string{"mcp:resources"}}, outcome{reason: "needs scope(s) mcp:resources"}},
	}

	files, err := filepath.Glob("*.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		if _, ok := tests[strings.TrimSuffix(f, ".json")]; !ok {
			t.Errorf("sample %s has no expected outcome in this test", f)
		}
	}
	for name, tc := range tests {
		t.Run(strings.ReplaceAll(name, "-", "_"), func(t *testing.T) {
			in := input(t, readSample(t, name+".json"))
			if err := tc.defaultPolicy.check(decide(t, def, in)); err != nil {
				t.Errorf("default policy: %v", err)
			}
			if err := tc.parameterRules.check(decide(t, params, in)); err != nil {
				t.Errorf("parameter-rules: %v", err)
			}
		})
	}
}
