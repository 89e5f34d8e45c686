package oauth

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// TestGoSDKDiscovery shows that the MCP Go SDK finds our metadata the way it
// does against a real server: it reads the resource_metadata URL from the 401
// challenge, fetches it (https, resource equal to the MCP endpoint URL) and,
// for 403, reads the scopes to step up to.
func TestGoSDKDiscovery(t *testing.T) {
	mux := http.NewServeMux()
	srv := httptest.NewUnstartedServer(mux)
	srv.StartTLS()
	t.Cleanup(srv.Close)

	res := Resource{
		URI:                  srv.URL + "/mcp",
		AuthorizationServers: []string{"https://auth.example.com"},
		ScopesSupported:      []string{"tools:read", "tools:call"},
		ResourceName:         "test",
	}
	if err := res.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	meta := MetadataURL(res.URI)
	mux.Handle(WellKnownPath, res.Handler())
	mux.Handle(WellKnownPath+"/", res.Handler())
	mux.HandleFunc("/mcp", func(w http.ResponseWriter, r *http.Request) {
		switch r.Header.Get("Authorization") {
		case "":
			w.Header().Set("WWW-Authenticate", Challenge401(meta, false, ""))
			w.WriteHeader(http.StatusUnauthorized)
		case "Bearer weak":
			w.Header().Set("WWW-Authenticate", Challenge403(meta, []string{"tools:read", "tools:call"}, `tools/call "deploy" needs tools:call`))
			w.WriteHeader(http.StatusForbidden)
		default:
			w.Header().Set("WWW-Authenticate", Challenge401(meta, true, `token "aud" is not this server`))
			w.WriteHeader(http.StatusUnauthorized)
		}
	})

	tests := map[string]struct {
		authorization string
		wantStatus    int
		wantParams    map[string]string
	}{
		"no_token": {wantStatus: 401, wantParams: map[string]string{"resource_metadata": meta}},
		"bad_token": {authorization: "Bearer forged", wantStatus: 401, wantParams: map[string]string{
			"resource_metadata": meta, "error": "invalid_token", "error_description": `token "aud" is not this server`,
		}},
		"step_up": {authorization: "Bearer weak", wantStatus: 403, wantParams: map[string]string{
			"resource_metadata": meta, "error": "insufficient_scope", "scope": "tools:read tools:call",
			"error_description": `tools/call "deploy" needs tools:call`,
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			req, err := http.NewRequestWithContext(ctx, http.MethodPost, res.URI, strings.NewReader(`{}`))
			if err != nil {
				t.Fatal(err)
			}
			if tc.authorization != "" {
				req.Header.Set("Authorization", tc.authorization)
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", resp.StatusCode, tc.wantStatus)
			}
			challenges, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
			if err != nil {
				t.Fatalf("SDK cannot parse our challenge: %v", err)
			}
			if len(challenges) != 1 || challenges[0].Scheme != "bearer" {
				t.Fatalf("SDK parsed %+v, want one bearer challenge", challenges)
			}
			for k, want := range tc.wantParams {
				if got := challenges[0].Params[k]; got != want {
					t.Errorf("SDK read %s = %q, want %q", k, got, want)
				}
			}
			if len(challenges[0].Params) != len(tc.wantParams) {
				t.Errorf("SDK read params %v, want exactly %v", challenges[0].Params, tc.wantParams)
			}

			// The SDK's fetch checks https (or loopback), the content type and
			// that resource equals the URL it asked about.
			prm, err := oauthex.GetProtectedResourceMetadata(ctx, challenges[0].Params["resource_metadata"], res.URI, srv.Client())
			if err != nil {
				t.Fatalf("SDK cannot fetch our metadata: %v", err)
			}
			if prm.Resource != res.URI || len(prm.AuthorizationServers) != 1 || prm.AuthorizationServers[0] != "https://auth.example.com" {
				t.Errorf("SDK got metadata %+v", prm)
			}
			if strings.Join(prm.ScopesSupported, " ") != "tools:read tools:call" || strings.Join(prm.BearerMethodsSupported, " ") != "header" {
				t.Errorf("SDK got scopes %v, bearer methods %v", prm.ScopesSupported, prm.BearerMethodsSupported)
			}
		})
	}

	// Without a challenge the SDK falls back to the path form and then the
	// root form; the path form is ours.
	prm, err := oauthex.GetProtectedResourceMetadata(context.Background(), srv.URL+WellKnownPath+"/mcp", res.URI, srv.Client())
	if err != nil {
		t.Fatalf("SDK cannot fetch the path-form metadata: %v", err)
	}
	if prm.Resource != res.URI {
		t.Errorf("path form: resource %q, want %q", prm.Resource, res.URI)
	}
}
