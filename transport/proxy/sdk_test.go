package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// sdkServer is a real MCP server (the Go SDK's Streamable HTTP handler)
// with the tools of serverTools, each answering "<tool>: <text>".
func sdkServer(jsonResponse bool) http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1.0.0"}, nil)
	type args struct {
		Text   string `json:"text,omitempty"`
		Amount int    `json:"amount,omitempty"`
	}
	for _, name := range serverTools {
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: "the " + name + " tool"},
			func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + ": " + in.Text}}}, nil, nil
			})
	}
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
}

// sdkProxy serves the proxy in front of an SDK server, with the Protected
// Resource Metadata of its endpoint on the same origin (as a deployment
// serves it), and returns the endpoint's URL.
func sdkProxy(t *testing.T, jsonResponse bool) string {
	t.Helper()
	up := httptest.NewServer(sdkServer(jsonResponse))
	t.Cleanup(up.Close)
	mux := http.NewServeMux()
	px := httptest.NewUnstartedServer(mux)
	resource := "http://" + px.Listener.Addr().String() + "/mcp"
	e := newEngine(t, func(o *decision.Options) { o.MetadataURL = oauth.MetadataURL(resource) })
	h, err := proxy.New(e, decision.NewItemFilter(e), proxy.Options{Upstream: up.URL})
	if err != nil {
		t.Fatal(err)
	}
	res := oauth.Resource{URI: resource, AuthorizationServers: []string{"https://auth.example.com"}}
	mux.Handle(oauth.WellKnownPath, res.Handler())
	mux.Handle(oauth.WellKnownPath+"/", res.Handler())
	mux.Handle("/", h)
	px.Start()
	t.Cleanup(px.Close)
	return resource
}

// discovering is the client's OAuth side, as an MCP client does it with
// the SDK: on 401 or 403 it reads the challenge, fetches the Protected
// Resource Metadata it points at (oauthex) and gets a token for the
// resource; on 403 insufficient_scope, one with the scopes asked for.
// Tokens come from grants (scope asked → token) instead of an
// authorization server.
type discovering struct {
	resource string
	grants   map[string]string

	mu    sync.Mutex
	token string
	steps []string // what the handler did, in order
}

func (a *discovering) TokenSource(context.Context) (oauth2.TokenSource, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == "" {
		return nil, nil
	}
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: a.token, TokenType: "Bearer"}), nil
}

func (a *discovering) Authorize(ctx context.Context, _ *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil || len(cs) == 0 {
		return fmt.Errorf("%d without a challenge: %v", resp.StatusCode, err)
	}
	c := cs[0]
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, c.Params["resource_metadata"], a.resource, http.DefaultClient)
	if err != nil {
		return fmt.Errorf("resource metadata: %w", err)
	}
	if prm.Resource != a.resource || len(prm.AuthorizationServers) == 0 {
		return fmt.Errorf("metadata of %q, authorization servers %v", prm.Resource, prm.AuthorizationServers)
	}
	scope := ""
	if resp.StatusCode == http.StatusForbidden {
		if c.Params["error"] != "insufficient_scope" {
			return fmt.Errorf("403 %q", c.Params["error"])
		}
		scope = c.Params["scope"]
	}
	tok, ok := a.grants[scope]
	if !ok {
		return fmt.Errorf("no grant for scope %q", scope)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token = tok
	a.steps = append(a.steps, fmt.Sprintf("%d %s scope=%q", resp.StatusCode, prm.Resource, scope))
	return nil
}

// TestSDKThroughProxy: the MCP Go SDK client, through the proxy, to an
// SDK server (answers as SSE and as JSON): 401 then discovery of the
// metadata, a filtered tools/list, an allowed call, a call denied by an
// argument rule (isError, the session goes on), a hidden tool refused as
// unknown (-32602), and a 403 step-up to a token with payments:write.
func TestSDKThroughProxy(t *testing.T) {
	for _, jsonResponse := range []bool{false, true} {
		t.Run(fmt.Sprintf("json_response_%v", jsonResponse), func(t *testing.T) {
			resource := sdkProxy(t, jsonResponse)
			auth := &discovering{resource: resource, grants: map[string]string{"": "alice", "payments:write": "payer"}}
			runSDKClient(t, resource, auth)
		})
	}
}

// runSDKClient runs the client's session against the endpoint: the
// expectations of TestSDKThroughProxy (and of the binary's test).
func runSDKClient(t *testing.T, endpoint string, auth *discovering) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := mcp.NewClient(&mcp.Implementation{Name: "client", Version: "1.0.0"}, nil)
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, OAuthHandler: auth}, nil)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer cs.Close()

	lt, err := cs.ListTools(ctx, nil)
	if err != nil {
		t.Fatalf("tools/list: %v", err)
	}
	var names []string
	for _, tl := range lt.Tools {
		names = append(names, tl.Name)
	}
	// The SDK server lists its tools sorted by name.
	if want := []string{"echo", "search", "transfer"}; !slices.Equal(names, want) {
		t.Errorf("tools/list = %v, want %v (filtered, the server's order)", names, want)
	}

	text := func(r *mcp.CallToolResult) string {
		var b strings.Builder
		for _, c := range r.Content {
			if tc, ok := c.(*mcp.TextContent); ok {
				b.WriteString(tc.Text)
			}
		}
		return b.String()
	}
	res, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "hello"}})
	if err != nil || res.IsError || text(res) != "echo: hello" {
		t.Fatalf("allowed call: %v %+v", err, res)
	}
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "echo", Arguments: map[string]any{"text": "the secret plan"}})
	if err != nil || !res.IsError || text(res) != "echo: the text must not mention a secret" {
		t.Fatalf("call denied by an argument rule: want isError with the reason, got %v %+v", err, res)
	}
	_, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "debug", Arguments: map[string]any{}})
	var rpcErr *jsonrpc.Error
	if !errors.As(err, &rpcErr) || rpcErr.Code != -32602 || !strings.Contains(rpcErr.Message, "Unknown tool: debug") {
		t.Fatalf("hidden tool: want JSON-RPC -32602 Unknown tool, got %v", err)
	}
	// The session goes on after the denials.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "search", Arguments: map[string]any{"text": "q"}})
	if err != nil || res.IsError || text(res) != "search: q" {
		t.Fatalf("call after the denials: %v %+v", err, res)
	}
	// transfer needs payments:write: 403, step-up, retried with it.
	res, err = cs.CallTool(ctx, &mcp.CallToolParams{Name: "transfer", Arguments: map[string]any{"amount": 5}})
	if err != nil || res.IsError || text(res) != "transfer: " {
		t.Fatalf("step-up call: %v %+v", err, res)
	}
	auth.mu.Lock()
	defer auth.mu.Unlock()
	want := []string{fmt.Sprintf("401 %s scope=%q", endpoint, ""), fmt.Sprintf("403 %s scope=%q", endpoint, "payments:write")}
	if !slices.Equal(auth.steps, want) {
		t.Errorf("authorization steps %q, want %q", auth.steps, want)
	}
}
