package proxy_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/serverversions"
	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// TestUnsupportedVersionListsUpstreams: the -32022 answer to a request of
// a revision mcpauthz refuses lists the revisions that work through the
// proxy, those the upstream said it supports in its answers to initialize
// (a JSON body, then an event stream), not every revision mcpauthz knows;
// before the upstream said anything, mcp.protocol_versions.
func TestUnsupportedVersionListsUpstreams(t *testing.T) {
	versions := &serverversions.Memory{}
	e := newEngine(t, func(o *decision.Options) { o.ServerVersions = versions })
	answerWith := "2025-06-18"
	url, _ := start(t, e, func(w http.ResponseWriter, r *http.Request) {
		res := `{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"` + answerWith + `","capabilities":{},"serverInfo":{"name":"up","version":"1"}}}`
		if strings.Contains(r.Header.Get("Accept"), "text/event-stream") && answerWith != "2025-06-18" {
			w.Header().Set("Content-Type", "text/event-stream")
			w.Write([]byte("event: message\ndata: " + res + "\n\n"))
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(res))
	}, func(o *proxy.Options) { o.Versions = versions })

	supported := func() []string {
		t.Helper()
		resp := post(t, url, "alice", `{"jsonrpc":"2.0","id":9,"method":"tools/list"}`, "MCP-Protocol-Version", "v999.0.0")
		var answer struct {
			Error struct {
				Code int `json:"code"`
				Data struct {
					Supported []string `json:"supported"`
					Requested string   `json:"requested"`
				} `json:"data"`
			} `json:"error"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&answer); err != nil || resp.StatusCode != 400 || answer.Error.Code != -32022 || answer.Error.Data.Requested != "v999.0.0" {
			t.Fatalf("status %d, answer %+v (%v): want 400 with -32022 naming v999.0.0", resp.StatusCode, answer, err)
		}
		return answer.Error.Data.Supported
	}
	initialize := func() {
		t.Helper()
		resp := post(t, url, "alice", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"c","version":"1"}}}`)
		if body := readAll(t, resp.Body); resp.StatusCode != 200 || !strings.Contains(body, answerWith) {
			t.Fatalf("initialize: %d %s", resp.StatusCode, body)
		}
	}

	if got := supported(); !slices.Equal(got, decision.KnownProtocolVersions) {
		t.Errorf("before the upstream said anything: supported %q, want mcp.protocol_versions %q", got, decision.KnownProtocolVersions)
	}
	initialize()
	if got, want := supported(), []string{"2025-06-18"}; !slices.Equal(got, want) {
		t.Errorf("after a JSON initialize answer: supported %q, want %q", got, want)
	}
	answerWith = "2025-11-25"
	initialize()
	if got, want := supported(), []string{"2025-06-18", "2025-11-25"}; !slices.Equal(got, want) {
		t.Errorf("after an event-stream initialize answer: supported %q, want %q", got, want)
	}
}
