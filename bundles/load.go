package bundles

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/storage/inmem"
	"github.com/open-policy-agent/opa/v1/util"

	"github.com/mcpauthz/mcpauthz/policies"
)

// droppedBuiltins are left out of the compiler's capabilities, so a policy
// calling one fails at load. They reach the network (http.send,
// net.lookup_ip_addr), expose the process's environment and configuration
// (opa.runtime), or parse arbitrary Rego at decision time
// (rego.parse_module). The pure net.cidr_* helpers stay: they are useful
// for address rules and touch nothing outside the policy.
var droppedBuiltins = map[string]bool{
	"http.send":          true,
	"net.lookup_ip_addr": true,
	"opa.runtime":        true,
	"rego.parse_module":  true,
}

// Capabilities returns the sandboxed capabilities every policy is compiled
// with: this OPA version's builtins minus the dropped ones, and no network
// access for remote JSON Schema references.
func Capabilities() *ast.Capabilities {
	caps := ast.CapabilitiesForThisVersion()
	caps.Builtins = slices.DeleteFunc(caps.Builtins, func(b *ast.Builtin) bool { return droppedBuiltins[b.Name] })
	caps.AllowNet = []string{}
	return caps
}

// isBundleFile reports whether the loader reads a file of this name; any
// other file is skipped so that editor swap files, READMEs and the like
// neither fail a load nor count against the size limit.
func isBundleFile(name string) bool {
	switch name {
	case ".manifest", ".signatures.json", "data.json", "data.yaml", "data.yml", "patch.json",
		bundle.WasmFile, bundle.PlanFile:
		return true
	}
	return strings.HasSuffix(name, bundle.RegoExt)
}

// dirFilter returns an OPA loader filter that skips (true) what is not part of
// the bundle: Kubernetes ConfigMap internals ("..data", "..2024_...": the
// visible files are symlinks into them, so reading both would load every
// module twice), symlinks to directories (not followed) and non-bundle
// files.
func dirFilter(fsys fs.FS) func(string, fs.FileInfo, int) bool {
	return func(p string, info fs.FileInfo, _ int) bool {
		base := path.Base(p)
		if strings.HasPrefix(base, "..") {
			return true
		}
		if info.IsDir() {
			return false
		}
		if info.Mode()&fs.ModeSymlink != 0 {
			target, err := fs.Stat(fsys, p)
			if err != nil || target.IsDir() {
				return true
			}
		}
		return !isBundleFile(base)
	}
}

// tarFilter skips non-bundle files in a tarball, as dirFilter does.
func tarFilter(p string, info fs.FileInfo, _ int) bool {
	return !info.IsDir() && !isBundleFile(path.Base(p))
}

// bundleRoot is where rootedFS shows the bundle's files.
const bundleRoot = "bundle"

// rootedFS shows an fs.FS under the directory bundleRoot. OPA's FS loader
// strips the root's name from every path, and with the root "." it also
// strips the dot of ".signatures.json", so signed bundles would not verify;
// a named root avoids that.
type rootedFS struct{ inner fs.FS }

func (r rootedFS) Open(name string) (fs.File, error) {
	if name == bundleRoot {
		return r.inner.Open(".")
	}
	if rest, ok := strings.CutPrefix(name, bundleRoot+"/"); ok {
		return r.inner.Open(rest)
	}
	return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
}

// newFSLoader returns OPA's loader for a bundle directory tree.
func newFSLoader(fsys fs.FS) bundle.DirectoryLoader {
	rooted := rootedFS{inner: fsys}
	return bundle.NewFSLoaderWithRoot(rooted, bundleRoot).
		WithFilter(dirFilter(rooted)).
		WithFollowSymlinks(true)
}

// readTarball reads and verifies a bundle tarball held in memory (a
// download). base names the bundle's files in error messages.
func (c *compileConfig) readTarball(name, base string, raw []byte, v *Verification, withTests bool) (*namedBundle, error) {
	if err := c.checkGzip(bytes.NewReader(raw)); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", name, err)
	}
	// The loader's base URL stays empty: OPA verifies signatures against
	// file URLs when a base directory is set, and those must be the paths
	// inside the bundle.
	return c.readBundle(name, base, bundle.NewTarballLoaderWithBaseURL(bytes.NewReader(raw), "").WithFilter(tarFilter), v, withTests)
}

// readBundle reads and verifies one bundle through loader, with the
// sandboxed capabilities and size limits every source shares, and gives
// it its revision. Test modules (*_test.rego) are kept only when
// withTests is set.
func (c *compileConfig) readBundle(name, base string, loader bundle.DirectoryLoader, v *Verification, withTests bool) (*namedBundle, error) {
	loader = loader.WithSizeLimitBytes(c.opts.MaxFileBytes)
	r := bundle.NewCustomReader(loader).
		WithBaseDir(base).
		WithBundleName(name).
		WithProcessAnnotations(true).
		WithCapabilities(c.caps).
		WithSizeLimitBytes(c.opts.MaxFileBytes).
		WithRegoVersion(ast.RegoV1)
	if v != nil {
		vc, err := v.config()
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", name, err)
		}
		r = r.WithBundleVerificationConfig(vc)
	} else {
		// Without a configured key a .signatures.json is ignored rather
		// than refused, as OPA does with --skip-verify.
		r = r.WithSkipBundleVerification(true)
	}
	b, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", name, err)
	}
	if !withTests {
		b.Modules = slices.DeleteFunc(b.Modules, func(m bundle.ModuleFile) bool {
			return strings.HasSuffix(m.Path, "_test.rego")
		})
	}
	rev, err := revisionOf(&b)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", name, err)
	}
	return &namedBundle{name: name, revision: rev, b: &b}, nil
}

// maxExpansion times MaxFileBytes bounds what checkGzip decompresses of
// one tarball: a stream that expands further is refused, not read on.
const maxExpansion = 64

// checkGzip reads a tarball's gzip stream to its end and reports whether
// it is whole. OPA's tar reader stops at the archive's end marker and never
// reads the gzip trailer, whose CRC-32 and length are the stream's only
// integrity check: without this, a download cut in its last bytes, or
// corrupted in a way deflate does not notice, would load.
func (c *compileConfig) checkGzip(r io.Reader) error {
	zr, err := gzip.NewReader(r)
	if err != nil {
		return fmt.Errorf("reading tarball: %w", err)
	}
	limit := maxExpansion * c.opts.MaxFileBytes
	n, err := io.Copy(io.Discard, io.LimitReader(zr, limit+1))
	if err != nil {
		return fmt.Errorf("reading tarball: %w", err)
	}
	if n > limit {
		return fmt.Errorf("reading tarball: decompresses to more than %d bytes", limit)
	}
	return nil
}

// revisionOf returns the manifest revision, else a short content hash of
// the modules and data, so that every snapshot has a revision to report.
func revisionOf(b *bundle.Bundle) (string, error) {
	if b.Manifest.Revision != "" {
		return b.Manifest.Revision, nil
	}
	h := sha256.New()
	mods := slices.Clone(b.Modules)
	slices.SortFunc(mods, func(x, y bundle.ModuleFile) int { return strings.Compare(x.Path, y.Path) })
	for _, m := range mods {
		h.Write([]byte(m.Path))
		h.Write([]byte{0})
		h.Write(m.Raw)
		h.Write([]byte{0})
	}
	// encoding/json sorts map keys, so equal data hashes equally.
	if err := json.NewEncoder(h).Encode(b.Data); err != nil {
		return "", fmt.Errorf("hashing data: %w", err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16], nil
}

// fileHashes hashes each module and each bundle's data of bs, keyed
// "<bundle>/<path>" and "<bundle>/data".
func fileHashes(bs []namedBundle) map[string]string {
	out := map[string]string{}
	for _, nb := range bs {
		for _, m := range nb.b.Modules {
			sum := sha256.Sum256(m.Raw)
			out[nb.name+"/"+strings.TrimPrefix(m.Path, "/")] = hex.EncodeToString(sum[:8])
		}
		h := sha256.New()
		// encoding/json sorts map keys, so equal data hashes equally.
		if err := json.NewEncoder(h).Encode(nb.b.Data); err == nil {
			out[nb.name+"/data"] = hex.EncodeToString(h.Sum(nil)[:8])
		}
	}
	return out
}

// changedFiles names the entries of fileHashes that differ between old
// and cur (added, removed or edited), sorted.
func changedFiles(old, cur map[string]string) []string {
	var out []string
	for k, v := range cur {
		if old[k] != v {
			out = append(out, k)
		}
	}
	for k := range old {
		if _, ok := cur[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// filesHash is a short hash of all of fileHashes.
func filesHash(files map[string]string) string {
	keys := make([]string, 0, len(files))
	for k := range files {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		h.Write([]byte(k + "\x00" + files[k] + "\x00"))
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))[:16]
}

// compileConfig holds what every load needs, computed once from Options.
type compileConfig struct {
	opts    Options
	caps    *ast.Capabilities
	schemas *ast.SchemaSet
	queries []queryRef
	// feeds are the sources opened for this Manager or Compile, in the
	// order of Options.Sources.
	feeds []feed
}

type queryRef struct {
	text string
	ref  ast.Ref
}

func parseQueryRef(q string) (ast.Ref, error) {
	ref, err := ast.ParseRef(q)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if !ref.HasPrefix(ast.DefaultRootRef) {
		return nil, fmt.Errorf("query %q: must be a ref under data", q)
	}
	return ref, nil
}

func newCompileConfig(opts Options) (*compileConfig, error) {
	opts = opts.withDefaults()
	if err := opts.validate(); err != nil {
		return nil, err
	}
	c := &compileConfig{opts: opts, caps: Capabilities()}
	if len(opts.InputSchema) > 0 {
		var schema any
		if err := util.UnmarshalJSON(opts.InputSchema, &schema); err != nil {
			return nil, fmt.Errorf("parsing input schema: %w", err)
		}
		c.schemas = ast.NewSchemaSet()
		c.schemas.Put(ast.SchemaRootRef, schema)
	}
	for _, q := range opts.Queries {
		ref, err := parseQueryRef(q)
		if err != nil {
			return nil, err
		}
		c.queries = append(c.queries, queryRef{text: q, ref: ref})
	}
	for _, s := range opts.Sources {
		f, err := s.open(c)
		if err != nil {
			return nil, err
		}
		c.feeds = append(c.feeds, f)
	}
	return c, nil
}

// namedBundle is a source read into memory, with its revision.
type namedBundle struct {
	name     string
	revision string
	b        *bundle.Bundle
}

// checkRoots refuses bundles whose manifest roots overlap, naming both
// bundles; OPA's merge would say only which roots collide.
func checkRoots(bs []namedBundle) error {
	for i := range bs {
		for j := i + 1; j < len(bs); j++ {
			for _, ra := range *bs[i].b.Manifest.Roots {
				for _, rb := range *bs[j].b.Manifest.Roots {
					if !bundle.RootPathsOverlap(ra, rb) {
						continue
					}
					err := fmt.Errorf("bundles %s and %s have overlapping roots %q and %q", bs[i].name, bs[j].name, ra, rb)
					// OPA gives a bundle whose manifest names no roots (or
					// that has no manifest) the root "": every path.
					for _, nb := range []namedBundle{bs[i], bs[j]} {
						if r := *nb.b.Manifest.Roots; len(r) == 1 && r[0] == "" {
							err = fmt.Errorf("%w (%s has no manifest roots, so it owns every root: list its roots in its .manifest)", err, nb.name)
						}
					}
					return err
				}
			}
		}
	}
	return nil
}

// build compiles read bundles into a snapshot: merged modules type-checked
// against the input schema with the sandboxed capabilities, data in an AST
// store, the configured queries prepared.
func (c *compileConfig) build(ctx context.Context, bs []namedBundle) (*Snapshot, error) {
	if err := checkRoots(bs); err != nil {
		return nil, err
	}
	list := make([]*bundle.Bundle, len(bs))
	revs := make(map[string]string, len(bs))
	for i, nb := range bs {
		list[i] = nb.b
		revs[nb.name] = nb.revision
	}
	merged, err := bundle.Merge(list)
	if err != nil {
		return nil, fmt.Errorf("combining bundles: %w", err)
	}

	modules := make(map[string]*ast.Module, len(merged.Modules))
	for _, m := range merged.Modules {
		if _, dup := modules[m.Path]; dup {
			return nil, fmt.Errorf("two modules named %s", m.Path)
		}
		modules[m.Path] = m.Parsed
	}
	if err := addLibrary(modules); err != nil {
		return nil, err
	}
	comp := c.newCompiler()
	comp.Compile(modules)
	if comp.Failed() {
		return nil, fmt.Errorf("compiling policy: %w", comp.Errors)
	}

	store, err := newStore(ctx, merged.Data)
	if err != nil {
		return nil, err
	}

	snap := &Snapshot{
		Revision: combinedRevision(bs),
		LoadedAt: c.opts.Now(),
		Compiler: comp,
		Store:    store,
		Bundles:  revs,
		queries:  make(map[string]*rego.PreparedEvalQuery, len(c.queries)),
		files:    fileHashes(bs),
	}
	for _, q := range c.queries {
		if len(comp.GetRules(q.ref)) == 0 {
			continue
		}
		pq, err := rego.New(
			rego.Query(q.text),
			rego.Compiler(comp),
			rego.Store(store),
			rego.StoreReadAST(true),
			rego.StrictBuiltinErrors(true),
		).PrepareForEval(ctx)
		if err != nil {
			return nil, fmt.Errorf("preparing query %s: %w", q.text, err)
		}
		snap.queries[q.text] = &pq
	}
	return snap, nil
}

// addLibrary adds to modules each package of mcpauthz's Rego library
// (policies.Library: data.mcpauthz.lib.secrets) that one of them refers
// to and none of them defines: a bundle overrides a library package by
// defining it, and one that does not use it compiles as it is.
func addLibrary(modules map[string]*ast.Module) error {
	for pkg, file := range policies.LibraryPackages() {
		defined, used := false, false
		for _, m := range modules {
			p := m.Package.Path.String()
			defined = defined || p == pkg || strings.HasPrefix(p, pkg+".")
			ast.WalkRefs(m, func(r ast.Ref) bool {
				s := r.String()
				// The package, a rule in it, or a document holding it.
				used = used || s == pkg || strings.HasPrefix(s, pkg+".") || strings.HasPrefix(s, pkg+"[") || strings.HasPrefix(pkg, s+".")
				return used
			})
		}
		if defined || !used {
			continue
		}
		src, err := policies.Library(file)
		if err != nil {
			return fmt.Errorf("reading the embedded library %s: %w", file, err)
		}
		name := "mcpauthz-library:" + file
		m, err := ast.ParseModuleWithOpts(name, string(src), ast.ParserOptions{RegoVersion: ast.RegoV1})
		if err != nil {
			return fmt.Errorf("parsing the embedded library %s: %w", file, err)
		}
		modules[name] = m
	}
	return nil
}

func (c *compileConfig) newCompiler() *ast.Compiler {
	comp := ast.NewCompiler().
		WithCapabilities(c.caps).
		WithDefaultRegoVersion(ast.RegoV1).
		WithUseTypeCheckAnnotations(true).
		WithEnablePrintStatements(c.opts.PrintStatements)
	if c.schemas != nil {
		comp = comp.WithSchemas(c.schemas)
	}
	return comp
}

// newStore puts data in an in-memory store that hands AST values back to
// evaluation, so no conversion happens per decision.
func newStore(ctx context.Context, data map[string]any) (storage.Store, error) {
	store := inmem.NewWithOpts(inmem.OptReturnASTValuesOnRead(true))
	if data == nil {
		data = map[string]any{}
	}
	txn, err := store.NewTransaction(ctx, storage.WriteParams)
	if err != nil {
		return nil, fmt.Errorf("opening data store: %w", err)
	}
	if err := store.Write(ctx, txn, storage.AddOp, storage.RootPath, data); err != nil {
		store.Abort(ctx, txn)
		return nil, fmt.Errorf("writing data: %w", err)
	}
	if err := store.Commit(ctx, txn); err != nil {
		return nil, fmt.Errorf("committing data: %w", err)
	}
	return store, nil
}

// combinedRevision is the single bundle's revision, or "name=rev" pairs in
// source order when several bundles are combined.
func combinedRevision(bs []namedBundle) string {
	if len(bs) == 1 {
		return bs[0].revision
	}
	parts := make([]string, len(bs))
	for i, nb := range bs {
		parts[i] = nb.name + "=" + nb.revision
	}
	return strings.Join(parts, ",")
}

// readAll reads every feed: local ones from where they are, downloading
// ones as last downloaded.
func (c *compileConfig) readAll(withTests bool) ([]namedBundle, error) {
	out := make([]namedBundle, 0, len(c.feeds))
	for _, f := range c.feeds {
		nb, err := f.read(withTests)
		if err != nil {
			return nil, err
		}
		out = append(out, *nb)
	}
	return out, nil
}

// Compile reads, verifies and compiles all sources once. Sources that
// download do so once, without polling.
func Compile(ctx context.Context, opts Options) (*Snapshot, error) {
	return CompileWith(ctx, opts, AsIs)
}

// CompileWith is Compile followed by activate, as a Manager activates each
// snapshot before it swaps it in: an activation error fails the compile.
func CompileWith[T any](ctx context.Context, opts Options, activate func(*Snapshot) (T, error)) (T, error) {
	var zero T
	c, err := newCompileConfig(opts)
	if err != nil {
		return zero, err
	}
	snap, err := c.compileOnce(ctx, false)
	if err != nil {
		return zero, err
	}
	return activateSnapshot(snap, activate)
}

func (c *compileConfig) compileOnce(ctx context.Context, withTests bool) (*Snapshot, error) {
	bs, err := c.readOnce(ctx, withTests)
	if err != nil {
		return nil, err
	}
	return c.build(ctx, bs)
}

// activateSnapshot runs a caller's activation on a compiled snapshot.
func activateSnapshot[T any](snap *Snapshot, activate func(*Snapshot) (T, error)) (T, error) {
	state, err := activate(snap)
	if err != nil {
		var zero T
		// "Deriving": what the caller builds is derived from the policy.
		return zero, fmt.Errorf("deriving from policy: %w", err)
	}
	return state, nil
}

// readOnce reads every source, downloading those that download once.
func (c *compileConfig) readOnce(ctx context.Context, withTests bool) ([]namedBundle, error) {
	for _, f := range c.feeds {
		u, downloads := f.fetch(ctx, withTests)
		if !downloads {
			continue
		}
		if u.Err != nil {
			return nil, u.Err
		}
		if !u.Changed {
			return nil, errNotModifiedFirst
		}
	}
	return c.readAll(withTests)
}
