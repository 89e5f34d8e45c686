// Package dpoptest is a DPoP client for tests: it holds a key, signs
// proofs (RFC 9449) for requests, and can sign any header and claims it is
// given, so tests can send proofs a real client never would.
package dpoptest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Client signs DPoP proofs with one key.
type Client struct {
	// Alg is the JWS algorithm it signs with.
	Alg string
	key crypto.Signer
	// JWK is the public key as the proof's header carries it.
	JWK json.RawMessage
	// JKT is the key's RFC 7638 thumbprint: the cnf.jkt of tokens bound to it.
	JKT string
	n   atomic.Uint64
}

// New returns a client with a fresh key for alg: ES256, EdDSA, RS256 or
// PS256 (RSA-2048).
func New(alg string) (*Client, error) {
	var key crypto.Signer
	var err error
	switch alg {
	case "ES256":
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case "EdDSA":
		_, key, err = ed25519.GenerateKey(rand.Reader)
	case "RS256", "PS256":
		key, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		return nil, fmt.Errorf("dpoptest: algorithm %q is not supported", alg)
	}
	if err != nil {
		return nil, err
	}
	return WithKey(alg, key)
}

// WithKey returns a client signing with key.
func WithKey(alg string, key crypto.Signer) (*Client, error) {
	jwk := jose.JSONWebKey{Key: key.Public()}
	raw, err := jwk.MarshalJSON()
	if err != nil {
		return nil, err
	}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	return &Client{Alg: alg, key: key, JWK: raw, JKT: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

// Proof returns a fresh proof (new jti, iat now) for a request with
// method to uri carrying accessToken.
func (c *Client) Proof(method, uri, accessToken string) string {
	return c.ProofAt(method, uri, accessToken, time.Now())
}

// ProofAt is Proof with iat at.
func (c *Client) ProofAt(method, uri, accessToken string, at time.Time) string {
	return c.SignJSON(c.Header(), c.Claims(method, uri, accessToken, at))
}

// ProofWithNonce is Proof carrying the server nonce nonce (RFC 9449 §8).
func (c *Client) ProofWithNonce(method, uri, accessToken, nonce string) string {
	var m map[string]any
	_ = json.Unmarshal(c.Claims(method, uri, accessToken, time.Now()), &m)
	m["nonce"] = nonce
	claims, _ := json.Marshal(m)
	return c.SignJSON(c.Header(), claims)
}

// Header returns the header of a proof: typ, alg and jwk.
func (c *Client) Header() []byte {
	return []byte(`{"typ":"dpop+jwt","alg":"` + c.Alg + `","jwk":` + string(c.JWK) + `}`)
}

// Claims returns the claims of a proof with a new jti.
func (c *Client) Claims(method, uri, accessToken string, at time.Time) []byte {
	sum := sha256.Sum256([]byte(accessToken))
	m := map[string]any{
		"jti": "jti-" + strconv.FormatUint(c.n.Add(1), 10) + "-" + strconv.FormatInt(time.Now().UnixNano(), 36),
		"htm": method, "htu": uri, "iat": at.Unix(),
		"ath": base64.RawURLEncoding.EncodeToString(sum[:]),
	}
	b, _ := json.Marshal(m)
	return b
}

// SignJSON signs header and claims as they are, byte for byte.
func (c *Client) SignJSON(header, claims []byte) string {
	in := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(claims)
	return in + "." + base64.RawURLEncoding.EncodeToString(c.sign([]byte(in)))
}

func (c *Client) sign(in []byte) []byte {
	sum := sha256.Sum256(in)
	switch k := c.key.(type) {
	case *ecdsa.PrivateKey:
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			panic(err)
		}
		out := make([]byte, 64)
		r.FillBytes(out[:32])
		s.FillBytes(out[32:])
		return out
	case ed25519.PrivateKey:
		return ed25519.Sign(k, in)
	case *rsa.PrivateKey:
		var sig []byte
		var err error
		if c.Alg == "PS256" {
			sig, err = rsa.SignPSS(rand.Reader, k, crypto.SHA256, sum[:], &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthEqualsHash})
		} else {
			sig, err = rsa.SignPKCS1v15(rand.Reader, k, crypto.SHA256, sum[:])
		}
		if err != nil {
			panic(err)
		}
		return sig
	}
	panic("dpoptest: unsupported key")
}

// PrivateJWK returns the key's JWK with its private members, for tests
// that send what a client must not.
func (c *Client) PrivateJWK() json.RawMessage {
	raw, err := (&jose.JSONWebKey{Key: c.key}).MarshalJSON()
	if err != nil {
		panic(err)
	}
	return raw
}
