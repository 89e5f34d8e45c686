package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"sync"
	"time"

	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/reflection"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/listplan"
	pb "github.com/mcpauthz/mcpauthz/proto/gen/go/mcpauthz/v1"
	"github.com/mcpauthz/mcpauthz/transport/extauthz"
)

// serveFlags are the flags that override the config file.
type serveFlags struct {
	config   string
	sets     []string
	grpcAddr string
	httpAddr string
	bundles  stringList
	logLevel string
	resource string
	issuer   string
}

// register adds every flag of serve to fs.
func (f *serveFlags) register(fs *pflag.FlagSet) {
	f.registerConfig(fs)
	f.registerListen(fs)
}

// registerConfig adds the flags that choose and override the
// configuration (serve and eval).
func (f *serveFlags) registerConfig(fs *pflag.FlagSet) {
	fs.StringVar(&f.config, "config", "", "YAML config `file` (default: built-in defaults and the embedded policy)")
	registerSet(fs, &f.sets)
	fs.StringArrayVar((*[]string)(&f.bundles), "bundle", nil, "bundle `path` (directory or .tar.gz) or URL; repeatable; replaces the config's bundles")
	fs.StringVar(&f.logLevel, "log-level", "", "log `level`: debug, info, warn, error (overrides log.level)")
	fs.StringVar(&f.resource, "resource", "", "protected resource `URI` of the MCP endpoint (overrides resource.uri)")
	fs.StringVar(&f.issuer, "issuer", "", "trusted token `issuer`; alone, its metadata gives the JWKS (overrides tokens.issuer)")
}

// registerListen adds the listener flags (serve).
func (f *serveFlags) registerListen(fs *pflag.FlagSet) {
	fs.StringVar(&f.grpcAddr, "grpc-addr", "", "gRPC listen `address` (overrides listen.grpc)")
	fs.StringVar(&f.httpAddr, "http-addr", "", "HTTP listen `address` (overrides listen.http)")
}

// load reads the config file and applies the flags over it.
func (f *serveFlags) load() (Config, error) {
	cfg, err := LoadConfigWith(f.config, f.sets)
	if err != nil {
		return cfg, err
	}
	if f.grpcAddr != "" {
		cfg.Listen.GRPC = f.grpcAddr
	}
	if f.httpAddr != "" {
		cfg.Listen.HTTP = f.httpAddr
	}
	if f.logLevel != "" {
		cfg.Log.Level = f.logLevel
	}
	if f.resource != "" {
		cfg.Resource.URI = f.resource
		cfg.give("resource.uri")
	}
	if f.issuer != "" {
		cfg.Tokens.Issuer = f.issuer
	}
	if len(f.bundles) > 0 {
		cfg.Bundles = nil
		for _, b := range f.bundles {
			if err := notAConfig(b, ""); err != nil {
				return cfg, err
			}
			if isURL(b) {
				cfg.Bundles = append(cfg.Bundles, BundleConfig{URL: b})
			} else {
				cfg.Bundles = append(cfg.Bundles, BundleConfig{Path: b})
			}
		}
	}
	return cfg, nil
}

func isURL(s string) bool {
	return len(s) > 8 && (s[:7] == "http://" || s[:8] == "https://")
}

func newServeCmd() *cobra.Command {
	var f serveFlags
	cmd := &cobra.Command{
		Use:   "serve [flags]",
		Short: "serve ext_authz, the Decision API and AuthZEN",
		Long: `Serve Envoy's ext_authz, the Decision API and health on the gRPC listener,
and health, metrics, status, resource metadata and AuthZEN on the HTTP one.
With no --config, the built-in defaults and the embedded policy are used.`,
		Example: "  mcpauthz serve --config examples/config/dev.yaml",
		Args:    noArgs(suggestConfig),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmdServe(cmd.Context(), &f, cmd.ErrOrStderr())
		},
	}
	f.register(cmd.Flags())
	return cmd
}

func cmdServe(ctx context.Context, f *serveFlags, stderr io.Writer) error {
	cfg, err := f.load()
	if err != nil {
		return err
	}
	return serveConfig(ctx, cfg, stderr, nil)
}

// serveConfig builds the app of cfg and serves it until ctx ends;
// complete, when set, adds to the app before it serves (the proxy).
func serveConfig(ctx context.Context, cfg Config, stderr io.Writer, complete func(*app) error) error {
	log := newLogger(stderr, cfg.Log)
	a, err := buildApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer a.close()
	applyRuntimeLimits(cfg.Limits, log)
	if rules, err := decision.RulesIn(cfg.Policy.Package); err == nil {
		// Each policy that loads says how its lists will be filtered.
		a.bundles.OnSwap(func(s *bundles.Snapshot) { logListPlan(log, rules.ListPlan(ctx, s)) })
	}
	if complete != nil {
		if err := complete(a); err != nil {
			return err
		}
	}
	return a.serve(ctx)
}

// logListPlan logs how lists will be filtered: a warning when a caller
// may be shown items it cannot call.
func logListPlan(log *slog.Logger, rep listplan.Report) {
	level := slog.LevelInfo
	if !rep.Exact || rep.Err != nil {
		level = slog.LevelWarn
	}
	for _, line := range rep.Lines() {
		log.Log(context.Background(), level, line, "component", "bundles")
	}
}

// serve runs the bundle manager, the gRPC server and the HTTP server until
// ctx ends, then stops them in reverse order.
func (a *app) serve(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	watches := newWatchEnder()
	// The Decision API's callers are authenticated when a call's headers
	// arrive, before its message is read (the tap), and again before its
	// handlers run (api, internal/apiauth); the other services of the
	// port are Envoy's and agentgateway's.
	authUnary, authStream := a.apiAuth.Interceptors(pb.DecisionService_ServiceDesc.ServiceName)
	if a.apiAuth.Refuses() {
		a.log.Warn("the Decision API and AuthZEN refuse every caller: set api.bearer_token_file, or listen.tls.client_ca_file (gRPC), or api.unauthenticated: true")
	}
	grpcSrv, err := a.grpcServer(grpc.ChainStreamInterceptor(watches.intercept, authStream), grpc.ChainUnaryInterceptor(authUnary),
		grpc.InTapHandle(a.apiAuth.TapHandle(pb.DecisionService_ServiceDesc.ServiceName)))
	if err != nil {
		return err
	}
	hs := health.NewServer()
	// NOT_SERVING until the first good policy load; never back after that.
	for _, svc := range healthServices {
		hs.SetServingStatus(svc, healthpb.HealthCheckResponse_NOT_SERVING)
	}
	healthpb.RegisterHealthServer(grpcSrv, hs)
	a.serving = func() {
		for _, svc := range healthServices {
			hs.SetServingStatus(svc, healthpb.HealthCheckResponse_SERVING)
		}
		a.log.Info("policy loaded; serving", "revision", a.bundles.Snapshot().Revision)
	}
	a.registerReflection(grpcSrv)
	a.registerGRPCTransports(grpcSrv)

	var wg sync.WaitGroup
	errc := make(chan error, 3)

	if a.cfg.State.RequiredForReady {
		wg.Add(1)
		go func() { defer wg.Done(); a.watchState(ctx, hs) }()
	}
	// Bundles: the first load happens inside Start; readiness follows it.
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := a.bundles.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
			a.log.Error("first policy load failed; still watching for a good one", "error", err)
		}
	}()
	if a.shadowBundles != nil {
		// The shadow bundle loads beside the live one; readiness does not
		// wait for it, and until it loads nothing is compared.
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := a.shadowBundles.Start(ctx); err != nil && !errors.Is(err, context.Canceled) {
				a.log.Error("first shadow bundle load failed; still watching for a good one", "error", err)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(50 * time.Millisecond)
		defer t.Stop()
		for {
			if a.ready() {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()

	var grpcLis net.Listener
	if a.cfg.Listen.GRPC != "" {
		if grpcLis, err = net.Listen("tcp", a.cfg.Listen.GRPC); err != nil {
			return fmt.Errorf("listen.grpc: %w", err)
		}
		a.log.Info("gRPC listening (ext_authz, ext_proc, Decision API, health)", "addr", grpcLis.Addr().String(),
			"tls", a.cfg.Listen.TLS.CertFile != "", "reflection", a.cfg.Listen.Reflection)
		go func() { errc <- grpcSrv.Serve(grpcLis) }()
	}
	var httpSrv *http.Server
	if a.cfg.Listen.HTTP != "" {
		lis, err := net.Listen("tcp", a.cfg.Listen.HTTP)
		if err != nil {
			grpcSrv.Stop()
			return fmt.Errorf("listen.http: %w", err)
		}
		httpSrv = &http.Server{Handler: a.httpHandler(), ReadHeaderTimeout: 10 * time.Second}
		a.log.Info("HTTP listening (healthz, readyz, metrics, status, resource metadata, AuthZEN)", "addr", lis.Addr().String())
		go func() {
			if err := httpSrv.Serve(lis); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- err
			}
		}()
	}

	proxySrv, err := a.listenProxy(errc)
	if err != nil {
		grpcSrv.Stop()
		if httpSrv != nil {
			_ = httpSrv.Close()
		}
		return err
	}

	var runErr error
	select {
	case <-ctx.Done():
		a.log.Info("shutting down")
	case runErr = <-errc:
		a.log.Error("server failed", "error", runErr)
	}
	// Reverse order: stop answering health, drain gRPC, then HTTP.
	hs.Shutdown()
	watches.drain()
	stopped := make(chan struct{})
	go func() { grpcSrv.GracefulStop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		grpcSrv.Stop()
	}
	stopProxy(proxySrv)
	if httpSrv != nil {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = httpSrv.Shutdown(sctx)
		scancel()
	}
	cancel()
	wg.Wait()
	return runErr
}

// healthServices are the gRPC health entries: the server as a whole and
// each decision service. All are NOT_SERVING until the first policy load.
var healthServices = []string{
	"",
	authv3.Authorization_ServiceDesc.ServiceName,
	pb.DecisionService_ServiceDesc.ServiceName,
}

// grpcServer builds the gRPC server with the settings tuned for Envoy
// (extauthz.ServerOptions, shared with the load harness), extra, and TLS when configured.
// registerReflection registers gRPC server reflection when
// listen.reflection says so: handy for grpcurl, and nothing a caller of
// ext_authz or the Decision API needs, so production turns it off.
func (a *app) registerReflection(s *grpc.Server) {
	if a.cfg.Listen.Reflection {
		reflection.Register(s)
	}
}

func (a *app) grpcServer(extra ...grpc.ServerOption) (*grpc.Server, error) {
	// Only ext_authz reads a message of any size (extauthz.ServerOptions
	// says why); the Decision API's are bounded before they are decoded.
	opts := append(extauthz.ServerOptions(a.cfg.Limits.MaxConcurrentStreams,
		extauthz.MessageLimit{Prefix: "mcpauthz.v1.", MaxBytes: a.apiMessageBytes()}), extra...)
	if t := a.cfg.Listen.TLS; t.CertFile != "" {
		tc, err := serverTLS(t)
		if err != nil {
			return nil, fmt.Errorf("listen.tls: %w", err)
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(tc)))
	}
	return grpc.NewServer(opts...), nil
}

func serverTLS(t TLSConfig) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(t.CertFile, t.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading certificate: %w", err)
	}
	tc := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if t.ClientCAFile != "" {
		pem, err := os.ReadFile(t.ClientCAFile)
		if err != nil {
			return nil, fmt.Errorf("reading client_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_ca_file %s holds no PEM certificate", t.ClientCAFile)
		}
		tc.ClientCAs = pool
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return tc, nil
}

// httpHandler serves health, readiness, metrics, status and the Protected
// Resource Metadata.
func (a *app) httpHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok\n")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.ready() {
			http.Error(w, "no policy loaded yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = io.WriteString(w, "ready\n")
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(a.registry, promhttp.HandlerOpts{}))
	mux.Handle("GET /v1/status", a.bundles.StatusHandler())
	prm := a.resource.Handler()
	mux.Handle("/.well-known/oauth-protected-resource", prm)
	mux.Handle("/.well-known/oauth-protected-resource/", prm)
	if a.cfg.Listen.PProf {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	}
	a.registerHTTPTransports(mux)
	return mux
}
