package decision_test

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
)

// deployCall is a 2026-07-28 tools/call of the deploy tool, whose input
// schema (testdata/paramheaders/data.json) marks region, replicas, dry_run
// and target.env with x-mcp-header.
func deployCall(args string, set map[string]string) *decision.Request {
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"deploy","arguments":` + args +
		`,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"}}}`
	r := req2026(body, map[string]string{"mcp-name": "deploy"})
	for k, v := range set {
		if v == "" {
			delete(r.Headers, k)
		} else {
			r.Headers[k] = v
		}
	}
	return r
}

// TestParamHeaders holds the Mcp-Param-{Name} rules to their exact answers.
func TestParamHeaders(t *testing.T) {
	const args = `{"region":"eu-west-1","replicas":42.0,"dry_run":false,"target":{"env":"prod"},"note":"x"}`
	all := map[string]string{"mcp-param-region": "eu-west-1", "mcp-param-replicas": "42", "mcp-param-dry-run": "false", "mcp-param-env": "prod"}
	with := func(edits map[string]string) map[string]string {
		m := map[string]string{}
		for k, v := range all {
			m[k] = v
		}
		for k, v := range edits {
			m[k] = v
		}
		return m
	}
	mismatch := func(msg string) string {
		return `{"jsonrpc":"2.0","id":7,"error":{"code":-32020,"message":"` + msg + `"}}`
	}
	tests := map[string]struct {
		opts func(*decision.Options)
		req  *decision.Request
		body string // "" allowed
	}{
		"all_headers_agree":         {req: deployCall(args, all)},
		"integer_as_float_header":   {req: deployCall(args, with(map[string]string{"mcp-param-replicas": "42.0"}))},
		"base64_value":              {req: deployCall(args, with(map[string]string{"mcp-param-region": "=?base64?ZXUtd2VzdC0x?="}))},
		"absent_argument_no_header": {req: deployCall(`{"region":"eu-west-1"}`, map[string]string{"mcp-param-region": "eu-west-1"})},
		"string_disagrees": {req: deployCall(args, with(map[string]string{"mcp-param-region": "us-east-1"})),
			body: mismatch(`mcp-param-region header \"us-east-1\" disagrees with argument region`)},
		"integer_disagrees": {req: deployCall(args, with(map[string]string{"mcp-param-replicas": "43"})),
			body: mismatch(`mcp-param-replicas header \"43\" disagrees with argument replicas`)},
		"boolean_disagrees": {req: deployCall(args, with(map[string]string{"mcp-param-dry-run": "False"})),
			body: mismatch(`mcp-param-dry-run header \"False\" disagrees with argument dry_run`)},
		"nested_disagrees": {req: deployCall(args, with(map[string]string{"mcp-param-env": "staging"})),
			body: mismatch(`mcp-param-env header \"staging\" disagrees with argument target.env`)},
		"header_missing": {req: deployCall(args, with(map[string]string{"mcp-param-env": ""})),
			body: mismatch(`the mcp-param-env header is required for argument target.env`)},
		"header_missing_not_required": {opts: func(o *decision.Options) { o.MCP.StandardHeaders = decision.Never },
			req: deployCall(args, with(map[string]string{"mcp-param-env": ""}))},
		"header_for_absent_argument": {req: deployCall(`{"region":"eu-west-1"}`, map[string]string{"mcp-param-region": "eu-west-1", "mcp-param-replicas": "1"}),
			body: mismatch(`mcp-param-replicas header sent for argument replicas, which the body does not carry`)},
		"invalid_characters": {req: deployCall(args, with(map[string]string{"mcp-param-region": "eu-wést-1"})),
			body: mismatch(`mcp-param-region header \"eu-wést-1\" is not a valid header value`)},
		"bad_base64": {req: deployCall(args, with(map[string]string{"mcp-param-region": "=?base64?***?="})),
			body: mismatch(`mcp-param-region header \"=?base64?***?=\" is not a valid header value`)},
		"unknown_tool_header_valid": {req: func() *decision.Request {
			r := deployCall(`{}`, map[string]string{"mcp-param-anything": "v"})
			r.Body = []byte(strings.Replace(string(r.Body), `"deploy"`, `"plain"`, 1))
			r.Headers["mcp-name"] = "plain"
			return r
		}()},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := decisiontest.NewEngine(t, "testdata/paramheaders", tc.opts)
			d := e.Decide(context.Background(), tc.req)
			if tc.body == "" {
				if !d.Allow {
					t.Fatalf("denied: %s %s", d.Code, d.Reason)
				}
				return
			}
			if d.Allow || d.Code != decision.CodeHintMismatch || d.Status != 400 || string(d.Body) != tc.body {
				t.Errorf("allow %v, code %s, status %d, body %s\nwant 400 hint_mismatch %s", d.Allow, d.Code, d.Status, d.Body, tc.body)
			}
		})
	}
}

// TestParamHeadersBadSchema: an x-mcp-header mcpauthz cannot use fails the
// activation, naming it, and the last good policy stays.
func TestParamHeadersBadSchema(t *testing.T) {
	tests := map[string]struct{ schema, want string }{
		"not_a_token":  {`{"properties":{"a":{"type":"string","x-mcp-header":"A B"}}}`, `property a: x-mcp-header A B is not a header name`},
		"on_an_object": {`{"properties":{"a":{"type":"object","x-mcp-header":"A"}}}`, `property a: x-mcp-header on type "object"`},
		"twice_folded": {`{"properties":{"a":{"type":"string","x-mcp-header":"A"},"b":{"properties":{"c":{"type":"string","x-mcp-header":"a"}}}}}`, `is used twice`},
		"not_a_string": {`{"properties":{"a":{"type":"string","x-mcp-header":1}}}`, `property a: x-mcp-header 1 is not a header name`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rules, err := decision.RulesIn("")
			if err != nil {
				t.Fatal(err)
			}
			fsys := fstest.MapFS{
				"authz.rego": {Data: []byte("package mcp.authz\n\ndecision := {\"allow\": true}\n")},
				"data.json":  {Data: []byte(`{"mcpauthz":{"tools":{"t":{"input_schema":` + tc.schema + `}}}}`)},
			}
			_, err = bundles.CompileWith(context.Background(), bundles.Options{
				Sources: []bundles.Source{bundles.FSSource(fsys)}, Queries: rules.Queries(),
			}, rules.Activate)
			if err == nil || !strings.Contains(err.Error(), `data.mcpauthz.tools["t"].input_schema`) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want one naming the tool and %q", err, tc.want)
			}
		})
	}
}
