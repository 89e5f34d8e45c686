package toolpin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// rawPages are two pages of a tools/list answer as a server might write
// them: member order, spacing and an annotation the SDK's structs do not
// know, all of which the digest must see as sent.
var rawPages = []string{
	`{"tools":[{"annotations":{"x-vendor":{"tier":2},"readOnlyHint":true},"name":"read_file","description":"Reads.","inputSchema":{"type":"object","properties":{"path":{"type":"string"}}}}],"nextCursor":"p2"}`,
	`{"tools":[{"name":"deploy","inputSchema":{"type":"object"},"description":"Deploys."}]}`,
}

// scriptedServer speaks just enough Streamable HTTP: initialize answered
// in JSON, tools/list answered on an event stream (a notification first),
// one page per cursor. It refuses requests without the bearer token.
func scriptedServer(t *testing.T) *httptest.Server {
	return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		if r.Method != http.MethodPost {
			http.Error(w, "no stream", http.StatusMethodNotAllowed)
			return
		}
		var m struct {
			ID     json.RawMessage `json:"id"`
			Method string          `json:"method"`
			Params struct {
				Cursor string `json:"cursor"`
			} `json:"params"`
		}
		b, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(b, &m); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		switch m.Method {
		case "initialize":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Mcp-Session-Id", "sess-1")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"result":{"protocolVersion":"2025-06-18","capabilities":{"tools":{}},"serverInfo":{"name":"scripted","version":"1"}}}`, m.ID)
		case "tools/list":
			if r.Header.Get("Mcp-Session-Id") != "sess-1" {
				http.Error(w, "no session", http.StatusBadRequest)
				return
			}
			page := rawPages[0]
			if m.Params.Cursor == "p2" {
				page = rawPages[1]
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/message\",\"params\":{\"level\":\"info\",\"data\":\"listing\"}}\n\n")
			fmt.Fprintf(w, "event: message\ndata: {\"jsonrpc\":\"2.0\",\"id\":%s,\"result\":%s}\n\n", m.ID, page)
		default:
			if m.ID == nil { // a notification
				w.WriteHeader(http.StatusAccepted)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, `{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"method not found"}}`, m.ID)
		}
	}))
}

// TestFetchKeepsDefinitionsAsSent: Fetch pages through tools/list with
// the SDK's client, sends the given headers, and digests the definitions
// as the server wrote them, not as the SDK decoded them.
func TestFetchKeepsDefinitionsAsSent(t *testing.T) {
	srv := scriptedServer(t)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := ParseHeaders([]string{"Authorization: Bearer s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := Fetch(ctx, srv.URL, h, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	var want []map[string]any
	for _, p := range rawPages {
		ts, err := Tools([]byte(p))
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, ts...)
	}
	gotDoc, err := Document(got, true)
	if err != nil {
		t.Fatal(err)
	}
	wantDoc, err := Document(want, true)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(wantDoc), string(gotDoc)); diff != "" {
		t.Errorf("document (-raw +fetched):\n%s", diff)
	}

	if _, err := Fetch(ctx, srv.URL, nil, srv.Client()); err == nil || !strings.Contains(err.Error(), "connecting") {
		t.Errorf("without the token: %v, want a connection error", err)
	}
}

// TestFetchSDKServer: against the MCP Go SDK's own server, every tool it
// lists is fetched with its digest.
func TestFetchSDKServer(t *testing.T) {
	s := mcp.NewServer(&mcp.Implementation{Name: "sdk", Version: "1"}, nil)
	for _, name := range []string{"alpha", "beta"} {
		s.AddTool(&mcp.Tool{Name: name, Description: "tool " + name, InputSchema: json.RawMessage(`{"type":"object"}`),
			Annotations: &mcp.ToolAnnotations{ReadOnlyHint: true}},
			func(context.Context, *mcp.CallToolRequest) (*mcp.CallToolResult, error) {
				return &mcp.CallToolResult{}, nil
			})
	}
	srv := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, nil))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	tools, err := Fetch(ctx, srv.URL, nil, srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"alpha", "beta"}, Names(tools)); diff != "" {
		t.Fatalf("names (-want +got):\n%s", diff)
	}
	for _, tl := range tools {
		if _, err := Digest(tl); err != nil {
			t.Errorf("tool %v: %v", tl["name"], err)
		}
		if a, _ := tl["annotations"].(map[string]any); a["readOnlyHint"] != true {
			t.Errorf("tool %v: annotations %v", tl["name"], tl["annotations"])
		}
	}
}

func TestParseHeaders(t *testing.T) {
	h, err := ParseHeaders([]string{"authorization:  Bearer x ", "X-A: 1", "x-a: 2"})
	if err != nil {
		t.Fatal(err)
	}
	if h.Get("Authorization") != "Bearer x" || len(h["X-A"]) != 2 {
		t.Errorf("headers %v", h)
	}
	for _, bad := range []string{"no colon", ": empty name", "two words: x"} {
		if _, err := ParseHeaders([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
