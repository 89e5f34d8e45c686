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
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/tester"
	"github.com/open-policy-agent/opa/v1/util"

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

func TestBundlesRegoTests(t *testing.T) {
	for _, dir := range bundleDirs(t) {
		t.Run(strings.ReplaceAll(dir, "-", "_"), func(t *testing.T) {
			ctx := context.Background()
			b := readBundle(t, dir)
			if b.Manifest.Revision == "" {
				t.Error("manifest has no revision")
			}
			store := inmem.NewWithOpts(inmem.OptRoundTripOnWrite(false))
			txn := storage.NewTransactionOrDie(ctx, store, storage.WriteParams)
			defer store.Abort(ctx, txn)
			ch, err := tester.NewRunner().
				SetStore(store).
				SetBundles(map[string]*bundle.Bundle{dir: b}).
				RaiseBuiltinErrors(true).
				RunTests(ctx, txn)
			if err != nil {
				t.Fatalf("running rego tests: %v", err)
			}
			var passed, total int
			for r := range ch {
				total++
				switch {
				case r.Error != nil:
					t.Errorf("%s.%s: ERROR: %v", r.Package, r.Name, r.Error)
				case r.Fail:
					t.Errorf("%s.%s: FAIL (%s)", r.Package, r.Name, r.Location)
				case r.Skip:
					t.Errorf("%s.%s: SKIPPED", r.Package, r.Name)
				default:
					passed++
					t.Logf("%s.%s: PASS", r.Package, r.Name)
				}
			}
			if total == 0 {
				t.Fatal("no rego tests found")
			}
			t.Logf("PASS: %d/%d", passed, total)
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
