// Package proxy is an authorizing reverse proxy for the MCP Streamable HTTP
// transport, for laptops, tests and small deployments where Envoy is not
// at hand (Envoy with ext_authz and ext_proc stays the production path).
// Each request is decided by the engine as the ext_authz path decides it; a
// denial is answered with the engine's exact response (status, headers,
// JSON-RPC body), an allowed request goes to the upstream MCP server
// without the caller's token and with the decision's headers, and the
// answer to a list request is filtered by the policy's visible rule (a
// JSON body, or the one event of a text/event-stream that answers it,
// every other event passing on as soon as it is complete), and so is a
// list answer a GET gets again when it resumes a stream (whatever body it
// carries), and every list answer in a batch. The verdicts,
// the denials and the rewrite are the engine's; this package only moves
// HTTP bytes.
package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/credleak"
	"github.com/mcpauthz/mcpauthz/decision/serverversions"
)

// Decider makes decisions; *decision.Engine is one.
type Decider interface {
	Decide(ctx context.Context, r *decision.Request) *decision.Decision
}

// Options configure the proxy.
type Options struct {
	// Upstream is the URL of the MCP endpoint every request goes to (its
	// scheme, host and path; the query is the caller's). Required.
	Upstream string
	// ForwardToken passes the caller's authorization header upstream
	// (upstream.forward_token). Off by default: MCP forbids passing the
	// token through, and the engine removes it; an upstream credential the
	// decision sets replaces it either way.
	ForwardToken bool
	// Context is the route context of every request (input.context), as
	// Envoy's context_extensions give it: e.g. {mcp_server: files}.
	Context map[string]string
	// MaxBodyBytes bounds the request body read (limits.max_body_bytes):
	// a larger body is decided as truncated, which the engine refuses
	// with 413. Default decision.DefaultMaxBodyBytes.
	MaxBodyBytes int
	// BodyReadTimeout bounds the wait for a request body
	// (limits.body_read_timeout): a slower one is answered 408. Default
	// DefaultBodyReadTimeout.
	BodyReadTimeout time.Duration
	// MaxInflightBodyBytes bounds the request body bytes held at once by
	// every request of this Handler (limits.max_inflight_body_bytes): a
	// body that would pass it is answered 503 before it is read. Default
	// DefaultMaxInflightBodyBytes; at least MaxBodyBytes+1.
	MaxInflightBodyBytes int64
	// MaxAnswerBytes bounds what is held of a list answer; past it the
	// answer is replaced by a JSON-RPC error (fail closed). Default
	// decision.DefaultMaxListAnswerBytes.
	MaxAnswerBytes int
	// MaxResultBytes bounds what is held of an answer the policy's result
	// rule judges (limits.max_result_bytes); past it the result is
	// withheld with a JSON-RPC error (fail closed). Default
	// decision.DefaultMaxResultBytes.
	MaxResultBytes int
	// StripRequestHeaders are request headers a client may never send
	// upstream (upstream.strip_request_headers): identity headers the
	// upstream trusts, which the policy sets (decision.headers). Besides
	// them, every header name a decision has set upstream is stripped.
	StripRequestHeaders []string
	// Versions, when set, learns the revisions the upstream supports from
	// its answers to server/discover and initialize (versions.go), for the
	// engine's -32022 answers.
	Versions serverversions.Learner
	// Transport sends the upstream requests; default http.DefaultTransport.
	Transport http.RoundTripper
	// Logger receives the proxy's errors; default: discard.
	Logger *slog.Logger
}

// UnreadRefuser refuses a request before its body is read, when it can;
// *decision.Engine is one. A Decider that is not one has every body read.
type UnreadRefuser interface {
	RefuseUnread(ctx context.Context, r *decision.Request) *decision.Decision
}

// ResultJudge names the calls of an allowed request whose answers the
// policy's result rule judges (nil: none, the answer goes on untouched);
// *decision.Engine is one. A Decider that is not one judges no result.
type ResultJudge interface {
	ResultCallsOf(ctx context.Context, r *decision.Request, d *decision.Decision) *decision.ResultCalls
}

// Handler is the proxy: an http.Handler for the MCP endpoint.
type Handler struct {
	engine   Decider
	lists    decision.ListFilter
	opts     Options
	upstream *url.URL
	rp       *httputil.ReverseProxy
	log      *slog.Logger
	identity *identityHeaders
	inflight *semaphore.Weighted // request body bytes held
}

// Defaults of the body read limits.
const (
	DefaultBodyReadTimeout      = 10 * time.Second
	DefaultMaxInflightBodyBytes = 64 << 20
)

var _ http.Handler = (*Handler)(nil)

// New builds the proxy on an engine and its item filter.
func New(engine Decider, lists decision.ListFilter, opts Options) (*Handler, error) {
	u, err := url.Parse(opts.Upstream)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("proxy: upstream %q is not an absolute http(s) URL", opts.Upstream)
	}
	if u.Path == "" {
		u.Path = "/"
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = decision.DefaultMaxBodyBytes
	}
	if opts.BodyReadTimeout <= 0 {
		opts.BodyReadTimeout = DefaultBodyReadTimeout
	}
	if opts.MaxInflightBodyBytes <= 0 {
		opts.MaxInflightBodyBytes = DefaultMaxInflightBodyBytes
	}
	opts.MaxInflightBodyBytes = max(opts.MaxInflightBodyBytes, int64(opts.MaxBodyBytes)+1)
	if opts.MaxAnswerBytes <= 0 {
		opts.MaxAnswerBytes = decision.DefaultMaxListAnswerBytes
	}
	if opts.MaxResultBytes <= 0 {
		opts.MaxResultBytes = decision.DefaultMaxResultBytes
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	h := &Handler{engine: engine, lists: lists, opts: opts, upstream: u, log: opts.Logger,
		identity: newIdentityHeaders(opts.StripRequestHeaders), inflight: semaphore.NewWeighted(opts.MaxInflightBodyBytes)}
	h.rp = &httputil.ReverseProxy{
		Rewrite:        h.rewrite,
		ModifyResponse: h.modifyResponse,
		ErrorHandler:   h.upstreamFailed,
		Transport:      opts.Transport,
		// Every write is flushed at once: events of a stream reach the
		// caller as they come.
		FlushInterval: -1,
		ErrorLog:      slog.NewLogLogger(opts.Logger.Handler(), slog.LevelWarn),
	}
	return h, nil
}

// exchange is what the proxy knows of one allowed request, carried from
// ServeHTTP to the upstream request and its response.
type exchange struct {
	req *decision.Request
	d   *decision.Decision
	// list is what the answer is filtered for: the list requests of the
	// body, or a GET's stream; nil: nothing.
	list *decision.ListRequest
	// result are the calls whose answers the result rule judges; nil:
	// none.
	result *decision.ResultCalls
}

type exchangeKey struct{}

// ServeHTTP decides the request and answers it: the denial, or the
// upstream's answer.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	policyNames := h.policyHeaderNames()
	normalize(r, func(name string) bool {
		return h.identity.has(name) || slices.ContainsFunc(policyNames, func(n string) bool { return strings.EqualFold(n, name) })
	})
	req := h.request(r)
	if d := h.refuseUnread(r.Context(), req); d != nil {
		// Nothing of the body is read for a request that cannot be allowed
		// whatever it holds: a flood of bodies without a token costs no
		// memory.
		w.Header().Set("Connection", "close")
		writeDenial(w, d)
		return
	}
	held, status := h.readBody(w, r, req)
	defer h.inflight.Release(held)
	if status != 0 {
		refuseBody(w, status)
		return
	}
	d := h.engine.Decide(r.Context(), req)
	if !d.Allow {
		writeDenial(w, d)
		return
	}
	h.identity.learn(func(yield func(string) bool) {
		for _, hd := range d.UpstreamHeaders {
			if !yield(hd.Name) {
				return
			}
		}
	})
	x := &exchange{req: req, d: d}
	if h.lists != nil {
		x.list = h.lists.ListRequestOf(req)
	}
	if j, ok := h.engine.(ResultJudge); ok {
		x.result = j.ResultCallsOf(r.Context(), req, d)
	}
	out := r.WithContext(context.WithValue(r.Context(), exchangeKey{}, x))
	// The body was read to be decided: what goes upstream is exactly what
	// was decided.
	out.Body = io.NopCloser(bytes.NewReader(req.Body))
	out.ContentLength = int64(len(req.Body))
	// GetBody lets net/http send the same bytes again when a kept-alive
	// connection the upstream had just closed failed before anything was
	// written (it retries only then); without it such a POST failed with 502.
	out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(req.Body)), nil }
	h.rp.ServeHTTP(w, out)
}

// HeaderNamer tells the upstream headers the current policy can set
// (decision.headers); *decision.Engine is one.
type HeaderNamer interface {
	UpstreamHeaderNames() []string
}

// policyHeaderNames are the headers the current policy can set upstream:
// a client may never send them.
func (h *Handler) policyHeaderNames() []string {
	if n, ok := h.engine.(HeaderNamer); ok {
		return n.UpstreamHeaderNames()
	}
	return nil
}

// refuseUnread is the engine's denial of a request it can refuse without
// its body (see decision.Engine.RefuseUnread); nil when the body is needed.
func (h *Handler) refuseUnread(ctx context.Context, req *decision.Request) *decision.Decision {
	u, ok := h.engine.(UnreadRefuser)
	if !ok {
		return nil
	}
	return u.RefuseUnread(ctx, req)
}

// request reads r's head as the engine sees a request: what Envoy's
// ext_authz CheckRequest carries (method, path, host, lowercase headers,
// the peer) and the route context; readBody adds the body.
func (h *Handler) request(r *http.Request) *decision.Request {
	req := &decision.Request{
		Method:        r.Method,
		Path:          r.RequestURI,
		Host:          r.Host,
		Headers:       make(map[string]string, len(r.Header)),
		SourceAddress: r.RemoteAddr,
		Context:       h.opts.Context,
	}
	if !strings.HasPrefix(req.Path, "/") {
		req.Path = r.URL.RequestURI() // absolute-form or "*"
	}
	// The scheme the client reached this listener with; behind a proxy
	// that ended TLS it is not the client's, and tokens.dpop.htu names
	// the public URI instead (X-Forwarded-Proto is never trusted here).
	req.Scheme = "http"
	if r.TLS != nil {
		req.Scheme = "https"
	}
	for k, vs := range r.Header {
		req.Headers[strings.ToLower(k)] = strings.Join(vs, ",")
	}
	return req
}

// readBody reads r's body into req, up to the bound, within
// limits.body_read_timeout, holding its bytes against
// limits.max_inflight_body_bytes. It returns the bytes held (to release
// once the exchange is over: the body is kept until then) and, when the
// body could not be read, the status to answer (408, 503); a body that
// failed otherwise is left for the engine to refuse as unreadable.
func (h *Handler) readBody(w http.ResponseWriter, r *http.Request, req *decision.Request) (held int64, status int) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return 0, 0
	}
	// One byte past the bound tells a body that is too large: the engine
	// refuses it (413) as it refuses a body Envoy cut. A body of unknown
	// length holds the most it may take until it is read.
	n := int64(h.opts.MaxBodyBytes) + 1
	if r.ContentLength > 0 && r.ContentLength < n {
		n = r.ContentLength
	}
	if !h.inflight.TryAcquire(n) {
		h.log.Warn("request bodies in flight at limits.max_inflight_body_bytes; refused", "limit", h.opts.MaxInflightBodyBytes, "body_bytes", r.ContentLength)
		return 0, http.StatusServiceUnavailable
	}
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(h.opts.BodyReadTimeout))
	buf := make([]byte, n)
	got, err := io.ReadFull(r.Body, buf)
	// The deadline was for the body only: an event stream answering the
	// request may last much longer, and the server watches the connection.
	_ = rc.SetReadDeadline(time.Time{})
	h.inflight.Release(n - int64(got))
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		h.log.Warn("request body not received within limits.body_read_timeout; refused", "timeout", h.opts.BodyReadTimeout, "read", got)
		return int64(got), http.StatusRequestTimeout
	case err == io.EOF || (err == io.ErrUnexpectedEOF && r.ContentLength < 0):
		req.Body = buf[:got] // a body of unknown length, shorter than the bound
	case err != nil:
		req.Unreadable = "reading the request body: " + err.Error()
	case got > h.opts.MaxBodyBytes:
		req.Body, req.Truncated = buf[:h.opts.MaxBodyBytes], true
	default:
		req.Body = buf[:got]
	}
	return int64(got), 0
}

// refuseBody answers a request whose body was not read: 408 (too slow) or
// 503 (too many bodies in flight). The connection is closed: what is left
// of the body is not read.
func refuseBody(w http.ResponseWriter, status int) {
	msg := "mcpauthz proxy: the request body did not arrive within limits.body_read_timeout"
	if status == http.StatusServiceUnavailable {
		msg = "mcpauthz proxy: too many request bodies in flight (limits.max_inflight_body_bytes); retry later"
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Connection", "close")
	http.Error(w, msg, status)
}

// writeDenial writes the engine's denial as Envoy writes a DeniedHttpResponse
// (its headers overwrite, in order).
func writeDenial(w http.ResponseWriter, d *decision.Decision) {
	for _, hd := range d.ResponseHeaders {
		w.Header().Set(hd.Name, hd.Value)
	}
	status := d.Status
	if status == 0 {
		status = http.StatusForbidden // never reached: every denial has a status
	}
	if len(d.Body) > 0 {
		w.Header().Set("Content-Length", strconv.Itoa(len(d.Body)))
	}
	w.WriteHeader(status)
	_, _ = w.Write(d.Body)
}

// rewrite turns the allowed request into the upstream one: the upstream's
// URL, the caller's query without the parameters the decision removes, the
// caller's token removed (unless forwarded), the decision's headers set.
func (h *Handler) rewrite(pr *httputil.ProxyRequest) {
	x := pr.In.Context().Value(exchangeKey{}).(*exchange)
	out := pr.Out
	out.URL.Scheme, out.URL.Host = h.upstream.Scheme, h.upstream.Host
	out.URL.Path, out.URL.RawPath = h.upstream.Path, h.upstream.RawPath
	// The query is read as the engine read it to decide what to remove.
	out.URL.RawQuery = credleak.Without(pr.In.URL.RawQuery, x.d.RemoveQueryParams)
	out.Host = ""
	// The body goes as read, with its length: never chunked, never with
	// the caller's trailers (normalize dropped them).
	out.TransferEncoding, out.Trailer = nil, nil
	pr.SetXForwarded()
	for _, name := range x.d.RemoveHeaders {
		if h.opts.ForwardToken && name == "authorization" {
			continue
		}
		out.Header.Del(name)
	}
	for _, hd := range x.d.UpstreamHeaders {
		out.Header.Set(hd.Name, hd.Value)
	}
	if x.list != nil || x.result != nil {
		// The answer is read to be filtered: it is asked for without a
		// content coding (the transport still asks for gzip and decodes it).
		out.Header.Del("Accept-Encoding")
	}
}

// modifyResponse adds the decision's response headers and filters the
// answer when it may hold a list.
func (h *Handler) modifyResponse(resp *http.Response) error {
	x := resp.Request.Context().Value(exchangeKey{}).(*exchange)
	for _, hd := range x.d.ResponseHeaders {
		resp.Header.Add(hd.Name, hd.Value)
	}
	if x.list != nil {
		h.filterAnswer(resp, x)
	}
	if x.result != nil {
		h.judgeAnswer(resp, x)
	}
	h.learnVersions(resp, x)
	return nil
}

// filterAnswer filters the answer to a request holding list requests (one,
// or a batch's), or a GET's stream, which may replay earlier list answers
// when it resumes a stream (Last-Event-ID): whatever its content-type says,
// a JSON body is filtered whole, an event stream event by event
// (decision.ListEventStream reads which it is from its bytes). An answer
// it cannot read (a content coding it does not know, a JSON body past the
// bound) is replaced by JSON-RPC errors, a GET's stream by nothing: never
// shown unfiltered.
func (h *Handler) filterAnswer(resp *http.Response, x *exchange) {
	if enc := strings.TrimSpace(strings.ToLower(resp.Header.Get("Content-Encoding"))); enc != "" && enc != "identity" {
		h.log.Warn("answer in a content coding the proxy cannot read; not passed on", "decision_id", x.d.ID, "list", x.list.String(), "content_encoding", enc)
		resp.Body.Close()
		resp.Header.Del("Content-Encoding")
		var b []byte
		if !x.list.Replay {
			resp.Header.Set("Content-Type", "application/json")
			b = decision.ListError(x.list, decision.ErrListEncoded)
		}
		replaceBody(resp, b)
		return
	}
	// The proxy read the answer from the upstream itself: what it lists
	// of pinned tools is the server's word (decision.Request.ResponseTrusted).
	x.req.ResponseTrusted = true
	ctx := resp.Request.Context()
	s := decision.NewListEventStream(x.list, h.opts.MaxAnswerBytes, h.log, func(msg []byte) ([]byte, decision.ListOutcome) {
		out, res := h.lists.FilterResponse(ctx, x.req, x.list, msg)
		decision.LogListOutcome(h.log, x.list, res)
		return out, res
	})
	resp.Body = &eventStream{src: resp.Body, stream: s, buf: make([]byte, 32<<10)}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
}

// judgeAnswer has the answer to a request holding calls the result rule
// judges go through it (decision.ResultStream): each result passed,
// redacted or withheld. An answer it cannot read (a content coding it
// does not know) is replaced by JSON-RPC errors naming the decision.
func (h *Handler) judgeAnswer(resp *http.Response, x *exchange) {
	if enc := strings.TrimSpace(strings.ToLower(resp.Header.Get("Content-Encoding"))); enc != "" && enc != "identity" {
		h.log.Warn("answer in a content coding the proxy cannot read; result withheld", "decision_id", x.d.ID, "content_encoding", enc)
		resp.Body.Close()
		resp.Header.Del("Content-Encoding")
		resp.Header.Set("Content-Type", "application/json")
		replaceBody(resp, x.result.FailPending("its content coding is not supported"))
		return
	}
	s := decision.NewResultStream(resp.Request.Context(), x.result, h.opts.MaxResultBytes, h.log)
	resp.Body = &eventStream{src: resp.Body, stream: s, buf: make([]byte, 32<<10)}
	resp.ContentLength = -1
	resp.Header.Del("Content-Length")
}

// feeder rewrites a stream chunk by chunk (decision.ListEventStream,
// decision.ResultStream).
type feeder interface {
	Feed(chunk []byte, eof bool) (out []byte, changed bool)
}

// replaceBody sets a new, complete body on resp.
func replaceBody(resp *http.Response, b []byte) {
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	resp.Header.Set("Content-Length", strconv.Itoa(len(b)))
}

// eventStream is the body of an answer that may hold lists: it reads the
// upstream's chunks as they come and gives each complete event on at once,
// filtered (a JSON answer, at its end).
type eventStream struct {
	src    io.ReadCloser
	stream feeder
	buf    []byte // what was read from src
	out    []byte // what is still to be given on (in buf, or the filter's)
	err    error  // src's end: io.EOF or why it failed
}

// Read gives what is ready; it reads the upstream only when nothing is,
// so an event is never held once complete.
func (e *eventStream) Read(p []byte) (int, error) {
	for len(e.out) == 0 {
		if e.err != nil {
			return 0, e.err
		}
		n, err := e.src.Read(e.buf)
		out, changed := e.stream.Feed(e.buf[:n], err != nil)
		if !changed {
			out = e.buf[:n]
		}
		e.out, e.err = out, err
	}
	n := copy(p, e.out)
	e.out = e.out[n:]
	return n, nil
}

// Close closes the upstream body.
func (e *eventStream) Close() error { return e.src.Close() }

// upstreamFailed answers a request the upstream did not answer: 502, with
// the decision id so the logs join.
func (h *Handler) upstreamFailed(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, context.Canceled) {
		return // the caller went away
	}
	x, _ := r.Context().Value(exchangeKey{}).(*exchange)
	id := ""
	if x != nil {
		id = x.d.ID
	}
	h.log.Warn("upstream request failed", "decision_id", id, "error", err)
	w.Header().Set(decision.DecisionIDHeader, id)
	http.Error(w, "mcpauthz proxy: the upstream MCP server did not answer", http.StatusBadGateway)
}
