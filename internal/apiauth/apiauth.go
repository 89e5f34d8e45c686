// Package apiauth decides who may call mcpauthz's own APIs: the Decision
// API (mcpauthz.v1.DecisionService, gRPC) and AuthZEN (HTTP). These answer
// any question about any subject, so they are not open by default: a
// caller is authenticated by a bearer token (the API token of
// api.bearer_token_file, compared in constant time) or, on the gRPC port,
// by a client certificate the port verified (listen.tls.client_ca_file).
// Open access is an explicit choice (api.unauthenticated: true), for
// development and for deployments where the network does the
// authentication. ext_authz, ext_proc and ExtMcp are not concerned: their
// caller is Envoy or agentgateway, which mTLS on the port authenticates.
package apiauth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"strings"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"
)

// Options say how callers are authenticated.
type Options struct {
	// Unauthenticated lets every caller in (api.unauthenticated).
	Unauthenticated bool
	// Token, when set, is the API token callers send as
	// "Authorization: Bearer <token>" (HTTP) or the authorization metadata
	// (gRPC).
	Token string
	// ClientCerts accepts a gRPC caller whose client certificate the port
	// verified (the port has a client CA).
	ClientCerts bool
}

// Authenticator checks the callers of the APIs.
type Authenticator struct {
	open        bool
	hasToken    bool
	tokenSum    [sha256.Size]byte
	clientCerts bool
}

// New builds the authenticator.
func New(o Options) *Authenticator {
	a := &Authenticator{open: o.Unauthenticated, clientCerts: o.ClientCerts}
	if o.Token != "" {
		a.hasToken, a.tokenSum = true, sha256.Sum256([]byte(o.Token))
	}
	return a
}

// Refuses reports whether no caller can ever be authenticated (no token,
// no client certificates, not open): the APIs then refuse everyone, which
// start-up says.
func (a *Authenticator) Refuses() bool { return !a.open && !a.hasToken && !a.clientCerts }

// Errors of a refused caller: what is missing, and what to do.
var (
	errNoCredential = errors.New("the API needs an API token (Authorization: Bearer, api.bearer_token_file) or, on the gRPC port, a verified client certificate")
	errWrongToken   = errors.New("the API token is not valid")
	errClosed       = errors.New("the API accepts no caller: configure api.bearer_token_file or listen.tls.client_ca_file, or set api.unauthenticated: true")
)

// token checks an Authorization value.
func (a *Authenticator) token(authz string) error {
	scheme, tok, ok := strings.Cut(strings.TrimSpace(authz), " ")
	if !ok || !strings.EqualFold(scheme, "bearer") || tok == "" {
		return errNoCredential
	}
	sum := sha256.Sum256([]byte(strings.TrimSpace(tok)))
	if subtle.ConstantTimeCompare(sum[:], a.tokenSum[:]) != 1 {
		return errWrongToken
	}
	return nil
}

// HTTP authenticates an HTTP caller (AuthZEN): nil when it may call.
func (a *Authenticator) HTTP(r *http.Request) error {
	switch {
	case a.open:
		return nil
	case a.Refuses():
		return errClosed
	case !a.hasToken:
		return errNoCredential
	}
	return a.token(r.Header.Get("Authorization"))
}

// GRPC authenticates a gRPC caller (the Decision API): nil when it may
// call.
func (a *Authenticator) GRPC(ctx context.Context) error {
	switch {
	case a.open:
		return nil
	case a.Refuses():
		return errClosed
	case a.clientCerts && VerifiedClientCert(ctx):
		return nil
	case !a.hasToken:
		return errNoCredential
	}
	md, _ := metadata.FromIncomingContext(ctx)
	vals := md.Get("authorization")
	if len(vals) != 1 {
		return errNoCredential
	}
	return a.token(vals[0])
}

// VerifiedClientCert reports whether the caller presented a client
// certificate the port verified.
func VerifiedClientCert(ctx context.Context) bool {
	p, ok := peer.FromContext(ctx)
	if !ok || p.AuthInfo == nil {
		return false
	}
	ti, ok := p.AuthInfo.(credentials.TLSInfo)
	return ok && len(ti.State.VerifiedChains) > 0
}

// TapHandle returns the gRPC server's InTapHandle that refuses a call of
// the services named whose caller is not authenticated, when its headers
// arrive: before gRPC reads its message, which on mcpauthz's port may be
// of any size (ext_authz needs that), so an anonymous caller cannot make
// the server buffer one. The caller's certificate and metadata are known
// then. The interceptors check again: they also serve servers built
// without the tap (grpc's tap package is marked experimental).
func (a *Authenticator) TapHandle(services ...string) tap.ServerInHandle {
	return func(ctx context.Context, info *tap.Info) (context.Context, error) {
		if !guarded(services, info.FullMethodName) {
			return ctx, nil
		}
		if err := a.GRPC(ctx); err != nil {
			return nil, status.Error(codes.Unauthenticated, err.Error())
		}
		return ctx, nil
	}
}

// guarded reports whether fullMethod ("/pkg.Service/Method") is a method
// of one of services.
func guarded(services []string, fullMethod string) bool {
	for _, s := range services {
		if strings.HasPrefix(fullMethod, "/"+s+"/") {
			return true
		}
	}
	return false
}

// Interceptors return the unary and stream interceptors that authenticate
// every call of the services named (full names, "mcpauthz.v1.DecisionService")
// and let every other call through: a refused call ends with
// Unauthenticated before its handler runs.
func (a *Authenticator) Interceptors(services ...string) (grpc.UnaryServerInterceptor, grpc.StreamServerInterceptor) {
	check := func(ctx context.Context, fullMethod string) error {
		if !guarded(services, fullMethod) {
			return nil
		}
		if err := a.GRPC(ctx); err != nil {
			return status.Error(codes.Unauthenticated, err.Error())
		}
		return nil
	}
	unary := func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		if err := check(ctx, info.FullMethod); err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
	stream := func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		if err := check(ss.Context(), info.FullMethod); err != nil {
			return err
		}
		return handler(srv, ss)
	}
	return unary, stream
}
