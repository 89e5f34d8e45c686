package bundles

import (
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/open-policy-agent/opa/v1/bundle"
	"github.com/open-policy-agent/opa/v1/keys"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults applied by NewManager and Compile when an option is left zero.
const (
	DefaultDebounce     = 300 * time.Millisecond
	DefaultMinDelay     = 10 * time.Second
	DefaultMaxDelay     = 20 * time.Second
	DefaultMaxFileBytes = 32 << 20 // per file in a bundle, and per downloaded tarball
	DefaultFetchTimeout = 30 * time.Second
	defaultKeyID        = "default"
	defaultAlgorithm    = "RS256"
)

// Verification configures the check of a signed bundle (OPA's bundle
// signing format: a JWT in .signatures.json listing file hashes).
type Verification struct {
	// PublicKeyFile is a PEM file holding the public key (or, for HS256, a
	// file holding the shared secret). PublicKey holds the same inline.
	PublicKeyFile string
	PublicKey     string
	// KeyID names the key; it must match the JWT's "kid" when the JWT sets
	// one (default "default").
	KeyID string
	// Algorithm is the JWS algorithm, default RS256.
	Algorithm string
	// Scope, when set, must equal the JWT's "scope" claim.
	Scope string
	// Exclude lists glob patterns of files left out of verification.
	Exclude []string
}

// Options configure Compile, Check, Test and NewManager.
type Options struct {
	// Sources are combined into one policy (see DirSource, FSSource,
	// HTTPSource, OCISource); their manifest roots must not overlap (a bundle without a manifest owns every root, so it can only
	// be combined with nothing).
	Sources []Source
	// Queries are prepared on every snapshot, for example
	// "data.mcp.authz.decision". A query is prepared only where the policy
	// has rules under its ref; Snapshot.Query reports the others missing.
	Queries []string
	// InputSchema is a JSON Schema of input. Policies are type-checked
	// against it at load, so a rule reading a field that cannot exist fails
	// to load instead of silently never matching.
	InputSchema []byte
	// Debounce is the quiet period after the last file event before a
	// reload (default 300ms).
	Debounce time.Duration
	// MaxFileBytes bounds each file of a bundle and each downloaded tarball
	// (default 32 MiB).
	MaxFileBytes int64
	// FetchTimeout bounds one download of a bundle (default 30s).
	FetchTimeout time.Duration
	// Logger receives load results and errors (default: discard).
	Logger *slog.Logger
	// Registerer, when set, receives the Manager's metrics.
	Registerer prometheus.Registerer
	// Now returns the current time (default time.Now); tests set it.
	Now func() time.Time
	// PrintStatements keeps print() calls in the compiled policy, for the
	// tools that show their output (mcpauthz eval). Off, as a server
	// runs, OPA's compiler erases them.
	PrintStatements bool
}

// withDefaults returns a copy of o with zero fields set to their defaults.
func (o Options) withDefaults() Options {
	if o.Debounce <= 0 {
		o.Debounce = DefaultDebounce
	}
	if o.MaxFileBytes <= 0 {
		o.MaxFileBytes = DefaultMaxFileBytes
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// validate reports configuration mistakes that no reload could fix.
func (o Options) validate() error {
	if len(o.Sources) == 0 {
		return errors.New("no bundle sources configured")
	}
	names := make(map[string]bool, len(o.Sources))
	for _, s := range o.Sources {
		if names[s.Name()] {
			return fmt.Errorf("bundle source name %q used twice", s.Name())
		}
		names[s.Name()] = true
	}
	for _, q := range o.Queries {
		if _, err := parseQueryRef(q); err != nil {
			return err
		}
	}
	return nil
}

// config builds OPA's verification config, reading the key file if needed.
func (v *Verification) config() (*bundle.VerificationConfig, error) {
	key := v.PublicKey
	if v.PublicKeyFile != "" {
		if key != "" {
			return nil, errors.New("verification: set public_key or public_key_file, not both")
		}
		bs, err := os.ReadFile(filepath.Clean(v.PublicKeyFile))
		if err != nil {
			return nil, fmt.Errorf("verification: reading public key: %w", err)
		}
		key = string(bs)
	}
	if key == "" {
		return nil, errors.New("verification: no public key configured")
	}
	alg := v.Algorithm
	if alg == "" {
		alg = defaultAlgorithm
	}
	id := v.KeyID
	if id == "" {
		id = defaultKeyID
	}
	if !keys.IsSupportedAlgorithm(alg) {
		return nil, fmt.Errorf("verification: unsupported algorithm %q", alg)
	}
	// Asymmetric keys must at least be PEM; the signature check parses them
	// fully. keys.NewKeyConfig is not used: it treats its argument as a file
	// name first, which fails on an inline PEM longer than a path component.
	if !strings.HasPrefix(alg, "HS") {
		if blk, _ := pem.Decode([]byte(key)); blk == nil {
			return nil, errors.New("verification: public key is not PEM")
		}
	}
	kc := &keys.Config{Key: key, Algorithm: alg, Scope: v.Scope}
	return bundle.NewVerificationConfig(map[string]*bundle.KeyConfig{id: kc}, id, v.Scope, v.Exclude), nil
}
