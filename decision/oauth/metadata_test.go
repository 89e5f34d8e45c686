package oauth

import (
	"bytes"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata/")

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden file (run with -update to create it): %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the golden file:\ngot:\n%s\nwant:\n%s", path, got, want)
	}
}

var testResources = map[string]Resource{
	"full": {
		URI:                   "https://mcp.example.com/mcp",
		AuthorizationServers:  []string{"https://auth.example.com", "https://login.example.org/tenant-1"},
		ScopesSupported:       []string{"tools:read", "tools:call", "resources:read"},
		ResourceName:          "Example MCP \"tools\" server",
		ResourceDocumentation: "https://docs.example.com/mcp?lang=en&v=2",
	},
	"minimal": {
		URI:                  "https://mcp.example.com",
		AuthorizationServers: []string{"https://auth.example.com"},
	},
	"dpop": {
		URI:                     "https://mcp.example.com/mcp",
		AuthorizationServers:    []string{"https://auth.example.com"},
		DPoPSigningAlgs:         []string{"ES256", "EdDSA"},
		DPoPBoundTokensRequired: true,
	},
}

func TestMetadataDocumentGolden(t *testing.T) {
	for name, r := range testResources {
		t.Run(name, func(t *testing.T) {
			if err := r.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			doc, err := r.Document()
			if err != nil {
				t.Fatal(err)
			}
			golden(t, "metadata_"+name+".golden", doc)
		})
	}
}

func TestMetadataURL(t *testing.T) {
	tests := map[string]struct{ uri, want string }{
		"path":           {uri: "https://mcp.example.com/mcp", want: "https://mcp.example.com/.well-known/oauth-protected-resource/mcp"},
		"nested_path":    {uri: "https://h.example.com/tenants/a/mcp", want: "https://h.example.com/.well-known/oauth-protected-resource/tenants/a/mcp"},
		"trailing_slash": {uri: "https://h.example.com/mcp/", want: "https://h.example.com/.well-known/oauth-protected-resource/mcp/"},
		"no_path":        {uri: "https://h.example.com", want: "https://h.example.com/.well-known/oauth-protected-resource"},
		"root_path":      {uri: "https://h.example.com/", want: "https://h.example.com/.well-known/oauth-protected-resource"},
		"port":           {uri: "http://localhost:8080/mcp", want: "http://localhost:8080/.well-known/oauth-protected-resource/mcp"},
		"escaped_path":   {uri: "https://h.example.com/a%20b", want: "https://h.example.com/.well-known/oauth-protected-resource/a%20b"},
		"query_kept":     {uri: "https://h.example.com/mcp?tenant=7", want: "https://h.example.com/.well-known/oauth-protected-resource/mcp?tenant=7"},
		"relative":       {uri: "/mcp", want: ""},
		"garbage":        {uri: "://", want: ""},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := MetadataURL(tc.uri); got != tc.want {
				t.Errorf("MetadataURL(%q) = %q, want %q", tc.uri, got, tc.want)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	as := []string{"https://auth.example.com"}
	tests := map[string]struct {
		r       Resource
		wantErr string // "" = valid
	}{
		"https":                 {r: Resource{URI: "https://mcp.example.com/mcp", AuthorizationServers: as}},
		"http_localhost":        {r: Resource{URI: "http://localhost:8080/mcp", AuthorizationServers: []string{"http://localhost:9000"}}},
		"http_loopback":         {r: Resource{URI: "http://127.0.0.1:8080/mcp", AuthorizationServers: as}},
		"http_public":           {r: Resource{URI: "http://mcp.example.com/mcp", AuthorizationServers: as}, wantErr: "http is allowed only"},
		"relative":              {r: Resource{URI: "/mcp", AuthorizationServers: as}, wantErr: "absolute URL"},
		"empty":                 {r: Resource{AuthorizationServers: as}, wantErr: "absolute URL"},
		"other_scheme":          {r: Resource{URI: "ftp://mcp.example.com/mcp", AuthorizationServers: as}, wantErr: "want an https URL"},
		"fragment":              {r: Resource{URI: "https://mcp.example.com/mcp#x", AuthorizationServers: as}, wantErr: "fragment"},
		"empty_fragment":        {r: Resource{URI: "https://mcp.example.com/mcp#", AuthorizationServers: as}, wantErr: "fragment"},
		"user_info":             {r: Resource{URI: "https://u:p@mcp.example.com/mcp", AuthorizationServers: as}, wantErr: "user information"},
		"no_auth_server":        {r: Resource{URI: "https://mcp.example.com/mcp"}, wantErr: "at least one authorization server"},
		"auth_server_http":      {r: Resource{URI: "https://mcp.example.com/mcp", AuthorizationServers: []string{"http://auth.example.com"}}, wantErr: "authorization server 0"},
		"auth_server_query":     {r: Resource{URI: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://auth.example.com?x=1"}}, wantErr: "no query"},
		"scope_with_space":      {r: Resource{URI: "https://mcp.example.com/mcp", AuthorizationServers: as, ScopesSupported: []string{"a b"}}, wantErr: "scope 0"},
		"documentation_not_url": {r: Resource{URI: "https://mcp.example.com/mcp", AuthorizationServers: as, ResourceDocumentation: "see wiki"}, wantErr: "resource documentation"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			err := tc.r.Validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Validate: %v, want nil", err)
			case tc.wantErr != "" && err == nil:
				t.Errorf("Validate: nil, want error containing %q", tc.wantErr)
			case tc.wantErr != "" && !strings.Contains(err.Error(), tc.wantErr):
				t.Errorf("Validate: %q, want error containing %q", err, tc.wantErr)
			}
		})
	}
}

func TestHandler(t *testing.T) {
	r := testResources["full"]
	doc, err := r.Document()
	if err != nil {
		t.Fatal(err)
	}
	h := r.Handler()
	tests := map[string]struct {
		method, path string
		wantStatus   int
		wantBody     []byte // nil: not checked
		wantHeaders  map[string]string
	}{
		"get_root": {method: "GET", path: "/.well-known/oauth-protected-resource", wantStatus: 200, wantBody: doc, wantHeaders: map[string]string{
			"Content-Type": "application/json", "Cache-Control": "max-age=3600", "Access-Control-Allow-Origin": "*",
		}},
		"get_path_form": {method: "GET", path: "/.well-known/oauth-protected-resource/mcp", wantStatus: 200, wantBody: doc, wantHeaders: map[string]string{
			"Content-Type": "application/json", "Access-Control-Allow-Origin": "*",
		}},
		"head": {method: "HEAD", path: "/.well-known/oauth-protected-resource/mcp", wantStatus: 200, wantBody: []byte{}, wantHeaders: map[string]string{
			"Content-Type": "application/json", "Content-Length": "", // filled below
		}},
		"preflight": {method: "OPTIONS", path: "/.well-known/oauth-protected-resource/mcp", wantStatus: 204, wantBody: []byte{}, wantHeaders: map[string]string{
			"Access-Control-Allow-Origin":  "*",
			"Access-Control-Allow-Methods": "GET, HEAD, OPTIONS",
			"Access-Control-Allow-Headers": "Authorization, Content-Type, MCP-Protocol-Version",
		}},
		"post":              {method: "POST", path: "/.well-known/oauth-protected-resource", wantStatus: 405, wantHeaders: map[string]string{"Allow": "GET, HEAD, OPTIONS"}},
		"delete":            {method: "DELETE", path: "/.well-known/oauth-protected-resource/mcp", wantStatus: 405},
		"other_path":        {method: "GET", path: "/.well-known/oauth-protected-resource/other", wantStatus: 404},
		"prefix_only_match": {method: "GET", path: "/.well-known/oauth-protected-resource/mcp/extra", wantStatus: 404},
		"mcp_endpoint":      {method: "GET", path: "/mcp", wantStatus: 404},
		"auth_server_meta":  {method: "GET", path: "/.well-known/oauth-authorization-server", wantStatus: 404},
	}
	tests["head"].wantHeaders["Content-Length"] = strconv.Itoa(len(doc))
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req := httptest.NewRequest(tc.method, "https://mcp.example.com"+tc.path, nil)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			res := rec.Result()
			body, _ := io.ReadAll(res.Body)
			if res.StatusCode != tc.wantStatus {
				t.Fatalf("status = %d, want %d", res.StatusCode, tc.wantStatus)
			}
			if tc.wantBody != nil && !bytes.Equal(body, tc.wantBody) {
				t.Errorf("body = %q, want %q", body, tc.wantBody)
			}
			for k, v := range tc.wantHeaders {
				if got := res.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHandlerRootResource(t *testing.T) {
	h := testResources["minimal"].Handler()
	tests := map[string]struct {
		path string
		want int
	}{
		"root":       {path: "/.well-known/oauth-protected-resource", want: 200},
		"slash_form": {path: "/.well-known/oauth-protected-resource/", want: 404},
		"some_path":  {path: "/.well-known/oauth-protected-resource/mcp", want: 404},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, tc.path, nil))
			if rec.Code != tc.want {
				t.Errorf("GET %s = %d, want %d", tc.path, rec.Code, tc.want)
			}
		})
	}
}
