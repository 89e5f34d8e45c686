package authzen_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/authzen"
)

func newServer(t *testing.T, trust bool) *httptest.Server {
	t.Helper()
	e := decisiontest.NewEngine(t, "../../decision/testdata/policy", nil)
	mux := http.NewServeMux()
	authzen.New(e, authzen.Options{MCPEndpoint: decisiontest.Resource, TrustSubject: trust}).Register(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

// decisions posts body and returns the status and the decisions in the
// answer (one for /evaluation).
func decisions(t *testing.T, srv *httptest.Server, path, body string) (int, []bool, http.Header) {
	t.Helper()
	req, _ := http.NewRequest("POST", srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-ID", "bfe9eb29-ab87-4ca3-be83-a1d5d8305716")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return resp.StatusCode, nil, resp.Header
	}
	var out struct {
		Decision    *bool `json:"decision"`
		Evaluations []struct {
			Decision *bool `json:"decision"`
		} `json:"evaluations"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	var got []bool
	if out.Decision != nil {
		got = append(got, *out.Decision)
	}
	for _, e := range out.Evaluations {
		if e.Decision == nil {
			t.Fatalf("an evaluation has no decision")
		}
		got = append(got, *e.Decision)
	}
	return resp.StatusCode, got, resp.Header
}

// The spec's own examples (Authorization API 1.0, HTTPS binding and
// evaluations sections): they are not MCP requests, so every decision is
// false, but each must be read and answered in the right shape.
const (
	specEvaluation = `{"subject": {"type": "user", "id": "alice@acmecorp.com"},
		"resource": {"type": "todo", "id": "1"}, "action": {"name": "can_read"},
		"context": {"time": "1985-10-26T01:22-07:00"}}`
	specEvaluationsDefaults = `{"subject": {"type": "user", "id": "alice@acmecorp.com"},
		"context": {"time": "2024-05-31T15:22-07:00"}, "action": {"name": "can_read"},
		"evaluations": [
			{"resource": {"type": "document", "id": "boxcarring.md"}},
			{"resource": {"type": "document", "id": "subject-search.md"}},
			{"action": {"name": "can_edit"}, "resource": {"type": "document", "id": "resource-search.md"}}]}`
	specDenyOnFirstDeny = `{"subject": {"type": "user", "id": "alice@example.com"}, "action": {"name": "read"},
		"options": {"evaluations_semantic": "deny_on_first_deny"},
		"evaluations": [{"resource": {"type": "document", "id": "1"}}, {"resource": {"type": "document", "id": "2"}},
			{"resource": {"type": "document", "id": "3"}}]}`
)

// MCP-shaped evaluations: alice may read under /data/ with her scopes.
const (
	aliceSubject = `{"type": "user", "id": "alice", "properties": {"scope": "mcp:tools files:read"}}`
	readAllowed  = `{"action": {"name": "tools/call"}, "resource": {"type": "tool", "id": "read_file"}, "context": {"path": "/data/q3.csv"}}`
	readDenied   = `{"action": {"name": "tools/call"}, "resource": {"type": "tool", "id": "read_file"}, "context": {"path": "/etc/passwd"}}`
)

func TestEvaluation(t *testing.T) {
	srv := newServer(t, true)
	tests := map[string]struct {
		path   string
		body   string
		status int
		want   []bool
	}{
		"spec_evaluation":                {path: authzen.EvaluationPath, body: specEvaluation, status: 200, want: []bool{false}},
		"spec_evaluations_defaults":      {path: authzen.EvaluationsPath, body: specEvaluationsDefaults, status: 200, want: []bool{false, false, false}},
		"spec_deny_on_first_deny":        {path: authzen.EvaluationsPath, body: specDenyOnFirstDeny, status: 200, want: []bool{false}},
		"spec_evaluation_on_evaluations": {path: authzen.EvaluationsPath, body: specEvaluation, status: 200, want: []bool{false}},
		"mcp_allowed": {
			path: authzen.EvaluationPath, status: 200, want: []bool{true},
			body: `{"subject": ` + aliceSubject + `, "action": {"name": "tools/call"}, "resource": {"type": "tool", "id": "read_file"}, "context": {"path": "/data/q3.csv"}}`,
		},
		"mcp_denied_by_argument": {
			path: authzen.EvaluationPath, status: 200, want: []bool{false},
			body: `{"subject": ` + aliceSubject + `, "action": {"name": "tools/call"}, "resource": {"type": "tool", "id": "read_file"}, "context": {"path": "/etc/passwd"}}`,
		},
		"execute_all": {
			path: authzen.EvaluationsPath, status: 200, want: []bool{true, false, true},
			body: `{"subject": ` + aliceSubject + `, "evaluations": [` + readAllowed + `,` + readDenied + `,` + readAllowed + `]}`,
		},
		"deny_on_first_deny": {
			path: authzen.EvaluationsPath, status: 200, want: []bool{true, false},
			body: `{"subject": ` + aliceSubject + `, "options": {"evaluations_semantic": "deny_on_first_deny"}, "evaluations": [` + readAllowed + `,` + readDenied + `,` + readAllowed + `]}`,
		},
		"permit_on_first_permit": {
			path: authzen.EvaluationsPath, status: 200, want: []bool{false, true},
			body: `{"subject": ` + aliceSubject + `, "options": {"evaluations_semantic": "permit_on_first_permit"}, "evaluations": [` + readDenied + `,` + readAllowed + `,` + readDenied + `]}`,
		},
		"bad_entry_is_closed": {
			path: authzen.EvaluationsPath, status: 200, want: []bool{false, true},
			body: `{"subject": ` + aliceSubject + `, "evaluations": [{"action": {"name": "tools/call"}, "resource": {"type": "prompt", "id": "x"}},` + readAllowed + `]}`,
		},
		"missing_subject":  {path: authzen.EvaluationPath, status: 400, body: `{"action": {"name": "ping"}, "resource": {"type": "server", "id": "x"}}`},
		"wrong_resource":   {path: authzen.EvaluationPath, status: 400, body: `{"subject": ` + aliceSubject + `, "action": {"name": "tools/call"}, "resource": {"type": "document", "id": "x"}}`},
		"not_json":         {path: authzen.EvaluationPath, status: 400, body: `{"subject": `},
		"unknown_semantic": {path: authzen.EvaluationsPath, status: 400, body: `{"subject": ` + aliceSubject + `, "options": {"evaluations_semantic": "maybe"}, "evaluations": [` + readAllowed + `]}`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			status, got, hdr := decisions(t, srv, tc.path, tc.body)
			if status != tc.status {
				t.Fatalf("status %d, want %d", status, tc.status)
			}
			if hdr.Get("X-Request-ID") != "bfe9eb29-ab87-4ca3-be83-a1d5d8305716" {
				t.Errorf("X-Request-ID not echoed")
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("decisions (-want +got):\n%s", diff)
			}
		})
	}
}

// TestUntrustedSubject: without TrustSubject, a subject without a token is
// unauthenticated, whatever properties it claims.
func TestUntrustedSubject(t *testing.T) {
	srv := newServer(t, false)
	body := `{"subject": ` + aliceSubject + `, "action": {"name": "tools/call"}, "resource": {"type": "tool", "id": "read_file"}, "context": {"path": "/data/q3.csv"}}`
	_, got, _ := decisions(t, srv, authzen.EvaluationPath, body)
	if len(got) != 1 || got[0] {
		t.Errorf("got %v, want [false]", got)
	}
}

func TestMetadata(t *testing.T) {
	srv := newServer(t, false)
	resp, err := srv.Client().Get(srv.URL + authzen.MetadataPath)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var md map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&md); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"policy_decision_point":       srv.URL,
		"access_evaluation_endpoint":  srv.URL + "/access/v1/evaluation",
		"access_evaluations_endpoint": srv.URL + "/access/v1/evaluations",
	}
	if diff := cmp.Diff(want, md); diff != "" {
		t.Errorf("metadata (-want +got):\n%s", diff)
	}
}

// TestOneReading: AuthZEN bodies are read with the rules every MCP body is
// read with (issue 28 row 5): each of these was decided (true, for most)
// when encoding/json read them, keeping the last duplicate, matching names
// case-insensitively and replacing invalid UTF-8.
func TestOneReading(t *testing.T) {
	srv := newServer(t, true)
	call := func(resource, context string) string {
		return `{"subject": ` + aliceSubject + `, "action": {"name": "tools/call"}, "resource": ` + resource + `, "context": ` + context + `}`
	}
	readFile := `{"type": "tool", "id": "read_file"}`
	tests := map[string]struct {
		path, body, reason string
	}{
		"duplicate_in_context": {authzen.EvaluationPath, call(readFile, `{"path": "/etc/passwd", "path": "/data/x"}`),
			`two members named "path"`},
		"case_folded_resource_id": {authzen.EvaluationPath, call(`{"type": "tool", "id": "delete_all", "ID": "read_file"}`, `{"path": "/data/q3.csv"}`),
			`two members named "id"`},
		"case_variant_alone": {authzen.EvaluationPath, call(`{"type": "tool", "ID": "read_file"}`, `{"path": "/data/q3.csv"}`),
			`member resource."ID" is not "id"`},
		"case_variant_of_subject": {authzen.EvaluationPath, `{"Subject": ` + aliceSubject + `, "action": {"name": "ping"}, "resource": {"type": "server", "id": "x"}}`,
			`member "Subject" is not "subject"`},
		"case_variant_in_evaluations": {authzen.EvaluationsPath, `{"subject": ` + aliceSubject + `, "evaluations": [` + readAllowed + `, {"Action": {"name": "tools/call"}}]}`,
			`member evaluations.1."Action" is not "action"`},
		"invalid_utf8":   {authzen.EvaluationPath, call(readFile, "{\"path\": \"/data/\xff\"}"), "invalid UTF-8"},
		"lone_surrogate": {authzen.EvaluationPath, call(readFile, `{"path": "/data/\ud800"}`), "lone surrogate"},
		"duplicated_token": {authzen.EvaluationPath, `{"subject": {"type": "user", "id": "alice", "properties": {"token": "a", "token": "b"}}, "action": {"name": "ping"}, "resource": {"type": "server", "id": "x"}}`,
			`two members named "token"`},
		"duplicated_scope": {authzen.EvaluationPath, `{"subject": {"type": "user", "id": "alice", "properties": {"scope": "none", "scope": "mcp:tools files:read"}}, "action": {"name": "tools/call"}, "resource": ` + readFile + `, "context": {"path": "/data/q3.csv"}}`,
			`two members named "scope"`},
		"nul_in_name": {authzen.EvaluationPath, call(readFile, `{"path\u0000": "/etc/passwd", "path": "/data/x"}`), "control character"},
		"number_rule": {authzen.EvaluationPath, call(readFile, `{"path": "/data/q3.csv", "limit": 99.99999999999999999999}`),
			"the number 99.99999999999999999999 is not exactly a double"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+tc.path, strings.NewReader(tc.body))
			req.Header.Set("Content-Type", "application/json")
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			msg, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusBadRequest || !strings.Contains(string(msg), tc.reason) {
				t.Fatalf("status %d %q, want 400 saying %q", resp.StatusCode, msg, tc.reason)
			}
		})
	}
}
