package main

import (
	"context"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
)

// TestWatchEnderEndsHealthWatches opens a health Watch, shuts health down
// as serve does, and checks that the stream ends once its client has been
// told the service is not SERVING, whatever it was told before; and that
// GracefulStop then returns without waiting on the watch.
func TestWatchEnderEndsHealthWatches(t *testing.T) {
	tests := map[string]struct {
		service     string
		status      healthpb.HealthCheckResponse_ServingStatus // before shutdown; 0: never set
		openAfter   bool                                       // open the watch after drain
		wantReceive []healthpb.HealthCheckResponse_ServingStatus
	}{
		"serving_then_shutdown": {
			service: "svc", status: healthpb.HealthCheckResponse_SERVING,
			wantReceive: []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_SERVING, healthpb.HealthCheckResponse_NOT_SERVING},
		},
		"not_serving_before_shutdown": {
			// Never loaded a policy: Shutdown sends nothing new.
			service: "svc", status: healthpb.HealthCheckResponse_NOT_SERVING,
			wantReceive: []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_NOT_SERVING},
		},
		"unknown_service": {
			service:     "nope",
			wantReceive: []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_SERVICE_UNKNOWN},
		},
		"opened_after_drain": {
			service: "svc", status: healthpb.HealthCheckResponse_SERVING, openAfter: true,
			wantReceive: []healthpb.HealthCheckResponse_ServingStatus{healthpb.HealthCheckResponse_NOT_SERVING},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			lis := bufconn.Listen(1 << 20)
			watches := newWatchEnder()
			srv := grpc.NewServer(grpc.ChainStreamInterceptor(watches.intercept))
			hs := health.NewServer()
			if tc.status != 0 {
				hs.SetServingStatus("svc", tc.status)
			}
			healthpb.RegisterHealthServer(srv, hs)
			go func() { _ = srv.Serve(lis) }()
			t.Cleanup(srv.Stop)
			conn, err := grpc.NewClient("passthrough:///bufnet",
				grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
				grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = conn.Close() })
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			open := func() healthpb.Health_WatchClient {
				w, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{Service: tc.service})
				if err != nil {
					t.Fatal(err)
				}
				return w
			}

			var w healthpb.Health_WatchClient
			if !tc.openAfter {
				w = open()
				if hr, err := w.Recv(); err != nil || hr.GetStatus() != tc.wantReceive[0] {
					t.Fatalf("first status %v, %v; want %v", hr.GetStatus(), err, tc.wantReceive[0])
				}
				tc.wantReceive = tc.wantReceive[1:]
			}
			hs.Shutdown()
			watches.drain()
			if tc.openAfter {
				w = open()
			}
			for _, want := range tc.wantReceive {
				if hr, err := w.Recv(); err != nil || hr.GetStatus() != want {
					t.Fatalf("status %v, %v; want %v", hr.GetStatus(), err, want)
				}
			}
			if hr, err := w.Recv(); status.Code(err) != codes.Canceled {
				t.Fatalf("after shutdown: %v, %v; want the stream ended (CANCELED)", hr, err)
			}
			// Nothing holds the graceful stop now; were the watch still
			// open, GracefulStop would not return until the test timed out.
			srv.GracefulStop()
		})
	}
}
