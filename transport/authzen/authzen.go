// Package authzen serves the OpenID AuthZEN Authorization API 1.0 (HTTPS
// binding) on top of the decision engine: POST /access/v1/evaluation,
// POST /access/v1/evaluations and GET /.well-known/authzen-configuration.
// It maps each evaluation onto one MCP request (see docs/api.md) and holds
// no policy logic.
package authzen

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// Paths of the endpoints.
const (
	EvaluationPath  = "/access/v1/evaluation"
	EvaluationsPath = "/access/v1/evaluations"
	MetadataPath    = "/.well-known/authzen-configuration"
)

// Decider makes decisions; *decision.Engine is one.
type Decider interface {
	Decide(ctx context.Context, r *decision.Request) *decision.Decision
}

// Options configure the handler.
type Options struct {
	// BaseURL is the PDP's external URL (e.g. "https://pdp.example.com"),
	// used in the metadata document; "" derives it from each request.
	BaseURL string
	// MCPEndpoint is the URL of the protected MCP endpoint; its host and
	// path become input.http.host and input.http.path. Default "/mcp".
	MCPEndpoint string
	// TrustSubject, when set, takes subject.id and subject.properties as an
	// already verified token payload (sub = id, other claims from
	// properties) when the subject carries no token. Only for deployments
	// where every caller of this endpoint is a trusted PEP.
	TrustSubject bool
	// MaxEvaluations bounds the evaluations of one evaluations request
	// (default 100; limits.max_evaluations).
	MaxEvaluations int
	// MaxBodyBytes bounds the request body (limits.max_body_bytes;
	// default 1 MiB), and also the work one request may cause: the MCP
	// requests its evaluations are decided as may add up to at most this
	// many bytes. Without that second bound a small body whose top-level
	// context every evaluation inherits is decided (and logged) once per
	// evaluation: 650 KB of context and 1,000 empty evaluations made
	// 650 MB of requests.
	MaxBodyBytes int64
	// Authenticate, when set, runs before a request body is read: a
	// non-nil error answers 401 (see docs/api.md, API authentication).
	// Nil lets every caller in.
	Authenticate func(*http.Request) error
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
}

// Handler serves the AuthZEN endpoints.
type Handler struct {
	engine Decider
	opts   Options
	host   string
	path   string
	log    *slog.Logger
}

// New builds the handler.
func New(engine Decider, opts Options) *Handler {
	if opts.MaxEvaluations <= 0 {
		opts.MaxEvaluations = 100
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = 1 << 20
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{engine: engine, opts: opts, path: "/mcp", log: opts.Logger}
	if u := opts.MCPEndpoint; u != "" {
		rest := u
		if i := strings.Index(rest, "://"); i >= 0 {
			rest = rest[i+3:]
		}
		if i := strings.IndexByte(rest, '/'); i >= 0 {
			h.host, h.path = rest[:i], rest[i:]
		} else {
			h.host = rest
		}
	}
	return h
}

// Register adds the three endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST "+EvaluationPath, h.evaluation)
	mux.HandleFunc("POST "+EvaluationsPath, h.evaluations)
	mux.HandleFunc("GET "+MetadataPath, h.metadata)
}

// Subject, Resource and Action are the AuthZEN entities.
type (
	// Subject is who asks: type and id, with properties.
	Subject struct {
		Type       string         `json:"type"`
		ID         string         `json:"id"`
		Properties map[string]any `json:"properties,omitempty"`
	}
	// Resource is what is accessed: for MCP, a tool, prompt or resource.
	Resource struct {
		Type       string         `json:"type"`
		ID         string         `json:"id"`
		Properties map[string]any `json:"properties,omitempty"`
	}
	// Action is what is done: for MCP, the JSON-RPC method.
	Action struct {
		Name       string         `json:"name"`
		Properties map[string]any `json:"properties,omitempty"`
	}
)

// Evaluation is one access evaluation request (all four parts optional in
// an evaluations entry, where the top level gives defaults).
type Evaluation struct {
	Subject  *Subject       `json:"subject,omitempty"`
	Resource *Resource      `json:"resource,omitempty"`
	Action   *Action        `json:"action,omitempty"`
	Context  map[string]any `json:"context,omitempty"`
}

// EvaluationsRequest is the boxcarred form.
type EvaluationsRequest struct {
	Evaluation
	Evaluations []Evaluation   `json:"evaluations,omitempty"`
	Options     map[string]any `json:"options,omitempty"`
}

// Result is an access evaluation response.
type Result struct {
	Decision bool           `json:"decision"`
	Context  map[string]any `json:"context,omitempty"`
}

type evaluationsResponse struct {
	Evaluations []Result `json:"evaluations"`
}

func (h *Handler) evaluation(w http.ResponseWriter, r *http.Request) {
	if !h.authenticated(w, r) {
		return
	}
	var ev Evaluation
	if !h.read(w, r, &ev) {
		return
	}
	res, err := h.decide(r.Context(), &ev)
	if err != nil {
		h.fail(w, r, http.StatusBadRequest, err.Error())
		return
	}
	h.write(w, r, res)
}

// authenticated runs Options.Authenticate before anything of the request
// is read, and answers 401 when it refuses.
func (h *Handler) authenticated(w http.ResponseWriter, r *http.Request) bool {
	if h.opts.Authenticate == nil {
		return true
	}
	if err := h.opts.Authenticate(r); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="mcpauthz-api"`)
		h.fail(w, r, http.StatusUnauthorized, "unauthenticated: "+err.Error())
		return false
	}
	return true
}

func (h *Handler) evaluations(w http.ResponseWriter, r *http.Request) {
	if !h.authenticated(w, r) {
		return
	}
	var req EvaluationsRequest
	if !h.read(w, r, &req) {
		return
	}
	// Without an evaluations array the endpoint behaves as the single one.
	if len(req.Evaluations) == 0 {
		res, err := h.decide(r.Context(), &req.Evaluation)
		if err != nil {
			h.fail(w, r, http.StatusBadRequest, err.Error())
			return
		}
		h.write(w, r, res)
		return
	}
	if len(req.Evaluations) > h.opts.MaxEvaluations {
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("%d evaluations exceed the limit of %d", len(req.Evaluations), h.opts.MaxEvaluations))
		return
	}
	semantic, _ := req.Options["evaluations_semantic"].(string)
	switch semantic {
	case "", "execute_all", "deny_on_first_deny", "permit_on_first_permit":
	default:
		h.fail(w, r, http.StatusBadRequest, fmt.Sprintf("options.evaluations_semantic %q is not supported", semantic))
		return
	}
	// Every request is built, and the work they add up to bounded, before
	// any is decided (Options.MaxBodyBytes).
	reqs := make([]*decision.Request, len(req.Evaluations))
	errs := make([]error, len(req.Evaluations))
	var work int64
	for i := range req.Evaluations {
		ev := merge(&req.Evaluation, &req.Evaluations[i])
		reqs[i], errs[i] = h.request(&ev)
		if reqs[i] != nil {
			work += int64(len(reqs[i].Body))
		}
		if work > h.opts.MaxBodyBytes {
			h.fail(w, r, http.StatusRequestEntityTooLarge, fmt.Sprintf(
				"the evaluations add up to more than %d bytes of requests to decide (limits.max_body_bytes): send fewer or smaller ones, or context in each evaluation rather than at the top level", h.opts.MaxBodyBytes))
			return
		}
	}
	out := evaluationsResponse{Evaluations: make([]Result, 0, len(req.Evaluations))}
	for i := range req.Evaluations {
		var res Result
		if err := errs[i]; err != nil {
			// An error in one evaluation is that evaluation's closed answer.
			res = Result{Context: map[string]any{"error": map[string]any{"status": 400, "message": err.Error()}}}
		} else {
			res = h.decideRequest(r.Context(), reqs[i])
		}
		out.Evaluations = append(out.Evaluations, res)
		if (semantic == "deny_on_first_deny" && !res.Decision) || (semantic == "permit_on_first_permit" && res.Decision) {
			break
		}
	}
	h.write(w, r, out)
}

// merge applies the top-level defaults to one entry.
func merge(def, ev *Evaluation) Evaluation {
	out := *ev
	if out.Subject == nil {
		out.Subject = def.Subject
	}
	if out.Resource == nil {
		out.Resource = def.Resource
	}
	if out.Action == nil {
		out.Action = def.Action
	}
	if out.Context == nil {
		out.Context = def.Context
	}
	return out
}

// decide maps one evaluation onto an MCP request and decides it.
func (h *Handler) decide(ctx context.Context, ev *Evaluation) (Result, error) {
	req, err := h.request(ev)
	if err != nil {
		return Result{}, err
	}
	return h.decideRequest(ctx, req), nil
}

// decideRequest decides the MCP request of one evaluation.
func (h *Handler) decideRequest(ctx context.Context, req *decision.Request) Result {
	d := h.engine.Decide(ctx, req)
	res := Result{Decision: d.Allow, Context: map[string]any{"id": d.ID, "code": d.Code}}
	if !d.Allow {
		res.Context["reason_admin"] = map[string]any{"en": d.Reason}
		if len(d.Scopes) > 0 {
			res.Context["scopes"] = d.Scopes
		}
	}
	return res
}

// request builds the MCP request of an evaluation (mapping in docs/api.md).
func (h *Handler) request(ev *Evaluation) (*decision.Request, error) {
	switch {
	case ev.Subject == nil || ev.Subject.Type == "" || ev.Subject.ID == "":
		return nil, errors.New("subject.type and subject.id are required")
	case ev.Action == nil || ev.Action.Name == "":
		return nil, errors.New("action.name is required")
	case ev.Resource == nil || ev.Resource.Type == "" || ev.Resource.ID == "":
		return nil, errors.New("resource.type and resource.id are required")
	}
	method := ev.Action.Name
	var params map[string]any
	switch method {
	case "tools/call", "prompts/get":
		want := map[string]string{"tools/call": "tool", "prompts/get": "prompt"}[method]
		if ev.Resource.Type != want {
			return nil, fmt.Errorf("action %s needs a resource of type %q, not %q", method, want, ev.Resource.Type)
		}
		params = map[string]any{"name": ev.Resource.ID}
		if ev.Context != nil {
			params["arguments"] = ev.Context
		}
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		if ev.Resource.Type != "resource" {
			return nil, fmt.Errorf("action %s needs a resource of type \"resource\", not %q", method, ev.Resource.Type)
		}
		params = map[string]any{"uri": ev.Resource.ID}
	default:
		params = ev.Context
	}
	msg := map[string]any{"jsonrpc": "2.0", "id": 1, "method": method}
	if params != nil {
		msg["params"] = params
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("context: %w", err)
	}
	r := &decision.Request{
		Method:  "POST",
		Path:    h.path,
		Host:    h.host,
		Headers: map[string]string{"content-type": "application/json"},
		Body:    body,
		Context: map[string]string{},
	}
	for k, v := range ev.Resource.Properties {
		if s, ok := v.(string); ok {
			r.Context[k] = s
		}
	}
	props := ev.Subject.Properties
	if tok, ok := props["token"].(string); ok && tok != "" {
		r.Headers["authorization"] = "Bearer " + tok
		return r, nil
	}
	if h.opts.TrustSubject {
		claims := make(map[string]any, len(props)+1)
		for k, v := range props {
			claims[k] = v
		}
		claims["sub"] = ev.Subject.ID
		r.Credential = token.Claimed(claims)
		return r, nil
	}
	// No token and no trust: the request carries no credential, and the
	// policy denies it as unauthenticated.
	r.Credential = token.Credential{Kind: token.NoCredential}
	return r, nil
}

// Metadata is the PDP metadata document.
type Metadata struct {
	PolicyDecisionPoint       string `json:"policy_decision_point"`
	AccessEvaluationEndpoint  string `json:"access_evaluation_endpoint"`
	AccessEvaluationsEndpoint string `json:"access_evaluations_endpoint"`
}

func (h *Handler) metadata(w http.ResponseWriter, r *http.Request) {
	base := strings.TrimSuffix(h.opts.BaseURL, "/")
	if base == "" {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		base = scheme + "://" + r.Host
	}
	h.write(w, r, Metadata{
		PolicyDecisionPoint:       base,
		AccessEvaluationEndpoint:  base + EvaluationPath,
		AccessEvaluationsEndpoint: base + EvaluationsPath,
	})
}

func (h *Handler) read(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		h.fail(w, r, http.StatusUnsupportedMediaType, "content-type must be application/json")
		return false
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.opts.MaxBodyBytes))
	if err != nil {
		h.fail(w, r, http.StatusRequestEntityTooLarge, "request body too large")
		return false
	}
	if err := decode(body, v); err != nil {
		h.fail(w, r, http.StatusBadRequest, "request body is not a valid AuthZEN request: "+err.Error())
		return false
	}
	return true
}

func (h *Handler) write(w http.ResponseWriter, r *http.Request, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		h.log.Error("encoding AuthZEN response", "error", err)
		h.fail(w, r, http.StatusInternalServerError, "internal error")
		return
	}
	echoRequestID(w, r)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(append(b, '\n'))
}

// fail answers with an error message string, as the HTTPS binding says.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, status int, msg string) {
	echoRequestID(w, r)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, msg+"\n")
}

func echoRequestID(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("X-Request-ID"); id != "" {
		w.Header().Set("X-Request-ID", id)
	}
}
