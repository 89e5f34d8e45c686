package bundles

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

//go:embed all:testdata/good
var embeddedGood embed.FS

func readSchema(t testing.TB) []byte {
	t.Helper()
	bs, err := os.ReadFile("testdata/schema/input.json")
	if err != nil {
		t.Fatal(err)
	}
	return bs
}

func TestCompileGoodSources(t *testing.T) {
	sub, err := fs.Sub(embeddedGood, "testdata/good")
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		source   func(t *testing.T) Source
		revision string
	}{
		"directory": {
			source:   func(*testing.T) Source { return DirSource("testdata/good") },
			revision: "good-1",
		},
		"tarball": {
			source: func(t *testing.T) Source {
				p := filepath.Join(t.TempDir(), "bundle.tar.gz")
				if err := os.WriteFile(p, tarball(t, policyFiles("tar-1")), 0o644); err != nil {
					t.Fatal(err)
				}
				return DirSource(p)
			},
			revision: "tar-1",
		},
		"embedded_fs": {
			source:   func(*testing.T) Source { return FSSource(sub, WithName("default")) },
			revision: "good-1",
		},
		"directory_without_manifest_gets_content_hash": {
			source: func(t *testing.T) Source {
				dir := t.TempDir()
				files := policyFiles("x")
				delete(files, ".manifest")
				writeTree(t, dir, files)
				return DirSource(dir)
			},
			revision: "sha256:",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := t.Context()
			snap, err := Compile(ctx, Options{Sources: []Source{tc.source(t)}, Queries: testQueries, InputSchema: readSchema(t)})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if !strings.HasPrefix(snap.Revision, tc.revision) {
				t.Errorf("revision %q, want prefix %q", snap.Revision, tc.revision)
			}
			if _, ok := snap.Query("data.mcp.authz.visible"); ok {
				t.Error("query without rules was prepared")
			}
			if _, ok := snap.Query("data.mcp.authz.allow"); !ok {
				t.Error("allow query not prepared")
			}
			d, err := evalDecision(ctx, snap, "echo")
			if err != nil {
				t.Fatal(err)
			}
			if d["allow"] != true || d["policy_rev"] != d["data_rev"] {
				t.Errorf("decision %v", d)
			}
			d, err = evalDecision(ctx, snap, "rm")
			if err != nil {
				t.Fatal(err)
			}
			if d["allow"] != false {
				t.Errorf("rm allowed: %v", d)
			}
			for _, m := range snap.Compiler.Modules {
				if strings.HasSuffix(m.Package.Location.File, "_test.rego") {
					t.Errorf("test module %s compiled into the snapshot", m.Package.Location.File)
				}
			}
		})
	}
}

func TestCompileFailures(t *testing.T) {
	priv, pub := rsaKeys(t)
	_, otherPub := rsaKeys(t)
	// verifiedBy makes the first source require signatures by key.
	verifiedBy := func(key string) func(string, *Options) {
		return func(dir string, o *Options) {
			o.Sources[0] = DirSource(dir, WithVerification(&Verification{PublicKey: key}))
		}
	}
	tests := map[string]struct {
		files map[string]string // the first source, written to a temp dir
		other map[string]string // an optional second source
		opts  func(dir string, o *Options)
		want  string // regexp the error must match; dir is %DIR%

		// activate replaces AsIs as the activation, when set.
		activate func(*Snapshot) (*Snapshot, error)
	}{
		"bad_syntax": {
			files: merge(policyFiles("a"), map[string]string{"mcp/authz/broken.rego": "package mcp.authz\n\nbroken if {\n\tinput.x ==\n"}),
			want:  `%DIR%/mcp/authz/broken\.rego:\d+: rego_parse_error`,
		},
		"unknown_input_field": {
			files: merge(policyFiles("a"), map[string]string{"mcp/authz/typo.rego": "package mcp.authz\n\nuses_arg if {\n\tinput.mcp.tool.argument.path == \"/\"\n}\n"}),
			want:  `%DIR%/mcp/authz/typo\.rego:4: rego_type_error: undefined ref: input\.mcp\.tool\.argument`,
		},
		"metadata_schema_annotation": {
			// A METADATA schema annotation narrows input further than the
			// configured schema: the rule reads a field it does not have.
			files: merge(policyFiles("a"), map[string]string{"mcp/authz/annotated.rego": "package mcp.authz\n\n# METADATA\n# schemas:\n#   - input: {\"type\": \"object\", \"properties\": {\"x\": {\"type\": \"string\"}}}\nannotated if {\n\tinput.y == 1\n}\n"}),
			want:  `%DIR%/mcp/authz/annotated\.rego:7: rego_type_error: undefined ref: input\.y`,
		},
		"dropped_builtin_http_send": {
			files: merge(policyFiles("a"), map[string]string{"mcp/authz/net.rego": "package mcp.authz\n\nremote := http.send({\"method\": \"get\", \"url\": \"http://x\"})\n"}),
			want:  `%DIR%/mcp/authz/net\.rego:3: rego_type_error: undefined function http\.send`,
		},
		"dropped_builtin_lookup_ip": {
			files: merge(policyFiles("a"), map[string]string{"mcp/authz/net.rego": "package mcp.authz\n\nips := net.lookup_ip_addr(\"example.com\")\n"}),
			want:  `%DIR%/mcp/authz/net\.rego:3: rego_type_error: undefined function net\.lookup_ip_addr`,
		},
		"bad_data": {
			files: merge(policyFiles("a"), map[string]string{"mcp/config/data.json": `{"tools": [`}),
			want:  `bundle load failed on %DIR%/mcp/config/data\.json`,
		},
		"overlapping_roots": {
			files: policyFiles("a"),
			other: map[string]string{".manifest": `{"roots": ["mcp/extra"]}`, "mcp/extra/x.rego": "package mcp.extra\n\nx := 1\n"},
			want:  `bundles %DIR% and .* have overlapping roots "mcp" and "mcp/extra"`,
		},
		"missing_manifest_root": {
			files: merge(policyFiles("a"), map[string]string{".manifest": `{"roots": ["other"]}`}),
			want:  `manifest roots \[other\] do not permit 'package mcp\.authz' in module '%DIR%/mcp/authz/policy\.rego'`,
		},
		"huge_data_file": {
			files: merge(policyFiles("a"), map[string]string{"mcp/config/data.json": `{"tools": ["` + strings.Repeat("x", 4096) + `"], "rev": "a"}`}),
			opts:  func(_ string, o *Options) { o.MaxFileBytes = 1024 },
			want:  `bundle %DIR%: .*mcp/config/data\.json size \d+ exceeds limit of 1024`,
		},
		"missing_policy_dir": {
			files: policyFiles("a"),
			opts:  func(dir string, o *Options) { o.Sources[0] = DirSource(filepath.Join(dir, "nope")) },
			want:  `bundle %DIR%/nope: stat %DIR%/nope: no such file or directory`,
		},
		"unsigned_bundle": {
			files: policyFiles("a"),
			opts:  verifiedBy(pub),
			want:  `bundle %DIR%: bundle missing \.signatures\.json file`,
		},
		"tampered_bundle": {
			files: merge(sign(t, policyFiles("a"), priv), map[string]string{"mcp/authz/policy.rego": policyRego("evil")}),
			opts:  verifiedBy(pub),
			want:  `bundle %DIR%: mcp/authz/policy\.rego: digest mismatch`,
		},
		"added_unsigned_file": {
			files: merge(sign(t, policyFiles("a"), priv), map[string]string{"mcp/authz/extra.rego": "package mcp.authz\n\nx := 1\n"}),
			opts:  verifiedBy(pub),
			want:  `file mcp/authz/extra\.rego not included in bundle signature`,
		},
		"wrong_key": {
			files: sign(t, policyFiles("a"), priv),
			opts:  verifiedBy(otherPub),
			want:  `bundle %DIR%: .*(verif|signature)`,
		},
		"derive_error": {
			files:    policyFiles("a"),
			activate: func(*Snapshot) (*Snapshot, error) { return nil, errors.New("no tool catalogue") },
			want:     `deriving from policy: no tool catalogue`,
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			writeTree(t, dir, tc.files)
			opts := Options{Sources: []Source{DirSource(dir)}, Queries: testQueries, InputSchema: readSchema(t)}
			if tc.other != nil {
				other := t.TempDir()
				writeTree(t, other, tc.other)
				opts.Sources = append(opts.Sources, DirSource(other))
			}
			if tc.opts != nil {
				tc.opts(dir, &opts)
			}
			activate := AsIs
			if tc.activate != nil {
				activate = tc.activate
			}
			snap, err := CompileWith(t.Context(), opts, activate)
			if err == nil {
				t.Fatalf("Compile succeeded with revision %q", snap.Revision)
			}
			want := strings.ReplaceAll(tc.want, "%DIR%", regexp.QuoteMeta(dir))
			if !regexp.MustCompile(want).MatchString(err.Error()) {
				t.Errorf("error\n%v\ndoes not match\n%s", err, want)
			}
		})
	}
}

func TestCompileSignedBundle(t *testing.T) {
	priv, pub := rsaKeys(t)
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, []byte(pub), 0o600); err != nil {
		t.Fatal(err)
	}
	signed := sign(t, policyFiles("signed-1"), priv)
	tests := map[string]func(t *testing.T) Source{
		"directory_inline_key": func(t *testing.T) Source {
			dir := t.TempDir()
			writeTree(t, dir, signed)
			return DirSource(dir, WithVerification(&Verification{PublicKey: pub}))
		},
		"tarball_key_file": func(t *testing.T) Source {
			p := filepath.Join(t.TempDir(), "b.tar.gz")
			if err := os.WriteFile(p, tarball(t, signed), 0o644); err != nil {
				t.Fatal(err)
			}
			return DirSource(p, WithVerification(&Verification{PublicKeyFile: keyFile}))
		},
	}
	for name, src := range tests {
		t.Run(name, func(t *testing.T) {
			snap, err := Compile(t.Context(), Options{Sources: []Source{src(t)}, Queries: testQueries})
			if err != nil {
				t.Fatalf("Compile: %v", err)
			}
			if snap.Revision != "signed-1" {
				t.Errorf("revision %q", snap.Revision)
			}
		})
	}
}

func TestCompileCombinesBundles(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	writeTree(t, a, policyFiles("a-1"))
	writeTree(t, b, map[string]string{
		".manifest":       `{"revision": "b-7", "roots": ["extra"]}`,
		"extra/x.rego":    "package extra\n\nx := data.extra.n\n",
		"extra/data.json": `{"n": 3}`,
	})
	derived := 0
	snap, err := CompileWith(t.Context(), Options{
		Sources: []Source{DirSource(a, WithName("main")), DirSource(b, WithName("extra"))},
		Queries: testQueries,
	}, func(s *Snapshot) (*Snapshot, error) { derived = len(s.Compiler.Modules); return s, nil })
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	if diff := cmp.Diff(map[string]string{"main": "a-1", "extra": "b-7"}, snap.Bundles); diff != "" {
		t.Errorf("bundles (-want +got):\n%s", diff)
	}
	if snap.Revision != "main=a-1,extra=b-7" {
		t.Errorf("revision %q", snap.Revision)
	}
	if derived != 2 {
		t.Errorf("derived %v, want 2 modules", derived)
	}
}

func TestCheck(t *testing.T) {
	bad := t.TempDir()
	writeTree(t, bad, merge(policyFiles("a"), map[string]string{"mcp/authz/typo.rego": "package mcp.authz\n\nuses_arg if input.mcp.tool.argument\n"}))
	tests := map[string]struct {
		paths []string
		want  string
	}{
		"good":           {paths: []string{"testdata/good"}},
		"type_error":     {paths: []string{bad}, want: filepath.Join(bad, "mcp/authz/typo.rego") + ":3: rego_type_error"},
		"overlap_itself": {paths: []string{"testdata/good", "testdata/good"}, want: "used twice"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := Check(t.Context(), tc.paths, Options{InputSchema: readSchema(t), Queries: testQueries}, AsIs)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestTestRunner(t *testing.T) {
	failing := t.TempDir()
	writeTree(t, failing, merge(policyFiles("a"), map[string]string{
		"mcp/authz/policy_test.rego": "package mcp.authz_test\n\nimport data.mcp.authz\n\ntest_echo_allowed if authz.allow with input as {\"mcp\": {\"method\": \"tools/call\", \"tool\": {\"name\": \"echo\"}}}\n\ntest_wrong if authz.allow with input as {\"mcp\": {\"method\": \"tools/call\", \"tool\": {\"name\": \"rm\"}}}\n",
	}))
	tests := map[string]struct {
		path           string
		verbose        bool
		passed, failed int
		out            []string
	}{
		"passing_verbose": {path: "testdata/good", verbose: true, passed: 2, out: []string{"test_allow_listed_tool: PASS", "test_deny_unlisted_tool: PASS", "PASS: 2/2"}},
		"passing_quiet":   {path: "testdata/good", passed: 2, out: []string{"PASS: 2/2"}},
		"one_failing":     {path: failing, verbose: true, passed: 1, failed: 1, out: []string{"test_wrong: FAIL", "PASS: 1/2", "FAIL: 1/2"}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var out bytes.Buffer
			passed, failed, err := Test(context.Background(), []string{tc.path}, &out, tc.verbose, Options{InputSchema: readSchema(t)}, AsIs)
			if err != nil {
				t.Fatalf("Test: %v", err)
			}
			if passed != tc.passed || failed != tc.failed {
				t.Errorf("passed %d failed %d, want %d and %d\n%s", passed, failed, tc.passed, tc.failed, out.String())
			}
			for _, s := range tc.out {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
}

func merge(a, b map[string]string) map[string]string {
	out := make(map[string]string, len(a)+len(b))
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}
