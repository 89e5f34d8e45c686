package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
	"github.com/mcpauthz/mcpauthz/internal/redistest"
)

func TestStateConfigErrorsNameTheKey(t *testing.T) {
	tests := map[string]configErrorCase{
		"unknown_backend":       {"state: {backend: etcd}", "state.backend"},
		"redis_no_address":      {"state: {backend: redis}", "state.redis.addresses"},
		"redis_bad_address":     {"state: {backend: redis, redis: {addresses: [localhost]}}", "state.redis.addresses[0]"},
		"redis_keys_for_memory": {"state: {redis: {addresses: ['127.0.0.1:6379']}}", "state.redis.addresses"},
		"cluster_with_db":       {"state: {backend: redis, redis: {addresses: ['a:1', 'b:1'], db: 2}}", "state.redis.db"},
		"negative_db":           {"state: {backend: redis, redis: {addresses: ['a:1'], db: -1}}", "state.redis.db"},
		"empty_prefix":          {"state: {backend: redis, redis: {addresses: ['a:1'], key_prefix: ''}}", "state.redis.key_prefix"},
		"zero_read_timeout":     {"state: {backend: redis, redis: {addresses: ['a:1'], read_timeout: 0s}}", "state.redis.read_timeout"},
		"huge_read_timeout":     {"state: {backend: redis, redis: {addresses: ['a:1'], read_timeout: 1m}}", "state.redis.read_timeout"},
		"tls_half":              {"state: {backend: redis, redis: {addresses: ['a:1'], tls: {cert_file: c}}}", "state.redis.tls"},
		"negative_pool":         {"state: {backend: redis, redis: {addresses: ['a:1'], pool_size: -1}}", "state.redis.pool_size"},
		"unknown_redis_key":     {"state: {backend: redis, redis: {adresses: ['a:1']}}", "adresses"},
	}
	checkConfigErrors(t, tests)
}

// TestStateFromConfig builds the app's store from a configuration file
// against a real Redis with an ACL user whose password is in a file, and
// counts a failure in mcpauthz_state_errors_total once Redis is gone.
func TestStateFromConfig(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{Users: []string{"default off", "mcpauthz on >pw-from-file ~mcpauthz:* +@all"}})
	dir := t.TempDir()
	pw := filepath.Join(dir, "password")
	if err := os.WriteFile(pw, []byte("pw-from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(writeConfig(t, "state:\n  backend: redis\n  redis:\n    addresses: ['"+srv.Addr+"']\n"+
		"    username: mcpauthz\n    password_file: "+pw+"\n    read_timeout: 2s\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	s, err := buildState(&cfg.State, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if first, err := s.Once(ctx, "once:config", time.Minute); err != nil || !first {
		t.Fatalf("Once = %v, %v; want first", first, err)
	}
	srv.Stop()
	if _, err := s.Once(ctx, "once:down", time.Minute); err == nil {
		t.Fatal("Once with Redis down: no error")
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]float64{}
	for _, mf := range mfs {
		if mf.GetName() != metrics.StateErrorsName {
			continue
		}
		for _, m := range mf.GetMetric() {
			counts[m.GetLabel()[0].GetValue()] = m.GetCounter().GetValue()
		}
	}
	// A series for every op from the start; the one failure counted.
	if len(counts) != len(state.Ops()) || counts[state.OpOnce] != 1 {
		t.Fatalf("%s = %v, want every op, once at 1", metrics.StateErrorsName, counts)
	}
}

func TestStateDefaultIsMemory(t *testing.T) {
	cfg := DefaultConfig()
	s, err := buildState(&cfg.State, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if o, ok := s.(*state.Observed); !ok {
		t.Fatalf("store %T, want *state.Observed", s)
	} else if _, ok := o.Store.(*state.Memory); !ok {
		t.Fatalf("default store %T, want *state.Memory", o.Store)
	}
}

// TestStateReadiness serves the app with state.backend redis and Redis
// killed, then restarted: with state.required_for_ready /readyz and gRPC
// health follow Redis; without it they stay SERVING throughout.
func TestStateReadiness(t *testing.T) {
	for name, required := range map[string]bool{"required_for_ready": true, "not_required": false} {
		t.Run(name, func(t *testing.T) {
			srv := redistest.Start(t, redistest.Config{})
			grpcAddr, httpAddr := freeAddr(t), freeAddr(t)
			a := loadedApp(t, fmt.Sprintf("listen: {grpc: %q, http: %q}\nstate: {backend: redis, required_for_ready: %v, redis: {addresses: [%q], read_timeout: 1s}}\n",
				grpcAddr, httpAddr, required, srv.Addr))
			ctx, cancel := context.WithCancel(context.Background())
			served := make(chan error, 1)
			go func() { served <- a.serve(ctx) }()
			defer func() {
				cancel()
				if err := <-served; err != nil {
					t.Error(err)
				}
			}()
			conn, err := grpc.NewClient(grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			hc := healthpb.NewHealthClient(conn)
			// ready reports /readyz's and gRPC health's answers as one
			// word each.
			ready := func() string {
				var h string
				if r, err := hc.Check(ctx, &healthpb.HealthCheckRequest{}); err == nil {
					h = r.GetStatus().String()
				}
				res, err := http.Get("http://" + httpAddr + "/readyz")
				if err != nil {
					return "http_down " + h
				}
				res.Body.Close()
				return strconv.Itoa(res.StatusCode) + " " + h
			}
			const up, down = "200 SERVING", "503 NOT_SERVING"
			waitFor(t, 20*time.Second, func() bool { return ready() == up })
			srv.Stop()
			if required {
				waitFor(t, 20*time.Second, func() bool { return ready() == down })
			} else {
				// Two of the watcher's periods, had it run.
				time.Sleep(2*stateWatchEvery + 500*time.Millisecond)
				if got := ready(); got != up {
					t.Fatalf("Redis down, not required for ready: %q, want %q", got, up)
				}
			}
			srv.Restart()
			waitFor(t, 20*time.Second, func() bool { return ready() == up })
		})
	}
}
