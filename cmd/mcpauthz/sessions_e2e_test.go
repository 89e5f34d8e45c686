package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauthz/mcpauthz/internal/envoytest"
)

// sessionsPolicy is issue 28's red-team policy: alice may do anything,
// carol anything but call tools, bob nothing; a session opened by another
// subject is refused, as the shipped policies refuse it. It compares
// subjects only, as policies do: telling issuers apart is the engine's.
const sessionsPolicy = `package mcp.authz

default decision := {"allow": false, "reason": "denied"}

decision := {"allow": false, "status": 404, "reason": "session not found"} if {
	owner := input.mcp.session_owner
	owner != object.get(input.token, "subject", "")
} else := {"allow": true} if {
	allowed
}

allowed if {
	input.token.valid
	input.token.subject == "alice"
}

allowed if {
	input.token.valid
	input.token.subject == "carol"
	object.get(input, ["mcp", "method"], "") != "tools/call"
}
`

// TestSessionsBinary holds the real binary's session binding to issue
// 28's rows 1, 2, 3 and 11, with CheckRequests built as Envoy builds them
// (internal/envoytest): every row was allowed on the code before.
func TestSessionsBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(bundle, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "authz.rego"), []byte(sessionsPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	keyA, keyB := newIssuersTestKey(t, "key-a"), newIssuersTestKey(t, "key-b")
	const issA, issB = "https://a.example.com", "https://b.example.com"
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	resource := "http://" + httpAddr + "/mcp"
	cfgPath := filepath.Join(dir, "config.yaml")
	// Issuer B maps its subject from client_id: an issuer-B token can say
	// alice. max_sessions 4: one shard of four.
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q}
bundles: [{path: %q}]
resource: {uri: %q, authorization_servers: [%q]}
tokens:
  issuers:
  - {issuer: %q, jwks_file: %q}
  - {issuer: %q, jwks_file: %q, claims_mapping: {subject: client_id}}
sessions: {bind_subject: true, max_sessions: 4}
log: {level: debug, format: text}
`, grpcAddr, httpAddr, bundle, resource, issA, issA, keyA.jwks, issB, keyB.jwks)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startBinary(t, bin, os.Environ(), "serve", "--config", cfgPath)
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)

	exp := time.Now().Add(time.Hour).Unix()
	tokA := func(sub string) string {
		return keyA.sign(t, jwt.MapClaims{"iss": issA, "aud": resource, "sub": sub, "exp": exp})
	}
	alice, bob, carol := tokA("alice"), tokA("bob"), tokA("carol")
	aliceB := keyB.sign(t, jwt.MapClaims{"iss": issB, "aud": resource, "sub": "svc-7", "client_id": "alice", "exp": exp})

	client := authzClient(t, grpcAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// req is a request of the token's holder on the sessions (one header
	// line each) claiming revision v.
	req := func(kind, tok, v string, sessions ...string) envoytest.Request {
		r := envoytest.Request{Authority: httpAddr, Headers: []envoytest.Header{envoytest.Bearer(tok),
			{Name: "Content-Type", Value: "application/json"}, {Name: "Accept", Value: "application/json, text/event-stream"}}}
		for _, s := range sessions {
			r.Headers = append(r.Headers, envoytest.Header{Name: "Mcp-Session-Id", Value: s})
		}
		r.Headers = append(r.Headers, envoytest.Header{Name: "MCP-Protocol-Version", Value: v})
		method := ""
		switch kind {
		case "list":
			r.Body, method = []byte(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`), "tools/list"
		case "notification":
			r.Body, method = []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`), "notifications/initialized"
		case "response":
			r.Body = []byte(`{"jsonrpc":"2.0","id":0,"result":{"action":"accept","content":{"confirm":true}}}`)
		case "GET", "DELETE":
			r.Method = kind
		}
		if method != "" && v == "2026-07-28" {
			r.Headers = append(r.Headers, envoytest.Header{Name: "Mcp-Method", Value: method})
		}
		return r
	}
	type want struct {
		allow  bool
		status int
	}
	check := func(t *testing.T, what string, r envoytest.Request, w want) envoytest.Answer {
		t.Helper()
		a, err := envoytest.Check(ctx, client, r)
		if err != nil {
			t.Fatalf("%s: Check: %v (a gRPC error: Envoy's failure mode would decide)", what, err)
		}
		if a.Allowed != w.allow || (!w.allow && a.Status != w.status) {
			t.Fatalf("%s: allowed %v, status %d (%s); want allowed %v, status %d", what, a.Allowed, a.Status, a.Body, w.allow, w.status)
		}
		return a
	}
	const old, v2026 = "2025-06-18", "2026-07-28"
	allowed, notFound, refusedMethod, badRequest, full := want{allow: true}, want{status: 404}, want{status: 405}, want{status: 400}, want{status: 503}

	t.Run("row1_2026_claim_does_not_skip_the_owner", func(t *testing.T) {
		check(t, "alice opens S1", req("list", alice, old, "S1"), allowed)
		check(t, "carol GET 2026", req("GET", carol, v2026, "S1"), refusedMethod)
		check(t, "carol DELETE 2026", req("DELETE", carol, v2026, "S1"), refusedMethod)
		check(t, "carol notification 2026", req("notification", carol, v2026, "S1"), notFound)
		check(t, "carol response 2026", req("response", carol, v2026, "S1"), notFound)
		check(t, "carol GET", req("GET", carol, old, "S1"), notFound)
		a := check(t, "alice 2026 with her session", req("list", alice, v2026, "S1"), allowed)
		if !slices.Contains(a.HeadersToRemove, "mcp-session-id") {
			t.Errorf("a 2026-07-28 request's headers to remove %v lack mcp-session-id", a.HeadersToRemove)
		}
		check(t, "alice GET", req("GET", alice, old, "S1"), allowed)
	})
	t.Run("row2_two_session_headers", func(t *testing.T) {
		check(t, "alice opens S2", req("list", alice, old, "S2"), allowed)
		check(t, "carol sends S2 and x", req("list", carol, old, "S2", "x"), badRequest)
		check(t, "carol DELETE S2 and x", req("DELETE", carol, old, "S2", "x"), badRequest)
	})
	t.Run("row11_other_issuer_same_subject", func(t *testing.T) {
		check(t, "issuer B's alice, no session", req("list", aliceB, old), allowed)
		check(t, "issuer B's alice on S1", req("list", aliceB, old, "S1"), notFound)
		check(t, "issuer B's alice GET S1", req("GET", aliceB, old, "S1"), notFound)
		check(t, "issuer B's alice notification on S1", req("notification", aliceB, old, "S1"), notFound)
	})
	t.Run("row3_denied_requests_bind_nothing_full_table_refuses_new", func(t *testing.T) {
		// S1 and S2 are bound; bob's denied requests with fresh ids bind
		// nothing, so they cannot push S1 out of the table of four.
		for i := range 200 {
			check(t, "bob", req("list", bob, old, fmt.Sprintf("bob-%d", i)), want{status: 200}) // a JSON-RPC error
		}
		check(t, "carol on S1 after the flood", req("list", carol, old, "S1"), notFound)
		check(t, "carol opens C1", req("list", carol, old, "C1"), allowed)
		check(t, "carol opens C2", req("list", carol, old, "C2"), allowed)
		a := check(t, "carol opens C3: the table is full", req("list", carol, old, "C3"), full)
		if a.Body == "" {
			t.Error("sessions_full denial has no JSON-RPC body")
		}
		check(t, "alice keeps S1", req("list", alice, old, "S1"), allowed)
		check(t, "carol keeps C1", req("list", carol, old, "C1"), allowed)
	})
}
