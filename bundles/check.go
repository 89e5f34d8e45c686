package bundles

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
	"github.com/open-policy-agent/opa/v1/tester"
)

// withPaths returns opts with one source per path (directory or .tar.gz),
// replacing opts.Sources; with no paths, opts.Sources stay.
func withPaths(paths []string, opts Options) Options {
	if len(paths) == 0 {
		return opts
	}
	opts.Sources = make([]Source, len(paths))
	for i, p := range paths {
		opts.Sources[i] = DirSource(p)
	}
	return opts
}

// Check reads, compiles and activates the bundles at paths exactly as a
// Manager would (same capabilities, input schema, root checks, queries and
// activation), test files included. The error lists every problem as
// file:line: message.
func Check[T any](ctx context.Context, paths []string, opts Options, activate func(*Snapshot) (T, error)) error {
	c, err := newCompileConfig(withPaths(paths, opts))
	if err != nil {
		return err
	}
	snap, err := c.compileOnce(ctx, true)
	if err != nil {
		return err
	}
	_, err = activateSnapshot(snap, activate)
	return err
}

// Test runs the *_test.rego rules of the bundles at paths and writes the
// results as `opa test` does (PASS/FAIL per test with verbose, failures in
// detail, then a "PASS: n/m" or "FAIL: n/m" summary). Policies are
// compiled and activated as at run time, with the same capabilities and
// input schema. err reports a bundle that does not load, not failing
// tests.
func Test[T any](ctx context.Context, paths []string, w io.Writer, verbose bool, opts Options, activate func(*Snapshot) (T, error)) (passed, failed int, err error) {
	c, err := newCompileConfig(withPaths(paths, opts))
	if err != nil {
		return 0, 0, err
	}
	bs, err := c.readOnce(ctx, true)
	if err != nil {
		return 0, 0, err
	}
	// Compile first with the production pipeline, so a broken bundle is
	// reported as Check reports it rather than as a test failure.
	snap, err := c.build(ctx, bs)
	if err != nil {
		return 0, 0, err
	}
	if _, err := activateSnapshot(snap, activate); err != nil {
		return 0, 0, err
	}
	// The runner compiles the parsed modules again with its own test
	// stages, using a fresh compiler with the same settings.
	modules := map[string]*ast.Module{}
	for _, nb := range bs {
		for _, m := range nb.b.Modules {
			modules[m.Path] = m.Parsed
		}
	}
	txn, err := snap.Store.NewTransaction(ctx, storage.TransactionParams{})
	if err != nil {
		return 0, 0, fmt.Errorf("opening data store: %w", err)
	}
	defer snap.Store.Abort(ctx, txn)

	runner := tester.NewRunner().
		SetCompiler(c.newCompiler()).
		SetStore(snap.Store).
		SetModules(modules).
		RaiseBuiltinErrors(true)
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return 0, 0, fmt.Errorf("running tests: %w", err)
	}

	counted := make(chan *tester.Result)
	done := make(chan error, 1)
	go func() {
		done <- tester.PrettyReporter{Output: w, Verbose: verbose}.Report(counted)
	}()
	for r := range ch {
		if r.Pass() {
			passed++
		} else if !r.Skip {
			failed++
		}
		counted <- r
	}
	close(counted)
	if rerr := <-done; rerr != nil {
		return passed, failed, fmt.Errorf("reporting test results: %w", rerr)
	}
	if passed+failed == 0 {
		return 0, 0, errors.New("no tests found")
	}
	return passed, failed, nil
}
