package proxy_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/internal/mcptest"
	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// tokens are the callers of the tests: alice sees (and may call) echo,
// search and transfer, but transfer also needs payments:write, which
// payer has.
var tokens = decisiontest.Tokens{
	"alice": {"sub": "alice", "scope": mcptest.Scopes},
	"payer": {"sub": "payer", "scope": mcptest.StepUpScopes},
	"bob":   {"sub": "bob", "scope": mcptest.Scopes},
}

// newEngine is an engine on the policy of mcptest's scenario.
func newEngine(t testing.TB, edit func(*decision.Options)) *decision.Engine {
	return decisiontest.NewEngine(t, mcptest.PolicyDir(), func(o *decision.Options) {
		o.Tokens = tokens
		if edit != nil {
			edit(o)
		}
	})
}

// seen is one request as it reached the upstream.
type seen struct {
	method, path, query string
	header              http.Header
	body                string
}

// upstream is an MCP server stand-in that records what reaches it.
type upstream struct {
	mu   sync.Mutex
	reqs []seen
}

func (u *upstream) record(r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.reqs = append(u.reqs, seen{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), string(b)})
}

func (u *upstream) seen() []seen {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.reqs)
}

// start serves handler as the upstream at /up/mcp and the proxy in front
// of it; it returns the proxy's MCP endpoint URL and the upstream's record.
func start(t testing.TB, e *decision.Engine, handler http.HandlerFunc, edit func(*proxy.Options)) (string, *upstream) {
	t.Helper()
	u := &upstream{}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/up/mcp" {
			http.NotFound(w, r)
			return
		}
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		u.record(r)
		r.Body = io.NopCloser(bytes.NewReader(body))
		handler(w, r)
	}))
	t.Cleanup(up.Close)
	opts := proxy.Options{Upstream: up.URL + "/up/mcp"}
	if edit != nil {
		edit(&opts)
	}
	h, err := proxy.New(e, decision.NewItemFilter(e), opts)
	if err != nil {
		t.Fatal(err)
	}
	px := httptest.NewServer(h)
	t.Cleanup(px.Close)
	return px.URL + "/mcp", u
}

// post sends one MCP POST with the bearer token tok ("" for none); the
// answer's body is closed when the test ends.
func post(t testing.TB, url, tok, body string, hdr ...string) *http.Response {
	t.Helper()
	resp := send(t, url, tok, body, hdr...)
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// send is post without the cleanup: the caller closes the body.
func send(t testing.TB, url, tok, body string, hdr ...string) *http.Response {
	t.Helper()
	return sendAs(t, http.MethodPost, url, tok, body, hdr...)
}

// sendAs is send with another method.
func sendAs(t testing.TB, method, url, tok, body string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func readAll(t testing.TB, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func call(id int, tool, args string) string {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "method": "tools/call",
		"params": map[string]any{"name": tool, "arguments": json.RawMessage(args)}})
	return string(b)
}

const listTools = `{"jsonrpc":"2.0","id":7,"method":"tools/list"}`

// TestDenialsAsEngine: every denial is the engine's own answer, byte for
// byte (status, headers, body), as ext_authz makes Envoy send it; the
// upstream never sees a denied request.
func TestDenialsAsEngine(t *testing.T) {
	e := newEngine(t, func(o *decision.Options) { o.MaxBodyBytes = 256 })
	url, up := start(t, e, func(w http.ResponseWriter, _ *http.Request) {
		t.Error("a denied request reached the upstream")
	}, func(o *proxy.Options) { o.MaxBodyBytes = 256 })
	big := call(1, "echo", `{"text":"`+strings.Repeat("a", 300)+`"}`)
	tests := map[string]struct {
		method, tok, body string
		status            int
		contains          string // in the body or the WWW-Authenticate header
	}{
		"no_token":       {method: "POST", body: listTools, status: 401, contains: `resource_metadata="https://mcp.example.com/.well-known/oauth-protected-resource/mcp"`},
		"bad_token":      {method: "POST", tok: "forged", body: listTools, status: 401, contains: `error="invalid_token"`},
		"step_up":        {method: "POST", tok: "alice", body: call(2, "transfer", `{"amount":5}`), status: 403, contains: `scope="payments:write"`},
		"argument_rule":  {method: "POST", tok: "alice", body: call(3, "echo", `{"text":"my SECRET"}`), status: 200, contains: `"isError":true`},
		"hidden_tool":    {method: "POST", tok: "alice", body: call(4, "debug", `{}`), status: 200, contains: `"code":-32602`},
		"unknown_method": {method: "POST", tok: "alice", body: `{"jsonrpc":"2.0","id":5,"method":"resources/read","params":{"uri":"file:///a"}}`, status: 200, contains: `"id":5`},
		"malformed":      {method: "POST", tok: "alice", body: `{"jsonrpc":`, status: 400, contains: `"code":-32700`},
		"body_too_large": {method: "POST", tok: "alice", body: big, status: 413, contains: `"code":-32600`},
		"get_no_token":   {method: "GET", status: 401, contains: "Bearer"},
		"delete_forged":  {method: "DELETE", tok: "forged", status: 401, contains: `error="invalid_token"`},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, url, strings.NewReader(tc.body))
			headers := map[string]string{}
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/json")
				headers["content-type"] = "application/json"
			}
			if tc.tok != "" {
				req.Header.Set("Authorization", "Bearer "+tc.tok)
				headers["authorization"] = "Bearer " + tc.tok
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			got := readAll(t, resp.Body)

			// The same request as Envoy's ext_authz hands it to the engine.
			want := &decision.Request{Method: tc.method, Path: "/mcp", Host: strings.TrimPrefix(url[:strings.LastIndex(url, "/")], "http://"),
				Headers: headers, Body: []byte(tc.body)}
			if len(want.Body) > 256 {
				want.Body, want.Truncated = want.Body[:256], true
			}
			d := e.Decide(context.Background(), want)
			if d.Allow || resp.StatusCode != d.Status || resp.StatusCode != tc.status {
				t.Fatalf("status %d, engine %d (allow %v), want %d", resp.StatusCode, d.Status, d.Allow, tc.status)
			}
			if got != string(d.Body) {
				t.Errorf("body\n got %s\nwant %s", got, d.Body)
			}
			for _, hd := range d.ResponseHeaders {
				if hd.Name == decision.DecisionIDHeader {
					if resp.Header.Get(hd.Name) == "" {
						t.Errorf("no %s header", hd.Name)
					}
					continue
				}
				if g := resp.Header.Values(hd.Name); len(g) != 1 || g[0] != hd.Value {
					t.Errorf("header %s = %q, want %q", hd.Name, g, hd.Value)
				}
			}
			if !strings.Contains(got+resp.Header.Get("WWW-Authenticate"), tc.contains) {
				t.Errorf("answer lacks %s:\n%s %s", tc.contains, resp.Header.Get("WWW-Authenticate"), got)
			}
		})
	}
	if n := len(up.seen()); n != 0 {
		t.Errorf("the upstream saw %d requests", n)
	}
}

// TestForwarded: an allowed request reaches the upstream as decided: the
// upstream's path, the caller's query without access_token, no token
// (unless forward_token), the decision's headers over the caller's, the
// body as sent; the decision's response headers reach the caller.
func TestForwarded(t *testing.T) {
	e := newEngine(t, nil)
	for _, forward := range []bool{false, true} {
		url, up := start(t, e, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}`)
		}, func(o *proxy.Options) { o.ForwardToken = forward })
		body := call(1, "echo", `{"text":"hi"}`)
		resp := post(t, url+"?session=1&access_token=leak", "alice", body, "X-Mcp-Subject", "mallory")
		if resp.StatusCode != 200 || readAll(t, resp.Body) == "" {
			t.Fatalf("forward %v: status %d", forward, resp.StatusCode)
		}
		if got := resp.Header.Get("X-Mcp-Policy"); got != "checked" {
			t.Errorf("response header x-mcp-policy = %q, want the decision's", got)
		}
		reqs := up.seen()
		if len(reqs) != 1 {
			t.Fatalf("upstream saw %d requests", len(reqs))
		}
		s := reqs[0]
		if s.path != "/up/mcp" || s.query != "session=1" || s.body != body {
			t.Errorf("upstream got %s ?%s %s", s.path, s.query, s.body)
		}
		wantAuth := ""
		if forward {
			wantAuth = "Bearer alice"
		}
		if got := s.header.Get("Authorization"); got != wantAuth {
			t.Errorf("forward_token %v: upstream authorization %q, want %q", forward, got, wantAuth)
		}
		if got := s.header.Values("X-Mcp-Subject"); len(got) != 1 || got[0] != "alice" {
			t.Errorf("x-mcp-subject upstream = %q, want the decision's alice", got)
		}
		if s.header.Get(decision.DecisionIDHeader) == "" {
			t.Error("no decision id upstream")
		}
	}
}

// TestGetAndDelete: the GET stream of older revisions and DELETE go through
// when allowed, and the stream's events reach the caller as they come.
func TestGetAndDelete(t *testing.T) {
	e := newEngine(t, nil)
	release := make(chan struct{})
	url, up := start(t, e, func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			w.WriteHeader(http.StatusNoContent)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/tools/list_changed\"}\n\n")
		w.(http.Flusher).Flush()
		<-release // the stream stays open: the event must not wait for it
	}, nil)
	defer close(release)

	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set("Authorization", "Bearer alice")
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	ev := readEvent(t, resp.Body)
	if !strings.Contains(ev, "list_changed") {
		t.Fatalf("event %q", ev)
	}

	req, _ = http.NewRequest(http.MethodDelete, url, nil)
	req.Header.Set("Authorization", "Bearer alice")
	req.Header.Set("Mcp-Session-Id", "s1")
	resp2, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp2.Body.Close()
	if resp2.StatusCode != http.StatusNoContent {
		t.Fatalf("DELETE: %d", resp2.StatusCode)
	}
	reqs := up.seen()
	if len(reqs) != 2 || reqs[0].method != "GET" || reqs[1].method != "DELETE" || reqs[1].header.Get("Mcp-Session-Id") != "s1" {
		t.Fatalf("upstream saw %+v", reqs)
	}
}

// readEvent reads one event (up to its blank line) as the caller gets it.
func readEvent(t testing.TB, r io.Reader) string {
	t.Helper()
	var b []byte
	one := make([]byte, 1)
	for !bytes.HasSuffix(b, []byte("\n\n")) {
		if _, err := r.Read(one); err != nil {
			t.Fatalf("after %q: %v", b, err)
		}
		b = append(b, one[0])
	}
	return string(b)
}

// TestUpstreamDown: an allowed request the upstream cannot take gets 502,
// with the decision id.
func TestUpstreamDown(t *testing.T) {
	e := newEngine(t, nil)
	h, err := proxy.New(e, decision.NewItemFilter(e), proxy.Options{Upstream: "http://127.0.0.1:1/mcp"})
	if err != nil {
		t.Fatal(err)
	}
	px := httptest.NewServer(h)
	defer px.Close()
	resp := post(t, px.URL+"/mcp", "alice", listTools)
	if resp.StatusCode != http.StatusBadGateway || resp.Header.Get(decision.DecisionIDHeader) == "" {
		t.Fatalf("status %d, decision id %q", resp.StatusCode, resp.Header.Get(decision.DecisionIDHeader))
	}
}

// TestNew refuses an upstream that is not an absolute http(s) URL.
func TestNew(t *testing.T) {
	e := newEngine(t, nil)
	for _, u := range []string{"", "127.0.0.1:3001/mcp", "ftp://host/mcp", "http:///mcp"} {
		if _, err := proxy.New(e, nil, proxy.Options{Upstream: u}); err == nil {
			t.Errorf("upstream %q accepted", u)
		}
	}
}

// replayTransport records, for each upstream request, what its GetBody
// gives, then answers as the upstream would.
type replayTransport struct {
	mu     sync.Mutex
	bodies []string // "" when the request had no GetBody
}

func (rt *replayTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	got := ""
	if r.GetBody != nil {
		b, err := r.GetBody()
		if err != nil {
			return nil, err
		}
		got = readAllString(b)
	}
	rt.mu.Lock()
	rt.bodies = append(rt.bodies, got)
	rt.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func readAllString(r io.ReadCloser) string {
	defer r.Close()
	b, _ := io.ReadAll(r)
	return string(b)
}

// TestUpstreamRequestReplayable: the upstream request can be sent again
// with exactly the decided bytes, so net/http retries a POST whose
// kept-alive connection the upstream closed before anything was written
// instead of answering 502.
func TestUpstreamRequestReplayable(t *testing.T) {
	e := newEngine(t, nil)
	rt := &replayTransport{}
	url, up := start(t, e, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hi"}]}}`)
	}, func(o *proxy.Options) { o.Transport = rt })
	body := call(1, "echo", `{"text":"hi"}`)
	if resp := post(t, url, "alice", body); resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if len(up.seen()) != 1 || len(rt.bodies) != 1 {
		t.Fatalf("upstream saw %d requests, transport %d", len(up.seen()), len(rt.bodies))
	}
	if rt.bodies[0] != body {
		t.Errorf("GetBody gives %q, want the decided body %q", rt.bodies[0], body)
	}
}
