package extauthz_test

import (
	"context"
	"net"
	"regexp"
	"runtime"
	"testing"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/decisiontest"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// faultWait bounds how long these tests wait for something that must
// happen; reaching it is a failure, not a measurement.
const faultWait = 10 * time.Second

// trackedDecider tells the test when each decision starts and what it
// came to, so the test can act while a Check is being evaluated.
type trackedDecider struct {
	e       extauthz.Decider
	started chan struct{}
	ended   chan *decision.Decision
}

func newTrackedDecider(e extauthz.Decider) *trackedDecider {
	return &trackedDecider{e: e, started: make(chan struct{}, 64), ended: make(chan *decision.Decision, 64)}
}

func (d *trackedDecider) Decide(ctx context.Context, r *decision.Request) *decision.Decision {
	d.started <- struct{}{}
	dec := d.e.Decide(ctx, r)
	d.ended <- dec
	return dec
}

// await receives n values from ch, failing the test if they are slow to come.
func await[T any](t *testing.T, ch <-chan T, n int, what string) []T {
	t.Helper()
	out := make([]T, 0, n)
	deadline := time.After(faultWait)
	for len(out) < n {
		select {
		case v := <-ch:
			out = append(out, v)
		case <-deadline:
			t.Fatalf("%s: %d of %d within %v", what, len(out), n, faultWait)
		}
	}
	return out
}

// grpcServer serves the services register adds, with opts, over an
// in-memory listener, and returns a function that opens a client
// connection to it (closed at the end of the test unless closed before).
func grpcServer(t *testing.T, register func(*grpc.Server), opts ...grpc.ServerOption) func() *grpc.ClientConn {
	t.Helper()
	lis := bufconn.Listen(4 << 20)
	s := grpc.NewServer(opts...)
	register(s)
	go func() { _ = s.Serve(lis) }()
	t.Cleanup(s.Stop)
	return func() *grpc.ClientConn {
		conn, err := grpc.NewClient("passthrough:///bufnet",
			grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
			grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = conn.Close() })
		return conn
	}
}

// checkOf is the Check of Envoy for one MCP JSON-RPC body.
func checkOf(t *testing.T, body string) *authv3.CheckRequest {
	t.Helper()
	req := readCheck(t, "testdata/checks/string_body.json")
	h := req.Attributes.Request.Http
	h.Body = body
	delete(h.Headers, "content-length")
	return req
}

// TestClientGoneMidCheck lets Envoy's side of a Check go away while the
// policy is evaluating it (a policy that would need far longer than any
// test, with an evaluation timeout of an hour): the call cancelled, its
// deadline passed, or the whole connection closed. Each time the
// evaluation stops rather than running on for the hour, the abandoned
// decision is a denial, the server answers the calls that come after, and
// no goroutine is left behind. It runs on the server's real options
// (ServerCodec, the worker pool) and on generated code.
func TestClientGoneMidCheck(t *testing.T) {
	servers := map[string]struct {
		opts     []grpc.ServerOption
		register func(*grpc.Server, *extauthz.Server)
	}{
		"server_options": {
			opts:     extauthz.ServerOptions(100),
			register: func(s *grpc.Server, srv *extauthz.Server) { srv.Register(s) },
		},
		"generated_code": {
			register: func(s *grpc.Server, srv *extauthz.Server) { authv3.RegisterAuthorizationServer(s, srv) },
		},
	}
	for name, sv := range servers {
		t.Run(name, func(t *testing.T) {
			e := decisiontest.NewEngine(t, "../../decision/testdata/slow", func(o *decision.Options) { o.EvalTimeout = time.Hour })
			dec := newTrackedDecider(e)
			dial := grpcServer(t, func(s *grpc.Server) { sv.register(s, extauthz.NewServer(dec, adapterOpts, nil)) }, sv.opts...)
			conn := dial()
			client := authv3.NewAuthorizationClient(conn)
			quick := checkOf(t, `{"jsonrpc":"2.0","id":1,"method":"ping"}`)
			slow := checkOf(t, `{"jsonrpc":"2.0","id":2,"method":"slow/op"}`)

			answered := func(t *testing.T) {
				t.Helper()
				resp, err := client.Check(context.Background(), quick)
				if err != nil || resp.GetOkResponse() == nil {
					t.Fatalf("a quick Check: %v, %v; want an allow", resp, err)
				}
				await(t, dec.started, 1, "quick decision started")
				await(t, dec.ended, 1, "quick decision ended")
			}
			answered(t)
			baseline := runtime.NumGoroutine()

			// abandoned checks that the decisions of n abandoned calls
			// ended as denials whose error matches why.
			abandoned := func(t *testing.T, n int, why *regexp.Regexp) {
				t.Helper()
				for _, d := range await(t, dec.ended, n, "abandoned decisions ended") {
					if d.Allow || d.Code != decision.CodeEvalError || len(d.Errors) == 0 || !why.MatchString(d.Errors[0]) {
						t.Errorf("abandoned decision: allow=%v code=%s errors=%q; want an eval_error denial matching %s", d.Allow, d.Code, d.Errors, why)
					}
				}
			}
			canceled := regexp.MustCompile(`context canceled`)

			t.Run("calls_cancelled", func(t *testing.T) {
				const n = 8
				ctx, cancel := context.WithCancel(context.Background())
				errc := make(chan error, n)
				for range n {
					go func() {
						_, err := client.Check(ctx, slow)
						errc <- err
					}()
				}
				await(t, dec.started, n, "slow decisions started")
				cancel()
				for _, err := range await(t, errc, n, "cancelled calls returned") {
					if status.Code(err) != codes.Canceled {
						t.Errorf("cancelled call: %v, want CANCELED", err)
					}
				}
				abandoned(t, n, canceled)
				answered(t)
			})
			t.Run("deadline_passed", func(t *testing.T) {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				if _, err := client.Check(ctx, slow); status.Code(err) != codes.DeadlineExceeded {
					t.Errorf("call past its deadline: %v, want DEADLINE_EXCEEDED", err)
				}
				await(t, dec.started, 1, "slow decision started")
				// The server's own deadline, or the client's cancel when its
				// deadline passed, whichever reaches the server first.
				abandoned(t, 1, regexp.MustCompile(`deadline exceeded|context canceled`))
				answered(t)
			})
			t.Run("connection_closed", func(t *testing.T) {
				other := dial()
				errc := make(chan error, 1)
				go func() {
					_, err := authv3.NewAuthorizationClient(other).Check(context.Background(), slow)
					errc <- err
				}()
				await(t, dec.started, 1, "slow decision started")
				_ = other.Close()
				if err := await(t, errc, 1, "call on the closed connection returned")[0]; status.Code(err) != codes.Canceled {
					t.Errorf("call on a closed connection: %v, want CANCELED", err)
				}
				abandoned(t, 1, canceled)
				answered(t)
			})

			// Every abandoned call's handler has returned: the goroutines
			// are back to what one idle connection needs.
			deadline := time.Now().Add(faultWait)
			for runtime.NumGoroutine() > baseline {
				if time.Now().After(deadline) {
					buf := make([]byte, 1<<20)
					t.Fatalf("%d goroutines, %d before the abandoned calls:\n%s", runtime.NumGoroutine(), baseline, buf[:runtime.Stack(buf, true)])
				}
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
}
