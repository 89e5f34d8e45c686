package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/fsnotify/fsnotify"
)

// watchDebounce is the quiet period after a change before tests run again
// (an editor's save is often several events).
const watchDebounce = 200 * time.Millisecond

// watchTests runs once, then again after each change to a .rego, data or
// manifest file under paths, until ctx ends. fsnotify watches directories,
// not files (editors replace files by renaming), each one: it is not
// recursive.
func watchTests(ctx context.Context, paths []string, stdout, stderr io.Writer, runOnce func()) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	for _, p := range paths {
		err := filepath.WalkDir(p, func(path string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return w.Add(path)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("watching %s: %w", p, err)
		}
	}
	runOnce()
	fmt.Fprintln(stderr, "watching for changes; interrupt to stop")
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-w.Errors:
			fmt.Fprintln(stderr, "watch:", err)
		case ev := <-w.Events:
			if ev.Op&fsnotify.Create != 0 {
				if info, err := os.Stat(ev.Name); err == nil && info.IsDir() {
					_ = w.Add(ev.Name)
				}
			}
			if policyFile(ev.Name) {
				timer = time.After(watchDebounce)
			}
		case <-timer:
			timer = nil
			fmt.Fprintf(stdout, "\n%s: files changed, running the tests again\n", time.Now().Format(time.TimeOnly))
			runOnce()
		}
	}
}

// policyFile reports whether a change to name can change a test run.
func policyFile(name string) bool {
	base := filepath.Base(name)
	return strings.HasSuffix(base, ".rego") || base == "data.json" || base == "data.yaml" || base == ".manifest"
}
