package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mcpauthz/mcpauthz/internal/workload"
)

// BenchmarkGrowthStartup is the start-up of the real binary, from exec to
// its gRPC health answering SERVING for ext_authz (the first policy load
// done), on the reference policy (decision/testdata/bench) whose route
// lists N tools in data. The health status is polled every millisecond.
// The last name element is "name=size" (see
// decision/growth_bench_test.go); skipped under -short.
func BenchmarkGrowthStartup(b *testing.B) {
	if testing.Short() {
		b.Skip("builds and starts the binary: make bench or make bench-growth")
	}
	bin := buildBinary(b)
	keys, err := workload.NewKeys()
	if err != nil {
		b.Fatal(err)
	}
	jwks, err := keys.WriteJWKS(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{10, 1000, 100000} {
		b.Run(fmt.Sprintf("tools=%d", n), func(b *testing.B) {
			cfgPath := startupBundle(b, n, jwks)
			for b.Loop() {
				b.StopTimer()
				grpcAddr, httpAddr := freeAddr(b), freeAddr(b)
				b.StartTimer()
				srv := exec.Command(bin, "serve", "--config", cfgPath, "--grpc-addr", grpcAddr, "--http-addr", httpAddr)
				if err := srv.Start(); err != nil {
					b.Fatal(err)
				}
				err := waitServing(grpcAddr, time.Minute)
				b.StopTimer()
				_ = srv.Process.Signal(os.Interrupt)
				_ = srv.Wait()
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}

// startupBundle writes the reference policy with n tools on its route and
// a configuration serving it, trusting jwks; it returns the configuration.
func startupBundle(b *testing.B, n int, jwks string) string {
	b.Helper()
	dir := b.TempDir()
	bundle := filepath.Join(dir, "bundle")
	if err := os.CopyFS(bundle, os.DirFS("../../decision/testdata/bench")); err != nil {
		b.Fatal(err)
	}
	var data map[string]any
	raw, err := os.ReadFile(filepath.Join(bundle, "data.json"))
	if err == nil {
		err = json.Unmarshal(raw, &data)
	}
	if err != nil {
		b.Fatal(err)
	}
	tools := []any{"read_file", "list_dir"}
	for i := range n {
		tools = append(tools, "tool_"+strconv.Itoa(i))
	}
	data["mcpauthz"].(map[string]any)["config"].(map[string]any)["server_tools"] = map[string]any{"files": tools}
	if raw, err = json.Marshal(data); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bundle, "data.json"), raw, 0o600); err != nil {
		b.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`bundles: [{path: %q}]
resource: {uri: %q}
tokens: {issuer: %q, audience: %q, jwks_file: %q, algorithms: [RS256]}
log: {level: warn}
`, bundle, workload.Audience, workload.Issuer, workload.Audience, jwks)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		b.Fatal(err)
	}
	return cfgPath
}

// waitServing polls the gRPC health of ext_authz at addr every
// millisecond until it answers SERVING.
func waitServing(addr string, limit time.Duration) error {
	// Reconnect every millisecond: gRPC's default backoff (1 s) would be
	// most of what is measured.
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithConnectParams(grpc.ConnectParams{MinConnectTimeout: time.Second,
			Backoff: backoff.Config{BaseDelay: time.Millisecond, Multiplier: 1, MaxDelay: time.Millisecond}}))
	if err != nil {
		return err
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)
	deadline := time.Now().Add(limit)
	req := &healthpb.HealthCheckRequest{Service: "envoy.service.auth.v3.Authorization"}
	for time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		r, err := hc.Check(ctx, req)
		cancel()
		if err == nil && r.GetStatus() == healthpb.HealthCheckResponse_SERVING {
			return nil
		}
		time.Sleep(time.Millisecond)
	}
	return fmt.Errorf("%s not SERVING within %s", addr, limit)
}
