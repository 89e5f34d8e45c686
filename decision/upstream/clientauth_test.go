package upstream

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// TestPrivateKeyJWT: with private_key_jwt the token endpoint gets a client
// assertion signed by the client's key (iss and sub the client id, aud the
// endpoint, a jti, a short exp) and no Basic credentials.
func TestPrivateKeyJWT(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		key crypto.Signer
		alg string
	}{
		"rsa": {key: rsaKey, alg: "RS256"},
		"ec":  {key: ecKey, alg: "ES256"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var problems []string
			var srvURL string
			as := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if _, _, ok := r.BasicAuth(); ok {
					problems = append(problems, "Basic credentials sent")
				}
				if r.FormValue("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" || r.FormValue("client_id") != "mcpauthz" {
					problems = append(problems, "client_assertion_type or client_id wrong")
				}
				claims := jwt.MapClaims{}
				tok, err := jwt.ParseWithClaims(r.FormValue("client_assertion"), claims, func(*jwt.Token) (any, error) {
					return tc.key.Public(), nil
				}, jwt.WithValidMethods([]string{tc.alg}), jwt.WithAudience(srvURL+"/token"), jwt.WithIssuer("mcpauthz"), jwt.WithExpirationRequired())
				if err != nil || !tok.Valid || claims["sub"] != "mcpauthz" || claims["jti"] == "" || tok.Header["kid"] != "k1" {
					problems = append(problems, "client assertion refused")
				}
				w.Header().Set("Content-Type", "application/json")
				_ = json.NewEncoder(w).Encode(map[string]any{"access_token": "exchanged", "token_type": "Bearer", "expires_in": 60})
			}))
			defer as.Close()
			srvURL = as.URL
			c, err := New(Options{Entries: []Entry{{Name: "files", Exchange: &Exchange{
				TokenURL: as.URL + "/token", ClientID: "mcpauthz", PrivateKeyJWT: &PrivateKeyJWT{Key: tc.key, KeyID: "k1"},
			}}}})
			if err != nil {
				t.Fatal(err)
			}
			hs, err := c.Upstream(context.Background(), caller("alice", "caller-token", nil, ""))
			if err != nil || len(hs) != 1 || hs[0].Value != "Bearer exchanged" {
				t.Fatalf("headers %v, error %v", hs, err)
			}
			if len(problems) > 0 {
				t.Errorf("the token endpoint found: %v", problems)
			}
		})
	}
}

func TestParsePrivateKey(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	sec1, err := x509.MarshalECPrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := map[string]struct {
		pem     []byte
		wantErr string
	}{
		"pkcs1_rsa":   {pem: pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey)})},
		"pkcs8_ec":    {pem: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})},
		"sec1_ec":     {pem: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})},
		"not_pem":     {pem: []byte("secret"), wantErr: "no PEM block"},
		"not_a_key":   {pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2, 3}}), wantErr: "not a PKCS"},
		"small_rsa":   {wantErr: "too small"},
		"other_curve": {wantErr: "P-256"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			var (
				key crypto.Signer
				err error
			)
			switch name {
			case "small_rsa":
				small, err := rsa.GenerateKey(rand.Reader, 1024)
				if err != nil {
					t.Fatal(err)
				}
				key = small
			case "other_curve":
				p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				key = p384
			default:
				key, err = ParsePrivateKey(tc.pem)
			}
			if err == nil && key != nil {
				_, err = (&PrivateKeyJWT{Key: key}).assertion("c", "https://as/token", time.Now())
			}
			if tc.wantErr == "" && err != nil {
				t.Fatal(err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Errorf("error %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
