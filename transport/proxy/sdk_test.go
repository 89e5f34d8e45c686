package proxy_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/internal/mcptest"
	"github.com/mcpauthz/mcpauthz/transport/proxy"
)

// sdkProxy serves the proxy in front of an SDK server, with the Protected
// Resource Metadata of its endpoint on the same origin (as a deployment
// serves it), and returns the endpoint's URL.
func sdkProxy(t *testing.T, jsonResponse bool) string {
	t.Helper()
	up := httptest.NewServer(mcptest.Server(jsonResponse))
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

// TestSDKThroughProxy: the MCP Go SDK client, through the proxy, to an
// SDK server answering in SSE and in JSON: 401 then discovery of the
// metadata, a filtered tools/list, an allowed call, a call denied by an
// argument rule (isError, the session goes on), a hidden tool refused as
// unknown (-32602), and a 403 step-up (mcptest.RunClient).
func TestSDKThroughProxy(t *testing.T) {
	for _, jsonResponse := range []bool{false, true} {
		t.Run(fmt.Sprintf("json_response_%v", jsonResponse), func(t *testing.T) {
			resource := sdkProxy(t, jsonResponse)
			mcptest.RunClient(t, resource, &mcptest.Discovering{Resource: resource, Grants: map[string]string{"": "alice", "payments:write": "payer"}})
		})
	}
}
