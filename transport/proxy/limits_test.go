package proxy_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// slowBody opens a connection and sends a POST announcing size bytes with
// the token tok ("" for none) and only sent of them; it returns the
// connection, still open, and a reader of its answer.
func slowBody(t *testing.T, proxyURL, tok string, size, sent int) (net.Conn, *bufio.Reader) {
	t.Helper()
	host := strings.TrimPrefix(proxyURL, "http://")
	c, err := net.Dial("tcp", host[:strings.IndexByte(host, '/')])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	auth := ""
	if tok != "" {
		auth = "Authorization: Bearer " + tok + "\r\n"
	}
	fmt.Fprintf(c, "POST /mcp HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s",
		auth, size, strings.Repeat(" ", sent))
	return c, bufio.NewReader(c)
}

func status(t *testing.T, br *bufio.Reader) int {
	t.Helper()
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBodyBounds: a body is bounded before its request is authenticated
// (issue 27 row 9): without a token, under a policy that allows nothing
// without one, the answer (401) comes before the body does; a body slower
// than the read timeout gets 408; one that would pass the bytes in flight
// gets 503, and the bytes are given back when the requests end.
func TestBodyBounds(t *testing.T) {
	e := newEngine(t, nil)
	url, up := start(t, e, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}, func(o *proxy.Options) {
		o.MaxBodyBytes = 1000
		o.MaxInflightBodyBytes = 1500
		o.BodyReadTimeout = 300 * time.Millisecond
	})

	t.Run("no_token_not_read", func(t *testing.T) {
		_, br := slowBody(t, url, "", 1000, 10)
		if got := status(t, br); got != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401 before the body", got)
		}
	})
	t.Run("too_slow", func(t *testing.T) {
		_, br := slowBody(t, url, "alice", 100, 10)
		if got := status(t, br); got != http.StatusRequestTimeout {
			t.Fatalf("status %d, want 408", got)
		}
	})
	t.Run("too_many_in_flight", func(t *testing.T) {
		c1, br1 := slowBody(t, url, "alice", 1000, 10) // holds 1000 of 1500
		time.Sleep(50 * time.Millisecond)
		_, br2 := slowBody(t, url, "alice", 600, 10)
		if got := status(t, br2); got != http.StatusServiceUnavailable {
			t.Fatalf("second body: status %d, want 503", got)
		}
		if got := status(t, br1); got != http.StatusRequestTimeout {
			t.Fatalf("first body: status %d, want 408", got)
		}
		c1.Close()
		// Its bytes are given back: a whole body fits again.
		resp := post(t, url, "alice", listTools+strings.Repeat(" ", 900))
		if resp.StatusCode != 200 {
			t.Fatalf("after the bodies ended: status %d", resp.StatusCode)
		}
	})
	if n := len(up.seen()); n != 1 {
		t.Errorf("the upstream saw %d requests, want 1", n)
	}
}
