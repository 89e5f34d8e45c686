package decision_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/session"
	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/internal/redistest"
)

// Callers of the session tests. alice2 has alice's subject from another
// issuer; bob's requests are all denied by the test policy (a method it
// does not allow).
var (
	aliceClaims  = claims("alice", "mcp:tools files:read")
	alice2Claims = func() map[string]any {
		c := claims("alice", "mcp:tools files:read")
		c["iss"] = "https://other-issuer.example"
		return c
	}()
	carolClaims = claims("carol", "mcp:tools files:read")
)

// sessionReq builds a request of caller c (nil: no credential) on
// session sid ("" none) claiming revision v ("" none): kind is list,
// forbidden (a request method the policy refuses), notification,
// response, GET or DELETE.
func sessionReq(kind string, c map[string]any, sid, v string) *decision.Request {
	var r *decision.Request
	method := ""
	switch kind {
	case "list":
		// tools/list: a method of every revision (ping is not in 2026-07-28)
		r, method = post(`{"jsonrpc":"2.0","id":1,"method":"tools/list"}`, c), "tools/list"
	case "forbidden":
		r, method = post(`{"jsonrpc":"2.0","id":1,"method":"admin/wipe"}`, c), "admin/wipe"
	case "notification":
		r, method = post(`{"jsonrpc":"2.0","method":"notifications/initialized"}`, c), "notifications/initialized"
	case "response":
		r = post(`{"jsonrpc":"2.0","id":5,"result":{"action":"accept"}}`, c)
	case "GET", "DELETE":
		r = post("", c)
		r.Method, r.Body = kind, nil
	default:
		panic(kind)
	}
	if sid != "" {
		r.Headers["mcp-session-id"] = sid
	}
	if v != "" {
		r.Headers["mcp-protocol-version"] = v
		if method != "" && v == decision.Version20260728 {
			r.Headers["mcp-method"] = method
		}
	}
	return r
}

// sessionStep is one request and its answer.
type sessionStep struct {
	req    *decision.Request
	allow  bool
	status int    // of a denial
	code   string // "" allowed
}

const (
	v0618 = decision.Version20250618
	v2026 = decision.Version20260728
)

// TestSessions holds session binding to its rules (issue 28 rows 1, 3 and
// 11; issue 27 rows 5 and 6): bound whatever the revision, only once the
// policy allowed, to issuer and subject; another owner refused; a full
// table refuses new sessions and keeps bound ones.
func TestSessions(t *testing.T) {
	tests := map[string]struct {
		size  int
		steps []sessionStep
	}{
		"owner_continues": {steps: []sessionStep{
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("GET", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("notification", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("DELETE", aliceClaims, "s1", v0618), allow: true},
		}},
		"other_subject_refused_every_way": {steps: []sessionStep{
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("list", carolClaims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("GET", carolClaims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("DELETE", carolClaims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("notification", carolClaims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("response", carolClaims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
		}},
		// Row 1: claiming 2026-07-28 skipped binding and the owner check.
		"row1_2026_claim_checked": {steps: []sessionStep{
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("GET", carolClaims, "s1", v2026), status: 405, code: decision.CodeMethodNotAllowed},
			{req: sessionReq("DELETE", carolClaims, "s1", v2026), status: 405, code: decision.CodeMethodNotAllowed},
			{req: sessionReq("notification", carolClaims, "s1", v2026), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("response", carolClaims, "s1", v2026), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("list", carolClaims, "s1", v2026), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("list", aliceClaims, "s1", v2026), allow: true},
		}},
		"row1_2026_binds": {steps: []sessionStep{
			{req: sessionReq("list", aliceClaims, "s1", v2026), allow: true},
			{req: sessionReq("GET", carolClaims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
		}},
		"get_and_delete_2026_refused_for_the_owner_too": {steps: []sessionStep{
			{req: sessionReq("GET", aliceClaims, "", v2026), status: 405, code: decision.CodeMethodNotAllowed},
			{req: sessionReq("DELETE", aliceClaims, "s1", v2026), status: 405, code: decision.CodeMethodNotAllowed},
		}},
		// Row 3: binding before the policy let denied requests bind.
		"row3_denied_binds_nothing": {steps: []sessionStep{
			{req: sessionReq("forbidden", carolClaims, "s1", v0618), status: 200, code: decision.CodePolicyDenied},
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("list", carolClaims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
		}},
		"row3_full_table_refuses_new_keeps_bound": {size: 2, steps: []sessionStep{
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("list", carolClaims, "s2", v0618), allow: true},
			{req: sessionReq("list", carolClaims, "s3", v0618), status: 503, code: decision.CodeSessionsFull},
			{req: sessionReq("list", carolClaims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("list", aliceClaims, "", v0618), allow: true},
		}},
		// Row 11: issuers share no subject namespace.
		"row11_other_issuer_same_subject": {steps: []sessionStep{
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("list", alice2Claims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("GET", alice2Claims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("notification", alice2Claims, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
		}},
		"unauthenticated_request_left_to_the_policy": {steps: []sessionStep{
			{req: sessionReq("list", aliceClaims, "s1", v0618), allow: true},
			{req: sessionReq("list", nil, "s1", v0618), status: 401, code: decision.CodeUnauthenticated},
			{req: sessionReq("GET", nil, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
			{req: sessionReq("notification", nil, "s1", v0618), status: 404, code: decision.CodePolicyDenied},
		}},
		// Row 6 of issue 27: a body on GET or DELETE was decided as its message.
		"get_delete_with_body_refused": {steps: []sessionStep{
			{req: withBody(sessionReq("GET", aliceClaims, "", v0618)), status: 400, code: decision.CodeParseError},
			{req: withBody(sessionReq("DELETE", aliceClaims, "", v0618)), status: 400, code: decision.CodeParseError},
		}},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			size := tc.size
			if size == 0 {
				size = 100
			}
			e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) {
				o.Sessions = session.NewBinder(size, time.Hour, nil)
			})
			for i, s := range tc.steps {
				d := e.Decide(context.Background(), s.req)
				if d.Allow != s.allow || (!s.allow && (d.Status != s.status || d.Code != s.code)) {
					t.Fatalf("step %d (%s %s): allow %v, status %d, code %s (%s); want allow %v, status %d, code %s",
						i, s.req.Method, s.req.Body, d.Allow, d.Status, d.Code, d.Reason, s.allow, s.status, s.code)
				}
			}
		})
	}
}

func withBody(r *decision.Request) *decision.Request {
	r.Body = []byte(`{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a"}}}`)
	return r
}

// TestStatelessSessionHeaderRemoved: a 2026-07-28 request never carries
// its Mcp-Session-Id upstream (issue 27 item 3); older revisions do.
func TestStatelessSessionHeaderRemoved(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) {
		o.Sessions = session.NewBinder(100, time.Hour, nil)
	})
	tests := map[string]struct {
		req    *decision.Request
		remove bool
	}{
		"v2026_with_session":  {req: sessionReq("list", aliceClaims, "s1", v2026), remove: true},
		"v2026_empty_session": {req: sessionReq("list", aliceClaims, "", v2026), remove: true},
		"v0618_with_session":  {req: sessionReq("list", aliceClaims, "s1", v0618)},
		"v2026_no_session":    {req: sessionReq("list", aliceClaims, "", v2026)},
	}
	tests["v2026_empty_session"].req.Headers["mcp-session-id"] = ""
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := e.Decide(context.Background(), tc.req)
			if !d.Allow {
				t.Fatalf("denied: %s", d.Reason)
			}
			if got := slices.Contains(d.RemoveHeaders, "mcp-session-id"); got != tc.remove {
				t.Errorf("RemoveHeaders %v: mcp-session-id removed %v, want %v", d.RemoveHeaders, got, tc.remove)
			}
			if !slices.Contains(d.RemoveHeaders, "authorization") {
				t.Errorf("RemoveHeaders %v lost authorization", d.RemoveHeaders)
			}
		})
	}
	// The shared list of removed headers was not changed by an append.
	if d := e.Decide(context.Background(), sessionReq("list", aliceClaims, "s1", v0618)); slices.Contains(d.RemoveHeaders, "mcp-session-id") {
		t.Errorf("a 2025-06-18 request after 2026-07-28 ones removes %v", d.RemoveHeaders)
	}
}

// TestDryRunSessionHeaderRemoved: under policy.dry_run a denied request
// is let through, but a 2026-07-28 one still loses its Mcp-Session-Id.
func TestDryRunSessionHeaderRemoved(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) {
		o.DryRun = true
		o.Sessions = session.NewBinder(100, time.Hour, nil)
	})
	tests := map[string]struct {
		req    *decision.Request
		remove bool
	}{
		"v2026_denied": {req: sessionReq("forbidden", carolClaims, "s1", v2026), remove: true},
		"v0618_denied": {req: sessionReq("forbidden", carolClaims, "s1", v0618)},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			d := e.Decide(context.Background(), tc.req)
			if !d.Allow || d.Code == decision.CodeAllowed {
				t.Fatalf("want a dry-run allow of a denial, got allow %v code %s", d.Allow, d.Code)
			}
			if got := slices.Contains(d.RemoveHeaders, "mcp-session-id"); got != tc.remove {
				t.Errorf("RemoveHeaders %v: mcp-session-id removed %v, want %v", d.RemoveHeaders, got, tc.remove)
			}
		})
	}
}

// failingBinder fails as a shared store can; raced, its Bind answers that
// another owner got the session first.
type failingBinder struct {
	ownerErr, bindErr error
	raced             bool
}

func (b failingBinder) Owner(context.Context, string) (string, error) { return "", b.ownerErr }

func (b failingBinder) Bind(_ context.Context, _, owner string) (string, error) {
	if b.raced {
		return "3:iss:mallory", nil
	}
	return owner, b.bindErr
}

// TestSessionStoreFailures: a binder that fails never lets a request
// through, and its answer is well formed (503, Retry-After, the
// request's id), never a transport error.
func TestSessionStoreFailures(t *testing.T) {
	down := errors.New("redis: connection refused")
	tests := map[string]struct {
		binder failingBinder
		status int
		code   string
	}{
		"owner_lookup_fails": {binder: failingBinder{ownerErr: down}, status: 503, code: decision.CodeStateUnavailable},
		"bind_fails":         {binder: failingBinder{bindErr: down}, status: 503, code: decision.CodeStateUnavailable},
		"bind_full_wrapped":  {binder: failingBinder{bindErr: fmt.Errorf("store: %w", decision.ErrSessionsFull)}, status: 503, code: decision.CodeSessionsFull},
		"bind_raced":         {binder: failingBinder{raced: true}, status: 404, code: decision.CodePolicyDenied},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var logs bytes.Buffer
			e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) {
				o.Sessions = tc.binder
				o.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			})
			d := e.Decide(context.Background(), sessionReq("list", aliceClaims, "s1", v0618))
			// A store that is down fails every such request: the store
			// logs that, a few times a minute (state.Observed), not the
			// engine on each decision.
			if logs.Len() > 0 {
				t.Errorf("the engine logged at info or above:\n%s", logs.String())
			}
			if d.Allow || d.Status != tc.status || d.Code != tc.code {
				t.Fatalf("allow %v, status %d, code %s (%s); want status %d, code %s", d.Allow, d.Status, d.Code, d.Reason, tc.status, tc.code)
			}
			if len(d.UpstreamHeaders) != 0 || len(d.RemoveHeaders) != 0 {
				t.Errorf("a denial carries the allow's upstream headers %v, removals %v", d.UpstreamHeaders, d.RemoveHeaders)
			}
			if tc.code == decision.CodeStateUnavailable {
				if !strings.Contains(string(d.Body), `"id":1`) || !slices.Contains(d.ResponseHeaders, decision.Header{Name: "retry-after", Value: "1"}) {
					t.Errorf("body %s, headers %v: want the request's id and Retry-After: 1", d.Body, d.ResponseHeaders)
				}
			}
		})
	}
}

// TestSingleValuedHeaders: a comma in a single-valued header (Envoy's
// join of a header sent twice) is refused, whatever else the request is
// (issue 28 row 2, item 2).
func TestSingleValuedHeaders(t *testing.T) {
	e := decisiontest.NewEngine(t, "testdata/policy", func(o *decision.Options) {
		o.Sessions = session.NewBinder(100, time.Hour, nil)
	})
	tests := map[string]struct{ name, value string }{
		"session_id":       {"mcp-session-id", "S,x"},
		"protocol_version": {"mcp-protocol-version", "2025-06-18,2025-06-18"},
		"method":           {"mcp-method", "ping,ping"},
		"name":             {"mcp-name", "read_file,echo"},
		"authorization":    {"authorization", "Bearer a,Bearer b"},
		"dpop":             {"dpop", "x,y"},
		"origin":           {"origin", "https://a.example,https://b.example"},
		"last_event_id":    {"last-event-id", "1,2"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			r := sessionReq("list", aliceClaims, "", v0618)
			r.Headers[tc.name] = tc.value
			d := e.Decide(context.Background(), r)
			if d.Allow || d.Status != 400 || d.Code != decision.CodeParseError || !strings.Contains(d.Reason, tc.name) {
				t.Errorf("allow %v, status %d, code %s, reason %q; want 400 request_parse_error naming %s", d.Allow, d.Status, d.Code, d.Reason, tc.name)
			}
		})
	}
	// The same headers without a comma go through.
	r := sessionReq("list", aliceClaims, "S", v0618)
	if d := e.Decide(context.Background(), r); !d.Allow {
		t.Errorf("ping with one session id: %s", d.Reason)
	}
}

// TestSessionOwnerEncoding: issuer and subject are both in the owner, and
// no two pairs share an encoding.
func TestSessionOwnerEncoding(t *testing.T) {
	seen := map[string][2]string{}
	for _, p := range [][2]string{{"a", "b:c"}, {"a:b", "c"}, {"", "a:b:c"}, {"a:b:c", ""}, {"1:x", "y"}, {"", "alice"}, {"https://a", "alice"}} {
		c := claims(p[1], "")
		c["iss"] = p[0]
		r := sessionReq("list", c, "s", v0618)
		e := decisiontest.NewEngine(t, "testdata/policy", nil)
		d := e.Decide(context.Background(), r)
		owner := decision.SessionOwner(d.Token)
		if p[1] == "" {
			if owner != "" {
				t.Errorf("no subject: owner %q, want none", owner)
			}
			continue
		}
		if prev, dup := seen[owner]; dup {
			t.Errorf("%q and %q both encode as %q", prev, p, owner)
		}
		seen[owner] = p
	}
}

// BenchmarkDecideSession is an allowed request on a bound session: the
// owner looked up before the policy and bound again after it, with no
// binder (the cost of the rest), the memory binder, and the shared store
// on a real Redis over loopback (two round trips).
func BenchmarkDecideSession(b *testing.B) {
	binders := map[string]func(b *testing.B) decision.SessionBinder{
		"none":   func(*testing.B) decision.SessionBinder { return nil },
		"memory": func(*testing.B) decision.SessionBinder { return session.NewBinder(0, 0, nil) },
		"redis": func(b *testing.B) decision.SessionBinder {
			srv := redistest.Start(b, redistest.Config{})
			r, err := state.NewRedis(state.RedisOptions{Addresses: []string{srv.Addr}, ReadTimeout: 2 * time.Second})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { _ = r.Close() })
			return state.NewSessions(r, time.Hour)
		},
	}
	for _, name := range []string{"none", "memory", "redis"} {
		b.Run(name, func(b *testing.B) {
			binder := binders[name](b)
			e := decisiontest.NewEngine(b, "testdata/policy", func(o *decision.Options) {
				if binder != nil {
					o.Sessions = binder
				}
			})
			ctx := context.Background()
			r := sessionReq("list", aliceClaims, "0b6a2c1e-3f1d-4c55-9a1e-000000000001", v0618)
			if d := e.Decide(ctx, r); !d.Allow {
				b.Fatal(d.Reason)
			}
			b.ReportAllocs()
			for b.Loop() {
				if d := e.Decide(ctx, r); !d.Allow {
					b.Fatal(d.Reason)
				}
			}
		})
	}
}
