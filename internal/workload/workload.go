// Package workload is the reference workload of mcpauthz's benchmarks and
// load harness: an RSA-2048 signing key with its JWKS, RS256 access tokens,
// and a mix of MCP requests shaped as Envoy's ext_authz filter sends them.
//
// Request ids and argument values vary over thousands of distinct values,
// as a real agent's do, so that no cache of whole decisions can make the
// figures. It imports nothing of mcpauthz, so every package can use it.
package workload

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"

	"github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// The token audience and issuer of the workload.
const (
	Issuer   = "https://auth.example.com"
	Audience = "https://mcp.example.com/mcp"
	keyID    = "bench-rs256"
)

// Keys is a signing key and its public JWKS.
type Keys struct {
	key  *rsa.PrivateKey
	kid  string
	jwk  jose.JSONWebKey
	JWKS []byte // {"keys":[...]} with the public key
}

// NewKeys generates an RSA-2048 key.
func NewKeys() (*Keys, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating RSA key: %w", err)
	}
	return keysFor(k)
}

// LoadOrCreateKeys reads the PKCS#8 PEM key at path, or generates one and
// writes it there when the file does not exist, so that a server started
// before the harness can trust the harness's tokens.
func LoadOrCreateKeys(path string) (*Keys, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		k, err := NewKeys()
		if err != nil {
			return nil, err
		}
		der, err := x509.MarshalPKCS8PrivateKey(k.key)
		if err != nil {
			return nil, fmt.Errorf("encoding the key: %w", err)
		}
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
			return nil, fmt.Errorf("writing %s: %w", path, err)
		}
		return k, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%s: no PKCS#8 PEM block (\"PRIVATE KEY\")", path)
	}
	key, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", path, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: %T is not an RSA key", path, key)
	}
	return keysFor(rk)
}

func keysFor(k *rsa.PrivateKey) (*Keys, error) { return keysWithID(k, keyID) }

func keysWithID(k *rsa.PrivateKey, kid string) (*Keys, error) {
	out := &Keys{key: k, kid: kid, jwk: jose.JSONWebKey{Key: &k.PublicKey, KeyID: kid, Use: "sig", Algorithm: "RS256"}}
	jwks, err := JWKS(out)
	if err != nil {
		return nil, err
	}
	out.JWKS = jwks
	return out, nil
}

// NewKeysWithID generates an RSA-2048 key whose tokens and JWKS name it
// kid: a second key, for a key rotation.
func NewKeysWithID(kid string) (*Keys, error) {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, fmt.Errorf("generating RSA key: %w", err)
	}
	return keysWithID(k, kid)
}

// JWKS returns a JWKS holding the public keys of every one of keys, as an
// identity provider publishes it during a key rotation.
func JWKS(keys ...*Keys) ([]byte, error) {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.jwk)
	}
	b, err := json.Marshal(set)
	if err != nil {
		return nil, fmt.Errorf("encoding JWKS: %w", err)
	}
	return b, nil
}

// WriteJWKS writes the JWKS to dir/jwks.json and returns its path.
func (k *Keys) WriteJWKS(dir string) (string, error) {
	p := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(p, k.JWKS, 0o600); err != nil {
		return "", fmt.Errorf("writing %s: %w", p, err)
	}
	return p, nil
}

// Verifier writes the JWKS of k into dir and returns a token verifier that
// trusts it with the workload's issuer and audience, as a server configured
// with tokens.jwks_file would.
func (k *Keys) Verifier(ctx context.Context, dir string) (*token.Verifier, error) {
	jwks, err := k.WriteJWKS(dir)
	if err != nil {
		return nil, err
	}
	return token.New(ctx, token.Options{Issuer: Issuer, Audience: Audience, JWKSFile: jwks, Algorithms: []string{"RS256"}})
}

// NewVerified makes fresh keys and returns a verifier that trusts them
// (its JWKS file in dir; the caller closes it) and n tokens they signed:
// what a benchmark of the token path needs.
func NewVerified(ctx context.Context, dir string, n int) (*token.Verifier, []string, error) {
	k, err := NewKeys()
	if err != nil {
		return nil, nil, err
	}
	toks, err := k.Tokens(n)
	if err != nil {
		return nil, nil, err
	}
	v, err := k.Verifier(ctx, dir)
	if err != nil {
		return nil, nil, err
	}
	return v, toks, nil
}

// Tokens mints n tokens with the workload's scopes for distinct subjects
// (agent-a, agent-b, ...).
func (k *Keys) Tokens(n int) ([]string, error) {
	toks := make([]string, n)
	for i := range toks {
		var err error
		if toks[i], err = k.Token("agent-"+string(rune('a'+i)), Scopes, ""); err != nil {
			return nil, err
		}
	}
	return toks, nil
}

// Token mints an RS256 access token for subject with the given scopes,
// valid for an hour from now. jti, when not empty, makes it unique.
func (k *Keys) Token(subject, scope, jti string) (string, error) {
	now := time.Now()
	claims := jwt.MapClaims{
		"iss":   Issuer,
		"aud":   Audience,
		"sub":   subject,
		"scope": scope,
		"iat":   now.Unix(),
		"exp":   now.Add(time.Hour).Unix(),
	}
	if jti != "" {
		claims["jti"] = jti
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = k.kid
	s, err := t.SignedString(k.key)
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return s, nil
}

// Scopes are the scopes the workload's tokens carry.
const Scopes = "mcp:tools mcp:resources"

// Kind names the requests of the mix.
type Kind string

// The kinds of request in the mix.
const (
	ToolsCall  Kind = "tools_call"  // read_file under /data/: allowed
	ToolsList  Kind = "tools_list"  // allowed
	Initialize Kind = "initialize"  // allowed
	Ping       Kind = "ping"        // allowed
	DeniedCall Kind = "denied_call" // read_file outside /data/: denied by an argument rule
)

const (
	mixPatterns  = 10 // the mix repeats every 10 requests
	protoVersion = "2025-06-18"
)

// mix is the order of kinds in every 10 requests: tool calls dominate an
// agent loop.
var mix = [mixPatterns]Kind{ToolsCall, ToolsCall, ToolsList, ToolsCall, Ping, ToolsCall, DeniedCall, ToolsCall, Initialize, ToolsCall}

// Request is one HTTP request to the MCP endpoint, as Envoy forwards it.
type Request struct {
	Kind    Kind
	Method  string
	Path    string
	Host    string
	Headers map[string]string // lowercase, with the pseudo-headers Envoy adds
	Body    []byte
	Context map[string]string // the route's context_extensions
	Allow   bool              // the decision the reference policy makes
}

// Body returns the JSON-RPC body of the n-th request of kind k: ids and
// arguments vary with n.
func Body(k Kind, n int) []byte {
	id := strconv.Itoa(n)
	switch k {
	case ToolsCall:
		return []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/reports/q3-` + id + `.csv"}}}`)
	case ToolsList:
		return []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/list","params":{"cursor":"c` + id + `"}}`)
	case Initialize:
		return []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"initialize","params":{"protocolVersion":"` + protoVersion + `","capabilities":{},"clientInfo":{"name":"agent-` + id + `","version":"1.0.0"}}}`)
	case Ping:
		return []byte(`{"jsonrpc":"2.0","id":"p-` + id + `","method":"ping"}`)
	case DeniedCall:
		return []byte(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/../etc/passwd-` + id + `"}}}`)
	}
	panic("workload: unknown kind " + string(k))
}

// New builds the n-th request of kind k carrying token, with the headers
// Envoy sends by default (every request header, lowercase, plus the HTTP/2
// pseudo-headers), and the route context of examples/envoy/envoy.yaml.
func New(k Kind, n int, token string) *Request {
	body := Body(k, n)
	return &Request{
		Kind:   k,
		Method: "POST",
		Path:   "/mcp",
		Host:   "mcp.example.com",
		Headers: map[string]string{
			":authority":           "mcp.example.com",
			":method":              "POST",
			":path":                "/mcp",
			":scheme":              "https",
			"accept":               "application/json, text/event-stream",
			"authorization":        "Bearer " + token,
			"content-length":       strconv.Itoa(len(body)),
			"content-type":         "application/json",
			"mcp-protocol-version": protoVersion,
			"mcp-session-id":       "sess-" + strconv.Itoa(n%64),
			"user-agent":           "bench-agent/1.0",
			"x-forwarded-proto":    "https",
			"x-request-id":         fmt.Sprintf("%08x-0000-4000-8000-%012x", n, n),
		},
		Body:    body,
		Context: map[string]string{"mcp_server": "files"},
		Allow:   k != DeniedCall,
	}
}

// Mix returns n requests in the order of the reference mix (six allowed
// read_file calls, one each of tools/list, ping, initialize and a denied
// read_file in every ten), each with a distinct id and argument, carrying
// the tokens in turn.
func Mix(n int, tokens []string) []*Request {
	out := make([]*Request, n)
	for i := range out {
		out[i] = New(mix[i%mixPatterns], i, tokens[i%len(tokens)])
	}
	return out
}

// CheckRequest renders r as Envoy's ext_authz filter sends it with
// with_request_body.pack_as_bytes: the body in raw_body.
func CheckRequest(r *Request) *authv3.CheckRequest {
	return &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
		Source:      &authv3.AttributeContext_Peer{Address: socket("10.0.0.7", 51234)},
		Destination: &authv3.AttributeContext_Peer{Address: socket("10.0.0.2", 8080)},
		Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
			Id:       r.Headers["x-request-id"],
			Method:   r.Method,
			Headers:  r.Headers,
			Path:     r.Path,
			Host:     r.Host,
			Scheme:   "https",
			Protocol: "HTTP/2",
			Size:     int64(len(r.Body)),
			RawBody:  r.Body,
		}},
		ContextExtensions: r.Context,
	}}
}

func socket(addr string, port uint32) *corev3.Address {
	return &corev3.Address{Address: &corev3.Address_SocketAddress{SocketAddress: &corev3.SocketAddress{
		Address: addr, PortSpecifier: &corev3.SocketAddress_PortValue{PortValue: port},
	}}}
}
