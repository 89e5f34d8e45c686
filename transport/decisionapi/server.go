// Package decisionapi serves the mcpauthz Decision API (mcpauthz.v1.DecisionService)
// over gRPC. It is an adapter only: it turns API messages into
// decision.Request values and engine answers into API messages, so the
// engine and its contracts are exactly those of the ext_authz path.
package decisionapi

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
)

// DefaultMaxBatch bounds DecideBatch when Options.MaxBatch is zero.
const DefaultMaxBatch = 1000

// Decider makes decisions; *decision.Engine is one.
type Decider interface {
	Decide(ctx context.Context, r *decision.Request) *decision.Decision
}

// Lister decides list visibility; *decision.ItemFilter is one.
type Lister interface {
	Visible(ctx context.Context, r *decision.Request, items []decision.Item) (*decision.VisibleResult, error)
}

// Options configure the server.
type Options struct {
	// TrustClaims reports whether the caller of ctx may pass already
	// verified claims (Credentials.claims) instead of a token. Nil trusts
	// nobody. TrustVerifiedClientCert trusts callers authenticated by mTLS.
	TrustClaims func(ctx context.Context) bool
	// MaxBatch bounds the requests of one DecideBatch (default 1000).
	MaxBatch int
	// Status reports the policy status for the Status RPC; nil makes it
	// UNIMPLEMENTED. (*bundles.Manager).Status is one.
	Status func() bundles.Status
	// Logger receives request errors (default: discard).
	Logger *slog.Logger
}

// Server implements mcpauthz.v1.DecisionService.
type Server struct {
	pb.UnimplementedDecisionServiceServer
	engine Decider
	items  Lister
	opts   Options
	log    *slog.Logger
}

var _ pb.DecisionServiceServer = (*Server)(nil)

// NewServer builds the Decision API server around an engine and an item
// filter.
func NewServer(engine Decider, items Lister, opts Options) *Server {
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &Server{engine: engine, items: items, opts: opts, log: opts.Logger}
}

func (s *Server) trusted(ctx context.Context) bool {
	return s.opts.TrustClaims != nil && s.opts.TrustClaims(ctx)
}

// Decide answers one request. Denials are answers, not errors; only a
// request that cannot be read (or claims from an untrusted caller) fails.
func (s *Server) Decide(ctx context.Context, req *pb.DecideRequest) (*pb.DecideResponse, error) {
	r, err := RequestFromProto(req, s.trusted(ctx))
	if err != nil {
		return nil, s.fail(err)
	}
	return &pb.DecideResponse{Decision: DecisionToProto(s.engine.Decide(ctx, r))}, nil
}

// DecideBatch answers many independent requests, in order.
func (s *Server) DecideBatch(ctx context.Context, req *pb.DecideBatchRequest) (*pb.DecideBatchResponse, error) {
	n := len(req.GetRequests())
	if n > s.opts.MaxBatch {
		return nil, status.Errorf(codes.InvalidArgument, "batch of %d requests exceeds the limit of %d", n, s.opts.MaxBatch)
	}
	trusted := s.trusted(ctx)
	reqs := make([]*decision.Request, n)
	for i, q := range req.GetRequests() {
		r, err := RequestFromProto(q, trusted)
		if err != nil {
			return nil, s.fail(fmt.Errorf("requests[%d]: %w", i, err))
		}
		reqs[i] = r
	}
	out := &pb.DecideBatchResponse{Decisions: make([]*pb.Decision, n)}
	for i, r := range reqs {
		if err := ctx.Err(); err != nil {
			return nil, status.FromContextError(err).Err()
		}
		out.Decisions[i] = DecisionToProto(s.engine.Decide(ctx, r))
	}
	return out, nil
}

// AllowedTools filters the tools of a tools/list answer.
func (s *Server) AllowedTools(ctx context.Context, req *pb.AllowedToolsRequest) (*pb.AllowedToolsResponse, error) {
	items := make([]decision.Item, len(req.GetTools()))
	for i, t := range req.GetTools() {
		annotations, err := structMap(fmt.Sprintf("tools[%d].annotations", i), t.GetAnnotations())
		if err != nil {
			return nil, s.fail(err)
		}
		schema, err := structMap(fmt.Sprintf("tools[%d].input_schema", i), t.GetInputSchema())
		if err != nil {
			return nil, s.fail(err)
		}
		items[i] = decision.Item{
			Kind: decision.ItemTool, Name: t.GetName(), Description: t.GetDescription(),
			Annotations: annotations, InputSchema: schema,
		}
	}
	res, err := s.visible(ctx, req.GetCaller(), items)
	if err != nil {
		return nil, err
	}
	out := &pb.AllowedToolsResponse{Revision: res.Revision, Verdicts: verdicts(items, res)}
	for i, t := range req.GetTools() {
		if res.Items[i].Visible {
			out.Tools = append(out.Tools, t)
		}
	}
	return out, nil
}

// AllowedPrompts filters the prompts of a prompts/list answer.
func (s *Server) AllowedPrompts(ctx context.Context, req *pb.AllowedPromptsRequest) (*pb.AllowedPromptsResponse, error) {
	items := make([]decision.Item, len(req.GetPrompts()))
	for i, p := range req.GetPrompts() {
		annotations, err := structMap(fmt.Sprintf("prompts[%d].annotations", i), p.GetAnnotations())
		if err != nil {
			return nil, s.fail(err)
		}
		items[i] = decision.Item{
			Kind: decision.ItemPrompt, Name: p.GetName(), Description: p.GetDescription(),
			Annotations: annotations,
		}
	}
	res, err := s.visible(ctx, req.GetCaller(), items)
	if err != nil {
		return nil, err
	}
	out := &pb.AllowedPromptsResponse{Revision: res.Revision, Verdicts: verdicts(items, res)}
	for i, p := range req.GetPrompts() {
		if res.Items[i].Visible {
			out.Prompts = append(out.Prompts, p)
		}
	}
	return out, nil
}

// AllowedResources filters the resources of a resources/list answer.
func (s *Server) AllowedResources(ctx context.Context, req *pb.AllowedResourcesRequest) (*pb.AllowedResourcesResponse, error) {
	items := make([]decision.Item, len(req.GetResources()))
	for i, r := range req.GetResources() {
		annotations, err := structMap(fmt.Sprintf("resources[%d].annotations", i), r.GetAnnotations())
		if err != nil {
			return nil, s.fail(err)
		}
		items[i] = decision.Item{
			Kind: decision.ItemResource, Name: r.GetName(), URI: r.GetUri(), Description: r.GetDescription(),
			Annotations: annotations,
		}
	}
	res, err := s.visible(ctx, req.GetCaller(), items)
	if err != nil {
		return nil, err
	}
	out := &pb.AllowedResourcesResponse{Revision: res.Revision, Verdicts: verdicts(items, res)}
	for i, r := range req.GetResources() {
		if res.Items[i].Visible {
			out.Resources = append(out.Resources, r)
		}
	}
	return out, nil
}

func (s *Server) visible(ctx context.Context, c *pb.Caller, items []decision.Item) (*decision.VisibleResult, error) {
	r, err := callerRequest(c, s.trusted(ctx))
	if err != nil {
		return nil, s.fail(err)
	}
	res, err := s.items.Visible(ctx, r, items)
	if err != nil {
		return nil, s.fail(err)
	}
	for i, v := range res.Items {
		if v.Err != nil {
			s.log.Warn("visibility evaluation failed; item hidden", "item", items[i].Name, "error", v.Err)
		}
	}
	return res, nil
}

// Status reports the loaded policy.
func (s *Server) Status(context.Context, *pb.StatusRequest) (*pb.StatusResponse, error) {
	if s.opts.Status == nil {
		return nil, status.Error(codes.Unimplemented, "status is not available on this server")
	}
	st := s.opts.Status()
	out := &pb.StatusResponse{
		Ready: st.Ready, Revision: st.Revision, LoadedAt: ts(st.LoadedAt),
		LastError: st.LastError, LastErrorAt: ts(st.LastErrorAt),
	}
	for _, b := range st.Bundles {
		out.Bundles = append(out.Bundles, &pb.BundleStatus{
			Name: b.Name, Revision: b.Revision, Etag: b.ETag,
			LastDownloadAt: ts(b.LastDownloadAt),
			LastError:      b.LastError, LastErrorAt: ts(b.LastErrorAt),
		})
	}
	return out, nil
}

// fail maps an adapter error to a short gRPC status; detail goes to the log.
func (s *Server) fail(err error) error {
	var re *requestError
	switch {
	case errors.As(err, &re):
		return status.Error(re.code, err.Error())
	case errors.Is(err, decision.ErrNoPolicy):
		return status.Error(codes.Unavailable, "no policy is loaded yet")
	}
	s.log.Error("decision API request failed", "error", err)
	return status.Error(codes.Internal, "internal error")
}

func verdicts(items []decision.Item, res *decision.VisibleResult) []*pb.Visibility {
	out := make([]*pb.Visibility, len(items))
	for i, v := range res.Items {
		name := items[i].Name
		if items[i].Kind == decision.ItemResource {
			name = items[i].URI
		}
		pv := &pb.Visibility{Name: name, Visible: v.Visible}
		switch v.Basis {
		case decision.BasisRule:
			pv.Basis = pb.VisibilityBasis_VISIBILITY_BASIS_RULE
		case decision.BasisPartialEval:
			pv.Basis = pb.VisibilityBasis_VISIBILITY_BASIS_PARTIAL_EVAL
		default:
			pv.Basis = pb.VisibilityBasis_VISIBILITY_BASIS_ERROR
			if v.Err != nil {
				pv.Error = v.Err.Error()
			}
		}
		out[i] = pv
	}
	return out
}

// ts converts a time, leaving the zero time unset.
func ts(t time.Time) *timestamppb.Timestamp {
	if t.IsZero() {
		return nil
	}
	return timestamppb.New(t)
}
