package decision

import (
	"context"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// paths lists what n says the policy reads, as dotted paths ("*" = all).
func (n *inputNeeds) paths(prefix string) []string {
	if n.all {
		return []string{prefix + "*"}
	}
	var out []string
	for k, c := range n.children {
		out = append(out, c.paths(prefix+k+".")...)
	}
	sort.Strings(out)
	return out
}

func TestPolicyInputNeeds(t *testing.T) {
	tests := map[string]struct {
		rego string
		want []string
	}{
		"plain_refs": {
			rego: `allow if { input.mcp.method == "ping"; input.token.valid }`,
			want: []string{"mcp.method.*", "token.valid.*"},
		},
		"prefix_absorbs_longer": {
			rego: "allow if { input.http.headers.x == \"1\"; count(input.http) > 0 }",
			want: []string{"http.*"},
		},
		"variable_index_reads_below": {
			rego: `allow if { some k; input.context[k] == "x" }`,
			want: []string{"context.*"},
		},
		"index_by_other_input": {
			rego: `allow if { data.t[input.mcp.method]; input.mcp.tool.name }`,
			want: []string{"mcp.method.*", "mcp.tool.name.*"},
		},
		"whole_input": {
			rego: `allow if { object.get(input, ["mcp", "method"], "") == "ping" }`,
			want: []string{"*"},
		},
		"whole_input_by_variable_key": {
			rego: `allow if { some k; input[k] }`,
			want: []string{"*"},
		},
		"with_target_is_not_a_read": {
			rego: `allow if { input.token.valid }
x if { allow with input as {"token": {"valid": true}} }`,
			want: []string{"token.valid.*"},
		},
		"membership_and_every": {
			rego: `allow if { "a" in input.token.scopes; every s in input.mcp.tool.arguments.list { s } }`,
			want: []string{"mcp.tool.arguments.list.*", "token.scopes.*"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := ast.MustCompileModules(map[string]string{"p.rego": "package p\n" + tc.rego})
			got := policyInputNeeds(c).paths("")
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("needs (-want +got):\n%s", diff)
			}
		})
	}
}

// TestPrunedInputDecidesAlike checks on every test policy that the input
// built for the policy's needs gets the same decision as the whole input.
func TestPrunedInputDecidesAlike(t *testing.T) {
	bodies := []string{
		`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.csv"}}}`,
		`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/etc/passwd"}}}`,
		`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`,
		`{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		`[{"jsonrpc":"2.0","id":4,"method":"ping"},{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"query","arguments":{"sql":"select 1"}}}]`,
	}
	for _, dir := range []string{"testdata/policy", "testdata/bench", "testdata/allow_only", examplePolicy, "../policies"} {
		t.Run(strings.ReplaceAll(strings.Trim(dir, "./"), "/", "_"), func(t *testing.T) {
			full := newTestEngine(t, dir, true)
			pruned := newTestEngine(t, dir, false)
			for i, b := range bodies {
				for _, r := range []*Request{testRequest(b, "/mcp"), testRequest(b, "/mcp?access_token=x")} {
					want, got := full.Decide(t.Context(), r), pruned.Decide(t.Context(), r)
					want.ResponseHeaders, want.UpstreamHeaders = withoutIDHeader(want.ResponseHeaders), withoutIDHeader(want.UpstreamHeaders)
					got.ResponseHeaders, got.UpstreamHeaders = withoutIDHeader(got.ResponseHeaders), withoutIDHeader(got.UpstreamHeaders)
					want.ID, got.ID = "", ""
					if diff := cmp.Diff(want, got); diff != "" {
						t.Errorf("body %d %s: decision (-full +pruned):\n%s", i, r.Path, diff)
					}
				}
			}
		})
	}
}

// inputReader is an observer that reads the input, so the engine builds
// all of it.
type inputReader struct{}

func (inputReader) Observe(context.Context, *Request, *Decision, ast.Value, time.Duration) {}
func (inputReader) ObservesInput() bool                                                    { return true }

func newTestEngine(t testing.TB, dir string, full bool) *Engine {
	t.Helper()
	src := &fixedSnapshots{}
	opts := Options{Snapshots: src, MetadataURL: oauth.MetadataURL(workload.Audience)}
	if full {
		opts.Observer = inputReader{}
	}
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	if e.fullInput != full {
		t.Fatalf("fullInput = %v, want %v", e.fullInput, full)
	}
	rules, err := RulesIn(opts.Package)
	if err != nil {
		t.Fatal(err)
	}
	if src.p, err = bundles.CompileWith(context.Background(), bundles.Options{Sources: []bundles.Source{bundles.DirSource(dir)}, Queries: rules.Queries()}, rules.Activate); err != nil {
		t.Fatalf("compiling %s: %v", dir, err)
	}
	return e
}

func testRequest(body, path string) *Request {
	return &Request{
		Method: "POST", Path: path, Host: "MCP.example.com",
		Headers: map[string]string{"content-type": "application/json", "x-team": "blue"},
		Body:    []byte(body),
		Context: map[string]string{"mcp_server": "files"},
		Credential: token.Claimed(map[string]any{
			"iss": workload.Issuer, "aud": workload.Audience, "sub": "alice",
			"scope": "mcp:tools files:read", "exp": float64(time.Now().Add(time.Hour).Unix()),
		}),
		SourceAddress: "10.0.0.1:1234",
	}
}

// withoutIDHeader is hs without the decision id header, whose value
// differs between two engines.
func withoutIDHeader(hs []Header) []Header {
	var out []Header
	for _, h := range hs {
		if h.Name != DecisionIDHeader {
			out = append(out, h)
		}
	}
	return out
}
