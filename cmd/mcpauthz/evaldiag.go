package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/topdown"
	"github.com/open-policy-agent/opa/v1/topdown/lineage"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
)

// diagnostics evaluates the policy a second time for a person: compiled
// with its print() calls (which the server's compile erases), their
// output and OPA's explanation (--explain) written to stderr.
type diagnostics struct {
	cfg     *Config
	explain string
	stderr  io.Writer

	snap  *bundles.Snapshot
	query string
}

// load compiles the configured bundles with print statements kept and
// chooses the query the engine asks: decision if defined, else allow.
func (d *diagnostics) load(ctx context.Context) error {
	if d.snap != nil {
		return nil
	}
	rules, err := decision.RulesIn(d.cfg.Policy.Package)
	if err != nil {
		return err
	}
	sources, err := bundleSources(d.cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return err
	}
	opts := bundleOptions(d.cfg, sources, rules.Queries(), slog.New(slog.DiscardHandler), nil)
	opts.PrintStatements = true
	snap, err := bundles.Compile(ctx, opts)
	if err != nil {
		return fmt.Errorf("loading policy: %w", err)
	}
	d.snap = snap
	qs := rules.Queries()
	d.query = qs[1] // allow
	if _, ok := snap.Query(qs[0]); ok {
		d.query = qs[0] // decision
	}
	return nil
}

// evaluate evaluates the query on input, writing print() output and the
// explanation to stderr, and returns the query's value (nil: undefined).
func (d *diagnostics) evaluate(ctx context.Context, input ast.Value) (any, error) {
	if err := d.load(ctx); err != nil {
		return nil, err
	}
	buf := topdown.NewBufferTracer()
	opts := []func(*rego.Rego){
		rego.Query(d.query),
		rego.Compiler(d.snap.Compiler),
		rego.Store(d.snap.Store),
		rego.StoreReadAST(true),
		rego.ParsedInput(input),
		rego.EnablePrintStatements(true),
		rego.PrintHook(topdown.NewPrintHook(d.stderr)),
	}
	if d.explain != "" {
		opts = append(opts, rego.QueryTracer(buf))
	}
	rs, err := rego.New(opts...).Eval(ctx)
	if d.explain != "" {
		trace := []*topdown.Event(*buf)
		switch d.explain {
		case "notes":
			trace = lineage.Notes(trace)
		case "fails":
			trace = lineage.Fails(trace)
		default:
			trace = lineage.Full(trace)
		}
		fmt.Fprintf(d.stderr, "explanation of %s (%s):\n", d.query, d.explain)
		topdown.PrettyTraceWithLocation(d.stderr, trace)
	}
	if err != nil {
		return nil, fmt.Errorf("evaluating %s: %w", d.query, err)
	}
	if len(rs) == 0 || len(rs[0].Expressions) == 0 {
		return nil, nil
	}
	return rs[0].Expressions[0].Value, nil
}

// evalInputFile evaluates the policy on a policy input written by hand.
func evalInputFile(ctx context.Context, ef *evalFlags, diag *diagnostics, stdout io.Writer) error {
	b, err := os.ReadFile(ef.inputFile)
	if err != nil {
		return fmt.Errorf("reading input: %w", err)
	}
	in, err := ast.ValueFromReader(strings.NewReader(string(b)))
	if err != nil {
		return fmt.Errorf("input file %s: %w", ef.inputFile, err)
	}
	return writeInputResult(ctx, ef, diag, in, stdout)
}

// writeInputResult evaluates the policy's query on a policy input and
// prints the result (eval --input-file).
func writeInputResult(ctx context.Context, ef *evalFlags, diag *diagnostics, in ast.Value, stdout io.Writer) error {
	v, err := diag.evaluate(ctx, in)
	if err != nil {
		return err
	}
	allow := v == true
	if m, ok := v.(map[string]any); ok {
		allow = m["allow"] == true
	}
	out := struct {
		Query  string `json:"query"`
		Allow  bool   `json:"allow"`
		Result any    `json:"result"`
	}{diag.query, allow, v}
	switch ef.format {
	case "raw":
		fmt.Fprintln(stdout, allow)
	case "pretty":
		verdict := "DENY"
		if allow {
			verdict = "ALLOW"
		}
		res, _ := json.MarshalIndent(v, "", "  ")
		if v == nil {
			res = []byte("undefined (denied)")
		}
		fmt.Fprintf(stdout, "%s\n%s = %s\n", verdict, diag.query, res)
	default:
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(out); err != nil {
			return err
		}
	}
	if ef.fail && !allow {
		return exitError{code: 1}
	}
	return nil
}

// writeDecision writes eval's decision in the chosen format.
func writeDecision(w io.Writer, format string, out evalOutput) error {
	switch format {
	case "raw":
		_, err := fmt.Fprintln(w, out.Allow)
		return err
	case "pretty":
		var b strings.Builder
		if out.Allow {
			b.WriteString("ALLOW")
		} else {
			fmt.Fprintf(&b, "DENY %d %s", out.Status, out.Code)
		}
		fmt.Fprintf(&b, "  (decision %s, revision %s)\n", out.DecisionID, out.Revision)
		if out.Reason != "" {
			fmt.Fprintf(&b, "reason:   %s\n", out.Reason)
		}
		if len(out.Scopes) > 0 {
			fmt.Fprintf(&b, "scopes:   %s\n", strings.Join(out.Scopes, " "))
		}
		if t := out.Token; t != nil {
			fmt.Fprintf(&b, "token:    present=%v valid=%v", t["present"], t["valid"])
			for _, k := range []string{"error", "subject", "scopes"} {
				if v, ok := t[k]; ok {
					fmt.Fprintf(&b, " %s=%v", k, v)
				}
			}
			b.WriteString("\n")
		}
		for _, h := range sortedHeaders(out.UpstreamHeaders) {
			fmt.Fprintf(&b, "upstream: %s\n", h)
		}
		for _, h := range sortedHeaders(out.ResponseHeaders) {
			fmt.Fprintf(&b, "response: %s\n", h)
		}
		if len(out.Body) > 0 {
			fmt.Fprintf(&b, "body:     %s\n", out.Body)
		}
		for _, e := range out.Errors {
			fmt.Fprintf(&b, "error:    %s\n", e)
		}
		if out.Logged != nil {
			fmt.Fprintf(&b, "logged:   %s\n", resultText(*out.Logged))
		}
		_, err := io.WriteString(w, b.String())
		return err
	default:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(out)
	}
}

func sortedHeaders(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+": "+v)
	}
	sort.Strings(out)
	return out
}
