package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/nodetest"
)

// nodeProject is the npm project that pins the third-party MCP software the
// end-to-end tests run (`npm ci --prefix e2e/node` installs it).
const nodeProject = "../../e2e/node"

// everythingCall is one tools/call the TypeScript client makes, and how
// the end-to-end test reads its answer.
type everythingCall struct {
	Name      string         `json:"name"`
	Arguments map[string]any `json:"arguments"`
}

// callOutcome is one call's answer as e2e/node/client.mjs reports it: a
// CallToolResult or a JSON-RPC error.
type callOutcome struct {
	Name   string `json:"name"`
	Result *struct {
		Content []struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"content"`
		IsError bool `json:"isError"`
	} `json:"result"`
	Error *struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
}

// text is the text of a result's single text block ("" otherwise).
func (o callOutcome) text() string {
	if o.Result == nil || len(o.Result.Content) != 1 || o.Result.Content[0].Type != "text" {
		return ""
	}
	return o.Result.Content[0].Text
}

// String shows the answer, its text cut short (get-env's is the server's
// whole environment).
func (o callOutcome) String() string {
	switch {
	case o.Error != nil:
		return fmt.Sprintf("JSON-RPC error %d %q", o.Error.Code, o.Error.Message)
	case o.Result == nil:
		return "no answer"
	}
	text := o.text()
	if len(text) > 120 {
		text = text[:120] + "…"
	}
	return fmt.Sprintf("result (isError %v, %d content blocks) %q", o.Result.IsError, len(o.Result.Content), text)
}

// clientSummary is what e2e/node/client.mjs prints.
type clientSummary struct {
	Server struct {
		Name string `json:"name"`
	} `json:"server"`
	ProtocolVersion string        `json:"protocolVersion"`
	Tools           []string      `json:"tools"`
	Calls           []callOutcome `json:"calls"`
	Fatal           string        `json:"fatal"`
}

// runTSClient runs the TypeScript SDK client against url with token (none
// when empty) and returns its summary.
func runTSClient(t *testing.T, node, url, token string, calls []everythingCall) clientSummary {
	t.Helper()
	plan, err := json.Marshal(calls)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, filepath.Join(nodeProject, "client.mjs"), url, string(plan))
	cmd.Env = append(os.Environ(), "MCPAUTHZ_TOKEN="+token)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	var s clientSummary
	if jerr := json.Unmarshal(out, &s); jerr != nil || err != nil || s.Fatal != "" {
		t.Fatalf("node client.mjs %s: %v (fatal: %q; parse: %v)\nstdout: %s\nstderr: %s", url, err, s.Fatal, jerr, out, stderr.Bytes())
	}
	if len(s.Calls) != len(calls) {
		t.Fatalf("the client reported %d calls, want %d: %s", len(s.Calls), len(calls), out)
	}
	return s
}

// TestEverythingThroughProxy runs the quick start without Envoy as a user
// would: the real binary as `mcpauthz proxy` with examples/config/dev.yaml
// (the parameter-rules bundle; listen addresses, resource and bundle path
// set for the test) in front of the MCP reference server,
// @modelcontextprotocol/server-everything in Streamable HTTP mode, driven
// by the TypeScript SDK's client: software nobody here wrote, at the
// versions e2e/node pins. The same client first talks to the server
// directly, so the test knows what the server itself answers: every
// difference through the proxy is mcpauthz's work.
//
// Through the proxy: tools/list shows only the tools the bundle serves on
// the route (upstream.context mcp_server: everything), in the server's
// order; echo and get-sum answer with the server's own output; echo with
// an AWS access key id in its message is a tool error carrying the
// argument rule's reason, and the session goes on (the next call is
// answered by the server); get-env, hidden, is a JSON-RPC -32602 "Unknown
// tool" (the server answers an unknown tool with a tool error, so that
// JSON-RPC error is mcpauthz's).
func TestEverythingThroughProxy(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary and Node.js")
	}
	ev := startEverythingProxy(t)
	node, upstreamAddr, resource, tok := ev.node, ev.upstream, ev.resource, ev.token

	const awsKey = "AKIAIOSFODNN7EXAMPLE" // AWS's documented example key id
	calls := []struct {
		call everythingCall
		// direct is the text of the server's own answer ("": any
		// success); proxied is the answer through mcpauthz.
		direct  string
		proxied callWant
	}{
		{everythingCall{"echo", map[string]any{"message": "through mcpauthz"}}, "Echo: through mcpauthz",
			callWant{text: "Echo: through mcpauthz"}},
		{everythingCall{"echo", map[string]any{"message": "my key is " + awsKey}}, "Echo: my key is " + awsKey,
			callWant{text: "echo: the message carries what looks like an AWS access key id", isError: true}},
		{everythingCall{"get-sum", map[string]any{"a": 2, "b": 3}}, "The sum of 2 and 3 is 5.",
			callWant{text: "The sum of 2 and 3 is 5."}},
		{everythingCall{"get-env", map[string]any{}}, "",
			callWant{code: -32602, message: "MCP error -32602: Unknown tool: get-env"}},
		{everythingCall{"echo", map[string]any{"message": "still here"}}, "Echo: still here",
			callWant{text: "Echo: still here"}},
	}
	plan := make([]everythingCall, len(calls))
	for i, c := range calls {
		plan[i] = c.call
	}

	direct := runTSClient(t, node, "http://"+upstreamAddr+"/mcp", "", plan)
	proxied := runTSClient(t, node, resource, tok, plan)

	// The list: the server's, less what the route does not serve, in the
	// server's order.
	wantTools := []string{"echo", "get-sum", "get-tiny-image"}
	served := slices.DeleteFunc(slices.Clone(direct.Tools), func(name string) bool { return !slices.Contains(wantTools, name) })
	if !slices.Equal(served, wantTools) || !slices.Contains(direct.Tools, "get-env") {
		t.Fatalf("server-everything lists %q: want it to hold %q in that order, and get-env", direct.Tools, wantTools)
	}
	if !slices.Equal(proxied.Tools, wantTools) {
		t.Errorf("tools/list through mcpauthz = %q, want %q (the server's list: %q)", proxied.Tools, wantTools, direct.Tools)
	}
	if proxied.Server.Name != direct.Server.Name || proxied.ProtocolVersion != direct.ProtocolVersion {
		t.Errorf("through mcpauthz: server %q, protocol %q; directly: %q, %q",
			proxied.Server.Name, proxied.ProtocolVersion, direct.Server.Name, direct.ProtocolVersion)
	}

	for i, c := range calls {
		d, p := direct.Calls[i], proxied.Calls[i]
		if d.Error != nil || d.Result == nil || d.Result.IsError || (c.direct != "" && d.text() != c.direct) {
			t.Errorf("call %d (%s) directly = %v, want the server's %q", i, c.call.Name, d, c.direct)
		}
		if err := c.proxied.check(p); err != nil {
			t.Errorf("call %d (%s %v) through mcpauthz: %v", i, c.call.Name, c.call.Arguments, err)
		}
	}
}

// everythingProxy is server-everything (Streamable HTTP) with the real
// binary as `mcpauthz proxy` in front of it (examples/config/dev.yaml, the
// parameter-rules bundle), and alice's token for the proxy.
type everythingProxy struct {
	node     string // the node binary
	upstream string // server-everything's address
	resource string // the proxy's MCP endpoint
	token    string // alice's, scope mcp:tools
	// mint returns a token for the proxy with subject sub and scopes.
	mint func(sub, scopes string) string
}

// startEverythingProxy starts server-everything and the proxy, or skips
// without Node.js and e2e/node installed.
func startEverythingProxy(t *testing.T) everythingProxy {
	t.Helper()
	return startEverythingProxyWith(t, "../../examples/bundles/parameter-rules", nil)
}

// startEverythingProxyWith is startEverythingProxy with the bundle at
// bundleDir, and env added to server-everything's environment.
func startEverythingProxyWith(t *testing.T, bundleDir string, serverEnv []string) everythingProxy {
	t.Helper()
	node := nodetest.Node(t)
	nodetest.Project(t, nodeProject)
	bin := buildBinary(t)
	dir := t.TempDir()
	upstreamAddr := freeAddr(t)

	_, port, err := net.SplitHostPort(upstreamAddr)
	if err != nil {
		t.Fatal(err)
	}
	server := startBinary(t, node, append(append(os.Environ(), serverEnv...), "PORT="+port),
		filepath.Join(nodeProject, "node_modules/@modelcontextprotocol/server-everything/dist/index.js"), "streamableHttp")
	waitUp(t, "server-everything on "+upstreamAddr, server.exited, func() bool {
		c, err := net.DialTimeout("tcp", upstreamAddr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})

	const config = "../../examples/config/dev.yaml"
	bundle, err := filepath.Abs(bundleDir)
	if err != nil {
		t.Fatal(err)
	}
	// The proxy's ports are picked once Node.js is up, just before the
	// token (whose audience names the proxy) and the proxy: picked before
	// Node.js started, they stayed free for seconds, long enough for another
	// package's test to be given one.
	proxyAddr, grpcAddr, httpAddr := freeAddr(t), freeAddr(t), freeAddr(t)
	resource := "http://" + proxyAddr + "/mcp"
	env := append(os.Environ(), "MCPAUTHZ_DEV_KEY="+filepath.Join(dir, "key", "dev.pem"))
	tok := mintToken(t, bin, env, "--config", config, "--set", "resource.uri="+resource, "--sub", "alice", "--scope", "mcp:tools")
	proxy := startBinary(t, bin, env, "proxy", "--config", config, "--set", "resource.uri="+resource, "--bundle", bundle,
		"--grpc-addr", grpcAddr, "--http-addr", httpAddr, "--proxy-addr", proxyAddr,
		"--upstream", "http://"+upstreamAddr+"/mcp")
	waitReady(t, "http://"+httpAddr+"/readyz", proxy.exited)

	mint := func(sub, scopes string) string {
		return mintToken(t, bin, env, "--config", config, "--set", "resource.uri="+resource, "--sub", sub, "--scope", scopes)
	}
	return everythingProxy{node: node, upstream: upstreamAddr, resource: resource, token: tok, mint: mint}
}

// callWant is the answer a call should get: a result with text (isError
// as given), or a JSON-RPC error with code and message.
type callWant struct {
	text    string
	isError bool
	code    int
	message string
}

func (w callWant) check(o callOutcome) error {
	if w.code != 0 {
		if o.Error == nil || o.Error.Code != w.code || o.Error.Message != w.message {
			return fmt.Errorf("got %v; want the JSON-RPC error %d %q", o, w.code, w.message)
		}
		return nil
	}
	if o.Error != nil || o.Result == nil || o.Result.IsError != w.isError || o.text() != w.text {
		return fmt.Errorf("got %v; want a result (isError %v) with the text %q", o, w.isError, w.text)
	}
	return nil
}

// TestEverythingVersionAgrees: `docker compose up` and the README's "Try
// it without Envoy" run the version of server-everything that e2e/node
// pins and the end-to-end test runs.
func TestEverythingVersionAgrees(t *testing.T) {
	deps, err := nodetest.Dependencies(nodeProject)
	if err != nil {
		t.Fatal(err)
	}
	const name = "@modelcontextprotocol/server-everything"
	v := deps[name]
	if v == "" {
		t.Fatalf("e2e/node/package.json does not pin %s", name)
	}
	named := regexp.MustCompile(regexp.QuoteMeta(name) + `@([^\s"']+)`)
	for _, file := range []string{"docker-compose.yaml", "README.md"} {
		b, err := os.ReadFile(filepath.Join("../..", file))
		if err != nil {
			t.Fatal(err)
		}
		ms := named.FindAllSubmatch(b, -1)
		if len(ms) == 0 {
			t.Errorf("%s names no version of %s", file, name)
		}
		for _, m := range ms {
			if string(m[1]) != v {
				t.Errorf("%s runs %s@%s; e2e/node pins %s", file, name, m[1], v)
			}
		}
	}
}
