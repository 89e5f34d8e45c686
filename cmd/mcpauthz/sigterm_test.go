package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// heldIntrospection is an RFC 7662 endpoint that holds every request
// until released, then says the token is alice's, with scope mcp:tools,
// for the resource. A Check with an opaque token is thereby in flight in
// the server for as long as the test wants, and the test knows when it
// got there.
type heldIntrospection struct {
	srv      *httptest.Server
	arrived  atomic.Int64
	release  chan struct{}
	once     sync.Once
	resource string
}

func newHeldIntrospection(t *testing.T, resource string) *heldIntrospection {
	h := &heldIntrospection{release: make(chan struct{}), resource: resource}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	// Cleanups run last first: held requests are let go before Close
	// waits for them.
	t.Cleanup(h.releaseAll)
	return h
}

// releaseAll answers every held request, and every later one at once.
func (h *heldIntrospection) releaseAll() { h.once.Do(func() { close(h.release) }) }

func (h *heldIntrospection) serve(w http.ResponseWriter, r *http.Request) {
	h.arrived.Add(1)
	select {
	case <-h.release:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"active": true, "sub": "alice", "client_id": "agent-1", "scope": "mcp:tools",
		"aud": h.resource, "exp": time.Now().Add(time.Hour).Unix(),
	})
}

// TestSIGTERMUnderLoad stops the real binary with SIGTERM while it is
// busy: 32 Checks are in flight inside it (each waiting on a held token
// introspection), and more Checks keep coming from the moment the signal
// is sent. The gRPC health service turns NOT_SERVING while those 32 are
// still unanswered; each of them is then answered in full (an allow);
// a Check issued after the signal either gets an answer or is refused as
// UNAVAILABLE, never anything else; and the process exits with status 0.
// A health Watch open throughout is ended by the server once it has said
// NOT_SERVING, so it does not hold the graceful stop.
func TestSIGTERMUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
	resource := "http://" + httpAddr + "/mcp"
	idp := newHeldIntrospection(t, resource)
	bundle := filepath.Join(dir, "bundle")
	if err := os.CopyFS(bundle, os.DirFS("../../examples/bundles/parameter-rules")); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`listen: {grpc: %q, http: %q}
bundles: [{path: %q}]
resource: {uri: %q, authorization_servers: ["http://127.0.0.1:1/issuer"], scopes_supported: ["mcp:tools"]}
tokens: {introspection: {url: %q, timeout: "30s"}}
log: {level: info, format: text}
`, grpcAddr, httpAddr, bundle, resource, idp.srv.URL)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	srv := startBinary(t, bin, os.Environ(), "serve", "--config", cfgPath)
	waitReady(t, "http://"+httpAddr+"/readyz", srv.exited)

	conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	client := authv3.NewAuthorizationClient(conn)
	check := func(ctx context.Context, authz string) (*authv3.CheckResponse, error) {
		body := `{"jsonrpc":"2.0","id":17,"method":"tools/call","params":{"name":"read_file","arguments":{"path":"/data/a.csv"}}}`
		headers := map[string]string{
			":method": "POST", ":path": "/mcp", ":authority": httpAddr,
			"content-type": "application/json", "mcp-protocol-version": "2025-06-18",
		}
		if authz != "" {
			headers["authorization"] = authz
		}
		return client.Check(ctx, &authv3.CheckRequest{Attributes: &authv3.AttributeContext{
			Request: &authv3.AttributeContext_Request{Http: &authv3.AttributeContext_HttpRequest{
				Method: "POST", Path: "/mcp", Host: httpAddr, Headers: headers, RawBody: []byte(body),
			}},
			ContextExtensions: map[string]string{"mcp_server": "files"},
		}})
	}

	watchCtx, stopWatch := context.WithCancel(ctx)
	defer stopWatch()
	watch, err := healthpb.NewHealthClient(conn).Watch(watchCtx, &healthpb.HealthCheckRequest{Service: authv3.Authorization_ServiceDesc.ServiceName})
	if err != nil {
		t.Fatal(err)
	}
	// Health follows readiness within a poll of the bundle manager: it may
	// say NOT_SERVING first.
	for {
		hr, err := watch.Recv()
		if err != nil {
			t.Fatalf("health watch before SIGTERM: %v; want SERVING", err)
		}
		if hr.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			break
		}
	}

	// The Checks in flight at the signal: each token is introspected
	// once, so each Check holds one request at the endpoint.
	const inFlight = 32
	type answer struct {
		resp *authv3.CheckResponse
		err  error
	}
	held := make(chan answer, inFlight)
	for i := range inFlight {
		go func() {
			resp, err := check(ctx, fmt.Sprintf("Bearer opaque-token-%d", i))
			held <- answer{resp, err}
		}()
	}
	waitFor(t, 10*time.Second, func() bool { return idp.arrived.Load() >= inFlight })

	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Load after the signal: quick Checks (no token, so a 401 answer)
	// until the process has gone.
	var (
		loadWG    sync.WaitGroup
		stopLoad  atomic.Bool
		answered  atomic.Int64
		refused   atomic.Int64
		loadErrMu sync.Mutex
		loadErrs  []error
	)
	for range 4 {
		loadWG.Go(func() {
			for !stopLoad.Load() {
				resp, err := check(ctx, "")
				switch {
				case err == nil && resp.GetDeniedResponse().GetStatus().GetCode() == 401:
					answered.Add(1)
				case status.Code(err) == codes.Unavailable:
					refused.Add(1)
					time.Sleep(time.Millisecond) // refused at once: do not spin
				default:
					loadErrMu.Lock()
					loadErrs = append(loadErrs, fmt.Errorf("resp %v, err %w", resp, err))
					loadErrMu.Unlock()
				}
			}
		})
	}

	hr, err := watch.Recv()
	if err != nil || hr.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health after SIGTERM = %v, %v; want NOT_SERVING", hr.GetStatus(), err)
	}
	select {
	case a := <-held:
		t.Fatalf("a held Check returned before health went NOT_SERVING: %v, %v", a.resp, a.err)
	default:
	}
	// The server ends the watch itself: left open, it would hold the
	// graceful stop until its timeout, and the hard stop after that would
	// cut the held Checks.
	if hr, err := watch.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("health watch after NOT_SERVING: %v, %v; want the stream ended by the server", hr, err)
	}

	idp.releaseAll()
	for i := range inFlight {
		a := <-held
		if a.err != nil || a.resp.GetOkResponse() == nil {
			t.Errorf("in-flight Check %d: %v, %v; want an allow", i, a.resp, a.err)
		}
	}

	select {
	case err := <-srv.exited:
		srv.stopped = true
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want status 0", err)
		}
	case <-time.After(15 * time.Second):
		t.Errorf("server did not stop within 15s of SIGTERM")
	}
	stopLoad.Store(true)
	loadWG.Wait()
	for _, err := range loadErrs {
		t.Errorf("a Check issued after SIGTERM: %v; want an answer or UNAVAILABLE", err)
	}
	t.Logf("after SIGTERM: %d Checks answered, %d refused", answered.Load(), refused.Load())
}
