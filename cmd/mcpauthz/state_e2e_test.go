package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/mcpauthz/mcpauthz/internal/envoytest"
	"github.com/mcpauthz/mcpauthz/internal/redistest"
)

// TestReplicasShareSessions runs two real mcpauthz processes on one real
// Redis (state.backend redis, sessions.bind_subject) and checks them as
// Envoy does: a session bound on A is refused to another subject on B and
// allowed to its owner there; of 1,000 new sessions raced by alice on A and
// mallory on B, each has exactly one owner; with Redis killed, requests
// with a session are refused 503 state_unavailable (never allowed) while
// those without one are decided as usual, and once Redis is back the same
// processes bind again.
func TestReplicasShareSessions(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	// Every write on disk before it is answered, as docs/deployment.md
	// recommends: bindings outlive a Redis killed and restarted.
	srv := redistest.Start(t, redistest.Config{Args: []string{"--appendonly", "yes", "--appendfsync", "always"}})
	bin := buildBinary(t)
	dir := t.TempDir()
	bundle, _ := filepath.Abs("../../examples/bundles/parameter-rules")
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	type replica struct {
		grpc, http string
		client     authv3.AuthorizationClient
	}
	var replicas [2]*replica
	var alice, mallory string
	for i := range replicas {
		r := &replica{grpc: freeAddr(t), http: freeAddr(t)}
		cfgPath := filepath.Join(dir, fmt.Sprintf("replica%d.yaml", i))
		cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q}
bundles: [{path: %q}]
resource: {uri: "https://mcp.example/mcp", authorization_servers: ["http://127.0.0.1:1/issuer"], scopes_supported: ["mcp:tools"]}
tokens: {dev: true}
sessions: {bind_subject: true}
state: {backend: redis, redis: {addresses: [%q], read_timeout: 2s, dial_timeout: 2s}}
log: {level: info, format: text}
`, r.grpc, r.http, bundle, srv.Addr)
		if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			alice = mintToken(t, bin, env, "--config", cfgPath, "--sub", "alice", "--scope", "mcp:tools")
			mallory = mintToken(t, bin, env, "--config", cfgPath, "--sub", "mallory", "--scope", "mcp:tools")
		}
		b := startBinary(t, bin, env, "serve", "--config", cfgPath)
		waitReady(t, "http://"+r.http+"/readyz", b.exited)
		conn, err := grpc.NewClient(r.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close() })
		r.client = authv3.NewAuthorizationClient(conn)
		replicas[i] = r
	}
	a, b := replicas[0], replicas[1]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// do sends a tools/call the policy allows to any caller with
	// mcp:tools, with session id sid ("" for none), and returns what Envoy
	// would do and the decision's code.
	do := func(r *replica, tok, sid string) (envoytest.Answer, string, error) {
		h := envoytest.H("content-type", "application/json", "mcp-protocol-version", "2025-06-18")
		if sid != "" {
			h = append(h, envoytest.Header{Name: "Mcp-Session-Id", Value: sid})
		}
		req := envoytest.Request{
			Headers:           append(h, envoytest.Bearer(tok)),
			Body:              []byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/reports/q3.csv"}}}`),
			ContextExtensions: map[string]string{"mcp_server": "files"},
		}
		resp, err := r.client.Check(ctx, req.CheckRequest())
		if err != nil {
			return envoytest.Answer{}, "", fmt.Errorf("check: %w (a gRPC error is for Envoy's failure mode to decide)", err)
		}
		ans, err := envoytest.Read(resp)
		return ans, resp.GetDynamicMetadata().GetFields()["code"].GetStringValue(), err
	}
	check := func(t *testing.T, r *replica, tok, sid string) (envoytest.Answer, string) {
		t.Helper()
		ans, code, err := do(r, tok, sid)
		if err != nil {
			t.Fatal(err)
		}
		return ans, code
	}

	t.Run("bound_on_a_refused_to_another_on_b", func(t *testing.T) {
		if ans, code := check(t, a, alice, "sess-1"); !ans.Allowed {
			t.Fatalf("alice's first request on A: %d %s %s", ans.Status, code, ans.Body)
		}
		if ans, code := check(t, b, mallory, "sess-1"); ans.Allowed || ans.Status != 404 {
			t.Fatalf("mallory on B with alice's session: allowed %v, %d %s; want 404", ans.Allowed, ans.Status, code)
		}
		if ans, code := check(t, b, alice, "sess-1"); !ans.Allowed {
			t.Fatalf("alice on B with her session: %d %s %s", ans.Status, code, ans.Body)
		}
	})

	t.Run("one_owner_over_1000_races", func(t *testing.T) {
		const sessions = 1000
		var wins [sessions]atomic.Int32
		var wg sync.WaitGroup
		work := make(chan func(), 64)
		for range 16 {
			wg.Go(func() {
				for f := range work {
					f()
				}
			})
		}
		var failed atomic.Int32
		for i := range sessions {
			sid := fmt.Sprintf("race-%d", i)
			for _, side := range []struct {
				r   *replica
				tok string
			}{{a, alice}, {b, mallory}} {
				work <- func() {
					ans, code, err := do(side.r, side.tok, sid)
					switch {
					case err != nil:
						failed.Add(1)
						t.Error(err)
					case ans.Allowed:
						wins[i].Add(1)
					case ans.Status != 404:
						failed.Add(1)
						t.Errorf("%s: %d %s, want allowed or 404", sid, ans.Status, code)
					}
				}
			}
		}
		close(work)
		wg.Wait()
		if failed.Load() > 0 {
			t.FailNow()
		}
		for i := range wins {
			if n := wins[i].Load(); n != 1 {
				t.Errorf("race-%d: %d owners allowed, want exactly 1", i, n)
			}
		}
	})

	t.Run("redis_down_and_back_under_load", func(t *testing.T) {
		// Load on both replicas throughout: alice on her session sess-1
		// (allowed, or 503 while Redis is down) and mallory on it (never
		// allowed: 404, or 503 while Redis is down).
		stop := make(chan struct{})
		var wg sync.WaitGroup
		var wrongAllows, unavailable, loadErrs atomic.Int32
		for w := range 4 {
			wg.Go(func() {
				r := replicas[w%2]
				for {
					select {
					case <-stop:
						return
					default:
					}
					for _, tok := range []string{alice, mallory} {
						ans, code, err := do(r, tok, "sess-1")
						switch {
						case err != nil:
							loadErrs.Add(1)
						case tok == mallory && ans.Allowed:
							wrongAllows.Add(1)
						case code == "state_unavailable":
							unavailable.Add(1)
						case tok == alice && !ans.Allowed:
							loadErrs.Add(1)
						}
					}
				}
			})
		}
		time.Sleep(500 * time.Millisecond)
		srv.Stop()
		for name, c := range map[string]struct {
			r        *replica
			tok, sid string
		}{
			"new_session_on_a":    {a, alice, "sess-down"},
			"owner_on_b":          {b, alice, "sess-1"},
			"other_subject_on_b":  {b, mallory, "sess-1"},
			"other_subject_on_a":  {a, mallory, "sess-1"},
			"new_session_mallory": {b, mallory, "sess-down-2"},
		} {
			ans, code := check(t, c.r, c.tok, c.sid)
			if ans.Allowed || ans.Status != 503 || code != "state_unavailable" || ans.Headers["retry-after"] == "" {
				t.Errorf("%s with Redis down: allowed %v, %d %q, headers %v; want 503 state_unavailable with Retry-After",
					name, ans.Allowed, ans.Status, code, ans.Headers)
			}
		}
		if ans, code := check(t, a, alice, ""); !ans.Allowed {
			t.Errorf("a request without a session with Redis down: %d %s; want it decided as usual (allowed)", ans.Status, code)
		}
		time.Sleep(500 * time.Millisecond)
		srv.Restart()
		// The same processes, no restart of theirs: both bind again, and
		// alice's session is still hers on both.
		for _, r := range replicas {
			waitFor(t, 30*time.Second, func() bool { ans, _, err := do(r, alice, "sess-1"); return err == nil && ans.Allowed })
		}
		waitFor(t, 30*time.Second, func() bool { ans, _, err := do(a, alice, "sess-after"); return err == nil && ans.Allowed })
		if ans, code := check(t, b, mallory, "sess-after"); ans.Allowed || ans.Status != 404 {
			t.Errorf("after the restart, mallory on B with alice's new session: allowed %v, %d %s", ans.Allowed, ans.Status, code)
		}
		time.Sleep(300 * time.Millisecond)
		close(stop)
		wg.Wait()
		if n := wrongAllows.Load(); n > 0 {
			t.Errorf("mallory was allowed on alice's session %d times under load", n)
		}
		if n := loadErrs.Load(); n > 0 {
			t.Errorf("%d checks under load were gRPC errors or denied alice with Redis up", n)
		}
		if unavailable.Load() == 0 {
			t.Error("no state_unavailable under load while Redis was down")
		}
		t.Logf("under load: %d answered state_unavailable while Redis was down", unavailable.Load())
	})
}
