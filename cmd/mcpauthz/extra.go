package main

import (
	"net/http"

	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/api"
	"github.com/mcpauthz/mcpauthz/decision/authzen"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
)

// registerExtraGRPC adds the services that share the ext_authz port: the
// Decision API (mcpauthz.v1.DecisionService).
func (a *app) registerExtraGRPC(s *grpc.Server) {
	opts := api.Options{
		Status: a.bundles.Status,
		Logger: a.log.With("component", "decision-api"),
	}
	// Already verified claims are accepted only from callers the port
	// authenticated by mTLS; everyone else sends a token.
	if a.cfg.Listen.TLS.ClientCAFile != "" {
		opts.TrustClaims = api.TrustVerifiedClientCert
	}
	pb.RegisterDecisionServiceServer(s, api.NewServer(a.engine, decision.NewItemFilter(a.engine), opts))
}

// registerExtraHTTP adds the endpoints that share the HTTP listener: the
// AuthZEN Authorization API. Subjects must carry a token
// (subject.properties.token): the HTTP listener authenticates no caller, so
// no subject is trusted as already verified.
func (a *app) registerExtraHTTP(mux *http.ServeMux) {
	authzen.New(a.engine, authzen.Options{
		MCPEndpoint: a.cfg.Resource.URI,
		Logger:      a.log.With("component", "authzen"),
	}).Register(mux)
}
