package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/spf13/cobra"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/internal/requestfile"
)

// evalOutput is what eval prints.
type evalOutput struct {
	DecisionID      string            `json:"decision_id"`
	Allow           bool              `json:"allow"`
	Code            string            `json:"code"`
	Reason          string            `json:"reason,omitempty"`
	Scopes          []string          `json:"scopes,omitempty"`
	Revision        string            `json:"revision"`
	Status          int               `json:"status,omitempty"`
	ResponseHeaders map[string]string `json:"response_headers,omitempty"`
	Body            json.RawMessage   `json:"body,omitempty"`
	UpstreamHeaders map[string]string `json:"upstream_headers,omitempty"`
	// RateLimit is the decision's rate_limit, as Envoy's rate limit filter
	// reads it (dynamic metadata rate_limit.<name>).
	RateLimit map[string]string `json:"rate_limit,omitempty"`
	Token     map[string]any    `json:"token"`
	Errors    []string          `json:"errors,omitempty"`
	// Logged is the result the decision log recorded, beside the result
	// of deciding its input again (--decision-log).
	Logged *decisionlog.Result `json:"logged,omitempty"`
}

// evalFlags are eval's own flags.
type evalFlags struct {
	serveFlags
	request   string
	inputFile string
	bearer    string
	showInput bool
	format    string
	fail      bool
	explain   string
	stdin     io.Reader // --request -
	// contexts are --context key=value: the route context Envoy's
	// context_extensions (or upstream.context under proxy) would give.
	contexts []string
	// decisionLog and id name a logged decision to decide again.
	decisionLog string
	id          string
}

func newEvalCmd() *cobra.Command {
	var f evalFlags
	cmd := &cobra.Command{
		Use:   "eval (--request REQ.json | --input-file INPUT.json | --decision-log FILE --id ID) [flags]",
		Short: "decide one request offline and print the decision",
		Long: `Decide one request, written as JSON (http, body or raw_body, claims, context),
with the configured policy, exactly as the server would, and print the
decision (or, with --input, the policy input). The request may also be a
plain JSON-RPC message, as a client sends it: it is decided as the body
of POST /mcp, with --bearer for the token. --request - reads standard
input. --decision-log FILE --id ID decides a logged decision again, on the
policy input its event recorded, and prints the result beside the logged
one (with --explain, why). With --input-file, the
policy is evaluated on a policy input written by hand (what --input
prints) instead.

print() output of the policy goes to stderr; --explain prints OPA's
explanation of the evaluation there too, so stdout stays the decision.
--fail exits 1 when the request is denied.`,
		Example: `  TOKEN=$(mcpauthz token --sub alice --scope mcp:tools)
  mcpauthz eval --config examples/config/dev.yaml --bearer "$TOKEN" \
    --request examples/requests/tools-call-read-file-allowed.json
  mcpauthz eval --config examples/config/dev.yaml --decision-log decisions.jsonl \
    --id 1f0c2a9e4b7d-12 --format pretty --explain fails
  echo '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' |
    mcpauthz eval --config examples/config/dev.yaml --bearer "$TOKEN" --context mcp_server=everything --request -`,
		Args: noArgs(func(arg string) string {
			if strings.HasSuffix(arg, ".json") {
				return "--request"
			}
			return suggestConfig(arg)
		}),
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.stdin = cmd.InOrStdin()
			return cmdEval(cmd.Context(), &f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fs := cmd.Flags()
	f.registerConfig(fs)
	// The listener flags mean nothing to eval; still accepted, not listed.
	f.registerListen(fs)
	_ = fs.MarkHidden("grpc-addr")
	_ = fs.MarkHidden("http-addr")
	fs.StringVar(&f.request, "request", "", "request `file` (JSON: http, body or raw_body, claims, context; or a plain JSON-RPC message, sent as POST /mcp's body); - reads standard input")
	fs.StringArrayVar(&f.contexts, "context", nil, "route context `key=value` (as Envoy's context_extensions or upstream.context give it, e.g. mcp_server=everything); repeatable, over the request file's")
	fs.StringVar(&f.bearer, "bearer", "", "bearer `token` to send (sets the authorization header; verified as the server would)")
	fs.BoolVar(&f.showInput, "input", false, "print the policy input(s) instead of the decision")
	fs.StringVar(&f.inputFile, "input-file", "", "evaluate the policy on this policy input `file` (JSON, as --input prints it) instead of a request")
	fs.StringVarP(&f.format, "format", "f", "json", "output `format`: json, pretty or raw (true or false)")
	fs.BoolVar(&f.fail, "fail", false, "exit 1 when the decision is a denial")
	fs.StringVar(&f.explain, "explain", "", "print OPA's explanation of the evaluation to stderr: `notes`, fails or full")
	fs.StringVar(&f.decisionLog, "decision-log", "", "decision log `file` (as decision_logs.file writes it; - reads standard input): decide the event --id names again, on its logged input")
	fs.StringVar(&f.id, "id", "", "the decision_id of the event to decide again (with --decision-log; the x-mcp-authz-decision-id header of the answer)")
	return cmd
}

func cmdEval(ctx context.Context, ef *evalFlags, stdout, stderr io.Writer) error {
	f, reqPath, bearer, showInput := &ef.serveFlags, &ef.request, &ef.bearer, &ef.showInput
	sources := 0
	for _, set := range []bool{*reqPath != "", ef.inputFile != "", ef.decisionLog != ""} {
		if set {
			sources++
		}
	}
	switch {
	case (ef.decisionLog == "") != (ef.id == ""):
		return usageError{errors.New("--decision-log FILE and --id ID go together: the decision log and the decision_id of the event to decide again")}
	case sources == 0:
		return errors.New("--request is required (or --input-file, or --decision-log FILE --id ID)")
	case sources > 1:
		return usageError{errors.New("--request, --input-file and --decision-log are exclusive")}
	}
	routeContext := map[string]string{}
	for _, kv := range ef.contexts {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--context %q is not key=value", kv)}
		}
		routeContext[k] = v
	}
	switch ef.format {
	case "json", "pretty", "raw":
	default:
		return usageError{fmt.Errorf("--format %q is not json, pretty or raw", ef.format)}
	}
	switch ef.explain {
	case "", "notes", "fails", "full":
	default:
		return usageError{fmt.Errorf("--explain %q is not notes, fails or full", ef.explain)}
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	if f.logLevel == "" {
		cfg.Log.Level = "warn"
	}
	// eval decides offline: its decision is printed, not logged, so the
	// configured sinks are not opened (a console sink would mix its lines
	// into eval's output, a file sink would record a decision never made).
	cfg.DecisionLogs.Console, cfg.DecisionLogs.File, cfg.DecisionLogs.Service = false, "", nil
	log := newLogger(stderr, cfg.Log)
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.bundles.LoadOnce(ctx); err != nil {
		return fmt.Errorf("loading policy: %w", err)
	}
	diag := diagnostics{cfg: &cfg, explain: ef.explain, stderr: stderr}
	if ef.inputFile != "" {
		return evalInputFile(ctx, ef, &diag, stdout)
	}
	if ef.decisionLog != "" {
		return evalLogged(ctx, ef, a, &diag, stdout)
	}
	var r *decision.Request
	if *reqPath == "-" {
		r, err = requestfile.ReadFrom(ef.stdin, "standard input")
	} else {
		r, err = requestfile.Read(*reqPath)
	}
	if err != nil {
		return err
	}
	for k, v := range routeContext {
		if r.Context == nil {
			r.Context = map[string]string{}
		}
		r.Context[k] = v
	}
	if *bearer != "" {
		r.Headers["authorization"] = "Bearer " + *bearer
		r.Credential = token.Credential{} // the header, verified as the server would
	}
	if *showInput {
		return printInputs(ctx, a, r, stdout)
	}
	d := a.engine.Decide(ctx, r)
	// print() output and --explain come from a second evaluation of the
	// same input on the policy compiled with its print calls.
	if inputs, stopped := a.engine.Inputs(ctx, r); stopped == nil {
		for _, in := range inputs {
			if _, err := diag.evaluate(ctx, in); err != nil {
				// The decision below is the engine's; only the extras
				// are missing.
				fmt.Fprintf(stderr, "note: no print() output or explanation: %v\n", err)
				break
			}
		}
	}
	if d.Token != nil && !d.Token.Valid && !cfg.Tokens.Dev && isDevToken(bearerOf(r)) {
		fmt.Fprintf(stderr, "hint: the bearer token is a development token (mcpauthz token), and development tokens are trusted only with tokens.dev: true in the config: use --config examples/config/dev.yaml, or --set tokens.dev=true (token error: %s)\n", d.Token.Error)
	}
	out := outputOf(d)
	if err := writeDecision(stdout, ef.format, out); err != nil {
		return err
	}
	if ef.fail && !d.Allow {
		return exitError{code: 1}
	}
	return nil
}

// outputOf is what eval prints of a decision.
func outputOf(d *decision.Decision) evalOutput {
	out := evalOutput{
		DecisionID: d.ID, Allow: d.Allow, Code: d.Code, Reason: d.Reason, Scopes: d.Scopes,
		Revision: d.Revision, Errors: d.Errors,
		ResponseHeaders: headerMap(d.ResponseHeaders), UpstreamHeaders: headerMap(d.UpstreamHeaders),
	}
	if _, ok := out.UpstreamHeaders["authorization"]; ok {
		// An upstream credential (an exchanged token) is a secret: eval
		// says that one is set, not what it is.
		out.UpstreamHeaders["authorization"] = "Bearer " + decision.Redacted
	}
	if !d.Allow {
		out.Status = d.Status
	}
	if len(d.RateLimit) > 0 {
		out.RateLimit = make(map[string]string, len(d.RateLimit))
		for _, e := range d.RateLimit {
			out.RateLimit[e.Name] = e.Value
		}
	}
	if len(d.Body) > 0 {
		out.Body = d.Body
	}
	if d.Token != nil {
		out.Token = map[string]any{"present": d.Token.Present, "valid": d.Token.Valid}
		if d.Token.Error != "" {
			out.Token["error"] = d.Token.Error
		}
		if d.Token.Detail != "" {
			out.Token["detail"] = d.Token.Detail
		}
		if d.Token.Subject != "" {
			out.Token["subject"] = d.Token.Subject
		}
		if len(d.Token.Scopes) > 0 {
			out.Token["scopes"] = d.Token.Scopes
		}
	}
	return out
}

// bearerOf returns the bearer token of a request's authorization header.
func bearerOf(r *decision.Request) string {
	v := r.Headers["authorization"]
	if len(v) > 7 && strings.EqualFold(v[:7], "bearer ") {
		return strings.TrimSpace(v[7:])
	}
	return ""
}

// isDevToken reports whether raw is a JWT whose (unverified) issuer is the
// development issuer of mcpauthz token.
func isDevToken(raw string) bool {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return false
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var claims struct {
		Iss string `json:"iss"`
	}
	return json.Unmarshal(b, &claims) == nil && claims.Iss == token.DevIssuer
}

func headerMap(hs []decision.Header) map[string]string {
	if len(hs) == 0 {
		return nil
	}
	m := make(map[string]string, len(hs))
	for _, h := range hs {
		m[h.Name] = h.Value
	}
	return m
}

// printInputs prints the policy input of each message, for policy authors.
func printInputs(ctx context.Context, a *app, r *decision.Request, stdout io.Writer) error {
	inputs, stopped := a.engine.Inputs(ctx, r)
	if stopped != nil {
		return fmt.Errorf("the request is refused before the policy runs: %s (%s)", stopped.Reason, stopped.Code)
	}
	out := make([]any, len(inputs))
	for i, in := range inputs {
		v, err := ast.JSON(in)
		if err != nil {
			return err
		}
		out[i] = v
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}
