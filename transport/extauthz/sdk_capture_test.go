package extauthz_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// sdkVersion is the MCP Go SDK whose requests testdata/checks/sdk_* hold:
// it speaks 2026-07-28 (server/discover, params._meta, Mcp-Method and
// Mcp-Name) and falls back to 2025-11-25 when asked to.
const sdkVersion = "github.com/modelcontextprotocol/go-sdk v1.8.0"

// recorder keeps the POST requests a client sends.
type recorder struct {
	next http.RoundTripper
	reqs []recorded
}

type recorded struct {
	headers map[string]string
	body    []byte
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodPost && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		hs := map[string]string{}
		for k, v := range req.Header {
			hs[strings.ToLower(k)] = strings.Join(v, ",")
		}
		r.reqs = append(r.reqs, recorded{headers: hs, body: b})
	}
	return r.next.RoundTrip(req)
}

// sdkSession runs the Go SDK client of revision version against the Go SDK
// server and returns the POSTs it sent: its discovery (or initialize), a
// tools/list and a tools/call.
func sdkSession(t *testing.T, version string) []recorded {
	t.Helper()
	server := mcp.NewServer(&mcp.Implementation{Name: "files", Version: "1.0.0"}, nil)
	type args struct {
		Path string `json:"path"`
	}
	mcp.AddTool(server, &mcp.Tool{Name: "read_file", Description: "reads a file"},
		func(ctx context.Context, req *mcp.CallToolRequest, a args) (*mcp.CallToolResult, any, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: "a,b"}}}, nil, nil
		})
	ts := httptest.NewServer(mcp.NewStreamableHTTPHandler(func(*http.Request) *mcp.Server { return server },
		// A 2026-07-28 server is stateless; an older one keeps sessions.
		&mcp.StreamableHTTPOptions{JSONResponse: true, Stateless: version >= "2026-07-28"}))
	defer ts.Close()
	rec := &recorder{next: http.DefaultTransport}
	client := mcp.NewClient(&mcp.Implementation{Name: "ci-bot", Version: "1.2.0"}, nil)
	ctx := context.Background()
	cs, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: ts.URL + "/mcp", HTTPClient: &http.Client{Transport: rec}},
		&mcp.ClientSessionOptions{ProtocolVersion: version})
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	if _, err := cs.ListTools(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := cs.CallTool(ctx, &mcp.CallToolParams{Name: "read_file", Arguments: map[string]any{"path": "/data/a.csv"}}); err != nil {
		t.Fatal(err)
	}
	return rec.reqs
}

// checkJSON writes a captured request as Envoy's CheckRequest (protojson),
// as examples/envoy/envoy-mcp-filter.yaml sends it: the MCP filter's parse
// under envoy.filters.http.mcp, jwt_authn's verified payload.
func checkJSON(r recorded) ([]byte, error) {
	var msg struct {
		ID     any             `json:"id"`
		Method string          `json:"method"`
		Params json.RawMessage `json:"params"`
	}
	if err := json.Unmarshal(r.body, &msg); err != nil {
		return nil, err
	}
	headers := map[string]string{":authority": "mcp.example.com", ":method": "POST", ":path": "/mcp"}
	for k, v := range r.headers {
		switch k {
		case "content-length", "user-agent", "accept-encoding", "mcp-session-id":
			// Host details of the capture; the session id is random.
			if k == "mcp-session-id" {
				v = "sess-captured"
			} else {
				continue
			}
		}
		headers[k] = v
	}
	headers["content-length"] = fmt.Sprint(len(r.body))
	mcpMeta := map[string]any{"method": msg.Method}
	if msg.ID != nil {
		mcpMeta["id"] = msg.ID
	}
	if len(msg.Params) > 0 {
		var p map[string]any
		if err := json.Unmarshal(msg.Params, &p); err != nil {
			return nil, err
		}
		// The filter extracts the routing attributes (name, uri), not
		// arguments.
		keep := map[string]any{}
		for _, k := range []string{"name", "uri"} {
			if v, ok := p[k]; ok {
				keep[k] = v
			}
		}
		mcpMeta["params"] = keep
	}
	check := map[string]any{"attributes": map[string]any{
		"metadataContext": map[string]any{"filterMetadata": map[string]any{
			"envoy.filters.http.jwt_authn": map[string]any{"payload": map[string]any{
				"aud": "https://mcp.example.com/mcp", "exp": 4102444800, "iss": "https://auth.example.com",
				"scope": "mcp:tools files:read", "sub": "alice",
			}},
			"envoy.filters.http.mcp": mcpMeta,
		}},
		"request": map[string]any{"http": map[string]any{
			"rawBody": r.body, "headers": headers, "host": "mcp.example.com",
			"method": "POST", "path": "/mcp", "protocol": "HTTP/1.1",
		}},
	}}
	return json.MarshalIndent(check, "", " ")
}

// TestGoSDKRequests: the requests the Go SDK sends, as a 2026-07-28 client
// and as a 2025-11-25 one, are golden CheckRequests (testdata/checks/sdk_*,
// rewritten with -update), and through the same adapter options and the
// shipped policy every one of them is allowed.
func TestGoSDKRequests(t *testing.T) {
	e := decisiontest.NewEngine(t, "../../policies", nil)
	for _, version := range []string{"2026-07-28", "2025-11-25"} {
		reqs := sdkSession(t, version)
		names := make([]string, 0, len(reqs))
		for i, r := range reqs {
			var m struct{ Method string }
			_ = json.Unmarshal(r.body, &m)
			name := fmt.Sprintf("sdk_%s_%d_%s", strings.ReplaceAll(version, "-", ""), i, strings.NewReplacer("/", "_").Replace(m.Method))
			names = append(names, name)
			b, err := checkJSON(r)
			if err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata/checks", name+".json")
			b = append(b, '\n')
			if *update {
				if err := os.WriteFile(path, b, 0o644); err != nil {
					t.Fatal(err)
				}
			} else if want, err := os.ReadFile(path); err != nil || !bytes.Equal(want, b) {
				t.Errorf("%s: %s sends something else now (%v); check and run with -update:\n%s", path, sdkVersion, err, b)
			}
			opts := adapterOpts
			d := e.Decide(context.Background(), extauthz.RequestFromCheck(readCheck(t, path), &opts))
			if !d.Allow {
				t.Errorf("%s (%s): %s %s", name, sdkVersion, d.Code, d.Reason)
			}
		}
		sort.Strings(names)
		t.Logf("%s as %s sent: %v", sdkVersion, version, names)
		if version == "2026-07-28" && (len(reqs) == 0 || reqs[0].headers["mcp-method"] != "server/discover") {
			t.Errorf("the %s client did not start with server/discover", version)
		}
	}
}
