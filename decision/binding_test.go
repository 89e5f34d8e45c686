package decision_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/dpop/dpoptest"
	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/internal/redistest"
)

// bindingPolicy allows every valid token, but a tools/call only with a
// sender-constrained one (input.token.binding), as docs/policies.md shows.
const bindingPolicy = `package mcp.authz

decision := {"allow": false, "reason": "tools need a sender-constrained token"} if {
	input.token.valid
	input.mcp.method == "tools/call"
	not input.token.binding
} else := {"allow": input.token.valid}
`

const bindingURI = "https://mcp.example.com/mcp"

// testCertificate returns a self-signed certificate as Envoy sends it
// (URL-encoded PEM) and its x5t#S256.
func testCertificate(t *testing.T, cn string) (escaped, x5t string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	// Envoy percent-encodes the PEM: spaces and newlines as %20 and %0A.
	return url.PathEscape(string(p)), dpop.Thumbprint(der)
}

type onceFunc func() (bool, error)

func (f onceFunc) Once(context.Context, string, time.Duration) (bool, error) { return f() }

// TestSenderBinding is every answer of the sender_binding step (issue 23
// items 1 to 5): a DPoP-bound token only with the DPoP scheme and a fresh
// proof of its key, never as Bearer; the DPoP scheme only for bound
// tokens; tokens.dpop.required; a certificate-bound token only with its
// certificate; input.token.binding for the policy.
func TestSenderBinding(t *testing.T) {
	es, err := dpoptest.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := dpoptest.New("ES256")
	cert, x5t := testCertificate(t, "agent")
	otherCert, _ := testCertificate(t, "other")
	withCnf := func(cnf any) map[string]any {
		c := claims("alice", "mcp:tools")
		if cnf != nil {
			c["cnf"] = cnf
		}
		return c
	}
	tokens := decisiontest.Tokens{
		"bound":  withCnf(map[string]any{"jkt": es.JKT}),
		"plain":  withCnf(nil),
		"mtls":   withCnf(map[string]any{"x5t#S256": x5t}),
		"badcnf": withCnf("x"),
		"badjkt": withCnf(map[string]any{"jkt": 7}),
	}
	dir := policyDir(t, bindingPolicy)
	engine := func(edit func(o *decision.Options)) *decision.Engine {
		return decisiontest.NewEngine(t, dir, func(o *decision.Options) {
			o.Tokens = tokens
			c, err := dpop.New(dpop.Options{Replay: state.NewMemory(1000, nil)})
			if err != nil {
				t.Fatal(err)
			}
			o.DPoP = c
			if edit != nil {
				edit(o)
			}
		})
	}
	const list = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`
	const call = `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"rm","arguments":{}}}`
	bearerOnly := `Bearer resource_metadata="` + prmURL + `"`
	dpopChallenge := func(code, desc string) string {
		return `DPoP error="` + code + `", error_description="` + desc + `", algs="ES256 PS256 EdDSA RS256", resource_metadata="` + prmURL + `"`
	}
	type row struct {
		auth, proof, body string
		scheme, host      string // "" https and mcp.example.com; "-" none
		cert              string
		edit              func(o *decision.Options)
		status            int
		code              string
		challenge         string // the whole WWW-Authenticate value
		reason            string // in the decision's reason
	}
	proof := func(c *dpoptest.Client, method, uri string) string { return c.Proof(method, uri, "bound") }
	tests := map[string]row{
		"bound_with_proof":      {auth: "DPoP bound", proof: proof(es, "POST", bindingURI), status: 0},
		"bound_scheme_any_case": {auth: "dpop bound", proof: proof(es, "POST", bindingURI), status: 0},
		"bound_call_allowed":    {auth: "DPoP bound", proof: proof(es, "POST", bindingURI), body: call, status: 0},
		"bound_as_bearer": {auth: "Bearer bound", proof: proof(es, "POST", bindingURI), status: 401, code: decision.CodeUnauthenticated,
			challenge: dpopChallenge("invalid_token", "the token is DPoP-bound: send it with the DPoP scheme and a DPoP proof, not as a Bearer token") + ", " + bearerOnly},
		"bound_no_proof": {auth: "DPoP bound", status: 401, code: decision.CodeInvalidDPoPProof,
			challenge: dpopChallenge("invalid_dpop_proof", "the request has no DPoP proof: a DPoP-bound token needs one in the DPoP header") + ", " + bearerOnly},
		"bound_other_key": {auth: "DPoP bound", proof: proof(other, "POST", bindingURI), status: 401, code: decision.CodeInvalidDPoPProof,
			reason: "not the key the access token is bound to"},
		"bound_other_method": {auth: "DPoP bound", proof: proof(es, "GET", bindingURI), status: 401, code: decision.CodeInvalidDPoPProof, reason: "htm"},
		"bound_other_uri":    {auth: "DPoP bound", proof: proof(es, "POST", "https://other.example.com/mcp"), status: 401, code: decision.CodeInvalidDPoPProof, reason: "htu"},
		"bound_internal_scheme": {auth: "DPoP bound", proof: proof(es, "POST", bindingURI), scheme: "http", status: 401,
			code: decision.CodeInvalidDPoPProof, reason: "htu"},
		"bound_internal_scheme_htu_configured": {auth: "DPoP bound", proof: proof(es, "POST", bindingURI), scheme: "http", host: "10.0.0.7:8080",
			edit: func(o *decision.Options) {
				o.DPoP, _ = dpop.New(dpop.Options{Replay: state.NewMemory(10, nil), HTU: bindingURI})
			}},
		"bound_scheme_unknown": {auth: "DPoP bound", proof: proof(es, "POST", bindingURI), scheme: "-", status: 401,
			code: decision.CodeInvalidDPoPProof, reason: "cannot be known"},
		"bound_proof_for_other_token": {auth: "DPoP bound", proof: es.Proof("POST", bindingURI, "plain"), status: 401,
			code: decision.CodeInvalidDPoPProof, reason: "ath"},
		"bound_two_proofs": {auth: "DPoP bound", proof: proof(es, "POST", bindingURI) + "," + proof(es, "POST", bindingURI), status: 400,
			code: decision.CodeParseError},
		"bound_no_checker": {auth: "DPoP bound", proof: proof(es, "POST", bindingURI), edit: func(o *decision.Options) { o.DPoP = nil },
			status: 401, code: decision.CodeUnauthenticated, reason: "not checked here"},
		"bound_store_failing": {auth: "DPoP bound", proof: proof(es, "POST", bindingURI), edit: func(o *decision.Options) {
			o.DPoP, _ = dpop.New(dpop.Options{Replay: onceFunc(func() (bool, error) { return false, errors.New("redis: i/o timeout") })})
		}, status: 503, code: decision.CodeStateUnavailable},
		"plain_bearer":       {auth: "Bearer plain", status: 0},
		"plain_bearer_call":  {auth: "Bearer plain", body: call, status: 200, code: decision.CodePolicyDenied},
		"plain_bearer_proof": {auth: "Bearer plain", proof: es.Proof("POST", bindingURI, "plain"), status: 0},
		"plain_with_dpop_scheme": {auth: "DPoP plain", proof: es.Proof("POST", bindingURI, "plain"), status: 401, code: decision.CodeUnauthenticated,
			reason: "not DPoP-bound"},
		"required_plain": {auth: "Bearer plain", edit: func(o *decision.Options) { o.DPoPRequired = true }, status: 401, code: decision.CodeUnauthenticated,
			challenge: dpopChallenge("invalid_token", "only DPoP-bound tokens are accepted here")},
		"required_bound": {auth: "DPoP bound", proof: proof(es, "POST", bindingURI), edit: func(o *decision.Options) { o.DPoPRequired = true }},
		"required_no_token": {edit: func(o *decision.Options) { o.DPoPRequired = true }, status: 401, code: decision.CodeUnauthenticated,
			challenge: `DPoP algs="ES256 PS256 EdDSA RS256", resource_metadata="` + prmURL + `"`},
		"no_token":          {status: 401, code: decision.CodeUnauthenticated, challenge: bearerOnly},
		"mtls_with_cert":    {auth: "Bearer mtls", cert: cert, body: call},
		"mtls_no_cert":      {auth: "Bearer mtls", status: 401, code: decision.CodeUnauthenticated, reason: "came with none"},
		"mtls_other_cert":   {auth: "Bearer mtls", cert: otherCert, status: 401, code: decision.CodeUnauthenticated, reason: "another client certificate"},
		"mtls_garbage_cert": {auth: "Bearer mtls", cert: "not%20a%20certificate", status: 401, code: decision.CodeUnauthenticated, reason: "not a PEM"},
		"cnf_not_object":    {auth: "Bearer badcnf", status: 401, code: decision.CodeUnauthenticated, reason: "cnf claim cannot be read"},
		"jkt_not_string":    {auth: "DPoP badjkt", status: 401, code: decision.CodeUnauthenticated, reason: "cnf claim cannot be read"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			e := engine(tc.edit)
			body := tc.body
			if body == "" {
				body = list
			}
			r := post(body, nil)
			r.Scheme, r.SourceCertificate = "https", tc.cert
			switch tc.scheme {
			case "-":
				r.Scheme = ""
			case "":
			default:
				r.Scheme = tc.scheme
			}
			if tc.host != "" {
				r.Host = tc.host
			}
			if tc.auth != "" {
				r.Headers["authorization"] = tc.auth
			}
			if tc.proof != "" {
				r.Headers["dpop"] = tc.proof
			}
			d := e.Decide(context.Background(), r)
			if tc.status == 0 {
				if !d.Allow {
					t.Fatalf("denied %d %s: %s", d.Status, d.Code, d.Reason)
				}
				if tc.proof != "" && !slices.Contains(d.RemoveHeaders, "dpop") {
					t.Errorf("the DPoP proof goes upstream: RemoveHeaders = %q", d.RemoveHeaders)
				}
				return
			}
			if d.Allow || d.Status != tc.status || d.Code != tc.code {
				t.Fatalf("decision = allow %v, %d %s (%s); want %d %s", d.Allow, d.Status, d.Code, d.Reason, tc.status, tc.code)
			}
			if !strings.Contains(d.Reason, tc.reason) {
				t.Errorf("reason %q does not say %q", d.Reason, tc.reason)
			}
			if tc.challenge != "" {
				var got []string
				for _, h := range d.ResponseHeaders {
					if h.Name == "www-authenticate" {
						got = append(got, h.Value)
					}
				}
				if len(got) != 1 || got[0] != tc.challenge {
					t.Errorf("WWW-Authenticate = %q\nwant %q", got, tc.challenge)
				}
			}
		})
	}

	t.Run("replayed_proof", func(t *testing.T) {
		e := engine(nil)
		p := proof(es, "POST", bindingURI)
		for i, want := range []bool{true, false} {
			r := post(list, nil)
			r.Scheme = "https"
			r.Headers["authorization"], r.Headers["dpop"] = "DPoP bound", p
			d := e.Decide(context.Background(), r)
			if d.Allow != want || (!want && (d.Code != decision.CodeInvalidDPoPProof || !strings.Contains(d.Reason, "used before"))) {
				t.Fatalf("use %d: allow %v %s %s; want allow %v", i+1, d.Allow, d.Code, d.Reason, want)
			}
		}
	})
}

// TestTokenBindingInput: input.token.binding is what the token's cnf
// binds it to, so a policy can read it.
func TestTokenBindingInput(t *testing.T) {
	tests := map[string]struct {
		cnf  any
		want string
	}{
		"dpop":      {cnf: map[string]any{"jkt": "abc"}, want: `{"jkt": "abc", "kind": "dpop"}`},
		"mtls":      {cnf: map[string]any{"x5t#S256": "xyz"}, want: `{"kind": "mtls", "x5t#S256": "xyz"}`},
		"none":      {want: "<none>"},
		"other_cnf": {cnf: map[string]any{"jwk": map[string]any{}}, want: "<none>"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			c := claims("alice", "mcp:tools")
			if tc.cnf != nil {
				c["cnf"] = tc.cnf
			}
			e := decisiontest.NewEngine(t, policyDir(t, bindingPolicy), nil)
			inputs, d := e.Inputs(context.Background(), post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, c))
			if d != nil {
				t.Fatalf("refused: %s", d.Reason)
			}
			got := "<none>"
			if b, err := inputs[0].Find(ast.Ref{ast.StringTerm("token"), ast.StringTerm("binding")}); err == nil {
				got = b.String()
			}
			if got != tc.want {
				t.Fatalf("input.token.binding = %s; want %s", got, tc.want)
			}
		})
	}
}

// TestDPoPReplayAcrossReplicas: two engines (two replicas), each with its
// own client of one real Redis, as state.backend: redis gives them: a
// proof used on one is refused on the other, and of one proof sent to
// both at once exactly one is allowed. With a memory store per replica
// the second use would be allowed.
func TestDPoPReplayAcrossReplicas(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	es, err := dpoptest.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	tokens := decisiontest.Tokens{"bound": func() map[string]any {
		c := claims("alice", "mcp:tools")
		c["cnf"] = map[string]any{"jkt": es.JKT}
		return c
	}()}
	dir := policyDir(t, bindingPolicy)
	replica := func() *decision.Engine {
		r, err := state.NewRedis(state.RedisOptions{Addresses: []string{srv.Addr}, ReadTimeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = r.Close() })
		c, err := dpop.New(dpop.Options{Replay: r})
		if err != nil {
			t.Fatal(err)
		}
		return decisiontest.NewEngine(t, dir, func(o *decision.Options) { o.Tokens, o.DPoP = tokens, c })
	}
	a, b := replica(), replica()
	decide := func(e *decision.Engine, proof string) *decision.Decision {
		r := post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
		r.Scheme = "https"
		r.Headers["authorization"], r.Headers["dpop"] = "DPoP bound", proof
		return e.Decide(context.Background(), r)
	}
	p := es.Proof("POST", bindingURI, "bound")
	if d := decide(a, p); !d.Allow {
		t.Fatalf("replica A, first use: %d %s %s", d.Status, d.Code, d.Reason)
	}
	if d := decide(b, p); d.Allow || d.Code != decision.CodeInvalidDPoPProof || !strings.Contains(d.Reason, "used before") {
		t.Fatalf("replica B, the proof A allowed: allow %v %s %s; want refused as used before", d.Allow, d.Code, d.Reason)
	}
	for i := range 20 {
		p := es.Proof("POST", bindingURI, "bound")
		var wg sync.WaitGroup
		allowed := make([]bool, 2)
		for j, e := range []*decision.Engine{a, b} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				allowed[j] = decide(e, p).Allow
			}()
		}
		wg.Wait()
		if allowed[0] == allowed[1] {
			t.Fatalf("race %d: allowed on A %v, on B %v; want exactly one", i, allowed[0], allowed[1])
		}
	}
}

// BenchmarkDecideDPoP is an allowed request with a DPoP-bound token and a
// fresh proof each time (nothing about a proof is cached: it could be
// replayed), against the same request with a bearer token: the
// difference is the DPoP check per decision (ES256 verify dominates).
// Proofs are signed before the timer. The memory store.
func BenchmarkDecideDPoP(b *testing.B) {
	es, err := dpoptest.New("ES256")
	if err != nil {
		b.Fatal(err)
	}
	bound := claims("alice", "mcp:tools")
	bound["cnf"] = map[string]any{"jkt": es.JKT}
	tokens := decisiontest.Tokens{"bound": bound, "plain": claims("alice", "mcp:tools")}
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(bindingPolicy), 0o600); err != nil {
		b.Fatal(err)
	}
	c, err := dpop.New(dpop.Options{Replay: state.NewMemory(1<<20, nil)})
	if err != nil {
		b.Fatal(err)
	}
	e := decisiontest.NewEngine(b, dir, func(o *decision.Options) { o.Tokens, o.DPoP = tokens, c })
	for _, kind := range []string{"bearer", "dpop"} {
		b.Run(kind, func(b *testing.B) {
			proofs := make([]string, b.N)
			if kind == "dpop" {
				for i := range proofs {
					proofs[i] = es.Proof("POST", bindingURI, "bound")
				}
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
				r.Scheme = "https"
				if kind == "dpop" {
					r.Headers["authorization"], r.Headers["dpop"] = "DPoP bound", proofs[i]
				} else {
					r.Headers["authorization"] = "Bearer plain"
				}
				if d := e.Decide(ctx, r); !d.Allow {
					b.Fatalf("%s: %s", kind, d.Reason)
				}
			}
		})
	}
}

// TestDPoPNonceChallenge: with server nonces (tokens.dpop.nonce), a proof
// without one is answered 401 use_dpop_nonce with a fresh nonce in
// DPoP-Nonce (RFC 9449 §8); a new proof with that nonce is allowed.
func TestDPoPNonceChallenge(t *testing.T) {
	es, err := dpoptest.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	nonces, err := dpop.NewNonces([]dpop.NonceKey{{ID: "k1", Secret: []byte(strings.Repeat("s", 32))}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	e := decisiontest.NewEngine(t, policyDir(t, bindingPolicy), func(o *decision.Options) {
		o.Tokens = decisiontest.Tokens{"bound": func() map[string]any {
			c := claims("alice", "mcp:tools")
			c["cnf"] = map[string]any{"jkt": es.JKT}
			return c
		}()}
		o.DPoP, err = dpop.New(dpop.Options{Replay: state.NewMemory(1000, nil), Nonces: nonces})
		if err != nil {
			t.Fatal(err)
		}
	})
	decide := func(proof string) *decision.Decision {
		r := post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, nil)
		r.Scheme = "https"
		r.Headers["authorization"], r.Headers["dpop"] = "DPoP bound", proof
		return e.Decide(context.Background(), r)
	}
	d := decide(es.Proof("POST", bindingURI, "bound"))
	headers := map[string][]string{}
	for _, h := range d.ResponseHeaders {
		headers[h.Name] = append(headers[h.Name], h.Value)
	}
	wantChallenge := `DPoP error="use_dpop_nonce", error_description="the proof has no nonce: sign a new proof with the nonce in the DPoP-Nonce header", algs="ES256 PS256 EdDSA RS256", resource_metadata="` + prmURL + `", Bearer resource_metadata="` + prmURL + `"`
	if d.Allow || d.Status != 401 || d.Code != decision.CodeUseDPoPNonce || len(headers["www-authenticate"]) != 1 || headers["www-authenticate"][0] != wantChallenge {
		t.Fatalf("no nonce: allow %v %d %s %q; want 401 use_dpop_nonce with\n%s", d.Allow, d.Status, d.Code, headers["www-authenticate"], wantChallenge)
	}
	if len(headers["dpop-nonce"]) != 1 || !nonces.Valid(headers["dpop-nonce"][0], time.Now()) {
		t.Fatalf("DPoP-Nonce = %q; want one fresh nonce", headers["dpop-nonce"])
	}
	if d := decide(es.ProofWithNonce("POST", bindingURI, "bound", "k1.forged")); d.Code != decision.CodeUseDPoPNonce || !strings.Contains(d.Reason, "stale or was not issued here") {
		t.Fatalf("forged nonce: %d %s %s; want use_dpop_nonce", d.Status, d.Code, d.Reason)
	}
	if d := decide(es.ProofWithNonce("POST", bindingURI, "bound", headers["dpop-nonce"][0])); !d.Allow {
		t.Fatalf("proof with the nonce: denied %d %s %s", d.Status, d.Code, d.Reason)
	}
}
