package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
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
	Token           map[string]any    `json:"token"`
	Errors          []string          `json:"errors,omitempty"`
}

func cmdEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("eval", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	f.register(fs)
	reqPath := fs.String("request", "", "request `file` (JSON: http, body or raw_body, claims, context)")
	bearer := fs.String("bearer", "", "bearer `token` to send (sets the authorization header; verified as the server would)")
	showInput := fs.Bool("input", false, "print the policy input(s) instead of the decision")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *reqPath == "" {
		return errors.New("--request is required")
	}
	cfg, err := f.load()
	if err != nil {
		return err
	}
	if f.logLevel == "" {
		cfg.Log.Level = "warn"
	}
	log := newLogger(stderr, cfg.Log)
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	if err := a.bundles.Reload(ctx); err != nil {
		return fmt.Errorf("loading policy: %w", err)
	}
	r, err := requestfile.Read(*reqPath)
	if err != nil {
		return err
	}
	if *bearer != "" {
		r.Headers["authorization"] = "Bearer " + *bearer
		r.Credential = token.Credential{} // the header, verified as the server would
	}
	if *showInput {
		return printInputs(ctx, a, r, stdout)
	}
	d := a.engine.Decide(ctx, r)
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
	if len(d.Body) > 0 {
		out.Body = d.Body
	}
	if d.Token != nil {
		out.Token = map[string]any{"present": d.Token.Present, "valid": d.Token.Valid}
		if d.Token.Error != "" {
			out.Token["error"] = d.Token.Error
		}
		if d.Token.Subject != "" {
			out.Token["subject"] = d.Token.Subject
		}
		if len(d.Token.Scopes) > 0 {
			out.Token["scopes"] = d.Token.Scopes
		}
	}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
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
