package main

import (
	"net/http"

	"google.golang.org/grpc"

	"github.com/mcpauthz/mcpauthz/decision"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
	"github.com/mcpauthz/mcpauthz/transport/authzen"
	"github.com/mcpauthz/mcpauthz/transport/decisionapi"
)

// registerExtraGRPC adds the services that share the ext_authz port: the
// Decision API (mcpauthz.v1.DecisionService).
func (a *app) registerExtraGRPC(s *grpc.Server) {
	opts := decisionapi.Options{
		Status: a.bundles.Status,
		Logger: a.log.With("component", "decision-api"),
	}
	// Already verified claims are accepted only from callers the port
	// authenticated by mTLS; everyone else sends a token.
	if a.cfg.Listen.TLS.ClientCAFile != "" {
		opts.TrustClaims = decisionapi.TrustVerifiedClientCert
	}
	pb.RegisterDecisionServiceServer(s, decisionapi.NewServer(a.engine, decision.NewItemFilter(a.engine), opts))
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
