package toolpin

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/textproto"
	"strings"
	"sync"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// ParseHeaders reads "Name: value" lines (curl's -H form) into a header.
func ParseHeaders(lines []string) (http.Header, error) {
	h := http.Header{}
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		name = strings.TrimSpace(name)
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, fmt.Errorf("header %q is not in the form 'Name: value'", l)
		}
		h.Add(textproto.CanonicalMIMEHeaderKey(name), strings.TrimSpace(value))
	}
	return h, nil
}

// Fetch lists the tools of the MCP server at endpoint (Streamable HTTP),
// with the MCP Go SDK's client: initialize, then tools/list page by page.
// header is sent on every request (an Authorization header, say); client
// nil is http.DefaultClient.
//
// The SDK decodes tools into Go structs, which do not keep a definition as
// the server sent it (annotations lose unknown members and hints left
// out), so the digests are computed from the raw answers to the
// tools/list requests, captured on their way to the SDK: the same bytes
// the list filter sees.
func Fetch(ctx context.Context, endpoint string, header http.Header, client *http.Client) ([]map[string]any, error) {
	if client == nil {
		client = http.DefaultClient
	}
	base := client.Transport
	if base == nil {
		base = http.DefaultTransport
	}
	rec := &recorder{base: base, header: header}
	hc := *client
	hc.Transport = rec
	c := mcp.NewClient(&mcp.Implementation{Name: "mcpauthz-pin", Version: "1"}, nil)
	cs, err := c.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: &hc, DisableStandaloneSSE: true, MaxRetries: -1}, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", endpoint, err)
	}
	defer cs.Close()
	n := 0
	for _, err := range cs.Tools(ctx, nil) {
		if err != nil {
			return nil, fmt.Errorf("listing the tools of %s: %w", endpoint, err)
		}
		n++
	}
	var tools []map[string]any
	seen := map[string]bool{}
	for i, page := range rec.answers() {
		ts, err := Tools(page)
		if err != nil {
			return nil, fmt.Errorf("tools/list answer %d of %s: %w", i, endpoint, err)
		}
		for _, t := range ts {
			name := t["name"].(string)
			if seen[name] {
				return nil, fmt.Errorf("tool %q is listed twice by %s", name, endpoint)
			}
			seen[name] = true
			tools = append(tools, t)
		}
	}
	if len(tools) != n {
		return nil, fmt.Errorf("%s listed %d tools to the SDK but %d were captured", endpoint, n, len(tools))
	}
	return tools, nil
}

// recorder is an http.RoundTripper that adds the configured headers to
// each request and keeps the body of each answer to a tools/list POST, as
// far as the SDK reads it.
type recorder struct {
	base   http.RoundTripper
	header http.Header

	mu    sync.Mutex
	pages []*captured
}

type captured struct {
	mu   sync.Mutex
	body bytes.Buffer
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	req = req.Clone(req.Context())
	for k, v := range r.header {
		req.Header[k] = v
	}
	list := false
	if req.Method == http.MethodPost && req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		var m struct {
			Method string `json:"method"`
		}
		list = json.Unmarshal(b, &m) == nil && m.Method == "tools/list"
	}
	resp, err := r.base.RoundTrip(req)
	if err != nil || !list || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	// An event stream or a JSON body: Tools reads either.
	c := &captured{}
	r.mu.Lock()
	r.pages = append(r.pages, c)
	r.mu.Unlock()
	resp.Body = &teeBody{ReadCloser: resp.Body, c: c}
	return resp, nil
}

// answers returns the captured answers, each as Tools reads it.
func (r *recorder) answers() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([][]byte, 0, len(r.pages))
	for _, c := range r.pages {
		c.mu.Lock()
		b := bytes.Clone(c.body.Bytes())
		c.mu.Unlock()
		out = append(out, b)
	}
	return out
}

type teeBody struct {
	io.ReadCloser
	c *captured
}

func (t *teeBody) Read(p []byte) (int, error) {
	n, err := t.ReadCloser.Read(p)
	if n > 0 {
		t.c.mu.Lock()
		t.c.body.Write(p[:n])
		t.c.mu.Unlock()
	}
	return n, err
}
