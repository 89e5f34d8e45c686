// Package extmcp serves agentgateway's ExtMcp protocol
// (agentgateway.dev.ext_mcp.ExtMcp, the "remote" processors of
// agentgateway's mcpGuardrails): CheckRequest decides one MCP request with
// the engine, exactly as the ext_authz path decides the same message, and
// CheckResponse filters the result of tools/list, prompts/list,
// resources/list and resources/templates/list by the policy's visible rule
// (decision.ItemFilter), keeping the server's order.
//
// Every RPC is answered with a result, never a gRPC error: a message that
// cannot be read, a panic or any unexpected state is an AuthorizationError,
// so agentgateway's failure_mode never decides (it is failClosed by
// default, but failOpen exists).
package extmcp

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/mcpauthz/mcpauthz/decision"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/agentgateway/dev/ext_mcp"
)

// DefaultMetadataKey is the metadata_context key holding the caller's
// authorization header value: agentgateway's configuration sets it with
// the CEL expression request.headers["authorization"]. CheckResponse
// carries no headers, so the caller of a list comes only from there.
const DefaultMetadataKey = "authorization"

// ProtocolVersionKey is the metadata_context key holding the client's
// MCP-Protocol-Version header value (CEL request.headers["mcp-protocol-version"]).
// CheckResponse reads it to know whether a filtered result gets
// cacheScope "private" (2026-07-28 and later); without it, a filtered
// result always gets it, which any revision accepts (results may carry
// members a revision does not define).
const ProtocolVersionKey = "mcp_protocol_version"

// ContextServerKey is the input.context key service_names become: the
// backend a call targets ("files"), or, for a fanout method (*/list) over
// several backends, their names joined with ",".
const ContextServerKey = "mcp_server"

// Decider decides one request; *decision.Engine is one.
type Decider interface {
	Decide(ctx context.Context, r *decision.Request) *decision.Decision
}

// Filter filters list results; *decision.ItemFilter is one.
type Filter interface {
	FilterResult(ctx context.Context, r *decision.Request, method, protocolVersion string, result []byte) ([]byte, decision.ListOutcome, bool, error)
}

// failureRecorder is an engine that records a failed request as a
// decision (decision.Engine.Failed), so that it is logged and counted.
type failureRecorder interface {
	Failed(ctx context.Context, r *decision.Request, why any) *decision.Decision
}

// Options configure the server.
type Options struct {
	// MetadataKey is the metadata_context key of the caller's
	// authorization header value; default DefaultMetadataKey. CheckRequest
	// reads it when headers carry no authorization.
	MetadataKey string
	// MaxMessageBytes bounds a message (0: none): a larger one is answered
	// as unreadable (an AuthorizationError for a call, an unfilterable
	// answer for a list), before it is decoded, never with a gRPC error
	// agentgateway's failure mode would decide. gRPC reads messages of any
	// size on mcpauthz's port (ext_authz needs it).
	MaxMessageBytes int
	// Logger receives what went wrong (default: discard).
	Logger *slog.Logger
	// TrustResponses says whether a CheckResponse caller is authenticated
	// (agentgateway, by mTLS or the API token): only the list results it
	// sends change what the engine remembers of pinned tools
	// (decision.Request.ResponseTrusted). Nil: none does.
	TrustResponses func(context.Context) bool
}

// Server is an agentgateway.dev.ext_mcp.ExtMcp server.
type Server struct {
	pb.UnimplementedExtMcpServer
	engine Decider
	items  Filter
	key    string
	max    int
	log    *slog.Logger
	trust  func(context.Context) bool
}

var _ pb.ExtMcpServer = (*Server)(nil)

// NewServer builds the server on an engine and its item filter.
func NewServer(engine Decider, items Filter, opts Options) *Server {
	if opts.MetadataKey == "" {
		opts.MetadataKey = DefaultMetadataKey
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{engine: engine, items: items, key: opts.MetadataKey, max: opts.MaxMessageBytes, log: opts.Logger, trust: opts.TrustResponses}
}

// Register adds the service to a gRPC server. Its handlers answer a
// message that does not decode as the protocol says (bytes that are not
// protobuf, with mcpauthz's server codec; a string that is not UTF-8) with an AuthorizationError instead of the gRPC error the
// generated handlers would return (see decodeInto).
func (s *Server) Register(reg grpc.ServiceRegistrar) {
	reg.RegisterService(&serviceDesc, s)
}

var serviceDesc = grpc.ServiceDesc{
	ServiceName: pb.ExtMcp_ServiceDesc.ServiceName,
	HandlerType: (*pb.ExtMcpServer)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "CheckRequest", Handler: checkRequestHandler},
		{MethodName: "CheckResponse", Handler: checkResponseHandler},
	},
	Metadata: pb.ExtMcp_ServiceDesc.Metadata,
}

// decodeInto reads one message for a handler. With mcpauthz's server
// codec (transport/extauthz.ServerCodec, on the whole gRPC port) the
// message's bytes arrive as they are (ReceiveRaw) and nothing fails in
// gRPC; with any other codec they are read as an empty message, which
// keeps every field as an unknown one, and only bytes that are not
// protobuf at all fail there. The fields are then decoded into m here, so
// that what breaks the protocol (bytes that are not protobuf, a string
// that is not UTF-8) is answered with a result rather than a gRPC error
// status, which agentgateway's failure mode would decide.
func decodeInto(dec func(any) error, m proto.Message, max int) (grpcErr, protoErr error) {
	var w wireMessage
	if err := dec(&w); err != nil {
		return err, nil
	}
	b := w.bytes()
	if max > 0 && len(b) > max {
		return nil, fmt.Errorf("the message's %d bytes are more than the %d accepted", len(b), max)
	}
	return nil, proto.Unmarshal(b, m)
}

// wireMessage is what the handlers decode into: the raw bytes from
// mcpauthz's codec, or, from any other protobuf codec, an empty message
// holding every field as unknown.
type wireMessage struct {
	emptypb.Empty
	raw []byte
	got bool
}

// ReceiveRaw takes the message's bytes (extauthz.RawReceiver).
func (w *wireMessage) ReceiveRaw(b []byte) { w.raw, w.got = b, true }

func (w *wireMessage) bytes() []byte {
	if w.got {
		return w.raw
	}
	return w.Empty.ProtoReflect().GetUnknown()
}

func checkRequestHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	s := srv.(*Server)
	in := &pb.McpRequest{}
	gerr, perr := decodeInto(dec, in, s.max)
	if gerr != nil {
		return nil, gerr // the status is already sent
	}
	if perr != nil {
		// Decided by the engine, so that it is counted and logged.
		return s.decided(ctx, &decision.Request{Unreadable: "decoding McpRequest: " + perr.Error()}), nil
	}
	if interceptor == nil {
		return s.CheckRequest(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: pb.ExtMcp_CheckRequest_FullMethodName},
		func(ctx context.Context, req any) (any, error) { return s.CheckRequest(ctx, req.(*pb.McpRequest)) })
}

func checkResponseHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	s := srv.(*Server)
	in := &pb.McpResponse{}
	gerr, perr := decodeInto(dec, in, s.max)
	if gerr != nil {
		return nil, gerr
	}
	if perr != nil {
		s.log.Warn("ExtMcp CheckResponse unreadable; refused", "error", perr)
		return unfilterable("the response could not be read: " + perr.Error()), nil
	}
	if interceptor == nil {
		return s.CheckResponse(ctx, in)
	}
	return interceptor(ctx, in, &grpc.UnaryServerInfo{Server: srv, FullMethod: pb.ExtMcp_CheckResponse_FullMethodName},
		func(ctx context.Context, req any) (any, error) { return s.CheckResponse(ctx, req.(*pb.McpResponse)) })
}

// CheckRequest decides one MCP request: Pass with the upstream header
// changes of an allowed request, or an AuthorizationError carrying the
// JSON-RPC error mcpauthz answers the same request with. It never returns
// an error.
func (s *Server) CheckRequest(ctx context.Context, in *pb.McpRequest) (out *pb.McpRequestResult, err error) {
	var r *decision.Request
	defer func() {
		if p := recover(); p != nil {
			out, err = s.failedRequest(ctx, r, p), nil
		}
	}()
	r = RequestFrom(in, s.key)
	return s.decided(ctx, r), nil
}

// decided is the result of the engine's decision on r.
func (s *Server) decided(ctx context.Context, r *decision.Request) *pb.McpRequestResult {
	return ResultFrom(s.engine.Decide(ctx, r))
}

// failedRequest answers a CheckRequest whose handling panicked here: the
// engine's internal_error denial when it records failures (logged,
// counted), else a fixed one, logged here.
func (s *Server) failedRequest(ctx context.Context, r *decision.Request, p any) (out *pb.McpRequestResult) {
	if rec, ok := s.engine.(failureRecorder); ok {
		defer func() {
			if recover() != nil {
				out = ResultFrom(decision.InternalError())
			}
		}()
		if r == nil {
			r = &decision.Request{}
		}
		return ResultFrom(rec.Failed(ctx, r, fmt.Sprintf("ExtMcp adapter: %v", p)))
	}
	s.log.Error("panic in the ExtMcp adapter; denying", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
	return ResultFrom(decision.InternalError())
}

// CheckResponse filters the result of a list method for the caller named
// by metadata_context (see Options.MetadataKey): Pass when nothing was
// removed, else the filtered result as Mutated. The result of any other
// method passes. A caller without a credential is judged as such (as its
// calls are); a credential that is rejected, or no policy, empties the
// list; a result that cannot be read strictly, or whose items cannot all
// be judged, is refused. It never returns an error.
func (s *Server) CheckResponse(ctx context.Context, in *pb.McpResponse) (out *pb.McpResponseResult, err error) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("panic in the ExtMcp adapter; list result refused", "panic", fmt.Sprint(p), "stack", string(debug.Stack()))
			out, err = unfilterable("internal error; the result could not be filtered"), nil
		}
	}()
	method := in.GetMethod()
	if !decision.IsListMethod(method) {
		return passResponse(), nil
	}
	r, version, why := callerOf(in.GetMetadataContext(), s.key)
	if why != "" {
		s.log.Warn("ExtMcp list result refused", "method", method, "error", why)
		return unfilterable(why), nil
	}
	r.Context = serverContext(in.GetServiceNames())
	r.ResponseTrusted = s.trust != nil && s.trust(ctx)
	result := in.GetMcpResponse()
	if err := strictResult(result); err != nil {
		s.log.Warn("ExtMcp list result unreadable; refused", "method", method, "error", err)
		return unfilterable("the list answer could not be read: " + err.Error()), nil
	}
	if version == "" {
		version = decision.Version20260728
	}
	filtered, res, changed, err := s.items.FilterResult(ctx, r, method, version, result)
	if err != nil {
		s.log.Warn("ExtMcp list result unreadable; refused", "method", method, "error", err)
		return unfilterable("the list answer could not be read: " + err.Error()), nil
	}
	if res.Emptied != nil {
		s.log.Info("ExtMcp list result emptied", "method", method, "why", res.Emptied.Error(), "items", res.Items)
	}
	if len(res.Errors) > 0 {
		// A list whose items cannot all be judged is not shown short: the
		// caller is told to ask again.
		for _, e := range res.Errors {
			s.log.Warn("visibility evaluation failed; list refused", "method", method, "error", e)
		}
		return unfilterable(decision.ErrListUnjudged), nil
	}
	if !changed {
		return passResponse(), nil
	}
	return &pb.McpResponseResult{Result: &pb.McpResponseResult_Mutated{Mutated: filtered}}, nil
}

// passResponse is the answer that changes nothing (a new one each time:
// the caller owns what it is given).
func passResponse() *pb.McpResponseResult {
	return &pb.McpResponseResult{Result: &pb.McpResponseResult_Pass{Pass: &pb.Pass{}}}
}

// unfilterable refuses a list result that cannot be shown unfiltered: the
// JSON-RPC internal error the other list filters answer with.
func unfilterable(message string) *pb.McpResponseResult {
	message = strings.ToValidUTF8(message, "\uFFFD")
	return &pb.McpResponseResult{Result: &pb.McpResponseResult_Error{Error: &pb.AuthorizationError{
		Code:     pb.AuthorizationError_UNKNOWN,
		Reason:   message,
		McpError: rpcError(decision.CodeListUnfilterable, message, nil),
	}}}
}

// validUTF8 reports whether every string is UTF-8 (protobuf strings must
// be; a caller that is not gRPC-go may not check).
func validUTF8(ss ...string) bool {
	for _, s := range ss {
		if !utf8.ValidString(s) {
			return false
		}
	}
	return true
}
