// Package oauth holds the OAuth 2.x resource-server pieces an MCP server must
// expose: its Protected Resource Metadata (RFC 9728) and the
// WWW-Authenticate challenges (RFC 6750) that point clients to it.
package oauth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// WellKnownPath is where Protected Resource Metadata is served (RFC 9728 §3).
const WellKnownPath = "/.well-known/oauth-protected-resource"

// Resource describes the protected MCP endpoint and how to get tokens for it.
type Resource struct {
	// URI is the resource identifier: the MCP endpoint's URL exactly as
	// clients use it (the Go SDK compares it as a string).
	URI string
	// AuthorizationServers are the issuer URLs of the authorization servers
	// that issue tokens for this resource.
	AuthorizationServers []string
	// ScopesSupported are the scopes clients may request for this resource.
	ScopesSupported []string
	// ResourceName is a human-readable name, optional.
	ResourceName string
	// ResourceDocumentation is a URL of developer documentation, optional.
	ResourceDocumentation string
	// DPoPSigningAlgs are the JWS algorithms accepted in DPoP proofs
	// (dpop_signing_alg_values_supported, RFC 9449 §5.1); none: not
	// advertised.
	DPoPSigningAlgs []string
	// DPoPBoundTokensRequired: only DPoP-bound access tokens are accepted
	// (dpop_bound_access_tokens_required, RFC 9728 §2).
	DPoPBoundTokensRequired bool
}

// Validate checks that the resource can be announced: URI is an absolute
// https URL (http only for localhost and loopback addresses) without a
// fragment, and at least one authorization server is named, each an
// absolute https (or loopback http) URL without query or fragment.
func (r Resource) Validate() error {
	if err := checkResourceURL("resource URI", r.URI); err != nil {
		return err
	}
	if len(r.AuthorizationServers) == 0 {
		return errors.New("resource: at least one authorization server is required")
	}
	for i, as := range r.AuthorizationServers {
		what := fmt.Sprintf("authorization server %d", i)
		if err := checkResourceURL(what, as); err != nil {
			return err
		}
		if u, _ := url.Parse(as); u.RawQuery != "" || u.ForceQuery {
			return fmt.Errorf("%s %q: an issuer has no query component", what, as)
		}
	}
	for i, s := range r.ScopesSupported {
		if s == "" || strings.ContainsFunc(s, func(c rune) bool { return c <= ' ' || c == '"' || c == '\\' || c >= 0x7f }) {
			return fmt.Errorf("scope %d %q: a scope is non-empty printable ASCII without spaces, quotes or backslashes", i, s)
		}
	}
	if r.ResourceDocumentation != "" {
		u, err := url.Parse(r.ResourceDocumentation)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("resource documentation %q: want an absolute http(s) URL", r.ResourceDocumentation)
		}
	}
	return nil
}

// checkResourceURL checks an absolute https URL, allowing http for local
// development, without fragment or user information.
func checkResourceURL(what, s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("%s %q: %w", what, s, err)
	}
	if u.Scheme == "" || u.Host == "" {
		return fmt.Errorf("%s %q: want an absolute URL with scheme and host", what, s)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if h := u.Hostname(); h != "localhost" && h != "127.0.0.1" && h != "::1" {
			return fmt.Errorf("%s %q: http is allowed only for localhost, 127.0.0.1 and ::1; use https", what, s)
		}
	default:
		return fmt.Errorf("%s %q: want an https URL", what, s)
	}
	if u.Fragment != "" || strings.Contains(s, "#") {
		return fmt.Errorf("%s %q: must not have a fragment", what, s)
	}
	if u.User != nil {
		return fmt.Errorf("%s %q: must not carry user information", what, s)
	}
	return nil
}

// MetadataURL returns where the metadata of resourceURI is served: the
// well-known path inserted between the host and the path (RFC 9728 §3.1),
// so "https://h/mcp" gives "https://h/.well-known/oauth-protected-resource/mcp"
// and "https://h" or "https://h/" gives "https://h/.well-known/oauth-protected-resource".
// A query of the resource identifier is kept. It returns "" for a URI that is
// not an absolute URL (which Validate rejects).
func MetadataURL(resourceURI string) string {
	u, err := url.Parse(resourceURI)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return ""
	}
	out := u.Scheme + "://" + u.Host + WellKnownPath + metadataSuffix(u)
	if u.RawQuery != "" {
		out += "?" + u.RawQuery
	}
	return out
}

// metadataSuffix is the path of the resource identifier as it follows the
// well-known path: empty for "" and "/".
func metadataSuffix(u *url.URL) string {
	p := u.EscapedPath()
	if p == "/" {
		return ""
	}
	return p
}

// metadataDocument is the metadata in the order its fields are written.
type metadataDocument struct {
	Resource               string   `json:"resource"`
	AuthorizationServers   []string `json:"authorization_servers"`
	ScopesSupported        []string `json:"scopes_supported"`
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	ResourceName           string   `json:"resource_name,omitempty"`
	ResourceDocumentation  string   `json:"resource_documentation,omitempty"`
	DPoPSigningAlgs        []string `json:"dpop_signing_alg_values_supported,omitempty"`
	DPoPBoundRequired      bool     `json:"dpop_bound_access_tokens_required,omitempty"`
}

// Document returns the metadata JSON document served for r, exactly as the
// Handler writes it.
func (r Resource) Document() ([]byte, error) {
	doc := metadataDocument{
		Resource:               r.URI,
		AuthorizationServers:   nonNil(r.AuthorizationServers),
		ScopesSupported:        nonNil(r.ScopesSupported),
		BearerMethodsSupported: []string{"header"},
		ResourceName:           r.ResourceName,
		ResourceDocumentation:  r.ResourceDocumentation,
		DPoPSigningAlgs:        r.DPoPSigningAlgs,
		DPoPBoundRequired:      r.DPoPBoundTokensRequired,
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	// URLs with '&' read better unescaped; the document is served as JSON,
	// never embedded in HTML.
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding protected resource metadata: %w", err)
	}
	return buf.Bytes(), nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Handler serves the metadata at the root well-known path and at the
// path-suffixed form for r.URI, to GET and HEAD without authentication, with
// CORS so browser-based clients can read it. OPTIONS answers a preflight;
// other methods get 405 and other paths 404. The document is built once; call
// Validate first, as an invalid Resource is served as configured.
func (r Resource) Handler() http.Handler {
	h := &metadataHandler{paths: map[string]bool{WellKnownPath: true}}
	if u, err := url.Parse(r.URI); err == nil {
		h.paths[WellKnownPath+metadataSuffix(u)] = true
		// A server sees the decoded path; accept it too for a resource path
		// that has escapes.
		if decoded := u.Path; decoded != "/" {
			h.paths[WellKnownPath+decoded] = true
		}
	}
	body, err := r.Document()
	if err != nil {
		// Only strings are encoded, which cannot fail; serve an error rather
		// than a wrong document should that ever change.
		h.err = err
	}
	h.body = body
	h.length = strconv.Itoa(len(body))
	return h
}

type metadataHandler struct {
	paths  map[string]bool
	body   []byte
	length string
	err    error
}

const (
	corsAllowMethods = "GET, HEAD, OPTIONS"
	// Browsers send MCP-Protocol-Version on discovery requests, which makes
	// them preflighted.
	corsAllowHeaders = "Authorization, Content-Type, MCP-Protocol-Version"
)

func (h *metadataHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	// The path as the server decoded it; it is compared, never parsed.
	if !h.paths[req.URL.Path] && !h.paths[req.URL.RawPath] {
		http.NotFound(w, req)
		return
	}
	hdr := w.Header()
	hdr.Set("Access-Control-Allow-Origin", "*")
	switch req.Method {
	case http.MethodGet, http.MethodHead:
	case http.MethodOptions:
		hdr.Set("Access-Control-Allow-Methods", corsAllowMethods)
		hdr.Set("Access-Control-Allow-Headers", corsAllowHeaders)
		hdr.Set("Access-Control-Max-Age", "86400")
		w.WriteHeader(http.StatusNoContent)
		return
	default:
		hdr.Set("Allow", corsAllowMethods)
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if h.err != nil {
		http.Error(w, "protected resource metadata unavailable", http.StatusInternalServerError)
		return
	}
	hdr.Set("Content-Type", "application/json")
	hdr.Set("Cache-Control", "max-age=3600")
	hdr.Set("Content-Length", h.length)
	w.WriteHeader(http.StatusOK)
	if req.Method == http.MethodHead {
		return
	}
	_, _ = w.Write(h.body)
}
