package apiauth

import (
	"context"
	"net/http/httptest"
	"testing"

	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/tap"
)

// TestAuthenticator: who is let in, by configuration and credential.
func TestAuthenticator(t *testing.T) {
	tests := map[string]struct {
		opts  Options
		authz string // HTTP Authorization and gRPC authorization metadata; "" sends none
		ok    bool
	}{
		"open":                 {Options{Unauthenticated: true}, "", true},
		"closed_by_default":    {Options{}, "Bearer x", false},
		"token_missing":        {Options{Token: "t0k"}, "", false},
		"token_wrong":          {Options{Token: "t0k"}, "Bearer t0x", false},
		"token_right":          {Options{Token: "t0k"}, "Bearer t0k", true},
		"token_scheme_case":    {Options{Token: "t0k"}, "bearer t0k", true},
		"token_other_scheme":   {Options{Token: "t0k"}, "Basic t0k", false},
		"certs_only_no_cert":   {Options{ClientCerts: true}, "Bearer t0k", false},
		"token_prefix_refused": {Options{Token: "t0k"}, "Bearer t0", false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			a := New(tc.opts)
			r := httptest.NewRequest("POST", "/access/v1/evaluation", nil)
			ctx := context.Background()
			if tc.authz != "" {
				r.Header.Set("Authorization", tc.authz)
				ctx = metadata.NewIncomingContext(ctx, metadata.Pairs("authorization", tc.authz))
			}
			if err := a.HTTP(r); (err == nil) != tc.ok {
				t.Errorf("HTTP: %v, want ok=%v", err, tc.ok)
			}
			if err := a.GRPC(ctx); (err == nil) != tc.ok {
				t.Errorf("GRPC: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

// TestTapHandle: the tap refuses an unauthenticated call of a guarded
// service only, and lets an authenticated one through.
func TestTapHandle(t *testing.T) {
	tapFn := New(Options{Token: "t0k"}).TapHandle("mcpauthz.v1.DecisionService")
	anon := context.Background()
	authed := metadata.NewIncomingContext(anon, metadata.Pairs("authorization", "Bearer t0k"))
	for name, tc := range map[string]struct {
		ctx    context.Context
		method string
		ok     bool
	}{
		"guarded_anonymous":     {anon, "/mcpauthz.v1.DecisionService/Decide", false},
		"guarded_authenticated": {authed, "/mcpauthz.v1.DecisionService/Decide", true},
		"ext_authz_anonymous":   {anon, "/envoy.service.auth.v3.Authorization/Check", true},
		"prefix_is_not_service": {anon, "/mcpauthz.v1.DecisionServiceX/Decide", true},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := tapFn(tc.ctx, &tap.Info{FullMethodName: tc.method})
			if (err == nil) != tc.ok {
				t.Errorf("tap: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
