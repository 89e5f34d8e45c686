package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strings"
	"time"

	"golang.org/x/net/http/httpguts"

	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/dpop"
	"github.com/mcpauthz/mcpauthz/decision/token"
	"github.com/mcpauthz/mcpauthz/internal/decisionlog"
	"github.com/mcpauthz/mcpauthz/transport/extmcp"
)

// Config is the whole YAML configuration. Every key has a default, so an
// empty file (or none) is a valid configuration.
type Config struct {
	Listen   ListenConfig   `json:"listen"`
	Bundles  []BundleConfig `json:"bundles"`
	Watch    WatchConfig    `json:"watch"`
	Policy   PolicyConfig   `json:"policy"`
	Resource ResourceConfig `json:"resource"`
	Tokens   TokensConfig   `json:"tokens"`
	Sessions SessionsConfig `json:"sessions"`
	State    StateConfig    `json:"state"` // what replicas share: memory or Redis
	// Confirm holds the keys that seal the requestState of a call held for
	// its user's confirmation (decision.confirm, docs/approvals.md).
	Confirm      ConfirmConfig   `json:"confirm"`
	Envoy        EnvoyConfig     `json:"envoy"`
	Agentgateway ExtMcpConfig    `json:"agentgateway"`
	MCP          MCPConfig       `json:"mcp"`
	HTTP         HTTPConfig      `json:"http"`
	Limits       LimitsConfig    `json:"limits"`
	Log          LogConfig       `json:"log"`
	DecisionLogs DecisionLogConf `json:"decision_logs"`
	Tracing      TracingConfig   `json:"tracing"`
	// Shadow evaluates a candidate bundle beside the active one.
	Shadow ShadowConfig `json:"shadow"`
	// UpstreamCredentials give allowed requests the credential they carry
	// to the MCP server (the client's own token never goes upstream).
	UpstreamCredentials []UpstreamCredentialConfig `json:"upstream_credentials"`
	// Upstream is the MCP server `mcpauthz proxy` forwards to.
	Upstream UpstreamConfig `json:"upstream"`
	// API says who may call the Decision API and AuthZEN.
	API APIConfig `json:"api"`
	// given holds the paths of the keys the file or --set gave (Given).
	given map[string]bool
}

// APIConfig says who may call mcpauthz's own APIs, the Decision API
// (gRPC) and AuthZEN (HTTP), which answer any question about any subject
// (internal/apiauth). By default only an authenticated caller may: one
// that sends the API token of BearerTokenFile, or, on the gRPC port, one
// whose client certificate the port verified (listen.tls.client_ca_file).
// With none of these configured the APIs refuse every caller.
type APIConfig struct {
	// Unauthenticated lets any caller in: for development (dev.yaml) and
	// for networks that authenticate callers themselves.
	Unauthenticated bool `json:"unauthenticated"`
	// BearerTokenFile holds the API token callers send as
	// "Authorization: Bearer <token>" (HTTP) or authorization metadata
	// (gRPC).
	BearerTokenFile string `json:"bearer_token_file"`
}

// ListenConfig says where the servers listen.
type ListenConfig struct {
	GRPC string    `json:"grpc"`
	HTTP string    `json:"http"`
	TLS  TLSConfig `json:"tls"`
	// Reflection registers gRPC server reflection on the gRPC port (default
	// true), for grpcurl and friends; production turns it off.
	Reflection bool `json:"reflection"`
	// PProf serves Go's profiles (net/http/pprof) under /debug/pprof/ on
	// the HTTP port, as opa run --pprof does (default false): for
	// profiling a server under load; they show the process's internals.
	PProf bool `json:"pprof"`
	// Proxy is where `mcpauthz proxy` serves the MCP endpoint (serve
	// ignores it).
	Proxy string `json:"proxy"`
}

// TLSConfig turns on TLS (and mTLS with ClientCAFile) for the gRPC port.
type TLSConfig struct {
	CertFile     string `json:"cert_file"`
	KeyFile      string `json:"key_file"`
	ClientCAFile string `json:"client_ca_file"`
}

// BundleConfig is one policy source: exactly one of Path (a directory or
// .tar.gz, watched), URL (an OPA bundle server, polled) and OCI (an OCI
// registry reference "registry/repository:tag", polled) is set.
type BundleConfig struct {
	Name            string              `json:"name"`
	Path            string              `json:"path"`
	URL             string              `json:"url"`
	OCI             string              `json:"oci"`
	BearerToken     string              `json:"bearer_token"`
	BearerTokenFile string              `json:"bearer_token_file"`
	CAFile          string              `json:"ca_file"`
	CertFile        string              `json:"cert_file"`
	KeyFile         string              `json:"key_file"`
	MinDelay        Duration            `json:"min_delay"`
	MaxDelay        Duration            `json:"max_delay"`
	Verification    *VerificationConfig `json:"verification"`
}

// VerificationConfig checks bundle signatures (OPA's .signatures.json).
type VerificationConfig struct {
	PublicKeyFile string   `json:"public_key_file"`
	KeyID         string   `json:"key_id"`
	Algorithm     string   `json:"algorithm"`
	Scope         string   `json:"scope"`
	Exclude       []string `json:"exclude"`
}

// WatchConfig tunes reloading of local bundles.
type WatchConfig struct {
	Debounce Duration `json:"debounce"`
}

// PolicyConfig says where the decision rules live.
type PolicyConfig struct {
	Package     string   `json:"package"`
	EvalTimeout Duration `json:"eval_timeout"`
	// TypeCheck compiles policies against the JSON Schema of input.
	TypeCheck *bool `json:"type_check"`
	// DryRun evaluates and logs every decision but allows every request
	// (as opa-envoy-plugin's dry-run): for a first rollout.
	DryRun bool `json:"dry_run"`
}

// ResourceConfig describes the protected MCP endpoint (RFC 9728).
type ResourceConfig struct {
	URI string `json:"uri"`
	// ProxyURI, when set, is the resource URI under mcpauthz proxy: the
	// proxy's own MCP endpoint (listen.proxy), which clients call and where
	// it serves the metadata. It replaces URI there (tokens' audience, the
	// metadata, the challenges' resource_metadata) unless --resource or
	// --set resource.uri names one; serve, behind Envoy, keeps URI.
	ProxyURI             string   `json:"proxy_uri"`
	AuthorizationServers []string `json:"authorization_servers"`
	ScopesSupported      []string `json:"scopes_supported"`
	Name                 string   `json:"name"`
	Documentation        string   `json:"documentation"`
}

// TokensConfig configures credential verification. Issuer, JWKSFile and
// JWKSURL (with Audience, Algorithms and ClockSkew) describe one issuer;
// Issuers describes several, and then the single-issuer keys must be unset
// while Audience, Algorithms, RequiredTyp and ClockSkew are every entry's
// defaults.
type TokensConfig struct {
	Issuers            []IssuerConfig       `json:"issuers"`
	Issuer             string               `json:"issuer"`
	Audience           string               `json:"audience"`
	JWKSFile           string               `json:"jwks_file"`
	JWKSURL            string               `json:"jwks_url"`
	Algorithms         []string             `json:"algorithms"`
	RequiredTyp        string               `json:"required_typ"`
	ClockSkew          Duration             `json:"clock_skew"`
	RefreshInterval    Duration             `json:"refresh_interval"`
	MinRefreshInterval Duration             `json:"min_refresh_interval"`
	CacheSize          int                  `json:"cache_size"`
	Dev                bool                 `json:"dev"`
	DevKeyFile         string               `json:"dev_key_file"`
	FromEnvoyMetadata  string               `json:"from_envoy_metadata"`
	EnvoyPayloadKey    string               `json:"envoy_payload_key"`
	Introspection      *IntrospectionConfig `json:"introspection"`
	DPoP               DPoPConfig           `json:"dpop"`
}

// DPoPConfig configures the checks of DPoP proofs (RFC 9449) that come
// with DPoP-bound tokens (cnf.jkt). They are always checked: a bound
// token without a valid proof is refused whatever these say.
type DPoPConfig struct {
	// Algorithms are the accepted proof algorithms (default ES256, PS256,
	// EdDSA, RS256), advertised in the resource's metadata.
	Algorithms []string `json:"algorithms"`
	// MaxAge is how old a proof may be (iat, default 5m); Skew how far in
	// the future (default 30s).
	MaxAge Duration `json:"max_age"`
	Skew   Duration `json:"skew"`
	// HTU is the URI proofs must name, when the one Envoy or the proxy
	// sees is not the client's (TLS ended before them): usually
	// resource.uri.
	HTU string `json:"htu"`
	// Required refuses tokens that are not sender-constrained (bound to
	// no DPoP key nor certificate).
	Required bool `json:"required"`
	// Nonce makes every proof carry a server nonce (RFC 9449 §8).
	Nonce DPoPNonceConfig `json:"nonce"`
}

// DPoPNonceConfig configures server nonces (decision/dpop.Nonces): a
// nonce is the HMAC-SHA256, under a key every replica shares, of the
// current time window, so no store is needed. The first key issues, every
// key verifies (rotate by putting the new key first, drop the old one a
// window later); a nonce of the current or previous window is accepted.
type DPoPNonceConfig struct {
	Enabled bool `json:"enabled"`
	// Keys have the shape of confirm.keys: an id and a file of at least
	// 32 random bytes.
	Keys []ConfirmKeyConfig `json:"keys"`
	// Window is how long one nonce window lasts (default 5m).
	Window Duration `json:"window"`
}

// IssuerConfig is one issuer of JWTs among several (tokens.issuers).
type IssuerConfig struct {
	Issuer   string `json:"issuer"`
	Audience string `json:"audience"`
	// JWKSFile, JWKSURL or Discovery says where the keys are: at most one;
	// none means discovery from the issuer's metadata.
	JWKSFile      string              `json:"jwks_file"`
	JWKSURL       string              `json:"jwks_url"`
	Discovery     bool                `json:"discovery"`
	Algorithms    []string            `json:"algorithms"`
	ClockSkew     Duration            `json:"clock_skew"`
	ClaimsMapping ClaimsMappingConfig `json:"claims_mapping"`
}

// ClaimsMappingConfig names the claims that hold an issuer's subject,
// scopes and client id ("" keeps sub, scope/scp and client_id/azp).
type ClaimsMappingConfig struct {
	Subject  string `json:"subject"`
	Scopes   string `json:"scopes"`
	ClientID string `json:"client_id"`
}

// UpstreamCredentialConfig is one upstream credential: a token exchanged
// for the caller's (RFC 8693) or a static header. The first entry whose
// match.context agrees with the request's context extensions applies,
// unless the policy names an entry (decision.upstream_credential) or
// "none".
type UpstreamCredentialConfig struct {
	Name          string               `json:"name"`
	Match         UpstreamMatchConfig  `json:"match"`
	TokenExchange *TokenExchangeConfig `json:"token_exchange"`
	Static        *StaticHeaderConfig  `json:"static"`
}

// UpstreamMatchConfig selects requests by their context extensions
// (e.g. {mcp_server: files}); empty matches every request.
type UpstreamMatchConfig struct {
	Context map[string]string `json:"context"`
}

// TokenExchangeConfig is an RFC 8693 exchange at the authorization server,
// authenticated with client_secret_basic (client_secret_file) or
// private_key_jwt.
type TokenExchangeConfig struct {
	TokenURL           string               `json:"token_url"`
	ClientID           string               `json:"client_id"`
	ClientSecretFile   string               `json:"client_secret_file"`
	PrivateKeyJWT      *PrivateKeyJWTConfig `json:"private_key_jwt"`
	Audience           string               `json:"audience"`
	Scope              string               `json:"scope"`
	RequestedTokenType string               `json:"requested_token_type"`
}

// PrivateKeyJWTConfig signs client assertions with the PEM private key in
// KeyFile (RSA: RS256, ECDSA P-256: ES256), naming it KeyID.
type PrivateKeyJWTConfig struct {
	KeyFile string `json:"key_file"`
	KeyID   string `json:"key_id"`
}

// StaticHeaderConfig sets Header to the content of ValueFile.
type StaticHeaderConfig struct {
	Header    string `json:"header"`
	ValueFile string `json:"value_file"`
}

// IntrospectionConfig enables RFC 7662 introspection of opaque tokens.
type IntrospectionConfig struct {
	URL              string   `json:"url"`
	ClientID         string   `json:"client_id"`
	ClientSecret     string   `json:"client_secret"`
	ClientSecretFile string   `json:"client_secret_file"`
	CacheSize        int      `json:"cache_size"`
	Timeout          Duration `json:"timeout"`
}

// SessionsConfig binds MCP session ids to the owner (issuer and subject)
// of the first request with them the policy allowed. MaxSessions bounds
// the table: when it is full a new session is refused, no bound one is
// forgotten; a session idle for TTL is forgotten.
type SessionsConfig struct {
	BindSubject bool     `json:"bind_subject"`
	MaxSessions int      `json:"max_sessions"`
	TTL         Duration `json:"ttl"`
}

// ConfirmConfig is the key ring of confirmations (decision/confirm):
// the first key seals, every key opens, so a key rotates with overlap.
// With no key, a call the policy holds for confirmation is refused, saying
// so.
type ConfirmConfig struct {
	Keys []ConfirmKeyConfig `json:"keys"`
	// TTL is how long a user has to answer (decision/confirm.DefaultTTL
	// when unset).
	TTL Duration `json:"ttl"`
}

// ConfirmKeyConfig is one key: its id, carried in each state, and a file
// holding exactly 32 secret bytes.
type ConfirmKeyConfig struct {
	ID         string `json:"id"`
	SecretFile string `json:"secret_file"`
}

// StateConfig chooses the store of the state replicas share
// (decision/state).
type StateConfig struct {
	// Backend is memory (default: one replica) or redis (replicas behind
	// one Redis or Valkey).
	Backend string `json:"backend"`
	// Redis is the server with backend redis.
	Redis RedisConfig `json:"redis"`
	// RequiredForReady turns /readyz and gRPC health NOT_SERVING while the
	// store does not answer; by default they stay SERVING and only the
	// requests that need the store are refused (state_unavailable).
	RequiredForReady bool `json:"required_for_ready"`
}

// RedisConfig is the Redis (or Valkey) of state.backend redis.
type RedisConfig struct {
	// Addresses are host:port of the server, or seeds of a Cluster (more
	// than one address means Cluster).
	Addresses []string `json:"addresses"`
	// Cluster uses Redis Cluster with a single address (a configuration
	// endpoint).
	Cluster      bool           `json:"cluster"`
	Username     string         `json:"username"`
	PasswordFile string         `json:"password_file"`
	TLS          RedisTLSConfig `json:"tls"`
	DB           int            `json:"db"`
	KeyPrefix    string         `json:"key_prefix"`
	DialTimeout  Duration       `json:"dial_timeout"`
	// ReadTimeout bounds every call to Redis, connecting included (default
	// 50ms); a request with a session makes two.
	ReadTimeout Duration `json:"read_timeout"`
	// PoolSize is connections per node; 0 is go-redis's ten per core.
	PoolSize int `json:"pool_size"`
}

// RedisTLSConfig turns on TLS to Redis: with enabled, or any file or
// server_name given. Without ca_file the system's roots verify the server.
type RedisTLSConfig struct {
	Enabled    bool   `json:"enabled"`
	CAFile     string `json:"ca_file"`
	CertFile   string `json:"cert_file"`
	KeyFile    string `json:"key_file"`
	ServerName string `json:"server_name"`
}

// ExtMcpConfig tunes the ExtMcp server (agentgateway's mcpGuardrails).
type ExtMcpConfig struct {
	// MetadataKey is the metadata_context key where agentgateway's
	// configuration puts the caller's authorization header value: the only
	// caller a list result (CheckResponse) has.
	MetadataKey string `json:"metadata_key"`
}

// UpstreamConfig is the MCP server behind `mcpauthz proxy`.
type UpstreamConfig struct {
	// URL is the upstream MCP endpoint (--upstream overrides it).
	URL string `json:"url"`
	// ForwardToken passes the caller's authorization header upstream. Off:
	// MCP forbids token passthrough; turn it on only for an upstream that
	// verifies the same tokens itself.
	ForwardToken bool `json:"forward_token"`
	// Context is the route context of every proxied request
	// (input.context), as Envoy's context_extensions give it.
	Context map[string]string `json:"context"`
	// StripRequestHeaders are request headers a client may never send
	// upstream: the identity headers the upstream trusts because the
	// policy sets them (decision.headers). They are removed before the
	// decision, whatever the policy returns; so are the headers the policy
	// can set as its text tells them, and every header a decision has set
	// upstream. Default [x-mcp-subject], the header of the example policy.
	StripRequestHeaders []string `json:"strip_request_headers"`
}

// EnvoyConfig tunes the ext_authz adapter.
type EnvoyConfig struct {
	MCPMetadataNamespace string `json:"mcp_metadata_namespace"`
}

// MCPConfig says which MCP revisions are accepted and how requests are
// held to their revision's rules.
type MCPConfig struct {
	// DefaultProtocolVersion is the revision of a request that names none.
	DefaultProtocolVersion string `json:"default_protocol_version"`
	// ProtocolVersions are the revisions accepted (default: every one
	// mcpauthz knows); others get 400 with -32022.
	ProtocolVersions []string `json:"protocol_versions"`
	// RequireStandardHeaders: by_version (2026-07-28 and later), always or never.
	RequireStandardHeaders string `json:"require_standard_headers"`
	// Batches: by_version (accepted before 2025-06-18), always or never.
	Batches string `json:"batches"`
}

// HTTPConfig is about the HTTP requests of the MCP transport.
type HTTPConfig struct {
	// AllowedOrigins are Origin header values accepted besides the origin
	// of resource.uri (e.g. "https://app.example.com").
	AllowedOrigins []string `json:"allowed_origins"`
}

// LimitsConfig bounds what one request may cost.
type LimitsConfig struct {
	MaxBodyBytes int `json:"max_body_bytes"`
	// MaxConcurrentStreams per gRPC connection (Envoy multiplexes many
	// checks on few connections).
	MaxConcurrentStreams uint32 `json:"max_concurrent_streams"`
	// GCPercent is the Go garbage collector's target (GOGC): the heap may
	// grow by this percentage of the live heap before a collection. Each
	// decision allocates a few kilobytes that die at once, so a higher
	// value trades memory for CPU (docs/performance.md). 0 leaves the
	// runtime's setting (GOGC, else 100); -1 turns the proportional
	// target off, which needs memory_limit_bytes. Default DefaultGCPercent;
	// when set, it overrides GOGC.
	GCPercent int `json:"gc_percent"`
	// MemoryLimitBytes is a soft limit on the memory the Go runtime uses
	// (GOMEMLIMIT): the collector runs more often as it is approached,
	// which bounds the memory a high gc_percent would take. 0 leaves the
	// runtime's setting (GOMEMLIMIT, else none).
	MemoryLimitBytes int64 `json:"memory_limit_bytes"`
	// EvalWorkers is how many goroutines evaluate policies: calls beyond
	// it wait for one (decision/evalpool.go says why). 0: two per core.
	EvalWorkers int `json:"eval_workers"`
	// MaxEvaluations bounds the evaluations of one AuthZEN evaluations
	// request (default 100); the requests they are decided as also add up
	// to at most MaxBodyBytes.
	MaxEvaluations int `json:"max_evaluations"`
	// BodyReadTimeout bounds the time the proxy waits for a request body
	// (mcpauthz proxy): a slower body is answered 408.
	BodyReadTimeout Duration `json:"body_read_timeout"`
	// MaxInflightBodyBytes bounds the request body bytes the proxy holds
	// at once, across every request (mcpauthz proxy): a body that would
	// pass it is answered 503, before it is read.
	MaxInflightBodyBytes int64 `json:"max_inflight_body_bytes"`
	// MaxResultBytes bounds what is held of one answer the policy's result
	// rule judges (data.mcp.authz.result): a larger result is withheld
	// with a JSON-RPC error. Only answers the rule judges are held.
	MaxResultBytes int `json:"max_result_bytes"`
}

// DefaultGCPercent is the default limits.gc_percent. With the default 100
// the collector took a fifth of the CPU at load; at 400 a real server on the
// reference workload served 25-35% more checks per second at 32 concurrent
// calls, its RSS going from 42 to 53 MB (docs/performance.md). The heap
// may reach five times the live heap, so a deployment with large policy
// data sets memory_limit_bytes or a lower gc_percent.
const DefaultGCPercent = 400

// minMemoryLimit is the smallest memory_limit_bytes accepted: below it the
// collector would run nearly constantly on the heap of a loaded policy.
const minMemoryLimit = 16 << 20

// LogConfig configures the service log.
type LogConfig struct {
	Level  string `json:"level"`
	Format string `json:"format"`
}

// TracingConfig exports a span per decision over OTLP/gRPC (tracing.go);
// tracing is off while OTLPEndpoint is "".
type TracingConfig struct {
	// OTLPEndpoint is the collector's OTLP/gRPC address, host:port.
	OTLPEndpoint string `json:"otlp_endpoint"`
	// Insecure sends in plaintext; otherwise TLS, verified with the
	// system's roots or CAFile.
	Insecure bool   `json:"insecure"`
	CAFile   string `json:"ca_file"`
	// SampleRatio is the share of new traces recorded (a request without
	// a trace context); a caller's trace is recorded when the caller
	// sampled it, whatever the ratio. Default 1.
	SampleRatio float64 `json:"sample_ratio"`
	// ServiceName is the service.name of the spans; default "mcpauthz".
	ServiceName string `json:"service_name"`
}

// DecisionLogConf configures decision logs in OPA's event format.
type DecisionLogConf struct {
	Console bool `json:"console"`
	// ConsoleFormat is how console writes: "json" (default: OPA's events,
	// for machines) or "text" (one line per decision for a person: id,
	// method, tool, subject, code, reason).
	ConsoleFormat string `json:"console_format"`
	File          string `json:"file"`
	// Service uploads the events in OPA's decision log protocol.
	Service   *DecisionLogService  `json:"service"`
	Reporting DecisionLogReporting `json:"reporting"`
	// MaskDecision and DropDecision are the bundle's rules (paths under
	// data, as OPA's) that mask and drop events; "" turns one off.
	MaskDecision string `json:"mask_decision"`
	DropDecision string `json:"drop_decision"`
}

// DecisionLogService is a decision log service (OPA's protocol: gzip
// JSON arrays POSTed to url + "/logs").
type DecisionLogService struct {
	URL             string `json:"url"`
	BearerTokenFile string `json:"bearer_token_file"`
	CAFile          string `json:"ca_file"`
	CertFile        string `json:"cert_file"`
	KeyFile         string `json:"key_file"`
}

// DecisionLogReporting paces the uploads, as OPA's decision_logs.reporting.
type DecisionLogReporting struct {
	MinDelaySeconds      int64 `json:"min_delay_seconds"`
	MaxDelaySeconds      int64 `json:"max_delay_seconds"`
	BufferSizeLimitBytes int64 `json:"buffer_size_limit_bytes"`
}

// ShadowConfig names a candidate bundle (the shadow bundle) that decides
// live requests again off the decision path; the decisions it decides
// otherwise are logged and counted. Bundles has the shape of the top-level
// bundles; none turns the shadow off.
type ShadowConfig struct {
	Bundles []BundleConfig `json:"bundles"`
	// QueueSize bounds the decisions waiting for the shadow worker; past
	// it they are dropped and counted, never waited for.
	QueueSize int `json:"queue_size"`
}

// Duration is a time.Duration written as "30s" in YAML.
type Duration time.Duration

// UnmarshalJSON reads "30s", "5m" or a number of seconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		v, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("not a duration: %q (want e.g. \"30s\")", s)
		}
		*d = Duration(v)
		return nil
	}
	var n float64
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("not a duration: %s (want e.g. \"30s\")", b)
	}
	*d = Duration(time.Duration(n * float64(time.Second)))
	return nil
}

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// D returns the time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// DefaultConfig returns the configuration with every default filled in.
func DefaultConfig() Config {
	return Config{
		Listen:   ListenConfig{GRPC: "127.0.0.1:9191", HTTP: "127.0.0.1:8181", Reflection: true, Proxy: "127.0.0.1:8080"},
		Watch:    WatchConfig{Debounce: Duration(300 * time.Millisecond)},
		Policy:   PolicyConfig{Package: "mcp.authz", EvalTimeout: Duration(time.Second)},
		Resource: ResourceConfig{URI: "https://mcp.example.com/mcp", AuthorizationServers: []string{"https://auth.example.com"}},
		Tokens: TokensConfig{
			Algorithms:         []string{"RS256", "ES256"},
			ClockSkew:          Duration(30 * time.Second),
			RefreshInterval:    Duration(10 * time.Minute),
			MinRefreshInterval: Duration(time.Minute),
			CacheSize:          10000,
		},
		Sessions: SessionsConfig{MaxSessions: 100000, TTL: Duration(24 * time.Hour)},
		State: StateConfig{Backend: "memory", Redis: RedisConfig{
			KeyPrefix: "mcpauthz:", DialTimeout: Duration(time.Second), ReadTimeout: Duration(50 * time.Millisecond),
		}},
		Envoy:  EnvoyConfig{MCPMetadataNamespace: "envoy.filters.http.mcp"},
		Shadow: ShadowConfig{QueueSize: 1024},
		Limits: LimitsConfig{MaxBodyBytes: 1 << 20, MaxConcurrentStreams: 1000, GCPercent: DefaultGCPercent, MaxEvaluations: 100,
			BodyReadTimeout: Duration(10 * time.Second), MaxInflightBodyBytes: 64 << 20, MaxResultBytes: decision.DefaultMaxResultBytes},
		Upstream: UpstreamConfig{StripRequestHeaders: []string{"x-mcp-subject"}},
		Log:      LogConfig{Level: "info", Format: "json"},
		DecisionLogs: DecisionLogConf{
			MaskDecision: "system/log/mask", DropDecision: "system/log/drop",
			Reporting: DecisionLogReporting{MinDelaySeconds: 5, MaxDelaySeconds: 10, BufferSizeLimitBytes: 32 << 20},
		},
		Agentgateway: ExtMcpConfig{MetadataKey: extmcp.DefaultMetadataKey},
		Tracing:      TracingConfig{SampleRatio: 1, ServiceName: "mcpauthz"},
		MCP: MCPConfig{
			DefaultProtocolVersion: decision.DefaultProtocolVersion,
			ProtocolVersions:       slices.Clone(decision.KnownProtocolVersions),
			RequireStandardHeaders: "by_version",
			Batches:                "by_version",
		},
	}
}

// LoadConfig reads a YAML file over the defaults. Unknown keys are errors,
// so a typo never silently falls back to a default; every unknown key and
// wrong type is reported at once, with its path (LoadConfigWith).
func LoadConfig(path string) (Config, error) {
	return LoadConfigWith(path, nil)
}

// checkAlgorithms reports every name in algs that is not an asymmetric JWS
// algorithm the verifier allows.
func checkAlgorithms(key string, algs []string, bad func(key, format string, args ...any)) {
	for _, a := range algs {
		switch a {
		case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA":
		default:
			bad(key, "%q is not an allowed asymmetric JWS algorithm", a)
		}
	}
}

// validateIssuers checks tokens.issuers: it excludes the single-issuer
// keys, and every entry names one issuer, once, and at most one place
// for its keys.
func (c *Config) validateIssuers(bad func(key, format string, args ...any)) {
	t := &c.Tokens
	if len(t.Issuers) == 0 {
		return
	}
	for _, k := range [...]struct{ key, v string }{{"tokens.issuer", t.Issuer}, {"tokens.jwks_file", t.JWKSFile}, {"tokens.jwks_url", t.JWKSURL}} {
		if k.v != "" {
			bad(k.key, "is the single-issuer shorthand; with tokens.issuers, put it in an entry")
		}
	}
	seen := map[string]bool{}
	for i, is := range t.Issuers {
		key := fmt.Sprintf("tokens.issuers[%d]", i)
		switch {
		case is.Issuer == "":
			bad(key+".issuer", "is required")
		case is.Issuer == token.DevIssuer:
			bad(key+".issuer", "%q is the development issuer (tokens.dev)", is.Issuer)
		case seen[is.Issuer]:
			bad(key+".issuer", "%q is configured twice", is.Issuer)
		}
		seen[is.Issuer] = true
		n := 0
		for _, set := range []bool{is.JWKSFile != "", is.JWKSURL != "", is.Discovery} {
			if set {
				n++
			}
		}
		if n > 1 {
			bad(key, "jwks_file, jwks_url and discovery are exclusive")
		}
		if is.JWKSURL != "" && !strings.HasPrefix(is.JWKSURL, "https://") && !strings.HasPrefix(is.JWKSURL, "http://") {
			bad(key+".jwks_url", "%q is not an http(s) URL", is.JWKSURL)
		}
		checkAlgorithms(key+".algorithms", is.Algorithms, bad)
		if is.ClockSkew < 0 || is.ClockSkew.D() > 10*time.Minute {
			bad(key+".clock_skew", "must be between 0 and 10m")
		}
	}
}

// validateUpstream checks upstream_credentials: unique names, and one
// complete way of making each credential.
func (c *Config) validateUpstream(bad func(key, format string, args ...any)) {
	seen := map[string]bool{}
	for i, u := range c.UpstreamCredentials {
		key := fmt.Sprintf("upstream_credentials[%d]", i)
		switch {
		case u.Name == "":
			bad(key+".name", "is required")
		case u.Name == "none":
			bad(key+".name", "\"none\" is how a policy chooses no credential")
		case seen[u.Name]:
			bad(key+".name", "%q is used twice", u.Name)
		}
		seen[u.Name] = true
		if (u.TokenExchange == nil) == (u.Static == nil) {
			bad(key, "needs exactly one of token_exchange and static")
		}
		if x := u.TokenExchange; x != nil {
			if !strings.HasPrefix(x.TokenURL, "https://") && !strings.HasPrefix(x.TokenURL, "http://") {
				bad(key+".token_exchange.token_url", "%q is not an http(s) URL", x.TokenURL)
			}
			if x.ClientID == "" {
				bad(key+".token_exchange.client_id", "is required")
			}
			switch pk := x.PrivateKeyJWT; {
			case pk == nil && x.ClientSecretFile == "":
				bad(key+".token_exchange", "needs client_secret_file or private_key_jwt to authenticate")
			case pk != nil && x.ClientSecretFile != "":
				bad(key+".token_exchange", "client_secret_file and private_key_jwt are exclusive")
			case pk != nil && pk.KeyFile == "":
				bad(key+".token_exchange.private_key_jwt.key_file", "is required")
			}
		}
		if s := u.Static; s != nil {
			if s.Header == "" || s.Header != strings.ToLower(s.Header) {
				bad(key+".static.header", "%q is not a lowercase header name", s.Header)
			}
			if s.ValueFile == "" {
				bad(key+".static.value_file", "is required")
			}
		}
	}
}

// Validate checks the configuration and names the offending key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
	}
	for key, addr := range map[string]string{"listen.grpc": c.Listen.GRPC, "listen.http": c.Listen.HTTP, "listen.proxy": c.Listen.Proxy} {
		if addr == "" {
			continue // "" turns that listener off
		}
		checkListenAddr(key, addr, bad)
	}
	if (c.Listen.TLS.CertFile == "") != (c.Listen.TLS.KeyFile == "") {
		bad("listen.tls", "cert_file and key_file go together")
	}
	if c.Listen.TLS.ClientCAFile != "" && c.Listen.TLS.CertFile == "" {
		bad("listen.tls.client_ca_file", "needs cert_file and key_file")
	}
	validateBundles("bundles", c.Bundles, bad)
	validateBundles("shadow.bundles", c.Shadow.Bundles, bad)
	if c.Shadow.QueueSize <= 0 {
		bad("shadow.queue_size", "must be positive")
	}
	if c.Policy.Package == "" {
		bad("policy.package", "is empty")
	}
	if c.Policy.EvalTimeout <= 0 {
		bad("policy.eval_timeout", "must be positive")
	}
	if !strings.HasPrefix(c.Resource.URI, "https://") && !strings.HasPrefix(c.Resource.URI, "http://") {
		bad("resource.uri", "%q is not an absolute http(s) URL", c.Resource.URI)
	}
	if strings.Contains(c.Resource.URI, "#") {
		bad("resource.uri", "must not have a fragment")
	}
	if u := c.Resource.ProxyURI; u != "" && (!strings.HasPrefix(u, "https://") && !strings.HasPrefix(u, "http://") || strings.Contains(u, "#")) {
		bad("resource.proxy_uri", "%q is not an absolute http(s) URL without a fragment", u)
	}
	if len(c.Resource.AuthorizationServers) == 0 {
		bad("resource.authorization_servers", "MCP requires at least one authorization server")
	}
	checkAlgorithms("tokens.algorithms", c.Tokens.Algorithms, bad)
	c.validateIssuers(bad)
	c.validateUpstream(bad)
	if u := c.Upstream.URL; u != "" {
		if pu, err := url.Parse(u); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
			bad("upstream.url", "%q is not an absolute http(s) URL", u)
		}
	}
	c.validateMCP(bad)
	c.validateDecisionLogs(bad)
	c.validateTracing(bad)
	c.validateState(bad)
	if err := token.CheckRequiredTyp(c.Tokens.RequiredTyp); err != nil {
		bad("tokens.required_typ", "%v", err)
	}
	checkAlgorithms("tokens.dpop.algorithms", c.Tokens.DPoP.Algorithms, bad)
	if d := c.Tokens.DPoP; d.MaxAge < 0 || d.MaxAge.D() > time.Hour || d.Skew < 0 || d.Skew.D() > 10*time.Minute {
		bad("tokens.dpop", "max_age must be between 0 and 1h, skew between 0 and 10m")
	}
	if n := c.Tokens.DPoP.Nonce; n.Enabled && len(n.Keys) == 0 {
		bad("tokens.dpop.nonce.keys", "enabled needs at least one key {id, secret_file}, the same on every replica")
	}
	if w := c.Tokens.DPoP.Nonce.Window; w < 0 || (w != 0 && w.D() < time.Second) || w.D() > time.Hour {
		bad("tokens.dpop.nonce.window", "must be between 1s and 1h (default 5m)")
	}
	if h := c.Tokens.DPoP.HTU; h != "" {
		if _, err := dpop.NormalizeURI(h); err != nil {
			bad("tokens.dpop.htu", "%q: %v; want the absolute http(s) URL of the MCP endpoint, usually resource.uri", h, err)
		}
	}
	if c.Tokens.ClockSkew < 0 || c.Tokens.ClockSkew.D() > 10*time.Minute {
		bad("tokens.clock_skew", "must be between 0 and 10m")
	}
	if c.Tokens.JWKSFile != "" && c.Tokens.JWKSURL != "" {
		bad("tokens.jwks_file", "and tokens.jwks_url are exclusive")
	}
	if c.Tokens.CacheSize < 0 {
		bad("tokens.cache_size", "must not be negative")
	}
	if in := c.Tokens.Introspection; in != nil && in.URL == "" {
		bad("tokens.introspection.url", "is required")
	}
	if c.Limits.MaxBodyBytes <= 0 {
		bad("limits.max_body_bytes", "must be positive")
	}
	if c.Agentgateway.MetadataKey == "" {
		bad("agentgateway.metadata_key", "is empty; the caller of a list result comes only from it")
	}
	if c.Limits.GCPercent < -1 {
		bad("limits.gc_percent", "must be -1 (off, with memory_limit_bytes), 0 (runtime default) or positive")
	}
	if c.Limits.GCPercent == -1 && c.Limits.MemoryLimitBytes == 0 {
		bad("limits.gc_percent", "-1 turns the collector's target off and needs limits.memory_limit_bytes")
	}
	if c.Limits.MemoryLimitBytes < 0 || (c.Limits.MemoryLimitBytes > 0 && c.Limits.MemoryLimitBytes < minMemoryLimit) {
		bad("limits.memory_limit_bytes", "must be 0 (no limit) or at least %d", minMemoryLimit)
	}
	if c.Limits.EvalWorkers < 0 {
		bad("limits.eval_workers", "must be 0 (two per core) or positive")
	}
	if c.Limits.MaxEvaluations <= 0 {
		bad("limits.max_evaluations", "must be positive")
	}
	if c.API.Unauthenticated && c.API.BearerTokenFile != "" {
		bad("api.bearer_token_file", "is set with api.unauthenticated: true, which lets every caller in without it; choose one")
	}
	if c.Limits.BodyReadTimeout <= 0 {
		bad("limits.body_read_timeout", "must be positive (e.g. 10s)")
	}
	if c.Limits.MaxResultBytes <= 0 {
		bad("limits.max_result_bytes", "must be positive")
	}
	if c.Limits.MaxInflightBodyBytes < int64(c.Limits.MaxBodyBytes) {
		bad("limits.max_inflight_body_bytes", "must be at least limits.max_body_bytes (%d), or no body could be read", c.Limits.MaxBodyBytes)
	}
	for _, name := range c.Upstream.StripRequestHeaders {
		if !httpguts.ValidHeaderFieldName(name) {
			bad("upstream.strip_request_headers", "%q is not a header name", name)
		}
	}
	switch strings.ToLower(c.Log.Level) {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "%q is not one of debug, info, warn, error", c.Log.Level)
	}
	switch c.Log.Format {
	case "json", "text":
	default:
		bad("log.format", "%q is not json or text", c.Log.Format)
	}
	return errors.Join(errs...)
}

// validateBundles checks a list of bundle sources (bundles, shadow.bundles).
func validateBundles(section string, list []BundleConfig, bad func(key, format string, args ...any)) {
	for i, b := range list {
		key := fmt.Sprintf("%s[%d]", section, i)
		set := 0
		for _, v := range []string{b.Path, b.URL, b.OCI} {
			if v != "" {
				set++
			}
		}
		switch {
		case set == 0:
			bad(key, "needs one of path, url and oci")
		case set > 1:
			bad(key, "sets more than one of path, url and oci; use one")
		case b.URL != "" && !strings.HasPrefix(b.URL, "https://") && !strings.HasPrefix(b.URL, "http://"):
			bad(key+".url", "%q is not an http(s) URL", b.URL)
		case b.OCI != "" && !ociTagged(b.OCI):
			bad(key+".oci", "%q is not a registry/repository:tag (or @digest) reference", b.OCI)
		}
		if b.MinDelay > b.MaxDelay && b.MaxDelay != 0 {
			bad(key+".min_delay", "is larger than max_delay")
		}
		if v := b.Verification; v != nil && v.PublicKeyFile == "" {
			bad(key+".verification.public_key_file", "is required to verify signatures")
		}
	}
}

// validateDecisionLogs checks decision_logs.service and reporting.
func (c *Config) validateDecisionLogs(bad func(key, format string, args ...any)) {
	switch f := c.DecisionLogs.ConsoleFormat; f {
	case "", decisionlog.ConsoleJSON, decisionlog.ConsoleText:
	default:
		bad("decision_logs.console_format", "%q is not json or text", f)
	}
	if s := c.DecisionLogs.Service; s != nil {
		if u, err := url.Parse(s.URL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			bad("decision_logs.service.url", "%q is not an absolute http(s) URL", s.URL)
		}
		if (s.CertFile == "") != (s.KeyFile == "") {
			bad("decision_logs.service.cert_file", "and key_file go together")
		}
	}
	for key, path := range map[string]string{"decision_logs.mask_decision": c.DecisionLogs.MaskDecision, "decision_logs.drop_decision": c.DecisionLogs.DropDecision} {
		if path == "" {
			continue
		}
		if _, err := (decision.Rules{}).WithLogRules(path, ""); err != nil {
			bad(key, "%q is not a path of a rule under data (like system/log/mask)", path)
		}
	}
	r := c.DecisionLogs.Reporting
	if r.MinDelaySeconds <= 0 {
		bad("decision_logs.reporting.min_delay_seconds", "must be positive")
	}
	if r.MaxDelaySeconds < r.MinDelaySeconds {
		bad("decision_logs.reporting.max_delay_seconds", "must be at least min_delay_seconds")
	}
	if r.BufferSizeLimitBytes <= 0 {
		bad("decision_logs.reporting.buffer_size_limit_bytes", "must be positive")
	}
}

// validateTracing checks the tracing section.
func (c *Config) validateTracing(bad func(key, format string, args ...any)) {
	t := &c.Tracing
	if t.OTLPEndpoint != "" {
		// An address as listen's, but one that can be dialled.
		checkListenAddr("tracing.otlp_endpoint", t.OTLPEndpoint, bad)
		if host, port, err := net.SplitHostPort(t.OTLPEndpoint); err == nil && (host == "" || port == "0") {
			bad("tracing.otlp_endpoint", "%q needs a host and a port (e.g. \"otel-collector:4317\")", t.OTLPEndpoint)
		}
	}
	if t.Insecure && t.CAFile != "" {
		bad("tracing.ca_file", "and tracing.insecure are exclusive")
	}
	if t.SampleRatio < 0 || t.SampleRatio > 1 {
		bad("tracing.sample_ratio", "must be between 0 and 1")
	}
	if t.ServiceName == "" {
		bad("tracing.service_name", "is empty")
	}
}

// validateMCP checks the mcp and http sections.
func (c *Config) validateMCP(bad func(key, format string, args ...any)) {
	m := &c.MCP
	if len(m.ProtocolVersions) == 0 {
		bad("mcp.protocol_versions", "must list at least one revision")
	}
	for i, v := range m.ProtocolVersions {
		if !slices.Contains(decision.KnownProtocolVersions, v) {
			bad(fmt.Sprintf("mcp.protocol_versions[%d]", i), "%q is not a revision mcpauthz knows (%s)", v, strings.Join(decision.KnownProtocolVersions, ", "))
		}
	}
	if !slices.Contains(m.ProtocolVersions, m.DefaultProtocolVersion) {
		bad("mcp.default_protocol_version", "%q is not in mcp.protocol_versions", m.DefaultProtocolVersion)
	}
	if _, err := decision.ParseRule(m.RequireStandardHeaders); err != nil {
		bad("mcp.require_standard_headers", "%v", err)
	}
	if _, err := decision.ParseRule(m.Batches); err != nil {
		bad("mcp.batches", "%v", err)
	}
	for i, o := range c.HTTP.AllowedOrigins {
		if got, err := origin(o); err != nil || !strings.EqualFold(got, o) {
			bad(fmt.Sprintf("http.allowed_origins[%d]", i), "%q is not an origin (scheme://host[:port])", o)
		}
	}
}

// origin returns the origin (RFC 6454: scheme://host[:port], lowercase)
// of an absolute http(s) URL.
func origin(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", fmt.Errorf("%q is not an absolute http(s) URL", raw)
	}
	return strings.ToLower(u.Scheme + "://" + u.Host), nil
}

// ociTagged reports whether ref looks like an OCI reference with a tag or
// digest: no URL scheme, a registry and a repository, and ":tag" or
// "@digest" after the last slash. bundles.OCISource parses it in full.
func ociTagged(ref string) bool {
	if strings.Contains(ref, "://") {
		return false
	}
	i := strings.LastIndex(ref, "/")
	return i > 0 && strings.ContainsAny(ref[i+1:], ":@")
}
