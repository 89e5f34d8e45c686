// Package extproc is an Envoy External Processing server
// (envoy.service.ext_proc.v3.ExternalProcessor) that filters list answers:
// it reads the request's headers and buffered body to know whether the
// request holds list requests (tools/list, prompts/list, resources/list,
// resources/templates/list; one, or a batch's), and rewrites every
// JSON-RPC response that answers one (in a JSON body or in the events of a
// stream, whatever the content-type says) so the caller sees only the items
// the policy's visible rule lets it see; a GET's event stream, which may
// replay earlier list answers when it resumes a stream, has those filtered
// too. Every other request and event goes through untouched. The verdicts
// and the rewrite are the engine's (decision.ItemFilter); this package
// only frames bytes.
package extproc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"strings"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	procfilterv3 "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_proc/v3"
	procv3 "github.com/envoyproxy/go-control-plane/envoy/service/ext_proc/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/serverversions"
)

// Server is an envoy.service.ext_proc.v3.ExternalProcessor server.
type Server struct {
	procv3.UnimplementedExternalProcessorServer
	filter decision.ListFilter
	log    *slog.Logger
	// maxAnswer bounds what is held of a list answer; past it the answer
	// is replaced by a JSON-RPC error (fail closed).
	maxAnswer int
	// trust says whether a stream's caller is authenticated, so the list
	// answers it shows speak for the server (pins); nil: none is.
	trust func(context.Context) bool
	// versions, when set, learns the revisions upstreams support
	// (versions.go).
	versions serverversions.Learner
}

var _ procv3.ExternalProcessorServer = (*Server)(nil)

// NewServer builds the server on an item filter.
func NewServer(f decision.ListFilter, logger *slog.Logger) *Server {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Server{filter: f, log: logger, maxAnswer: decision.DefaultMaxListAnswerBytes}
}

// WithMaxAnswerBytes sets the bound on what is held of a list answer
// (default decision.DefaultMaxListAnswerBytes).
func (s *Server) WithMaxAnswerBytes(n int) *Server {
	if n > 0 {
		s.maxAnswer = n
	}
	return s
}

// WithTrustedCallers sets how a stream's caller is known to be
// authenticated (Envoy, by mTLS or the API token): only the list answers
// of such a stream change what the engine remembers of pinned tools
// (decision.Request.ResponseTrusted). Without it, none does.
func (s *Server) WithTrustedCallers(trust func(context.Context) bool) *Server {
	s.trust = trust
	return s
}

// Register adds the service to a gRPC server.
func (s *Server) Register(g *grpc.Server) {
	procv3.RegisterExternalProcessorServer(g, s)
}

// Process serves one HTTP stream: one ProcessingResponse for each
// ProcessingRequest, in order. A message it cannot use is answered with an
// empty (continue) response; only the stream's own failure ends it.
func (s *Server) Process(stream procv3.ExternalProcessor_ProcessServer) error {
	st := &streamState{srv: s, ctx: stream.Context()}
	st.req.Context = routeContext(stream.Context())
	st.req.ResponseTrusted = s.trust != nil && s.trust(stream.Context())
	for {
		req, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := stream.Send(st.handle(req)); err != nil {
			return err
		}
	}
}

// ContextMetadataPrefix starts the gRPC metadata keys that carry per-route
// context to the stream: Envoy's ExtProcPerRoute
// overrides.grpc_initial_metadata entry "mcpauthz-context-mcp_server:
// files" becomes input.context.mcp_server = "files", as ext_authz's
// context_extensions do. It comes from Envoy's configuration, never from
// the client.
const ContextMetadataPrefix = "mcpauthz-context-"

// routeContext reads the per-route context from the stream's metadata.
func routeContext(ctx context.Context) map[string]string {
	md, ok := metadata.FromIncomingContext(ctx)
	if !ok {
		return nil
	}
	var out map[string]string
	for k, vs := range md {
		name, ok := strings.CutPrefix(k, ContextMetadataPrefix)
		if !ok || name == "" || len(vs) == 0 {
			continue
		}
		if out == nil {
			out = map[string]string{}
		}
		out[name] = strings.Join(vs, ",")
	}
	return out
}

// bodyMode is how the response body of a list request is handled.
type bodyMode uint8

const (
	passBody   bodyMode = iota // not a list answer: untouched
	filterBody                 // filtered as it comes (decision.ListEventStream: JSON whole, events one by one)
	failBody                   // unreadable (encoded): replaced by a JSON-RPC error
	dropBody                   // a GET's stream that cannot be read (encoded): not passed on
)

// streamState is what one HTTP stream has shown so far.
type streamState struct {
	srv *Server
	ctx context.Context
	req decision.Request
	// list is what the answer is filtered for: the list requests of the
	// body, or a GET's stream; nil: nothing.
	list *decision.ListRequest

	mode bodyMode
	sse  *decision.ListEventStream // filterBody: the answer so far
	// answer collects the answer to a server/discover or initialize
	// request for its versions (versions.go); nil otherwise.
	answer *serverversions.Answer
}

// handle answers one ProcessingRequest; a panic becomes a continue.
func (st *streamState) handle(req *procv3.ProcessingRequest) (resp *procv3.ProcessingResponse) {
	defer func() {
		if p := recover(); p != nil {
			st.srv.log.Error("panic in the ext_proc server; message passed on", "panic", fmt.Sprint(p))
			resp = continueFor(req)
			switch {
			case st.list != nil && st.list.Replay && st.mode != passBody:
				st.mode = dropBody // a GET's stream
			case st.list != nil && st.mode != passBody:
				// Fail closed: the answer can no longer be filtered.
				st.mode = failBody
			}
		}
	}()
	switch r := req.GetRequest().(type) {
	case *procv3.ProcessingRequest_RequestHeaders:
		return st.requestHeaders(r.RequestHeaders)
	case *procv3.ProcessingRequest_RequestBody:
		return st.requestBody(r.RequestBody)
	case *procv3.ProcessingRequest_ResponseHeaders:
		return st.responseHeaders(r.ResponseHeaders)
	case *procv3.ProcessingRequest_ResponseBody:
		return st.responseBody(r.ResponseBody)
	}
	return continueFor(req)
}

// continueFor is the response that changes nothing.
func continueFor(req *procv3.ProcessingRequest) *procv3.ProcessingResponse {
	switch req.GetRequest().(type) {
	case *procv3.ProcessingRequest_RequestHeaders:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestHeaders{RequestHeaders: &procv3.HeadersResponse{}}}
	case *procv3.ProcessingRequest_ResponseHeaders:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: &procv3.HeadersResponse{}}}
	case *procv3.ProcessingRequest_RequestBody:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestBody{RequestBody: &procv3.BodyResponse{}}}
	case *procv3.ProcessingRequest_ResponseBody:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseBody{ResponseBody: &procv3.BodyResponse{}}}
	case *procv3.ProcessingRequest_RequestTrailers:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestTrailers{RequestTrailers: &procv3.TrailersResponse{}}}
	case *procv3.ProcessingRequest_ResponseTrailers:
		return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseTrailers{ResponseTrailers: &procv3.TrailersResponse{}}}
	}
	return &procv3.ProcessingResponse{}
}

// requestHeaders keeps the request's headers: the credential (authorization)
// and the revision (mcp-protocol-version) come from them. A GET's stream
// may replay list answers (a resumed stream), whatever body it carries, so
// it is filtered, and asked for without content coding, as the answer to a
// list request is.
func (st *streamState) requestHeaders(h *procv3.HttpHeaders) *procv3.ProcessingResponse {
	// Request headers begin a request: nothing of an earlier one stays.
	*st = streamState{srv: st.srv, ctx: st.ctx, req: decision.Request{Context: st.req.Context, ResponseTrusted: st.req.ResponseTrusted}}
	st.req.Headers = headerMap(h.GetHeaders())
	st.req.Method = st.req.Headers[":method"]
	st.req.Path = st.req.Headers[":path"]
	st.req.Host = st.req.Headers[":authority"]
	st.req.Scheme = st.req.Headers[":scheme"]
	hr := &procv3.HeadersResponse{}
	if st.req.Method == "GET" {
		st.list = st.srv.filter.ListRequestOf(&st.req)
		if _, ok := st.req.Headers["accept-encoding"]; ok {
			hr.Response = &procv3.CommonResponse{HeaderMutation: &procv3.HeaderMutation{RemoveHeaders: []string{"accept-encoding"}}}
		}
	}
	return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestHeaders{RequestHeaders: hr}}
}

// headerMap reads Envoy's header map: lowercase keys, the value in
// raw_value (current Envoy) or value; a repeated header is joined with ",".
func headerMap(hm *corev3.HeaderMap) map[string]string {
	hs := make(map[string]string, len(hm.GetHeaders()))
	for _, hv := range hm.GetHeaders() {
		k := strings.ToLower(hv.GetKey())
		v := hv.GetValue()
		if raw := hv.GetRawValue(); len(raw) > 0 {
			v = string(raw)
		}
		if prev, ok := hs[k]; ok {
			v = prev + "," + v
		}
		hs[k] = v
	}
	return hs
}

// requestBody reads the buffered request body: a list request's answer
// will be filtered, and it is asked for without content coding, which
// could not be read.
func (st *streamState) requestBody(b *procv3.HttpBody) *procv3.ProcessingResponse {
	st.req.Body = append(st.req.Body, b.GetBody()...)
	resp := &procv3.BodyResponse{}
	if st.req.Method != "GET" && (b.GetEndOfStream() || len(st.req.Body) > 0) {
		st.list = st.srv.filter.ListRequestOf(&st.req)
	}
	if b.GetEndOfStream() {
		st.answer = st.versionsAnswer()
	}
	if st.list != nil && !st.list.Replay {
		if _, ok := st.req.Headers["accept-encoding"]; ok {
			resp.Response = &procv3.CommonResponse{HeaderMutation: &procv3.HeaderMutation{RemoveHeaders: []string{"accept-encoding"}}}
		}
	}
	return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_RequestBody{RequestBody: resp}}
}

// responseHeaders chooses how the answer to a request holding list
// requests (or a GET's) is read: whatever its content-type says (missing,
// repeated, odd: clients differ on those), its bytes are filtered as they
// come, as JSON or as an event stream by what they are
// (decision.ListEventStream); a JSON content-type asks Envoy to buffer the
// body (mode_override, when Envoy allows it; it is collected here
// otherwise). An answer in a content coding cannot be read: it is replaced
// by JSON-RPC errors (a GET's stream by nothing). Anything else is left
// alone (its body is not even sent to us).
func (st *streamState) responseHeaders(h *procv3.HttpHeaders) *procv3.ProcessingResponse {
	resp := &procv3.ProcessingResponse{}
	hr := &procv3.HeadersResponse{}
	resp.Response = &procv3.ProcessingResponse_ResponseHeaders{ResponseHeaders: hr}
	if st.list == nil && st.answer != nil && !h.GetEndOfStream() {
		return resp // its body is read as it passes (responseBody)
	}
	if st.list == nil || h.GetEndOfStream() {
		resp.ModeOverride = &procfilterv3.ProcessingMode{ResponseBodyMode: procfilterv3.ProcessingMode_NONE}
		return resp
	}
	hs := headerMap(h.GetHeaders())
	mut := &procv3.HeaderMutation{RemoveHeaders: []string{"content-length"}}
	switch enc := strings.TrimSpace(strings.ToLower(hs["content-encoding"])); {
	case enc != "" && enc != "identity" && st.list.Replay:
		st.srv.log.Warn("event stream in a content coding ext_proc cannot read; not passed on", "content_encoding", enc)
		st.mode = dropBody
		mut.RemoveHeaders = append(mut.RemoveHeaders, "content-encoding")
	case enc != "" && enc != "identity":
		st.mode = failBody
		mut.RemoveHeaders = append(mut.RemoveHeaders, "content-encoding")
		mut.SetHeaders = []*corev3.HeaderValueOption{{Header: &corev3.HeaderValue{Key: "content-type", RawValue: []byte("application/json")}}}
	default:
		st.mode = filterBody
		st.sse = decision.NewListEventStream(st.list, st.srv.maxAnswer, st.srv.log, st.filter)
		if ct, _, _ := mime.ParseMediaType(hs["content-type"]); ct == "application/json" && !st.list.Replay {
			resp.ModeOverride = &procfilterv3.ProcessingMode{ResponseBodyMode: procfilterv3.ProcessingMode_BUFFERED}
		}
	}
	hr.Response = &procv3.CommonResponse{HeaderMutation: mut}
	return resp
}

// responseBody filters one chunk (or the whole buffered body) of the
// answer.
func (st *streamState) responseBody(b *procv3.HttpBody) *procv3.ProcessingResponse {
	eof := b.GetEndOfStream()
	var out []byte
	changed := true
	switch st.mode {
	case passBody:
		changed = false
		if st.answer != nil {
			st.answer.Feed(b.GetBody(), eof)
		}
	case failBody:
		if eof {
			out = decision.ListError(st.list, decision.ErrListEncoded)
		}
	case dropBody:
		// out stays empty: the chunk is cleared
	case filterBody:
		out, changed = st.sse.Feed(b.GetBody(), eof)
	}
	br := &procv3.BodyResponse{}
	if changed {
		bm := &procv3.BodyMutation{}
		if len(out) == 0 {
			bm.Mutation = &procv3.BodyMutation_ClearBody{ClearBody: true}
		} else {
			bm.Mutation = &procv3.BodyMutation_Body{Body: out}
		}
		br.Response = &procv3.CommonResponse{BodyMutation: bm}
	}
	return &procv3.ProcessingResponse{Response: &procv3.ProcessingResponse_ResponseBody{ResponseBody: br}}
}

// filter runs the engine's list filter on one JSON-RPC message.
func (st *streamState) filter(msg []byte) ([]byte, decision.ListOutcome) {
	out, res := st.srv.filter.FilterResponse(st.ctx, &st.req, st.list, msg)
	decision.LogListOutcome(st.srv.log, st.list, res)
	return out, res
}
