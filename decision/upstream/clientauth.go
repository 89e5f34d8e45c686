package upstream

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// clientAssertionJWT is the client_assertion_type of a JWT assertion
// (RFC 7523 §2.2).
const clientAssertionJWT = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

// assertionTTL is the lifetime of a client assertion: it is made for one
// request, sent at once.
const assertionTTL = time.Minute

// PrivateKeyJWT authenticates mcpauthz to the token endpoint with a JWT it
// signs (private_key_jwt, OpenID Connect Core §9; RFC 7523 §2.2): iss and
// sub are the client id, aud the token endpoint, and a fresh jti and a
// one-minute exp keep it from being replayed.
type PrivateKeyJWT struct {
	// Key is the client's private key: RSA (RS256) or ECDSA P-256 (ES256).
	Key crypto.Signer
	// KeyID, when set, is the kid the authorization server knows the
	// public key by.
	KeyID string
}

// method is the signing method of the key.
func (p *PrivateKeyJWT) method() (jwt.SigningMethod, error) {
	switch k := p.Key.(type) {
	case *rsa.PrivateKey:
		if k.N.BitLen() < 2048 {
			return nil, fmt.Errorf("RSA key of %d bits is too small (minimum 2048)", k.N.BitLen())
		}
		return jwt.SigningMethodRS256, nil
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("an ECDSA key must be on P-256 (ES256)")
		}
		return jwt.SigningMethodES256, nil
	case nil:
		return nil, errors.New("no key")
	}
	return nil, fmt.Errorf("unsupported key type %T (RSA or ECDSA P-256)", p.Key)
}

func (p *PrivateKeyJWT) check() error {
	_, err := p.method()
	return err
}

// assertion signs the client assertion of one request to tokenURL.
func (p *PrivateKeyJWT) assertion(clientID, tokenURL string, now time.Time) (string, error) {
	m, err := p.method()
	if err != nil {
		return "", err
	}
	var jti [16]byte
	if _, err := rand.Read(jti[:]); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	tok := jwt.NewWithClaims(m, jwt.MapClaims{
		"iss": clientID, "sub": clientID, "aud": tokenURL,
		"jti": base64.RawURLEncoding.EncodeToString(jti[:]),
		"iat": now.Unix(), "exp": now.Add(assertionTTL).Unix(),
	})
	if p.KeyID != "" {
		tok.Header["kid"] = p.KeyID
	}
	return tok.SignedString(p.Key)
}

// ParsePrivateKey reads a PEM private key (PKCS #8, PKCS #1 RSA or SEC 1
// EC), as private_key_jwt.key_file holds it.
func ParsePrivateKey(data []byte) (crypto.Signer, error) {
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("no PEM block")
	}
	if k, err := x509.ParsePKCS8PrivateKey(block.Bytes); err == nil {
		s, ok := k.(crypto.Signer)
		if !ok {
			return nil, fmt.Errorf("unsupported key type %T", k)
		}
		return s, nil
	}
	if k, err := x509.ParsePKCS1PrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	if k, err := x509.ParseECPrivateKey(block.Bytes); err == nil {
		return k, nil
	}
	return nil, fmt.Errorf("PEM block %q is not a PKCS #8, PKCS #1 or SEC 1 private key", block.Type)
}
