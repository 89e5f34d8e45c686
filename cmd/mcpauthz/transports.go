package main

import (
	"context"
	"net/http"

	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/decision"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
	"github.com/mcpauthz/mcpauthz/transport/authzen"
	"github.com/mcpauthz/mcpauthz/transport/decisionapi"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
	"github.com/mcpauthz/mcpauthz/transport/extmcp"
	"github.com/mcpauthz/mcpauthz/transport/extproc"
	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// The transports: each adapts the engine to one protocol, and they are
// registered here, the one place that knows them all (a new transport is a
// package under transport/ and a line here).

// registerGRPCTransports adds the services of the gRPC listener: Envoy's
// ext_authz (envoy.service.auth.v3.Authorization), Envoy's External
// Processing (envoy.service.ext_proc.v3.ExternalProcessor, which filters
// list answers), agentgateway's ExtMcp (agentgateway.dev.ext_mcp.ExtMcp:
// calls decided, lists filtered) and the Decision API
// (mcpauthz.v1.DecisionService).
func (a *app) registerGRPCTransports(s *grpc.Server) {
	items := decision.NewItemFilter(a.engine)
	// The list answers ext_proc and ExtMcp are sent change what the engine
	// remembers of pinned tools only when their caller is authenticated as
	// the APIs' callers are (a verified client certificate, the API token,
	// or api.unauthenticated): anyone reaching the port could otherwise
	// clear a detected rug pull or block a tool for everyone.
	trusted := func(ctx context.Context) bool { return a.apiAuth.GRPC(ctx) == nil }
	extproc.NewServer(items, a.log.With("component", "ext_proc")).WithTrustedCallers(trusted).WithVersions(a.versions).Register(s)
	extmcp.NewServer(a.engine, items, extmcp.Options{
		MetadataKey:     a.cfg.Agentgateway.MetadataKey,
		MaxMessageBytes: a.apiMessageBytes(),
		Logger:          a.log.With("component", "ext_mcp"),
		TrustResponses:  trusted,
	}).Register(s)
	extauthz.NewServer(a.engine, extauthz.Options{
		MCPMetadataNamespace: a.cfg.Envoy.MCPMetadataNamespace,
		JWTMetadataNamespace: a.cfg.Tokens.FromEnvoyMetadata,
		JWTPayloadKey:        a.cfg.Tokens.EnvoyPayloadKey,
	}, a.log).Register(s)
	opts := decisionapi.Options{
		Status: a.bundles.Status,
		Logger: a.log.With("component", "decision-api"),
	}
	// Already verified claims are accepted only from callers the port
	// authenticated by mTLS; everyone else sends a token.
	if a.cfg.Listen.TLS.ClientCAFile != "" {
		opts.TrustClaims = decisionapi.TrustVerifiedClientCert
	}
	pb.RegisterDecisionServiceServer(s, decisionapi.NewServer(a.engine, items, opts))
}

// apiMessageBytes bounds a message of the Decision API and of ExtMcp: a
// request body of limits.max_body_bytes or a list answer of
// decision.DefaultMaxListAnswerBytes, whichever is larger, and 1 MiB for
// the fields around it (a DecideBatch's requests share it). ext_authz
// alone reads any size.
func (a *app) apiMessageBytes() int {
	return max(a.cfg.Limits.MaxBodyBytes, decision.DefaultMaxListAnswerBytes) + 1<<20
}

// registerHTTPTransports adds the transports of the HTTP listener: the
// AuthZEN Authorization API. Its callers are authenticated (api), but a
// caller is not a subject: subjects must carry a token
// (subject.properties.token), none is trusted as already verified. Its
// bodies, and the work an evaluations call causes, are bounded by
// limits.max_body_bytes; its evaluations by limits.max_evaluations.
func (a *app) registerHTTPTransports(mux *http.ServeMux) {
	authzen.New(a.engine, authzen.Options{
		MCPEndpoint:    a.cfg.Resource.URI,
		Logger:         a.log.With("component", "authzen"),
		MaxBodyBytes:   int64(a.cfg.Limits.MaxBodyBytes),
		MaxEvaluations: a.cfg.Limits.MaxEvaluations,
		Authenticate:   a.apiAuth.HTTP,
	}).Register(mux)
}

// proxyHandler builds the transport of the proxy listener (mcpauthz
// proxy): the authorizing reverse proxy to upstream.url, with the
// Protected Resource Metadata served on its origin, where MCP clients look
// for it.
func (a *app) proxyHandler() (http.Handler, error) {
	p, err := proxy.New(a.engine, decision.NewItemFilter(a.engine), proxy.Options{
		Upstream:             a.cfg.Upstream.URL,
		ForwardToken:         a.cfg.Upstream.ForwardToken,
		Context:              a.cfg.Upstream.Context,
		MaxBodyBytes:         a.cfg.Limits.MaxBodyBytes,
		Logger:               a.log.With("component", "proxy"),
		StripRequestHeaders:  a.cfg.Upstream.StripRequestHeaders,
		BodyReadTimeout:      a.cfg.Limits.BodyReadTimeout.D(),
		MaxInflightBodyBytes: a.cfg.Limits.MaxInflightBodyBytes,
		Versions:             a.versions,
		MaxResultBytes:       a.cfg.Limits.MaxResultBytes,
	})
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	prm := a.resource.Handler()
	mux.Handle("/.well-known/oauth-protected-resource", prm)
	mux.Handle("/.well-known/oauth-protected-resource/", prm)
	mux.Handle("/", p)
	return mux, nil
}
