// Package mcptest holds a real MCP scenario for the tests of the proxy
// (transport/proxy and the binary): a policy, an MCP Go SDK server with a
// few tools, and an SDK client session whose every step the policy
// decides, with the client's OAuth side discovering the resource metadata
// from the challenges as MCP clients do.
package mcptest

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/modelcontextprotocol/go-sdk/jsonrpc"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

// PolicyDir is the bundle directory of the scenario's policy: a caller
// sees (and may call) a tool when its token has the scope "tool:<name>";
// echo refuses a text mentioning a secret; transfer needs payments:write;
// debug may be called but is never shown.
func PolicyDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "testdata", "policy")
}

// ServerTools are the tools of Server, in the order it lists them (sorted).
var ServerTools = []string{"debug", "delete_repo", "echo", "search", "transfer"}

// Scopes are the scopes of the scenario's caller: before and after the
// step-up to payments:write.
const (
	Scopes       = "tool:echo tool:search tool:transfer"
	StepUpScopes = Scopes + " payments:write"
)

// Server is a real MCP server (the Go SDK's Streamable HTTP handler) with
// the tools of ServerTools, each answering "<tool>: <text>"; jsonResponse
// answers in JSON instead of SSE.
func Server(jsonResponse bool) http.Handler {
	s := mcp.NewServer(&mcp.Implementation{Name: "upstream", Version: "1.0.0"}, nil)
	type args struct {
		Text   string `json:"text,omitempty"`
		Amount int    `json:"amount,omitempty"`
	}
	for _, name := range ServerTools {
		mcp.AddTool(s, &mcp.Tool{Name: name, Description: "the " + name + " tool"},
			func(_ context.Context, _ *mcp.CallToolRequest, in args) (*mcp.CallToolResult, any, error) {
				return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: name + ": " + in.Text}}}, nil, nil
			})
	}
	return mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return s }, &mcp.StreamableHTTPOptions{JSONResponse: jsonResponse})
}

// Discovering is the client's OAuth side, as an MCP client does it with
// the SDK: on 401 or 403 it reads the challenge, fetches the Protected
// Resource Metadata it points at (oauthex) and gets a token for the
// resource; on 403 insufficient_scope, one with the scopes asked for.
// Tokens come from grants (scope asked → token) instead of an
// authorization server.
type Discovering struct {
	// Resource is the MCP endpoint; Grants maps the scope a 403 asks for
	// ("" for the first token) to the token granted.
	Resource string
	Grants   map[string]string

	mu    sync.Mutex
	token string
	steps []string // what the handler did, in order
}

// TokenSource gives the token granted last, none before the first 401.
func (a *Discovering) TokenSource(context.Context) (oauth2.TokenSource, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.token == "" {
		return nil, nil
	}
	return oauth2.StaticTokenSource(&oauth2.Token{AccessToken: a.token, TokenType: "Bearer"}), nil
}

// Authorize answers a 401 or 403 as described on Discovering.
func (a *Discovering) Authorize(ctx context.Context, _ *http.Request, resp *http.Response) error {
	defer resp.Body.Close()
	cs, err := oauthex.ParseWWWAuthenticate(resp.Header.Values("WWW-Authenticate"))
	if err != nil || len(cs) == 0 {
		return fmt.Errorf("%d without a challenge: %v", resp.StatusCode, err)
	}
	c := cs[0]
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, c.Params["resource_metadata"], a.Resource, http.DefaultClient)
	if err != nil {
		return fmt.Errorf("resource metadata: %w", err)
	}
	if prm.Resource != a.Resource || len(prm.AuthorizationServers) == 0 {
		return fmt.Errorf("metadata of %q, authorization servers %v", prm.Resource, prm.AuthorizationServers)
	}
	scope := ""
	if resp.StatusCode == http.StatusForbidden {
		if c.Params["error"] != "insufficient_scope" {
			return fmt.Errorf("403 %q", c.Params["error"])
		}
		scope = c.Params["scope"]
	}
	tok, ok := a.Grants[scope]
	if !ok {
		return fmt.Errorf("no grant for scope %q", scope)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.token = tok
	a.steps = append(a.steps, fmt.Sprintf("%d %s scope=%q", resp.StatusCode, prm.Resource, scope))
	return nil
}

// RunClient runs an MCP Go SDK client session against endpoint, a proxy
// in front of Server deciding with the policy of PolicyDir, and fails t
// unless: the first request gets 401 and auth discovers the metadata; the
// tools/list answer is filtered to echo, search and transfer (the server's
// order); an allowed call answers; a call denied by an argument rule is a
// result with isError and the reason; a hidden tool is refused as unknown
// (-32602); the session goes on after the denials; transfer gets 403
// insufficient_scope and succeeds after the step-up.
func RunClient(t testing.TB, endpoint string, auth *Discovering) {
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
