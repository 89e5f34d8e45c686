package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/golang-jwt/jwt/v5"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpauthz/mcpauthz/decision/dpop/dpoptest"
	"github.com/mcpauthz/mcpauthz/internal/envoytest"
)

// TestDPoPBinary drives the real binary (mcpauthz proxy, which also
// serves ext_authz) with a Go DPoP client (issue 23 item 6): a DPoP-bound
// token works over ext_authz, with CheckRequests built as Envoy builds
// them, and through the proxy only with a fresh proof of its key; the
// same proof again, no proof, another key's proof and the token sent as
// Bearer are refused with 401 and the DPoP challenge; the proof and the
// token never reach the upstream; the metadata advertises the algorithms.
func TestDPoPBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	var mu sync.Mutex
	var upstreamSaw []http.Header
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		upstreamSaw = append(upstreamSaw, r.Header.Clone())
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()

	rig := startDPoPBinary(t, up.URL+"/mcp", "{algorithms: [ES256, EdDSA]}")
	key, iss, resource, proxyAddr := rig.key, rig.iss, rig.resource, rig.proxyAddr

	client, err := dpoptest.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	thief, err := dpoptest.New("EdDSA")
	if err != nil {
		t.Fatal(err)
	}
	exp := time.Now().Add(time.Hour).Unix()
	bound := key.sign(t, jwt.MapClaims{"iss": iss, "aud": resource, "sub": "agent", "scope": "mcp:tools", "exp": exp, "cnf": map[string]any{"jkt": client.JKT}})
	plain := key.sign(t, jwt.MapClaims{"iss": iss, "aud": resource, "sub": "agent", "scope": "mcp:tools", "exp": exp})
	const body = dpopTestBody
	authz := rig.authz
	ctx := rig.ctx

	// Over ext_authz, as Envoy asks.
	check := func(auth, proof string) envoytest.Answer {
		t.Helper()
		return rig.check(t, auth, proof)
	}
	proof := client.Proof("POST", resource, bound)
	a := check("DPoP "+bound, proof)
	if !a.Allowed || !slices.Contains(a.HeadersToRemove, "dpop") || !slices.Contains(a.HeadersToRemove, "authorization") {
		t.Fatalf("ext_authz, fresh proof: %+v; want allowed, the proof and the token removed upstream", a)
	}
	// The policy reads input.token.binding: a bearer token may not deploy.
	if a := check("Bearer "+plain, ""); a.Allowed || a.Status != 200 || !strings.Contains(a.Body, "needs a sender-constrained token") {
		t.Fatalf("ext_authz, bearer token calling deploy: %+v; want the policy's refusal", a)
	}
	refusals := map[string]struct{ auth, proof, challenge string }{
		"same_proof_again": {"DPoP " + bound, proof, `DPoP error="invalid_dpop_proof", error_description="the proof was used before (jti)"`},
		"no_proof":         {"DPoP " + bound, "", `DPoP error="invalid_dpop_proof", error_description="the request has no DPoP proof`},
		"thief_key":        {"DPoP " + bound, thief.Proof("POST", resource, bound), `DPoP error="invalid_dpop_proof", error_description="the proof's key is not the key`},
		"as_bearer":        {"Bearer " + bound, client.Proof("POST", resource, bound), `DPoP error="invalid_token", error_description="the token is DPoP-bound`},
		"other_uri":        {"DPoP " + bound, client.Proof("POST", "http://"+proxyAddr+"/other", bound), `error_description="the proof's htu is not the request's URI"`},
	}
	for name, r := range refusals {
		t.Run("ext_authz_"+name, func(t *testing.T) {
			a := check(r.auth, r.proof)
			wa := a.Headers["www-authenticate"]
			if wa == "" {
				wa = a.Headers["WWW-Authenticate"]
			}
			if a.Allowed || a.Status != 401 || !strings.Contains(wa, r.challenge) || !strings.Contains(wa, `algs="ES256 EdDSA"`) ||
				!strings.Contains(wa, `, Bearer resource_metadata="`) {
				t.Fatalf("answer %+v; want 401 with a challenge holding %s", a, r.challenge)
			}
		})
	}

	// A certificate-bound token (RFC 8705) over ext_authz: Envoy sends the
	// client's certificate (include_peer_certificate) as URL-encoded PEM.
	certPEM, x5t := selfSignedPEM(t)
	mtls := key.sign(t, jwt.MapClaims{"iss": iss, "aud": resource, "sub": "agent", "scope": "mcp:tools", "exp": exp, "cnf": map[string]any{"x5t#S256": x5t}})
	otherPEM, _ := selfSignedPEM(t)
	for name, c := range map[string]struct {
		cert  string
		allow bool
	}{"own_certificate": {url.PathEscape(certPEM), true}, "other_certificate": {url.PathEscape(otherPEM), false}, "no_certificate": {"", false}} {
		t.Run("ext_authz_mtls_"+name, func(t *testing.T) {
			req := envoytest.Request{Authority: proxyAddr, Headers: envoytest.H("Authorization", "Bearer "+mtls,
				"Content-Type", "application/json", "Accept", "application/json, text/event-stream"), Body: []byte(body)}.CheckRequest()
			req.Attributes.Source.Certificate = c.cert
			resp, err := authz.Check(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			a, err := envoytest.Read(resp)
			if err != nil {
				t.Fatal(err)
			}
			if a.Allowed != c.allow || (!c.allow && a.Status != 401) {
				t.Fatalf("answer %+v; want allowed %v (else 401)", a, c.allow)
			}
		})
	}

	// Through the proxy, as an MCP client sends.
	post := func(auth, proof string) *http.Response {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, "POST", resource, bytes.NewReader([]byte(body)))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", auth)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if proof != "" {
			req.Header.Set("DPoP", proof)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	proof = client.Proof("POST", resource, bound)
	if resp := post("DPoP "+bound, proof); resp.StatusCode != 200 {
		t.Fatalf("proxy, fresh proof: %d %v", resp.StatusCode, resp.Header)
	}
	mu.Lock()
	saw := upstreamSaw
	mu.Unlock()
	if len(saw) != 1 || saw[0].Get("DPoP") != "" || saw[0].Get("Authorization") != "" {
		t.Fatalf("the upstream saw %d requests, headers %v; want one without DPoP and Authorization", len(saw), saw)
	}
	for name, r := range map[string]struct{ auth, proof, challenge string }{
		"same_proof_again":             {"DPoP " + bound, proof, `error="invalid_dpop_proof"`},
		"proof_for_ext_authz_replayed": {"DPoP " + bound, refusals["same_proof_again"].proof, `error="invalid_dpop_proof"`},
		"as_bearer":                    {"Bearer " + bound, client.Proof("POST", resource, bound), `error="invalid_token"`},
	} {
		t.Run("proxy_"+name, func(t *testing.T) {
			resp := post(r.auth, r.proof)
			if wa := resp.Header.Get("WWW-Authenticate"); resp.StatusCode != 401 || !strings.HasPrefix(wa, "DPoP ") || !strings.Contains(wa, r.challenge) {
				t.Fatalf("proxy: %d %q; want 401 with a DPoP challenge holding %s", resp.StatusCode, wa, r.challenge)
			}
		})
	}

	meta := httpGet(t, "http://"+proxyAddr+"/.well-known/oauth-protected-resource/mcp")
	if !strings.Contains(meta, `"dpop_signing_alg_values_supported": [`) || !strings.Contains(meta, `"EdDSA"`) {
		t.Errorf("metadata does not advertise the DPoP algorithms:\n%s", meta)
	}
}

// dpopTestBody calls deploy, a risky tool of the sender-constrained
// example bundle: only a sender-constrained token calls it.
const dpopTestBody = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"deploy","arguments":{}}}`

// dpopRig is the binary started by startDPoPBinary.
type dpopRig struct {
	key                      issuersTestKey
	iss, resource, proxyAddr string
	authz                    authv3.AuthorizationClient
	ctx                      context.Context
}

// startDPoPBinary starts the binary as mcpauthz proxy in front of
// upstream, with the sender-constrained example bundle, tokens signed by
// rig.key and tokens.dpop set to the YAML flow mapping dpopYAML.
func startDPoPBinary(t *testing.T, upstream, dpopYAML string) *dpopRig {
	t.Helper()
	bin := buildBinary(t)
	dir := t.TempDir()
	bundle, err := filepath.Abs("../../examples/bundles/sender-constrained")
	if err != nil {
		t.Fatal(err)
	}
	r := &dpopRig{key: newIssuersTestKey(t, "dpop-key"), iss: "https://as.example.com"}
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	r.proxyAddr = freeAddr(t)
	r.resource = "http://" + r.proxyAddr + "/mcp"
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q, proxy: %q}
bundles: [{path: %q}]
resource: {uri: %q, authorization_servers: [%q]}
tokens: {issuer: %q, jwks_file: %q, dpop: %s}
log: {level: debug, format: text}
`, grpcAddr, httpAddr, r.proxyAddr, bundle, r.resource, r.iss, r.iss, r.key.jwks, dpopYAML)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startBinary(t, bin, os.Environ(), "proxy", "--config", cfgPath, "--upstream", upstream)
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)
	r.authz = authzClient(t, grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	r.ctx = ctx
	return r
}

// check sends dpopTestBody over ext_authz, as Envoy asks, with the
// Authorization auth and, unless "", the DPoP proof.
func (r *dpopRig) check(t *testing.T, auth, proof string) envoytest.Answer {
	t.Helper()
	hs := envoytest.H("Authorization", auth, "Content-Type", "application/json", "Accept", "application/json, text/event-stream")
	if proof != "" {
		hs = append(hs, envoytest.Header{Name: "DPoP", Value: proof})
	}
	a, err := envoytest.Check(r.ctx, r.authz, envoytest.Request{Authority: r.proxyAddr, Scheme: "http", Headers: hs, Body: []byte(dpopTestBody)})
	if err != nil {
		t.Fatalf("Check: %v (a gRPC error: Envoy's failure mode would decide)", err)
	}
	return a
}

// authzClient is an ext_authz client of the binary's gRPC port at addr,
// as Envoy dials it (plaintext); closed when the test ends.
func authzClient(t *testing.T, addr string) authv3.AuthorizationClient {
	t.Helper()
	return authv3.NewAuthorizationClient(grpcConn(t, addr))
}

// grpcConn is a plaintext gRPC connection to the binary's port at addr,
// closed when the test ends.
func grpcConn(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// selfSignedPEM returns a new self-signed certificate's PEM and its
// x5t#S256 (RFC 8705: base64url SHA-256 of the DER).
func selfSignedPEM(t *testing.T) (string, string) {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "agent"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), base64.RawURLEncoding.EncodeToString(sum[:])
}
