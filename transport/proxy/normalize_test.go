package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/decision/session"
	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// raw sends one request as bytes on a new connection and returns the
// answer's status.
func raw(t *testing.T, proxyURL, request string) int {
	t.Helper()
	host := strings.TrimPrefix(proxyURL, "http://")
	host = host[:strings.IndexByte(host, '/')]
	c, err := net.Dial("tcp", host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, strings.ReplaceAll(request, "\n", "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestNormalizedBeforeDecision: what Go's reverse proxy would drop after
// the decision (headers Connection names, hop-by-hop headers, trailers)
// is dropped before it, and a header the decision sets upstream cannot
// come from the client. Row 5 of issue 27: bob's DELETE of alice's session,
// its MCP-Protocol-Version hidden behind Connection, is decided as the
// upstream would get it (an old-revision DELETE of alice's session) and
// refused; row 8: a trailer carrying a token never reaches the upstream;
// row 11: a client's X-Mcp-Subject never does.
func TestNormalizedBeforeDecision(t *testing.T) {
	e := newEngine(t, func(o *decision.Options) { o.Sessions = session.NewBinder(100, time.Hour, nil) })
	var trailers sync.Map // what the upstream got as trailers, by request
	url, up := start(t, e, func(w http.ResponseWriter, r *http.Request) {
		if len(r.Trailer) > 0 {
			trailers.Store(r.Header.Get(decision.DecisionIDHeader), r.Trailer)
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}, func(o *proxy.Options) { o.StripRequestHeaders = []string{"X-Upstream-Role"} })
	path := url[strings.LastIndex(url, "/"):]

	// alice's session is bound to her.
	if resp := post(t, url, "alice", listTools, "Mcp-Session-Id", "s-alice", "MCP-Protocol-Version", "2025-06-18"); resp.StatusCode != 200 {
		t.Fatalf("alice: %d", resp.StatusCode)
	}
	tests := map[string]struct {
		request string
		status  int
		check   func(t *testing.T, s seen)
	}{
		"connection_hides_protocol_version": {
			request: "DELETE " + path + " HTTP/1.1\nHost: x\nAuthorization: Bearer bob\nMcp-Session-Id: s-alice\n" +
				"MCP-Protocol-Version: 2026-07-28\nConnection: MCP-Protocol-Version\n\n",
			status: http.StatusNotFound,
		},
		"trailer_token": {
			request: "POST " + path + " HTTP/1.1\nHost: x\nAuthorization: Bearer alice\nContent-Type: application/json\n" +
				"Accept: application/json, text/event-stream\nTransfer-Encoding: chunked\nTrailer: Authorization\n\n" +
				fmt.Sprintf("%x\n%s\n0\nAuthorization: Bearer alice\n\n", len(listTools), listTools),
			status: 200,
			check: func(t *testing.T, s seen) {
				if s.body != listTools {
					t.Errorf("upstream body %q", s.body)
				}
			},
		},
		"spoofed_identity": {
			request: "POST " + path + " HTTP/1.1\nHost: x\nAuthorization: Bearer alice\nContent-Type: application/json\n" +
				"Accept: application/json, text/event-stream\nX-Upstream-Role: admin\nTe: trailers\nKeep-Alive: 5\n" +
				fmt.Sprintf("Content-Length: %d\n\n%s", len(listTools), listTools),
			status: 200,
			check: func(t *testing.T, s seen) {
				for _, name := range []string{"X-Upstream-Role", "Te", "Keep-Alive"} {
					if v := s.header.Values(name); v != nil {
						t.Errorf("upstream got %s: %q", name, v)
					}
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := len(up.seen())
			if got := raw(t, url, tc.request); got != tc.status {
				t.Fatalf("status %d, want %d", got, tc.status)
			}
			reqs := up.seen()[before:]
			if tc.check == nil {
				if len(reqs) != 0 {
					t.Fatalf("the upstream saw %+v", reqs)
				}
				return
			}
			if len(reqs) != 1 {
				t.Fatalf("the upstream saw %d requests", len(reqs))
			}
			if a := reqs[0].header.Values("Authorization"); a != nil {
				t.Errorf("upstream got authorization %q", a)
			}
			if tr, ok := trailers.Load(reqs[0].header.Get(decision.DecisionIDHeader)); ok {
				t.Errorf("upstream got trailers %v", tr)
			}
			tc.check(t, reqs[0])
		})
	}
}

// TestPolicyHeadersStripped: a header the policy can set upstream never
// comes from the client, even on a request the policy sets none for
// (issue 27 row 11): the names are read from the policy when it loads.
func TestPolicyHeadersStripped(t *testing.T) {
	dir := t.TempDir()
	rego := `package mcp.authz
default decision := {"allow": false}
decision := {"allow": true} if input.token.valid
decision := {"allow": true, "headers": {"x-mcp-role": "admin"}} if input.mcp.method == "never"`
	if err := os.WriteFile(filepath.Join(dir, "authz.rego"), []byte(rego), 0o600); err != nil {
		t.Fatal(err)
	}
	e := decisiontest.NewEngine(t, dir, func(o *decision.Options) { o.Tokens = tokens })
	url, up := start(t, e, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}, nil)
	if resp := post(t, url, "alice", listTools, "X-Mcp-Role", "admin"); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	reqs := up.seen()
	if len(reqs) != 1 || reqs[0].header.Values("X-Mcp-Role") != nil {
		t.Fatalf("upstream got %+v", reqs)
	}
}

// TestStatelessSessionNotForwarded: a 2026-07-28 request has no session;
// the engine removes its Mcp-Session-Id (Decision.RemoveHeaders) and the
// proxy forwards it without one (issue 27 item 3).
func TestStatelessSessionNotForwarded(t *testing.T) {
	e := newEngine(t, nil)
	url, up := start(t, e, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":7,"result":{"tools":[]}}`)
	}, nil)
	resp := post(t, url, "alice", listTools, "MCP-Protocol-Version", "2026-07-28", "Mcp-Method", "tools/list", "Mcp-Session-Id", "s-1")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, readAll(t, resp.Body))
	}
	reqs := up.seen()
	if len(reqs) != 1 || reqs[0].header.Values("Mcp-Session-Id") != nil {
		t.Fatalf("upstream got %+v", reqs)
	}
}
