package main

import (
	"net/http"

	"google.golang.org/grpc"
)

// registerExtraGRPC adds the services that share the ext_authz port.
func (a *app) registerExtraGRPC(s *grpc.Server) {}

// registerExtraHTTP adds the endpoints that share the HTTP listener.
func (a *app) registerExtraHTTP(mux *http.ServeMux) {}
