// Package bundles_test checks the example policy bundles: they load as OPA
// bundles, their Rego tests pass, they type-check against mcpauthz's input
// schema, and they are in `opa fmt` form.
package bundles_test

import (
	"bytes"
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/format"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/policies"
)

// bundleDirs lists every example bundle: each directory here with a .manifest.
func bundleDirs(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir(".")
	if err != nil {
		t.Fatalf("listing example bundles: %v", err)
	}
	var dirs []string
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(e.Name(), ".manifest")); err == nil {
			dirs = append(dirs, e.Name())
		}
	}
	if len(dirs) == 0 {
		t.Fatal("no example bundles found")
	}
	return dirs
}

func readBundle(t *testing.T, dir string) *bundle.Bundle {
	t.Helper()
	b, err := bundle.NewCustomReader(bundle.NewDirectoryLoader(dir)).Read()
	if err != nil {
		t.Fatalf("reading bundle %s: %v", dir, err)
	}
	return &b
}

// TestBundlesRegoTests runs each example bundle's _test.rego files exactly
// as `mcpauthz test` does.
func TestBundlesRegoTests(t *testing.T) {
	for _, dir := range bundleDirs(t) {
		t.Run(strings.ReplaceAll(dir, "-", "_"), func(t *testing.T) {
			if b := readBundle(t, dir); b.Manifest.Revision == "" {
				t.Error("manifest has no revision")
			}
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
		})
	}
}

func TestBundlesTypeCheckAgainstInputSchema(t *testing.T) {
	var schema any
	if err := util.UnmarshalJSON(policies.InputSchema(), &schema); err != nil {
		t.Fatalf("parsing input schema: %v", err)
	}
	for _, dir := range bundleDirs(t) {
		t.Run(strings.ReplaceAll(dir, "-", "_"), func(t *testing.T) {
			ss := ast.NewSchemaSet()
			ss.Put(ast.SchemaRootRef, schema)
			c := ast.NewCompiler().WithSchemas(ss)
			if c.Compile(readBundle(t, dir).ParsedModules(dir)); c.Failed() {
				t.Fatalf("bundle %s does not type-check against the input schema:\n%v", dir, c.Errors)
			}
		})
	}
}

func TestBundlesFormatted(t *testing.T) {
	for _, dir := range bundleDirs(t) {
		names, err := fs.Glob(os.DirFS(dir), "*.rego")
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range names {
			src, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatalf("reading %s: %v", name, err)
			}
			got, err := format.SourceWithOpts(name, src, format.Opts{RegoVersion: ast.RegoV1})
			if err != nil {
				t.Fatalf("formatting %s/%s: %v", dir, name, err)
			}
			if !bytes.Equal(got, src) {
				t.Errorf("%s/%s is not in opa fmt form; formatted:\n%s", dir, name, got)
			}
		}
	}
}
