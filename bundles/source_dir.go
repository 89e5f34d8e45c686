package bundles

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/fsnotify/fsnotify"
	"github.com/open-policy-agent/opa/v1/bundle"
)

// DirSource is a bundle directory (OPA layout: .rego files, data.json or
// data.yaml at the path of their package, optional .manifest) or a .tar.gz
// bundle file at path. A Manager watches it and loads again once changes
// have settled for Options.Debounce. Its name defaults to path.
func DirSource(path string, opts ...SourceOption) Source {
	return &dirSource{sourceBase: newSourceBase(path, opts), path: path}
}

type dirSource struct {
	sourceBase
	path string
}

func (s *dirSource) open(c *compileConfig) (feed, error) {
	if err := s.check(); err != nil {
		return nil, err
	}
	return &dirFeed{src: s, c: c}, nil
}

// dirFeed reads the directory or tarball afresh at every load.
type dirFeed struct {
	src *dirSource
	c   *compileConfig
}

func (f *dirFeed) fetch(context.Context, bool) (Update, bool) { return Update{}, false }

func (f *dirFeed) read(withTests bool) (*namedBundle, error) {
	s, c := f.src, f.c
	info, err := os.Stat(s.path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", s.name, err)
	}
	if info.IsDir() {
		// Resolve a symlinked root (a ConfigMap mount's "..data", say)
		// once, so the whole load reads one version of the tree.
		root, err := filepath.EvalSymlinks(s.path)
		if err != nil {
			return nil, fmt.Errorf("bundle %s: %w", s.name, err)
		}
		return c.readBundle(s.name, s.name, newFSLoader(os.DirFS(root)), s.verification, withTests)
	}
	if !strings.HasSuffix(s.path, ".tar.gz") && !strings.HasSuffix(s.path, ".tgz") {
		return nil, fmt.Errorf("bundle %s: not a directory or a .tar.gz file", s.name)
	}
	if info.Size() > c.opts.MaxFileBytes {
		return nil, fmt.Errorf("bundle %s: size %d bytes exceeds the limit of %d bytes", s.name, info.Size(), c.opts.MaxFileBytes)
	}
	file, err := os.Open(s.path)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", s.name, err)
	}
	defer func() { _ = file.Close() }()
	if err := c.checkGzip(file); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", s.name, err)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("bundle %s: %w", s.name, err)
	}
	return c.readBundle(s.name, s.name, bundle.NewTarballLoaderWithBaseURL(file, "").WithFilter(tarFilter), s.verification, withTests)
}

// follow watches the path and delivers a change once events have been
// quiet for the debounce period. Watching starts before follow returns,
// so a change made during the first load is not missed.
func (f *dirFeed) follow(ctx context.Context, wg *sync.WaitGroup, deliver func(context.Context, Update)) {
	log := f.c.opts.Logger
	w, err := newWatcher(f.src.path, log)
	if err != nil {
		log.Error("not watching bundle files", "bundle", f.src.name, "error", err)
		return
	}
	wg.Go(func() { f.watchLoop(ctx, w, deliver) })
}

// watcher follows one source path. fsnotify is not recursive and loses a
// file's watch when the file is replaced (editors save by rename,
// Kubernetes swaps a "..data" symlink), so it watches directories: the
// parent of the source path, and every directory below a source
// directory, adding new ones as they appear. Events are filtered to the
// source path and debounced into one reload.
type watcher struct {
	fsw *fsnotify.Watcher
	// root is the absolute source path; prefixes adds the directories it
	// resolves to through symlinks, whose events count too.
	root     string
	prefixes map[string]bool
	watched  map[string]bool
	log      *slog.Logger
}

func newWatcher(path string, log *slog.Logger) (*watcher, error) {
	root, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("resolving %s: %w", path, err)
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("starting file watcher: %w", err)
	}
	w := &watcher{fsw: fsw, root: root, prefixes: map[string]bool{root: true}, watched: map[string]bool{}, log: log}
	// The parent sees the source itself created, renamed over or
	// re-pointed; it need not be a directory of ours.
	if err := w.add(filepath.Dir(root)); err != nil {
		log.Warn("cannot watch bundle parent directory; changes to the source path itself will be missed",
			"path", filepath.Dir(root), "error", err)
	}
	w.addRoot()
	return w, nil
}

func (w *watcher) add(dir string) error {
	if w.watched[dir] {
		return nil
	}
	if err := w.fsw.Add(dir); err != nil {
		return err
	}
	w.watched[dir] = true
	return nil
}

// addRoot watches the source path's directory tree, following a symlinked
// root to its target.
func (w *watcher) addRoot() {
	root := w.root
	target, err := filepath.EvalSymlinks(root)
	if err != nil {
		return // not there yet; the parent watch sees it appear
	}
	if target != root {
		w.prefixes[target] = true
	}
	info, err := os.Stat(target)
	if err != nil || !info.IsDir() {
		return // a tarball: the parent watch covers it
	}
	w.addTree(target)
}

// addTree watches dir and every real directory below it. Symlinked
// directories are not followed (the loader does not read them either),
// but the directories they point into, such as a ConfigMap's timestamped
// one, are real children and so are watched.
func (w *watcher) addTree(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking; its parent event follows
		}
		if d.IsDir() {
			if err := w.add(p); err != nil {
				w.log.Warn("cannot watch bundle directory", "path", p, "error", err)
			}
		}
		return nil
	})
}

// relevant reports whether an event concerns the source path.
func (w *watcher) relevant(name string) bool {
	for p := range w.prefixes {
		if name == p || strings.HasPrefix(name, p+string(filepath.Separator)) {
			return true
		}
	}
	return false
}

// handle updates the watches for an event and reports whether it should
// trigger a reload.
func (w *watcher) handle(ev fsnotify.Event) bool {
	if !w.relevant(ev.Name) {
		return false
	}
	// A bare attribute change (touch, chmod) does not change content.
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) {
		if ev.Name == w.root {
			// The source itself appeared or was re-pointed.
			w.addRoot()
		}
		if info, err := os.Lstat(ev.Name); err == nil && info.IsDir() {
			w.addTree(ev.Name)
		}
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// fsnotify drops the watch of a removed directory itself; forget
		// it so that a directory created again at that path is re-added.
		delete(w.watched, ev.Name)
	}
	return true
}

// watchLoop turns file events into debounced changes until ctx ends.
func (f *dirFeed) watchLoop(ctx context.Context, w *watcher, deliver func(context.Context, Update)) {
	log, wait := f.c.opts.Logger, f.c.opts.Debounce
	defer func() { _ = w.fsw.Close() }()
	debounce := time.NewTimer(time.Hour)
	debounce.Stop()
	defer debounce.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.fsw.Events:
			if !ok {
				return
			}
			if w.handle(ev) {
				log.Debug("bundle file changed", "path", ev.Name, "op", ev.Op.String())
				// Wait for the burst to settle: an editor's save or a
				// ConfigMap swap is several events.
				debounce.Reset(wait)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// An overflow means events were lost: reload to be safe.
			log.Warn("file watcher error", "bundle", f.src.name, "error", err)
			debounce.Reset(wait)
		case <-debounce.C:
			deliver(ctx, Update{Source: f.src.name, Changed: true})
		}
	}
}
