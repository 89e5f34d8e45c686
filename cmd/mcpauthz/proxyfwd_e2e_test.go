package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/mcptest"
)

// received is one request exactly as the upstream got it: its header
// block, body and trailers.
type received struct {
	method  string
	header  http.Header
	query   string
	body    string
	trailer http.Header
}

// tap is an upstream MCP endpoint that records every request it gets and
// answers each with an empty JSON-RPC result.
type tap struct {
	mu   sync.Mutex
	reqs []received
}

func (tp *tap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	tp.mu.Lock()
	tp.reqs = append(tp.reqs, received{r.Method, r.Header.Clone(), r.URL.RawQuery, string(b), r.Trailer.Clone()})
	tp.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
}

func (tp *tap) count() int {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return len(tp.reqs)
}

func (tp *tap) since(n int) []received {
	tp.mu.Lock()
	defer tp.mu.Unlock()
	return append([]received(nil), tp.reqs[n:]...)
}

// tappedProxy is the real binary as `mcpauthz proxy` in front of a tap.
type tappedProxy struct {
	addr string // the proxy's host:port
	tap  *tap
	pid  int
	mint func(sub string) string
}

// startTappedProxy starts the real binary as a proxy to a recording
// upstream, on mcptest's policy with sessions bound to subjects; extra is
// appended to its YAML configuration.
func startTappedProxy(t *testing.T, extra string) *tappedProxy {
	t.Helper()
	bin := buildBinary(t)
	tp := &tap{}
	up := httptest.NewServer(tp)
	t.Cleanup(up.Close)
	dir := t.TempDir()
	grpcAddr, httpAddr, proxyAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q, proxy: %q}
bundles: [{path: %q}]
resource: {uri: "http://%s/mcp", authorization_servers: ["http://127.0.0.1:1/issuer"]}
tokens: {dev: true}
sessions: {bind_subject: true}
log: {level: debug, format: text}
%s`, grpcAddr, httpAddr, proxyAddr, mcptest.PolicyDir(), proxyAddr, extra)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	p := &tappedProxy{addr: proxyAddr, tap: tp}
	p.mint = func(sub string) string {
		return mintToken(t, bin, env, "--config", cfgPath, "--sub", sub, "--scope", mcptest.Scopes)
	}
	p.mint("warmup") // creates the development key before the server reads it
	srv := startBinary(t, bin, env, "proxy", "--config", cfgPath, "--upstream", up.URL+"/mcp")
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)
	p.pid = srv.cmd.Process.Pid
	return p
}

// send writes one request as raw bytes ("\n" become CRLF) on a new
// connection and returns the answer's status and body.
func (p *tappedProxy) send(t *testing.T, request string) (int, string) {
	t.Helper()
	c, err := net.Dial("tcp", p.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, strings.ReplaceAll(request, "\n", "\r\n")); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// rawPost is a raw POST of body to /mcp+query with the token tok and the
// extra header lines hdr ("Name: value\n" each).
func rawPost(tok, query, hdr, body string) string {
	auth := ""
	if tok != "" {
		auth = "Authorization: Bearer " + tok + "\n"
	}
	return "POST /mcp" + query + " HTTP/1.1\nHost: mcp\n" + auth +
		"Content-Type: application/json\nAccept: application/json, text/event-stream\n" + hdr +
		fmt.Sprintf("Content-Length: %d\n\n%s", len(body), body)
}

// TestProxyForwardsWhatWasDecided: the hostile requests of issue 27 rows
// 5, 7, 8 and 11 against the real binary, asserting on what the upstream
// received: the request decided is the request forwarded (hop-by-hop
// headers and the headers Connection names are gone before the decision),
// the caller's token never leaves (not in a trailer, a cookie, another
// header or the query in any spelling: refused with 400), and identity
// headers never come from the client.
func TestProxyForwardsWhatWasDecided(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	p := startTappedProxy(t, "upstream: {strip_request_headers: [x-mcp-subject, x-mcp-role]}\n")
	alice, bob := p.mint("alice"), p.mint("bob")
	const list = `{"jsonrpc":"2.0","id":1,"method":"tools/list"}`

	// alice's session, bound to her.
	if st, body := p.send(t, rawPost(alice, "", "Mcp-Session-Id: s-alice\nMCP-Protocol-Version: 2025-06-18\n", list)); st != 200 {
		t.Fatalf("alice's request: %d %s", st, body)
	}
	tests := map[string]struct {
		request string
		status  int
		// check looks at what the upstream got; nil: it must get nothing.
		check func(t *testing.T, r received)
	}{
		"row5_delete_of_anothers_session": {
			request: "DELETE /mcp HTTP/1.1\nHost: mcp\nAuthorization: Bearer " + bob + "\nMcp-Session-Id: s-alice\n" +
				"MCP-Protocol-Version: 2026-07-28\nConnection: MCP-Protocol-Version\n\n",
			status: http.StatusNotFound,
		},
		"row5_get_of_anothers_session": {
			request: "GET /mcp HTTP/1.1\nHost: mcp\nAuthorization: Bearer " + bob + "\nMcp-Session-Id: s-alice\nAccept: text/event-stream\n" +
				"MCP-Protocol-Version: 2026-07-28\nConnection: keep-alive, MCP-Protocol-Version\n\n",
			status: http.StatusNotFound,
		},
		"row8_token_in_a_trailer": {
			request: "POST /mcp HTTP/1.1\nHost: mcp\nAuthorization: Bearer " + alice + "\nContent-Type: application/json\n" +
				"Accept: application/json, text/event-stream\nTransfer-Encoding: chunked\nTrailer: Authorization\n\n" +
				fmt.Sprintf("%x\n%s\n0\nAuthorization: Bearer %s\nX-Other: %s\n\n", len(list), list, alice, alice),
			status: 200,
			check: func(t *testing.T, r received) {
				if r.body != list || len(r.trailer) != 0 || r.header.Get("Trailer") != "" {
					t.Errorf("upstream got body %q, trailers %v, Trailer %q", r.body, r.trailer, r.header.Get("Trailer"))
				}
			},
		},
		"row7_token_after_semicolon":  {request: rawPost(alice, "?x=1;access_token="+alice, "", list), status: http.StatusBadRequest},
		"row7_token_name_escaped":     {request: rawPost(alice, "?access%5Ftoken="+alice, "", list), status: http.StatusBadRequest},
		"row7_token_name_first_byte":  {request: rawPost(alice, "?%61ccess_token="+alice, "", list), status: http.StatusBadRequest},
		"row7_token_value_escaped":    {request: rawPost(alice, "?x="+strings.ReplaceAll(alice, "e", "%65"), "", list), status: http.StatusBadRequest},
		"row7_anonymous_escaped_name": {request: rawPost("", "?access%5Ftoken="+alice, "", list), status: http.StatusBadRequest},
		"row8_token_in_cookie":        {request: rawPost(alice, "", "Cookie: a=b; t="+alice+"\n", list), status: http.StatusBadRequest},
		"row8_token_in_referer":       {request: rawPost(alice, "", "Referer: http://app/?access_token="+alice+"\n", list), status: http.StatusBadRequest},
		"row8_token_in_other_header":  {request: rawPost(alice, "", "X-Upstream-Token: Bearer "+alice+"\n", list), status: http.StatusBadRequest},
		"row7_other_access_token_removed": {
			request: rawPost(alice, "?x=1&access_token=not-a-credential-of-alice", "", list),
			status:  200,
			check: func(t *testing.T, r received) {
				if r.query != "x=1" {
					t.Errorf("upstream query %q, want x=1", r.query)
				}
			},
		},
		"row11_spoofed_subject": {
			request: rawPost(alice, "", "X-Mcp-Subject: admin\nX-Mcp-Role: admin\nTe: trailers\nProxy-Authorization: Bearer "+alice+"\n", list),
			status:  200,
			check: func(t *testing.T, r received) {
				for _, name := range []string{"X-Mcp-Role", "Te", "Proxy-Authorization"} {
					if v := r.header.Values(name); v != nil {
						t.Errorf("upstream got %s: %q", name, v)
					}
				}
				if v := r.header.Values("X-Mcp-Subject"); len(v) > 1 || (len(v) == 1 && v[0] != "alice") {
					t.Errorf("upstream got X-Mcp-Subject %q", v)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			before := p.tap.count()
			st, body := p.send(t, tc.request)
			if st != tc.status {
				t.Fatalf("status %d, want %d: %s", st, tc.status, body)
			}
			got := p.tap.since(before)
			if tc.check == nil {
				if len(got) != 0 {
					t.Fatalf("the upstream got %+v", got)
				}
				return
			}
			if len(got) != 1 {
				t.Fatalf("the upstream got %d requests", len(got))
			}
			if a := got[0].header.Values("Authorization"); a != nil {
				t.Errorf("upstream got Authorization %q", a)
			}
			tc.check(t, got[0])
		})
	}
}

// rssKB reads a field (VmRSS, VmHWM) of /proc/<pid>/status, in kB.
func rssKB(t *testing.T, pid int, field string) int {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			var kb int
			if _, err := fmt.Sscanf(strings.TrimSpace(rest), "%d kB", &kb); err != nil {
				t.Fatalf("%s: %q", field, line)
			}
			return kb
		}
	}
	t.Fatalf("no %s in /proc/%d/status", field, pid)
	return 0
}

// slowFlood opens n connections, each a POST announcing 1 MiB with the
// token tok ("" for none) and sending all of it but 4 bytes; it returns
// once every one was answered or closed, with the count of each status.
func slowFlood(t *testing.T, addr, tok string, n int) map[int]int {
	t.Helper()
	const size = 1 << 20
	auth := ""
	if tok != "" {
		auth = "Authorization: Bearer " + tok + "\r\n"
	}
	head := fmt.Sprintf("POST /mcp HTTP/1.1\r\nHost: mcp\r\n%sContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: %d\r\n\r\n", auth, size)
	body := []byte(`{"jsonrpc":"2.0","id":1,"method":"ping","params":{"pad":"` + strings.Repeat("a", size-60))
	body = body[:size-4]
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			st := 0 // no answer: the connection was closed
			defer func() {
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			}()
			c, err := net.Dial("tcp", addr)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			answered := make(chan int, 1)
			go func() {
				resp, err := http.ReadResponse(bufio.NewReader(c), nil)
				if err != nil {
					answered <- 0
					return
				}
				resp.Body.Close()
				answered <- resp.StatusCode
			}()
			// The write stops early when the proxy answers and closes.
			_, _ = c.Write([]byte(head))
			_, _ = c.Write(body)
			st = <-answered
		})
	}
	wg.Wait()
	return statuses
}

// TestProxyBoundedBeforeAuthenticated: issue 27 row 9 against the real
// binary: 300 connections each announcing 1 MiB and sending all but 4
// bytes, first without a token (refused before the body is read), then
// with one (past limits.max_inflight_body_bytes they get 503, the others
// 408 at limits.body_read_timeout), keep the proxy's peak RSS under 150 MB.
func TestProxyBoundedBeforeAuthenticated(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	p := startTappedProxy(t, "limits: {body_read_timeout: 2s}\n")
	alice := p.mint("alice")
	before := rssKB(t, p.pid, "VmRSS")

	anonymous := slowFlood(t, p.addr, "", 300)
	if anonymous[http.StatusUnauthorized] != 300 {
		t.Errorf("without a token: statuses %v, want 300 × 401", anonymous)
	}
	authenticated := slowFlood(t, p.addr, alice, 300)
	if authenticated[http.StatusServiceUnavailable] == 0 || authenticated[http.StatusRequestTimeout] == 0 ||
		authenticated[http.StatusServiceUnavailable]+authenticated[http.StatusRequestTimeout] != 300 {
		t.Errorf("with a token: statuses %v, want only 503 and 408", authenticated)
	}
	peak, now := rssKB(t, p.pid, "VmHWM"), rssKB(t, p.pid, "VmRSS")
	t.Logf("proxy RSS: %d kB before, peak %d kB, %d kB after; statuses without a token %v, with one %v",
		before, peak, now, anonymous, authenticated)
	if peak > 150<<10 {
		t.Errorf("peak RSS %d kB, want under 150 MB", peak)
	}
	if n := p.tap.count(); n != 0 {
		t.Errorf("the upstream got %d requests", n)
	}
}
