package bundles

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watcher follows the local sources. fsnotify is not recursive and loses a
// file's watch when the file is replaced (editors save by rename,
// Kubernetes swaps a "..data" symlink), so it watches directories: the
// parent of every source path, and every directory below a source
// directory, adding new ones as they appear. Events are filtered to the
// source paths and debounced into one reload.
type watcher struct {
	fsw *fsnotify.Watcher
	// roots are the absolute source paths; prefixes adds the directories
	// they resolve to through symlinks, whose events count too.
	roots    []string
	prefixes map[string]bool
	watched  map[string]bool
}

// newWatcher returns nil, nil when no source is local.
func (m *Manager) newWatcher() (*watcher, error) {
	var roots []string
	for _, s := range m.cfg.opts.Sources {
		if s.Path == "" {
			continue
		}
		abs, err := filepath.Abs(s.Path)
		if err != nil {
			return nil, fmt.Errorf("resolving %s: %w", s.Path, err)
		}
		roots = append(roots, abs)
	}
	if len(roots) == 0 {
		return nil, nil
	}
	fsw, err := fsnotify.NewWatcher()
	if err != nil {
		return nil, fmt.Errorf("starting file watcher: %w", err)
	}
	w := &watcher{fsw: fsw, roots: roots, prefixes: map[string]bool{}, watched: map[string]bool{}}
	for _, r := range roots {
		w.prefixes[r] = true
		// The parent sees the source itself created, renamed over or
		// re-pointed; it need not be a directory of ours.
		if err := w.add(filepath.Dir(r)); err != nil {
			m.log.Warn("cannot watch bundle parent directory; changes to the source path itself will be missed",
				"path", filepath.Dir(r), "error", err)
		}
		w.addRoot(r, m)
	}
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

// addRoot watches a source path's directory tree, following a symlinked
// root to its target.
func (w *watcher) addRoot(root string, m *Manager) {
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
	w.addTree(target, m)
}

// addTree watches dir and every real directory below it. Symlinked
// directories are not followed (the loader does not read them either),
// but the directories they point into, such as a ConfigMap's timestamped
// one, are real children and so are watched.
func (w *watcher) addTree(dir string, m *Manager) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // vanished while walking; its parent event follows
		}
		if d.IsDir() {
			if err := w.add(p); err != nil {
				m.log.Warn("cannot watch bundle directory", "path", p, "error", err)
			}
		}
		return nil
	})
}

// relevant reports whether an event concerns a source path.
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
func (w *watcher) handle(ev fsnotify.Event, m *Manager) bool {
	if !w.relevant(ev.Name) {
		return false
	}
	// A bare attribute change (touch, chmod) does not change content.
	if ev.Op == fsnotify.Chmod {
		return false
	}
	if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Rename) {
		for _, r := range w.roots {
			if ev.Name == r {
				// The source itself appeared or was re-pointed.
				w.addRoot(r, m)
			}
		}
		if info, err := os.Lstat(ev.Name); err == nil && info.IsDir() {
			w.addTree(ev.Name, m)
		}
	}
	if ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
		// fsnotify drops the watch of a removed directory itself; forget
		// it so that a directory created again at that path is re-added.
		delete(w.watched, ev.Name)
	}
	return true
}

// watchLoop turns file events into debounced reloads until ctx ends.
func (m *Manager) watchLoop(ctx context.Context, w *watcher) {
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
			if w.handle(ev, m) {
				m.log.Debug("bundle file changed", "path", ev.Name, "op", ev.Op.String())
				// Wait for the burst to settle: an editor's save or a
				// ConfigMap swap is several events.
				debounce.Reset(m.cfg.opts.Debounce)
			}
		case err, ok := <-w.fsw.Errors:
			if !ok {
				return
			}
			// An overflow means events were lost: reload to be safe.
			m.log.Warn("file watcher error", "error", err)
			debounce.Reset(m.cfg.opts.Debounce)
		case <-debounce.C:
			_ = m.Reload(ctx) // logged and counted by Reload
		}
	}
}
