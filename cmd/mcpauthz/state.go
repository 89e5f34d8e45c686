package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
)

// validateState checks the state section.
func (c *Config) validateState(bad func(key, format string, args ...any)) {
	s := &c.State
	r := &s.Redis
	switch s.Backend {
	case "memory":
		for _, k := range []string{"addresses", "cluster", "username", "password_file", "tls", "db", "pool_size"} {
			if c.Given("state.redis." + k) {
				bad("state.redis."+k, "is set but state.backend is memory")
			}
		}
		return
	case "redis":
	default:
		bad("state.backend", "%q is not memory or redis", s.Backend)
		return
	}
	if len(r.Addresses) == 0 {
		bad("state.redis.addresses", "are required with state.backend redis")
	}
	for i, a := range r.Addresses {
		if _, port, err := net.SplitHostPort(a); err != nil || port == "" {
			bad(fmt.Sprintf("state.redis.addresses[%d]", i), "%q is not host:port", a)
		}
	}
	if r.DB < 0 {
		bad("state.redis.db", "must not be negative")
	}
	if r.DB != 0 && (r.Cluster || len(r.Addresses) > 1) {
		bad("state.redis.db", "must be 0 with Redis Cluster (cluster, or more than one address)")
	}
	if r.KeyPrefix == "" {
		bad("state.redis.key_prefix", "must not be empty: keys of other applications must not be confused with mcpauthz's")
	}
	if r.ReadTimeout <= 0 || r.ReadTimeout.D() > 10*time.Second {
		bad("state.redis.read_timeout", "must be between 0 and 10s: every decision that needs the store may wait this long")
	}
	if r.DialTimeout <= 0 {
		bad("state.redis.dial_timeout", "must be positive")
	}
	if r.PoolSize < 0 {
		bad("state.redis.pool_size", "must be 0 (ten per core) or positive")
	}
	if (r.TLS.CertFile == "") != (r.TLS.KeyFile == "") {
		bad("state.redis.tls", "cert_file and key_file go together")
	}
}

// buildState builds the shared state of cfg.State, its errors counted on
// reg and logged on log: memory, or a Redis client (which connects when
// first used).
func buildState(cfg *StateConfig, reg prometheus.Registerer, log *slog.Logger) (state.Store, error) {
	var s state.Store
	switch cfg.Backend {
	case "redis":
		r, err := redisStore(&cfg.Redis)
		if err != nil {
			return nil, err
		}
		// go-redis logs each failed dial to stderr through a logger of its
		// own (one for the process, its only hook): at debug level here,
		// since Observed already reports failures, once per few seconds.
		// Set once: go-redis reads it unsynchronised from its goroutines.
		redisLogOnce.Do(func() { redis.SetLogger(redisLogger{log}) })
		s = r
	default:
		s = state.NewMemory(0, nil)
	}
	return state.Observe(s, metrics.NewStateErrors(reg), log), nil
}

// redisStore turns state.redis into the Redis store: the password read
// from its file, the TLS configuration built from its files.
func redisStore(c *RedisConfig) (*state.Redis, error) {
	o := state.RedisOptions{
		Addresses: c.Addresses, Cluster: c.Cluster, Username: c.Username, DB: c.DB,
		KeyPrefix: c.KeyPrefix, DialTimeout: c.DialTimeout.D(), ReadTimeout: c.ReadTimeout.D(), PoolSize: c.PoolSize,
	}
	if c.PasswordFile != "" {
		b, err := os.ReadFile(c.PasswordFile)
		if err != nil {
			return nil, fmt.Errorf("state.redis.password_file: %w", err)
		}
		o.Password = strings.TrimSpace(string(b))
	}
	t := c.TLS
	if t.Enabled || t.CAFile != "" || t.CertFile != "" || t.ServerName != "" {
		tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: t.ServerName}
		if t.CAFile != "" {
			pem, err := os.ReadFile(t.CAFile)
			if err != nil {
				return nil, fmt.Errorf("state.redis.tls.ca_file: %w", err)
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("state.redis.tls.ca_file: no PEM certificate in %s", t.CAFile)
			}
		}
		if t.CertFile != "" {
			pair, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
			if err != nil {
				return nil, fmt.Errorf("state.redis.tls.cert_file and key_file: %w", err)
			}
			tc.Certificates = []tls.Certificate{pair}
		}
		o.TLS = tc
	}
	r, err := state.NewRedis(o)
	if err != nil {
		return nil, fmt.Errorf("state.redis: %w", err)
	}
	return r, nil
}

// stateWatchEvery is how often watchState pings the shared state.
const stateWatchEvery = time.Second

// watchState pings the shared state (state.required_for_ready): while it
// does not answer, /readyz fails and gRPC health says NOT_SERVING; once it
// answers again, and a policy is loaded, both are back.
func (a *app) watchState(ctx context.Context, hs *health.Server) {
	t := time.NewTicker(stateWatchEvery)
	defer t.Stop()
	for {
		down := a.state.Ping(ctx) != nil
		if was := a.stateDown.Swap(down); was != down {
			status := healthpb.HealthCheckResponse_SERVING
			if down {
				status = healthpb.HealthCheckResponse_NOT_SERVING
				a.log.Warn("shared state does not answer: not ready (state.required_for_ready)")
			} else {
				a.log.Info("shared state answers: ready again")
			}
			if a.ready() || down {
				for _, svc := range healthServices {
					hs.SetServingStatus(svc, status)
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// redisLogOnce guards go-redis's process-wide logger (redis.SetLogger).
var redisLogOnce sync.Once

// redisLogger hands go-redis's log lines to slog at debug level.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.DebugContext(ctx, "redis client: "+fmt.Sprintf(format, v...))
}
