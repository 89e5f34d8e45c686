package policies_test

import (
	"bytes"
	"context"
	"fmt"
	"io/fs"
	"slices"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/policies"
)

// readBundle reads the embedded bundle the way the service does.
func readBundle(t *testing.T) *bundle.Bundle {
	t.Helper()
	loader, err := bundle.NewFSLoader(policies.FS())
	if err != nil {
		t.Fatalf("creating bundle loader: %v", err)
	}
	b, err := bundle.NewCustomReader(loader).WithProcessAnnotations(true).Read()
	if err != nil {
		t.Fatalf("reading embedded bundle: %v", err)
	}
	return &b
}

func TestBundleLayout(t *testing.T) {
	b := readBundle(t)

	if b.Manifest.Revision == "" {
		t.Error("manifest has no revision")
	}
	roots := slices.Clone(*b.Manifest.Roots)
	slices.Sort(roots)
	if want := []string{"mcp/authz", "mcpauthz"}; !slices.Equal(roots, want) {
		t.Errorf("manifest roots = %v, want %v", roots, want)
	}

	// The schema must not have been taken for data: only mcpauthz.config.
	if _, ok := b.Data["schema"]; ok {
		t.Error("schema/input.json was loaded as bundle data")
	}
	top := make([]string, 0, len(b.Data))
	for k := range b.Data {
		top = append(top, k)
	}
	if !slices.Equal(top, []string{"mcpauthz"}) {
		t.Errorf("bundle data roots = %v, want [mcpauthz]", top)
	}
	cfg, ok := b.Data["mcpauthz"].(map[string]any)["config"].(map[string]any)
	if !ok {
		t.Fatal("data.mcpauthz.config missing")
	}
	for _, key := range []string{"method_scopes", "tool_scopes", "prompt_scopes", "resource_scopes", "subject_header"} {
		if _, ok := cfg[key]; !ok {
			t.Errorf("data.mcpauthz.config.%s missing", key)
		}
	}

	var tests, policy int
	for _, m := range b.Modules {
		if strings.HasSuffix(m.Path, "_test.rego") {
			tests++
		} else {
			policy++
		}
	}
	if policy == 0 || tests == 0 {
		t.Errorf("bundle has %d policy and %d test modules; want both", policy, tests)
	}

	if _, err := fs.Stat(policies.FS(), policies.InputSchemaPath); err != nil {
		t.Errorf("schema not in FS: %v", err)
	}
}

// TestRego runs every _test.rego of the bundle exactly as `mcpauthz test`
// does: the same loader, sandboxed builtins and input schema.
func TestRego(t *testing.T) {
	runRegoTests(t, ".")
}

// runRegoTests runs the Rego tests of the bundle in dir with bundles.Test
// and fails on any failed or erroring test, or when there are none.
func runRegoTests(t *testing.T, dir string) {
	t.Helper()
	var out bytes.Buffer
	passed, failed, err := bundles.Test(context.Background(), []string{dir}, &out, true, bundles.Options{InputSchema: policies.InputSchema()}, bundles.AsIs)
	t.Log(out.String())
	if err != nil {
		t.Fatalf("running rego tests: %v", err)
	}
	if failed > 0 || passed == 0 {
		t.Fatalf("rego tests: %d passed, %d failed", passed, failed)
	}
	t.Logf("PASS: %d/%d", passed, passed+failed)
}

// schemaSet parses the embedded input schema the way a compiler wants it.
func schemaSet(t *testing.T) *ast.SchemaSet {
	t.Helper()
	var schema any
	if err := util.UnmarshalJSON(policies.InputSchema(), &schema); err != nil {
		t.Fatalf("parsing input schema: %v", err)
	}
	ss := ast.NewSchemaSet()
	ss.Put(ast.SchemaRootRef, schema)
	return ss
}

func compileWithSchema(t *testing.T, modules map[string]*ast.Module) error {
	t.Helper()
	c := ast.NewCompiler().WithSchemas(schemaSet(t))
	if c.Compile(modules); c.Failed() {
		return c.Errors
	}
	return nil
}

// TestPoliciesTypeCheckAgainstSchema shows that the shipped policy (and its
// tests, whose inputs go through `with input as`) reads only what the
// contract defines.
func TestPoliciesTypeCheckAgainstSchema(t *testing.T) {
	b := readBundle(t)
	all := b.ParsedModules("policies")
	policyOnly := map[string]*ast.Module{}
	for name, m := range all {
		if !strings.HasSuffix(name, "_test.rego") {
			policyOnly[name] = m
		}
	}
	if err := compileWithSchema(t, policyOnly); err != nil {
		t.Fatalf("shipped policy does not type-check against the input schema:\n%v", err)
	}
	if err := compileWithSchema(t, all); err != nil {
		t.Fatalf("shipped policy with its tests does not type-check against the input schema:\n%v", err)
	}
}

func TestSchemaRejectsUndefinedFields(t *testing.T) {
	tests := map[string]struct {
		body    string
		wantErr bool
	}{
		"misspelt_tool_arguments":   {body: `input.mcp.tool.argument.path == "x"`, wantErr: true},
		"misspelt_token_subject":    {body: `input.token.subjet == "alice"`, wantErr: true},
		"time_from_input":           {body: `input.request_time_ns > 0`, wantErr: true},
		"unknown_http_field":        {body: `input.http.url == "/mcp"`, wantErr: true},
		"unknown_source_field":      {body: `input.source.ip == "10.0.0.1"`, wantErr: true},
		"scopes_are_strings":        {body: `input.token.scopes[_] == 3`, wantErr: true},
		"tool_arguments_are_open":   {body: `input.mcp.tool.arguments.path == "/data/x"`},
		"params_are_open":           {body: `input.mcp.params.cursor == "c"`},
		"claims_are_open":           {body: `input.token.claims.team == "blue"`},
		"headers_are_open":          {body: `input.http.headers["x-request-id"] == "r"`},
		"context_is_open":           {body: `input.context.mcp_server == "files"`},
		"id_is_number_or_string":    {body: `input.mcp.id == 1`},
		"query_params_are_lists":    {body: `input.http.query_params.page[0] == "2"`},
		"visible_item_fields":       {body: `input.item.uri == "file:///x"`},
		"session_owner_is_a_string": {body: `input.mcp.session_owner == input.token.subject`},
		"client_name":               {body: `input.mcp.client.name == "ci-bot"`},
		"misspelt_client_name":      {body: `input.mcp.client.nmae == "ci-bot"`, wantErr: true},
		"misspelt_client":           {body: `input.mcp.clientInfo.name == "ci-bot"`, wantErr: true},
		"client_capabilities_open":  {body: `input.mcp.client_capabilities.elicitation.form`},
		"meta_is_open":              {body: `input.mcp.meta.progressToken == 1`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			src := fmt.Sprintf("package mcp.authz.probe\n\nprobe if {\n\t%s\n}\n", tc.body)
			m, err := ast.ParseModuleWithOpts("probe.rego", src, ast.ParserOptions{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatalf("parsing probe: %v", err)
			}
			err = compileWithSchema(t, map[string]*ast.Module{"probe.rego": m})
			switch {
			case tc.wantErr && err == nil:
				t.Fatalf("%s compiled against the schema; want a type error", tc.body)
			case tc.wantErr && !strings.Contains(err.Error(), "type_error") && !strings.Contains(err.Error(), "undefined ref"):
				t.Fatalf("%s: want a type error, got %v", tc.body, err)
			case !tc.wantErr && err != nil:
				t.Fatalf("%s: unexpected error: %v", tc.body, err)
			}
		})
	}
}

// The schema must be valid JSON Schema as OPA reads it; a broken schema
// would make every type check vacuous.
func TestInputSchemaIsACopy(t *testing.T) {
	a := policies.InputSchema()
	a[0] = 'X'
	if b := policies.InputSchema(); b[0] != '{' {
		t.Fatal("InputSchema returned shared storage")
	}
}

// TestRegoFormatted keeps the shipped Rego in `opa fmt` form, so that users
// who run opa fmt on a copy get no spurious diff.
func TestRegoFormatted(t *testing.T) {
	names, err := fs.Glob(policies.FS(), "*.rego")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		src, err := fs.ReadFile(policies.FS(), name)
		if err != nil {
			t.Fatalf("reading %s: %v", name, err)
		}
		got, err := format.SourceWithOpts(name, src, format.Opts{RegoVersion: ast.RegoV1})
		if err != nil {
			t.Fatalf("formatting %s: %v", name, err)
		}
		if !bytes.Equal(got, src) {
			t.Errorf("%s is not in opa fmt form; formatted:\n%s", name, got)
		}
	}
}
