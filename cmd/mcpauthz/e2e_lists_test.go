package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// rawMCP is a client that writes its JSON-RPC bodies itself, as an
// attacker would, to the proxy's MCP endpoint with alice's token.
type rawMCP struct {
	t          *testing.T
	url, token string
}

// exchange sends one request and returns what came back: the status, the
// Mcp-Session-Id header and the body as the client received it.
func (c rawMCP) exchange(method, body string, hdr ...string) (status int, session, answer string) {
	c.t.Helper()
	req, err := http.NewRequest(method, c.url, strings.NewReader(body))
	if err != nil {
		c.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	// A resumed stream stays open after its replay: what arrived within
	// the client's timeout is the answer.
	resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if ne, ok := err.(net.Error); err != nil && !(ok && ne.Timeout()) {
		c.t.Fatalf("%s %s: reading the answer: %v", method, body, err)
	}
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(b)
}

// session opens a session at revision version and returns its id.
func (c rawMCP) session(version string) string {
	c.t.Helper()
	status, sid, answer := c.exchange(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"`+version+
		`","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`)
	if status != http.StatusOK || sid == "" {
		c.t.Fatalf("initialize %s: status %d, session %q: %s", version, status, sid, answer)
	}
	if status, _, answer := c.exchange(http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`,
		"Mcp-Session-Id", sid, "MCP-Protocol-Version", version); status != http.StatusAccepted {
		c.t.Fatalf("notifications/initialized: status %d: %s", status, answer)
	}
	return sid
}

// eventIDs are the ids of the events of an SSE answer, in order.
func eventIDs(answer string) []string {
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(answer))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if id, ok := strings.CutPrefix(sc.Text(), "id: "); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// TestEverythingListsThroughProxy sends the list requests of issue 27 rows
// 1-3 to the real binary as `mcpauthz proxy` in front of
// @modelcontextprotocol/server-everything (its event store on), as an
// attacker writes them, and reads what the client receives: alice, who may
// see echo, get-sum and get-tiny-image, never gets the others (get-env
// above all), whatever the request's shape:
//   - row 1: a batch [tools/list] without MCP-Protocol-Version (2025-03-26,
//     where batches exist);
//   - row 2: an id whose literal is not the double the server echoes
//     (7.00000000000000000001, echoed as 7): refused, or filtered;
//   - row 3: a GET resuming the stream of an earlier tools/list
//     (Last-Event-ID) with a body naming another list request (refused,
//     or its replay filtered), and without one (the replay filtered).
func TestEverythingListsThroughProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary and Node.js")
	}
	ev := startEverythingProxy(t)
	c := rawMCP{t: t, url: ev.resource, token: ev.token}
	hidden := []string{"get-env", "trigger-long-running-operation", "get-annotated-message"}
	check := func(t *testing.T, status int, answer string, wantShown bool) {
		t.Helper()
		t.Logf("status %d, the client received:\n%s", status, answer)
		for _, h := range hidden {
			if strings.Contains(answer, `"`+h+`"`) {
				t.Fatalf("status %d: the client received %q, hidden from alice:\n%s", status, h, answer)
			}
		}
		if wantShown && (status != http.StatusOK || !strings.Contains(answer, `"name":"echo"`)) {
			t.Errorf("status %d, want alice's tools (echo among them):\n%s", status, answer)
		}
	}

	t.Run("row1_batch_without_version", func(t *testing.T) {
		sid := c.session("2025-03-26")
		status, _, answer := c.exchange(http.MethodPost, `[{"jsonrpc":"2.0","id":21,"method":"tools/list"}]`, "Mcp-Session-Id", sid)
		check(t, status, answer, true)
	})
	t.Run("row2_id_not_a_double", func(t *testing.T) {
		sid := c.session("2025-06-18")
		status, _, answer := c.exchange(http.MethodPost, `{"jsonrpc":"2.0","id":7.00000000000000000001,"method":"tools/list"}`,
			"Mcp-Session-Id", sid, "MCP-Protocol-Version", "2025-06-18")
		// Refused at the request (the number rule) or answered filtered.
		check(t, status, answer, false)
		if status == http.StatusOK && !strings.Contains(answer, `"name":"echo"`) {
			t.Errorf("answered without alice's tools:\n%s", answer)
		}
	})
	t.Run("row3_replay_with_body", func(t *testing.T) {
		const version = "2025-11-25" // the server primes its streams, so a stream can be resumed before its answer
		sid := c.session(version)
		status, _, answer := c.exchange(http.MethodPost, `{"jsonrpc":"2.0","id":3,"method":"tools/list"}`, "Mcp-Session-Id", sid, "MCP-Protocol-Version", version)
		check(t, status, answer, true)
		ids := eventIDs(answer)
		if len(ids) == 0 {
			t.Fatalf("the tools/list answer has no event ids to resume from:\n%s", answer)
		}
		status, _, answer = c.exchange(http.MethodGet, `{"jsonrpc":"2.0","id":999,"method":"tools/list"}`,
			"Mcp-Session-Id", sid, "MCP-Protocol-Version", version, "Accept", "text/event-stream", "Last-Event-ID", ids[0])
		// Refused at the request (a GET with a body), or its replay filtered.
		check(t, status, answer, false)
		// Without a body: the replayed answer comes back, filtered.
		status, _, answer = c.exchange(http.MethodGet, "",
			"Mcp-Session-Id", sid, "MCP-Protocol-Version", version, "Accept", "text/event-stream", "Last-Event-ID", ids[0])
		check(t, status, answer, true)
	})
}
