package bundles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/cover"
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
// results as `opa test` does (see TestWith); verbose prints every test.
func Test[T any](ctx context.Context, paths []string, w io.Writer, verbose bool, opts Options, activate func(*Snapshot) (T, error)) (passed, failed int, err error) {
	sum, err := TestWith(ctx, paths, w, TestOptions{Verbose: verbose}, opts, activate)
	return sum.Passed, sum.Failed, err
}

// TestOptions choose which tests run and how their results are written.
type TestOptions struct {
	// Verbose prints every test, and the trace of each failure.
	Verbose bool
	// Run is a regular expression: only tests whose full name
	// (data.pkg.test_name) matches it run (OPA's --run).
	Run string
	// Format is "pretty" (default: OPA's text report, with the failing
	// expression and its location and each test's print() output) or
	// "json" (OPA's JSON results; with Coverage, OPA's coverage report).
	Format string
	// Coverage measures which lines of the policy (not of the test files)
	// the tests evaluated.
	Coverage bool
	// Threshold is the coverage, in percent, below which Summary.BelowThreshold
	// is set; it turns Coverage on.
	Threshold float64
	// Timeout bounds each test's evaluation (OPA's --timeout); 0 keeps OPA's
	// default of 5 s, which a slow or heavily loaded machine can exceed.
	Timeout time.Duration
}

// TestSummary counts the results of TestWith.
type TestSummary struct {
	Passed, Failed int
	// Coverage is the percentage of policy lines evaluated, with
	// TestOptions.Coverage.
	Coverage       float64
	BelowThreshold bool
}

// TestWith runs the *_test.rego rules of the bundles at paths with OPA's
// tester and writes the results in the order of their files and lines,
// whatever order they ran in. Policies are compiled and activated as at
// run time, with the same capabilities and input schema. err reports a
// bundle that does not load, not failing tests.
func TestWith[T any](ctx context.Context, paths []string, w io.Writer, to TestOptions, opts Options, activate func(*Snapshot) (T, error)) (sum TestSummary, err error) {
	switch to.Format {
	case "", "pretty", "json":
	default:
		return sum, fmt.Errorf("format %q is not pretty or json", to.Format)
	}
	if to.Threshold < 0 || to.Threshold > 100 {
		return sum, fmt.Errorf("coverage threshold %v is not between 0 and 100", to.Threshold)
	}
	if to.Run != "" {
		if _, err := regexp.Compile(to.Run); err != nil {
			return sum, fmt.Errorf("--run: %w", err)
		}
	}
	c, err := newCompileConfig(withPaths(paths, opts))
	if err != nil {
		return sum, err
	}
	bs, err := c.readOnce(ctx, true)
	if err != nil {
		return sum, err
	}
	// Compile first with the production pipeline, so a broken bundle is
	// reported as Check reports it rather than as a test failure.
	snap, err := c.build(ctx, bs)
	if err != nil {
		return sum, err
	}
	if _, err := activateSnapshot(snap, activate); err != nil {
		return sum, err
	}
	// The runner compiles the parsed modules again with its own test
	// stages, using a fresh compiler with the same settings.
	modules := map[string]*ast.Module{}
	for _, nb := range bs {
		for _, m := range nb.b.Modules {
			modules[m.Path] = m.Parsed
		}
	}
	// The library the production compile added, for the tests to see it too.
	if err := addLibrary(modules); err != nil {
		return sum, err
	}
	txn, err := snap.Store.NewTransaction(ctx, storage.TransactionParams{})
	if err != nil {
		return sum, fmt.Errorf("opening data store: %w", err)
	}
	defer snap.Store.Abort(ctx, txn)

	// Tracing gives the failing expression and its location; print()
	// output is kept with each result.
	runner := tester.NewRunner().
		SetCompiler(c.newCompiler().WithEnablePrintStatements(true)).
		SetStore(snap.Store).
		SetModules(modules).
		RaiseBuiltinErrors(true).
		CapturePrintOutput(true).
		EnableTracing(true).
		Filter(to.Run)
	if to.Timeout > 0 {
		runner = runner.SetTimeout(to.Timeout)
	}
	var cov *cover.Cover
	if to.Coverage || to.Threshold > 0 {
		cov = cover.New()
		runner = runner.SetCoverageQueryTracer(cov)
	}
	ch, err := runner.RunTests(ctx, txn)
	if err != nil {
		return sum, fmt.Errorf("running tests: %w", err)
	}
	var results []*tester.Result
	for r := range ch {
		results = append(results, r)
		if r.Pass() {
			sum.Passed++
		} else if !r.Skip {
			sum.Failed++
		}
	}
	sortResults(results)
	if to.Format == "json" && !to.Verbose {
		for _, r := range results {
			r.Trace = nil // kept for the failing expression of the text report
		}
	}

	ordered := make(chan *tester.Result, len(results))
	for _, r := range results {
		ordered <- r
	}
	close(ordered)
	var rep tester.Reporter = tester.PrettyReporter{Output: w, Verbose: to.Verbose, FailureLine: true, LocalVars: true}
	var report cover.Report
	if cov != nil {
		policy := map[string]*ast.Module{}
		for path, m := range modules {
			if !strings.HasSuffix(path, "_test.rego") {
				policy[path] = m
			}
		}
		report = policyCoverage(cov.Report(policy))
		sum.Coverage = report.Coverage
		sum.BelowThreshold = report.Coverage < to.Threshold
	}
	switch {
	case to.Format == "json" && cov != nil:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		if err := enc.Encode(report); err != nil {
			return sum, err
		}
	case to.Format == "json":
		rep = tester.JSONReporter{Output: w}
		fallthrough
	default:
		if err := rep.Report(ordered); err != nil {
			return sum, fmt.Errorf("reporting test results: %w", err)
		}
		if cov != nil {
			writeCoverage(w, report, to.Threshold)
		}
	}
	if sum.Passed+sum.Failed == 0 {
		if to.Run != "" {
			return sum, fmt.Errorf("no tests match --run %q", to.Run)
		}
		return sum, errors.New("no tests found")
	}
	return sum, nil
}

// sortResults orders results by file, line and name: the tester runs
// tests in parallel, and its order changes from run to run.
func sortResults(rs []*tester.Result) {
	sort.SliceStable(rs, func(i, j int) bool {
		a, b := rs[i], rs[j]
		if a.Location != nil && b.Location != nil {
			if a.Location.File != b.Location.File {
				return a.Location.File < b.Location.File
			}
			if a.Location.Row != b.Location.Row {
				return a.Location.Row < b.Location.Row
			}
		}
		if a.Package != b.Package {
			return a.Package < b.Package
		}
		return a.Name < b.Name
	})
}

// policyCoverage drops the test files from a coverage report (the tracer
// records them too) and recomputes the totals over the policy files.
func policyCoverage(r cover.Report) cover.Report {
	r.CoveredLines, r.NotCoveredLines, r.Coverage = 0, 0, 0
	for f, fr := range r.Files {
		if strings.HasSuffix(f, "_test.rego") {
			delete(r.Files, f)
			continue
		}
		r.CoveredLines += fr.CoveredLines
		r.NotCoveredLines += fr.NotCoveredLines
	}
	if total := r.CoveredLines + r.NotCoveredLines; total > 0 {
		r.Coverage = 100 * float64(r.CoveredLines) / float64(total)
	}
	return r
}

// writeCoverage writes the coverage of each policy file with the lines
// no test evaluated, then the total.
func writeCoverage(w io.Writer, report cover.Report, threshold float64) {
	files := make([]string, 0, len(report.Files))
	for f := range report.Files {
		files = append(files, f)
	}
	sort.Strings(files)
	fmt.Fprintln(w, "COVERAGE")
	for _, f := range files {
		fr := report.Files[f]
		line := fmt.Sprintf("  %s: %.1f%%", f, fr.Coverage)
		if len(fr.NotCovered) > 0 {
			var rs []string
			seen := map[string]bool{}
			for _, r := range fr.NotCovered {
				rng := strconv.Itoa(r.Start.Row)
				if r.Start.Row != r.End.Row {
					rng = fmt.Sprintf("%d-%d", r.Start.Row, r.End.Row)
				}
				if !seen[rng] {
					seen[rng] = true
					rs = append(rs, rng)
				}
			}
			line += " (not covered: lines " + strings.Join(rs, ", ") + ")"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "coverage: %.1f%%", report.Coverage)
	if threshold > 0 {
		if report.Coverage < threshold {
			fmt.Fprintf(w, ", below the threshold of %.1f%%", threshold)
		} else {
			fmt.Fprintf(w, " (threshold %.1f%%)", threshold)
		}
	}
	fmt.Fprintln(w)
}
