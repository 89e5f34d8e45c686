package token

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/golang-jwt/jwt/v5"
)

// DevIssuer is the iss of tokens minted by MintDev. A Verifier trusts the
// development key for this issuer only, and only with Options.Dev set.
const DevIssuer = "mcpauthz-dev"

// DevClientID is the client_id of tokens minted by MintDev.
const DevClientID = "mcpauthz-dev-cli"

// DevKeyEnv names the environment variable that overrides DevKeyPath.
const DevKeyEnv = "MCPAUTHZ_DEV_KEY"

const (
	defaultDevTTL = time.Hour
	maxDevTTL     = 24 * time.Hour
	devKeyBits    = 2048
)

// DevOptions says what MintDev puts in a token.
type DevOptions struct {
	KeyPath  string         // the signing key; "" means DevKeyPath()
	Subject  string         // sub; "" means "dev-user"
	Audience string         // aud: the resource URI of the MCP server (required)
	Scopes   []string       // joined into the space-separated scope claim
	TTL      time.Duration  // lifetime; 0 means one hour, at most 24 hours
	Extra    map[string]any // more claims; may not replace the registered ones above
}

// reservedDevClaims are the claims MintDev sets itself.
var reservedDevClaims = [...]string{"iss", "aud", "sub", "scope", "client_id", "iat", "nbf", "exp", "jti"}

// DevKeyPath returns where the development signing key lives: $MCPAUTHZ_DEV_KEY
// when set, else mcpauthz/dev-key.pem under the user's configuration
// directory.
func DevKeyPath() (string, error) {
	if p := os.Getenv(DevKeyEnv); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("locating the development key: %w (set %s)", err, DevKeyEnv)
	}
	return filepath.Join(dir, "mcpauthz", "dev-key.pem"), nil
}

// MintDev mints a short-lived RS256 access token signed by the local
// development key (created on first use). Only a Verifier built with
// Options.Dev accepts it. It is for trying policies on a laptop, never for
// production.
func MintDev(o DevOptions) (string, error) {
	if o.Audience == "" {
		return "", errors.New("minting a development token: the audience (resource URI) is required")
	}
	ttl := o.TTL
	if ttl == 0 {
		ttl = defaultDevTTL
	}
	if ttl < 0 || ttl > maxDevTTL {
		return "", fmt.Errorf("minting a development token: TTL %s is outside (0, %s]", ttl, maxDevTTL)
	}
	// A Verifier refuses claim names equal under case folding (see
	// checkMembers), so MintDev does not mint such a token.
	folded := make(map[string]string, len(o.Extra))
	for name := range o.Extra {
		for _, c := range reservedDevClaims {
			if strings.EqualFold(name, c) {
				return "", fmt.Errorf("minting a development token: extra claim %q would replace or shadow %q, which the development issuer sets", name, c)
			}
		}
		f := foldName(name)
		if other, ok := folded[f]; ok {
			return "", fmt.Errorf("minting a development token: extra claims %q and %q differ only in case", other, name)
		}
		folded[f] = name
	}
	path := o.KeyPath
	if path == "" {
		var err error
		if path, err = DevKeyPath(); err != nil {
			return "", err
		}
	}
	dk, err := loadOrCreateDevKey(path)
	if err != nil {
		return "", err
	}
	sub := o.Subject
	if sub == "" {
		sub = "dev-user"
	}
	jti := make([]byte, 16)
	if _, err := rand.Read(jti); err != nil {
		return "", fmt.Errorf("minting a development token: %w", err)
	}
	now := time.Now()
	claims := jwt.MapClaims{}
	for k, v := range o.Extra {
		claims[k] = v
	}
	claims["iss"] = DevIssuer
	claims["aud"] = o.Audience
	claims["sub"] = sub
	claims["client_id"] = DevClientID
	claims["iat"] = now.Unix()
	claims["exp"] = now.Add(ttl).Unix()
	claims["jti"] = base64.RawURLEncoding.EncodeToString(jti)
	if len(o.Scopes) > 0 {
		claims["scope"] = strings.Join(o.Scopes, " ")
	}
	t := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	t.Header["kid"] = dk.kid
	t.Header["typ"] = "at+jwt" // RFC 9068 access token
	s, err := t.SignedString(dk.priv)
	if err != nil {
		return "", fmt.Errorf("signing the development token: %w", err)
	}
	return s, nil
}

// devKey is the development signing key and its kid.
type devKey struct {
	priv *rsa.PrivateKey
	kid  string // RFC 7638 thumbprint of the public key
}

// loadOrCreateDevKey reads the PEM key at path, creating it (directory mode
// 0700, file mode 0600) when it does not exist yet.
func loadOrCreateDevKey(path string) (*devKey, error) {
	priv, err := readDevKey(path)
	if errors.Is(err, fs.ErrNotExist) {
		priv, err = createDevKey(path)
	}
	if err != nil {
		return nil, err
	}
	thumb, err := (&jose.JSONWebKey{Key: &priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("computing the development key id: %w", err)
	}
	return &devKey{priv: priv, kid: base64.RawURLEncoding.EncodeToString(thumb)}, nil
}

func readDevKey(path string) (*rsa.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading development key: %w", err)
	}
	if runtime.GOOS != "windows" {
		fi, err := os.Stat(path)
		if err != nil {
			return nil, fmt.Errorf("reading development key: %w", err)
		}
		// Like ssh: a signing key others can read is not a secret any more.
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("development key %s has mode %04o; it must be readable by its owner only (chmod 600)", path, fi.Mode().Perm())
		}
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, fmt.Errorf("reading development key %s: no PEM block", path)
	}
	var key any
	switch block.Type {
	case "PRIVATE KEY":
		key, err = x509.ParsePKCS8PrivateKey(block.Bytes)
	case "RSA PRIVATE KEY":
		key, err = x509.ParsePKCS1PrivateKey(block.Bytes)
	default:
		return nil, fmt.Errorf("reading development key %s: unexpected PEM block %q", path, block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("reading development key %s: %w", path, err)
	}
	rk, ok := key.(*rsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("reading development key %s: %T is not an RSA key", path, key)
	}
	return rk, nil
}

// createDevKey generates a key and publishes it at path atomically: it is
// written to a private temporary file, then hard-linked into place, which
// fails if another process created the key first; then that key is used.
func createDevKey(path string) (*rsa.PrivateKey, error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating development key directory: %w", err)
	}
	priv, err := rsa.GenerateKey(rand.Reader, devKeyBits)
	if err != nil {
		return nil, fmt.Errorf("generating development key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, fmt.Errorf("encoding development key: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".dev-key-*.pem") // mode 0600
	if err != nil {
		return nil, fmt.Errorf("writing development key: %w", err)
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName)
	werr := pem.Encode(tmp, &pem.Block{Type: "PRIVATE KEY", Bytes: der})
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return nil, fmt.Errorf("writing development key: %w", werr)
	}
	if err := os.Link(tmpName, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return readDevKey(path) // lost the race: use the winner's key
		}
		return nil, fmt.Errorf("writing development key %s: %w", path, err)
	}
	return priv, nil
}
