package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/confirm"
	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
	"github.com/mcpauthz/mcpauthz/decision/serverversions"
	"github.com/mcpauthz/mcpauthz/decision/session"
	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/decision/upstream"
	"github.com/mcpauthz/mcpauthz/internal/apiauth"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/internal/metrics"
	"github.com/mcpauthz/mcpauthz/internal/shadow"
	"github.com/mcpauthz/mcpauthz/policies"
)

// app holds everything built from one configuration. Build it with
// buildApp, then serve it or use its engine directly (eval).
type app struct {
	cfg      Config
	log      *slog.Logger
	registry *prometheus.Registry
	bundles  *bundles.Manager[*decision.Policy]
	tokens   *token.Verifier
	engine   *decision.Engine
	resource oauth.Resource
	metrics  *metrics.Metrics
	declog   *decisionlog.Log
	tracing  *sdktrace.TracerProvider // nil: tracing is off
	// shadowBundles and shadow are the shadow bundle and what decides
	// live requests again with it (shadow.bundles); nil without one.
	shadowBundles *bundles.Manager[*decision.Policy]
	shadow        *shadow.Shadow
	// apiAuth checks the callers of the Decision API and AuthZEN.
	apiAuth *apiauth.Authenticator
	// proxy, when set (mcpauthz proxy), is served on listen.proxy.
	proxy http.Handler
	// versions are the MCP revisions each upstream said it supports
	// (server/discover and initialize answers the proxy and ext_proc
	// carry), for the engine's -32022 answers.
	versions *serverversions.Memory
	// state is what replicas share (state.backend); stateDown is set while
	// it does not answer, watched only with state.required_for_ready.
	state     state.Store
	stateDown atomic.Bool
	// serving is told, once, that the first policy is loaded (serve sets
	// it to switch gRPC health to SERVING); nil outside serve.
	serving     func()
	servingOnce sync.Once
}

// ready reports whether a policy is loaded, and tells serve's health
// server the first time it is, so that /readyz never answers 200 while
// gRPC health still says NOT_SERVING.
func (a *app) ready() bool {
	if !a.bundles.Ready() || a.stateDown.Load() {
		return false
	}
	if a.serving != nil {
		a.servingOnce.Do(a.serving)
	}
	return true
}

// bundleSources turns the config's bundle entries into bundle sources; with
// none configured, the embedded default policy is used.
func bundleSources(cfg *Config, log *slog.Logger) ([]bundles.Source, error) {
	if len(cfg.Bundles) == 0 {
		log.Info("no bundles configured: using the embedded default policy (policies/)")
		return []bundles.Source{bundles.FSSource(policies.FS(), bundles.WithName("embedded:policies"))}, nil
	}
	return sourcesOf("bundles", cfg.Bundles)
}

// sourcesOf turns a list of bundle entries (bundles, shadow.bundles) into
// bundle sources.
func sourcesOf(section string, list []BundleConfig) ([]bundles.Source, error) {
	out := make([]bundles.Source, 0, len(list))
	for i, b := range list {
		var opts []bundles.SourceOption
		if b.Name != "" {
			opts = append(opts, bundles.WithName(b.Name))
		}
		if v := b.Verification; v != nil {
			opts = append(opts, bundles.WithVerification(&bundles.Verification{
				PublicKeyFile: v.PublicKeyFile, KeyID: v.KeyID, Algorithm: v.Algorithm,
				Scope: v.Scope, Exclude: v.Exclude,
			}))
		}
		if b.Path != "" {
			out = append(out, bundles.DirSource(b.Path, opts...))
			continue
		}
		remote := bundles.Remote{
			Bearer: b.BearerToken, CACertFile: b.CAFile, ClientCertFile: b.CertFile, ClientKeyFile: b.KeyFile,
			MinDelay: b.MinDelay.D(), MaxDelay: b.MaxDelay.D(),
		}
		if b.BearerTokenFile != "" {
			t, err := os.ReadFile(b.BearerTokenFile)
			if err != nil {
				return nil, fmt.Errorf("%s[%d].bearer_token_file: %w", section, i, err)
			}
			remote.Bearer = strings.TrimSpace(string(t))
		}
		if b.OCI != "" {
			out = append(out, bundles.OCISource(b.OCI, remote, opts...))
			continue
		}
		out = append(out, bundles.HTTPSource(b.URL, remote, opts...))
	}
	return out, nil
}

// bundleOptions are the options every bundle load uses (serve, eval, check,
// test), so `mcpauthz check` compiles exactly as the server does.
func bundleOptions(cfg *Config, sources []bundles.Source, queries []string, log *slog.Logger, reg prometheus.Registerer) bundles.Options {
	opts := bundles.Options{
		Sources:    sources,
		Queries:    queries,
		Debounce:   cfg.Watch.Debounce.D(),
		Logger:     log,
		Registerer: reg,
	}
	if cfg.Policy.TypeCheck == nil || *cfg.Policy.TypeCheck {
		opts.InputSchema = policies.InputSchema()
	}
	return opts
}

// buildApp validates the config and builds every part, closing what it
// built when a later step fails.
func buildApp(ctx context.Context, cfg Config, log *slog.Logger) (_ *app, err error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid configuration:\n%w", err)
	}
	a := &app{cfg: cfg, log: log, registry: prometheus.NewRegistry()}
	a.registry.MustRegister(metrics.Runtime()...)
	defer func() {
		if err != nil {
			a.close()
		}
	}()
	if a.state, err = buildState(&cfg.State, a.registry, log.With("component", "state")); err != nil {
		return nil, err
	}
	// Not ready until the store has answered once (watchState).
	a.stateDown.Store(cfg.State.RequiredForReady)

	if a.apiAuth, err = buildAPIAuth(cfg); err != nil {
		return nil, err
	}
	a.resource = oauth.Resource{
		URI:                   cfg.Resource.URI,
		AuthorizationServers:  cfg.Resource.AuthorizationServers,
		ScopesSupported:       cfg.Resource.ScopesSupported,
		ResourceName:          cfg.Resource.Name,
		ResourceDocumentation: cfg.Resource.Documentation,
		// Proofs are checked whatever the configuration says: the
		// metadata says with which algorithms.
		DPoPSigningAlgs:         cfg.Tokens.DPoP.Algorithms,
		DPoPBoundTokensRequired: cfg.Tokens.DPoP.Required,
	}
	if len(a.resource.DPoPSigningAlgs) == 0 {
		a.resource.DPoPSigningAlgs = dpop.DefaultAlgorithms
	}
	if err := a.resource.Validate(); err != nil {
		return nil, fmt.Errorf("resource: %w", err)
	}
	if !cfg.Given("resource.uri") && cfg.Resource.URI == DefaultConfig().Resource.URI {
		log.Warn("resource.uri is the placeholder default; set it to your MCP endpoint's URL so tokens and metadata name the right resource", "uri", cfg.Resource.URI)
	}

	topts := token.Options{
		Issuer:             cfg.Tokens.Issuer,
		Audience:           cfg.Tokens.Audience,
		JWKSFile:           cfg.Tokens.JWKSFile,
		JWKSURL:            cfg.Tokens.JWKSURL,
		Algorithms:         cfg.Tokens.Algorithms,
		RequiredTyp:        cfg.Tokens.RequiredTyp,
		ClockSkew:          cfg.Tokens.ClockSkew.D(),
		RefreshInterval:    cfg.Tokens.RefreshInterval.D(),
		MinRefreshInterval: cfg.Tokens.MinRefreshInterval.D(),
		CacheSize:          cfg.Tokens.CacheSize,
		Dev:                cfg.Tokens.Dev,
		DevKeyPath:         cfg.Tokens.DevKeyFile,
		HTTPClient:         &http.Client{},
		Logger:             log.With("component", "tokens"),
	}
	if topts.Audience == "" {
		topts.Audience = cfg.Resource.URI
	}
	topts.Issuers = issuerOptions(cfg.Tokens.Issuers)
	if in := cfg.Tokens.Introspection; in != nil {
		secret := in.ClientSecret
		if in.ClientSecretFile != "" {
			b, err := os.ReadFile(in.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("tokens.introspection.client_secret_file: %w", err)
			}
			secret = strings.TrimSpace(string(b))
		}
		topts.Introspection = &token.IntrospectionOptions{
			URL: in.URL, ClientID: in.ClientID, ClientSecret: secret,
			CacheSize: in.CacheSize, Timeout: in.Timeout.D(),
		}
	}
	if cfg.Tokens.Issuer == "" && (cfg.Tokens.JWKSFile != "" || cfg.Tokens.JWKSURL != "") {
		log.Warn("tokens.issuer is empty: the iss claim of JWTs is not checked; any issuer whose keys are in the JWKS is trusted")
	}
	if cfg.Tokens.Issuer == "" && cfg.Tokens.JWKSFile == "" && cfg.Tokens.JWKSURL == "" && len(cfg.Tokens.Issuers) == 0 && !cfg.Tokens.Dev &&
		cfg.Tokens.Introspection == nil && cfg.Tokens.FromEnvoyMetadata == "" {
		log.Warn("no token source is configured (tokens.issuers, issuer, jwks_file, jwks_url, introspection, from_envoy_metadata or dev): only API keys from bundle data can authenticate")
	}
	if a.tokens, err = token.New(ctx, topts); err != nil {
		return nil, fmt.Errorf("tokens: %w", err)
	}

	a.metrics = metrics.NewWith(a.registry, cfg.Policy.DryRun)
	if cfg.Policy.DryRun {
		log.Warn("policy.dry_run is on: every request is allowed; decisions are only logged and counted")
	}
	observers := []decision.Observer{a.metrics}
	if dl := cfg.DecisionLogs; dl.Console || dl.File != "" || dl.Service != nil {
		dopts := decisionlog.Options{
			Console: dl.Console, ConsoleFormat: dl.ConsoleFormat, File: dl.File, Logger: log,
			Path: strings.ReplaceAll(cfg.Policy.Package, ".", "/") + "/decision",
		}
		if dopts.Service, err = decisionLogService(&dl); err != nil {
			return nil, err
		}
		// The mask and drop rules are prepared with each snapshot; the log
		// applies those of the policy current when it writes the event.
		dopts.Policy = func() *decision.Policy {
			if a.bundles == nil {
				return nil
			}
			return a.bundles.Current()
		}
		if a.declog, err = decisionlog.New(dopts); err != nil {
			return nil, fmt.Errorf("decision_logs: %w", err)
		}
		observers = append(observers, a.declog)
		a.registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "mcpauthz_decision_logs_dropped_total",
			Help: "Decision log events dropped: the buffer was full (the oldest go first) or the sink refused them.",
		}, func() float64 { return float64(a.declog.Dropped()) }))
	}

	eopts := decision.Options{
		Package:      cfg.Policy.Package,
		Tokens:       a.tokens,
		MetadataURL:  oauth.MetadataURL(cfg.Resource.URI),
		MaxBodyBytes: cfg.Limits.MaxBodyBytes,
		EvalTimeout:  cfg.Policy.EvalTimeout.D(),
		EvalWorkers:  cfg.Limits.EvalWorkers,
		Observer:     decision.Observers(observers...),
		DryRun:       cfg.Policy.DryRun,
		Logger:       log.With("component", "decision"),
	}
	a.versions = &serverversions.Memory{}
	eopts.ServerVersions = a.versions
	if cfg.Tracing.OTLPEndpoint != "" {
		if a.tracing, err = newTracerProvider(ctx, &cfg.Tracing, log.With("component", "tracing")); err != nil {
			return nil, err
		}
		eopts.Tracer = a.tracing.Tracer(decision.TracerName)
	}
	if eopts.MCP, err = mcpOptions(&cfg); err != nil {
		return nil, err
	}
	if eopts.Upstream, err = upstreamCredentials(&cfg, log); err != nil {
		return nil, err
	}
	// DPoP proofs' jtis are used once in the shared state: per replica
	// with the memory backend, across replicas with Redis.
	nonces, err := dpopNonces(&cfg.Tokens.DPoP.Nonce)
	if err != nil {
		return nil, err
	}
	if eopts.DPoP, err = dpop.New(dpop.Options{Algorithms: cfg.Tokens.DPoP.Algorithms, MaxAge: cfg.Tokens.DPoP.MaxAge.D(),
		Skew: cfg.Tokens.DPoP.Skew.D(), HTU: cfg.Tokens.DPoP.HTU, Replay: a.state, Nonces: nonces}); err != nil {
		return nil, fmt.Errorf("tokens.dpop: %w", err)
	}
	eopts.DPoPRequired = cfg.Tokens.DPoP.Required
	if eopts.Confirm, err = confirmRing(&cfg.Confirm); err != nil {
		return nil, err
	}
	if eopts.Confirm != nil {
		// Each confirmation is consumed once in the shared state: per
		// replica with the memory backend, across replicas with Redis.
		eopts.ConfirmState = a.state
	}
	if cfg.Sessions.BindSubject {
		if cfg.State.Backend == "redis" {
			// Shared by every replica; Redis's TTLs bound it, not max_sessions.
			eopts.Sessions = state.NewSessions(a.state, cfg.Sessions.TTL.D())
		} else {
			eopts.Sessions = session.NewBinder(cfg.Sessions.MaxSessions, cfg.Sessions.TTL.D(), nil)
		}
	}
	// The rules the engine queries follow from the policy package alone:
	// the bundle manager prepares them and activates each snapshot for
	// the engine before the swap, and the engine reads what it activated.
	rules, err := decision.RulesIn(cfg.Policy.Package)
	if err != nil {
		return nil, err
	}
	if a.declog != nil {
		if rules, err = rules.WithLogRules(cfg.DecisionLogs.MaskDecision, cfg.DecisionLogs.DropDecision); err != nil {
			return nil, err
		}
	}
	sources, err := bundleSources(&cfg, log)
	if err != nil {
		return nil, err
	}
	bopts := bundleOptions(&cfg, sources, rules.Queries(), log.With("component", "bundles"), a.registry)
	if a.bundles, err = bundles.NewManager(bopts, rules.Activate); err != nil {
		return nil, fmt.Errorf("bundles: %w", err)
	}
	if len(cfg.Shadow.Bundles) > 0 {
		// Both engines judge tool pins by the same listings.
		eopts.ToolListings = &decision.ToolListings{}
		if err := a.buildShadow(&cfg, eopts); err != nil {
			return nil, err
		}
		eopts.Observer = decision.Observers(append(observers, a.shadow)...)
	}
	eopts.Snapshots = a.bundles
	if a.engine, err = decision.New(eopts); err != nil {
		return nil, err
	}
	return a, nil
}

// buildShadow builds the shadow bundle's manager and the shadow that
// decides live requests again with it, with the live engine's options
// eopts. Its differences go to the decision log (when there is one).
func (a *app) buildShadow(cfg *Config, eopts decision.Options) error {
	rules, err := decision.RulesIn(cfg.Policy.Package)
	if err != nil {
		return err
	}
	sources, err := sourcesOf("shadow.bundles", cfg.Shadow.Bundles)
	if err != nil {
		return err
	}
	log := a.log.With("component", "shadow")
	// Its loads are not exported as metrics: the live bundles' metrics
	// have the same names. Its log lines say what it loaded.
	bopts := bundleOptions(cfg, sources, rules.Queries(), log, nil)
	if a.shadowBundles, err = bundles.NewManager(bopts, rules.Activate); err != nil {
		return fmt.Errorf("shadow.bundles: %w", err)
	}
	eopts.Snapshots, eopts.Logger = a.shadowBundles, log
	if a.shadow, err = shadow.New(shadow.Options{
		Engine: eopts, QueueSize: cfg.Shadow.QueueSize, Log: a.declog, Registerer: a.registry, Logger: log,
	}); err != nil {
		return err
	}
	log.Info("a shadow bundle decides live requests again; its differences are logged and counted", "bundles", len(sources))
	return nil
}

func (a *app) close() {
	var errs []error
	if a.tokens != nil {
		a.tokens.Close()
	}
	if a.shadow != nil {
		// Before the decision log: the shadow hands it its last differences.
		a.shadow.Close()
	}
	if a.declog != nil {
		errs = append(errs, a.declog.Close())
	}
	if a.state != nil {
		errs = append(errs, a.state.Close())
	}
	if a.tracing != nil {
		errs = append(errs, shutdownTracing(a.tracing))
	}
	if err := errors.Join(errs...); err != nil {
		a.log.Warn("closing", "error", err)
	}
}

// issuerOptions turns tokens.issuers into the verifier's issuer entries;
// what an entry leaves unset comes from the top-level tokens keys.
func issuerOptions(list []IssuerConfig) []token.IssuerOptions {
	if len(list) == 0 {
		return nil
	}
	out := make([]token.IssuerOptions, len(list))
	for i, is := range list {
		out[i] = token.IssuerOptions{
			Issuer: is.Issuer, Audience: is.Audience,
			JWKSFile: is.JWKSFile, JWKSURL: is.JWKSURL, Discovery: is.Discovery,
			Algorithms: is.Algorithms, ClockSkew: is.ClockSkew.D(),
			ClaimsMapping: token.ClaimsMapping{
				Subject: is.ClaimsMapping.Subject, Scopes: is.ClaimsMapping.Scopes, ClientID: is.ClaimsMapping.ClientID,
			},
		}
	}
	return out
}

// upstreamCredentials builds upstream_credentials, reading the secrets
// their files hold; nil when none are configured.
func upstreamCredentials(cfg *Config, log *slog.Logger) (decision.UpstreamCredentials, error) {
	if len(cfg.UpstreamCredentials) == 0 {
		return nil, nil
	}
	read := func(key, path string) (string, error) {
		b, err := os.ReadFile(path)
		if err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
		return strings.TrimSpace(string(b)), nil
	}
	entries := make([]upstream.Entry, len(cfg.UpstreamCredentials))
	for i, u := range cfg.UpstreamCredentials {
		key := fmt.Sprintf("upstream_credentials[%d]", i)
		e := upstream.Entry{Name: u.Name, Context: u.Match.Context}
		if x := u.TokenExchange; x != nil {
			e.Exchange = &upstream.Exchange{
				TokenURL: x.TokenURL, ClientID: x.ClientID,
				Audience: x.Audience, Scope: x.Scope, RequestedTokenType: x.RequestedTokenType,
			}
			var err error
			if pk := x.PrivateKeyJWT; pk != nil {
				e.Exchange.PrivateKeyJWT, err = privateKeyJWT(key+".token_exchange.private_key_jwt.key_file", pk)
			} else {
				e.Exchange.ClientSecret, err = read(key+".token_exchange.client_secret_file", x.ClientSecretFile)
			}
			if err != nil {
				return nil, err
			}
		}
		if s := u.Static; s != nil {
			value, err := read(key+".static.value_file", s.ValueFile)
			if err != nil {
				return nil, err
			}
			e.Static = &upstream.Static{Header: s.Header, Value: value}
		}
		entries[i] = e
	}
	creds, err := upstream.New(upstream.Options{
		Entries: entries, HTTPClient: &http.Client{Timeout: 10 * time.Second},
		Logger: log.With("component", "upstream"),
	})
	if err != nil {
		return nil, fmt.Errorf("upstream_credentials: %w", err)
	}
	return creds, nil
}

// privateKeyJWT reads the signing key of private_key_jwt.
func privateKeyJWT(key string, c *PrivateKeyJWTConfig) (*upstream.PrivateKeyJWT, error) {
	b, err := os.ReadFile(c.KeyFile)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	signer, err := upstream.ParsePrivateKey(b)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", key, c.KeyFile, err)
	}
	return &upstream.PrivateKeyJWT{Key: signer, KeyID: c.KeyID}, nil
}

// mcpOptions builds the engine's MCP options from the mcp and http
// sections: the accepted Origins are resource.uri's origin and
// http.allowed_origins.
func mcpOptions(cfg *Config) (decision.MCPOptions, error) {
	o := decision.MCPOptions{
		DefaultProtocolVersion: cfg.MCP.DefaultProtocolVersion,
		ProtocolVersions:       cfg.MCP.ProtocolVersions,
	}
	var err error
	if o.StandardHeaders, err = decision.ParseRule(cfg.MCP.RequireStandardHeaders); err != nil {
		return o, fmt.Errorf("mcp.require_standard_headers: %w", err)
	}
	if o.Batches, err = decision.ParseRule(cfg.MCP.Batches); err != nil {
		return o, fmt.Errorf("mcp.batches: %w", err)
	}
	own, err := origin(cfg.Resource.URI)
	if err != nil {
		return o, fmt.Errorf("resource.uri: %w", err)
	}
	o.Origins = append([]string{own}, cfg.HTTP.AllowedOrigins...)
	return o, nil
}

// decisionLogService is the upload to decision_logs.service, if any.
func decisionLogService(dl *DecisionLogConf) (decisionlog.ServiceOptions, error) {
	s := dl.Service
	if s == nil {
		return decisionlog.ServiceOptions{}, nil
	}
	client, err := decisionlog.ServiceClient(s.CAFile, s.CertFile, s.KeyFile, 10*time.Second)
	if err != nil {
		return decisionlog.ServiceOptions{}, fmt.Errorf("decision_logs.service: %w", err)
	}
	return decisionlog.ServiceOptions{
		URL: s.URL, BearerTokenFile: s.BearerTokenFile, Client: client,
		MinDelay:             time.Duration(dl.Reporting.MinDelaySeconds) * time.Second,
		MaxDelay:             time.Duration(dl.Reporting.MaxDelaySeconds) * time.Second,
		BufferSizeLimitBytes: dl.Reporting.BufferSizeLimitBytes,
	}, nil
}

// buildAPIAuth builds the authenticator of the Decision API and AuthZEN
// from api and listen.tls, and says at start when it refuses everyone.
func buildAPIAuth(cfg Config) (*apiauth.Authenticator, error) {
	o := apiauth.Options{Unauthenticated: cfg.API.Unauthenticated, ClientCerts: cfg.Listen.TLS.ClientCAFile != ""}
	if f := cfg.API.BearerTokenFile; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("api.bearer_token_file: %w", err)
		}
		if o.Token = strings.TrimSpace(string(b)); o.Token == "" {
			return nil, fmt.Errorf("api.bearer_token_file: %s is empty", f)
		}
	}
	return apiauth.New(o), nil
}

// readKeyFiles reads the secret_file of each key of the list at key.
func readKeyFiles(key string, ks []ConfirmKeyConfig) ([][]byte, error) {
	secrets := make([][]byte, len(ks))
	for i, k := range ks {
		b, err := os.ReadFile(k.SecretFile)
		if err != nil {
			return nil, fmt.Errorf("%s[%d].secret_file: %w", key, i, err)
		}
		secrets[i] = b
	}
	return secrets, nil
}

// dpopNonces reads tokens.dpop.nonce; nil when it is not enabled.
func dpopNonces(c *DPoPNonceConfig) (*dpop.Nonces, error) {
	if !c.Enabled {
		return nil, nil
	}
	secrets, err := readKeyFiles("tokens.dpop.nonce.keys", c.Keys)
	if err != nil {
		return nil, err
	}
	keys := make([]dpop.NonceKey, len(c.Keys))
	for i, k := range c.Keys {
		keys[i] = dpop.NonceKey{ID: k.ID, Secret: secrets[i]}
	}
	n, err := dpop.NewNonces(keys, c.Window.D())
	if err != nil {
		return nil, fmt.Errorf("tokens.dpop.nonce: %w", err)
	}
	return n, nil
}

// confirmRing reads confirm.keys into a key ring; nil when none is given.
func confirmRing(c *ConfirmConfig) (*confirm.Ring, error) {
	if len(c.Keys) == 0 {
		return nil, nil
	}
	secrets, err := readKeyFiles("confirm.keys", c.Keys)
	if err != nil {
		return nil, err
	}
	keys := make([]confirm.Key, len(c.Keys))
	for i, k := range c.Keys {
		keys[i] = confirm.Key{ID: k.ID, Secret: secrets[i]}
	}
	ring, err := confirm.NewRing(keys, c.TTL.D())
	if err != nil {
		return nil, fmt.Errorf("confirm: %w", err)
	}
	return ring, nil
}
