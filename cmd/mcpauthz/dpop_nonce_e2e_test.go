package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mcpauthz/mcpauthz/decision/dpop/dpoptest"
	"github.com/mcpauthz/mcpauthz/internal/envoytest"
)

// TestDPoPNonceBinary drives the real binary over ext_authz with
// tokens.dpop.nonce enabled (issue 23 item 3, RFC 9449 §8): a proof
// without a nonce gets 401 use_dpop_nonce and a DPoP-Nonce header, a
// forged nonce the same; a new proof carrying the given nonce is allowed.
func TestDPoPNonceBinary(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the real binary")
	}
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	defer up.Close()
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		t.Fatal(err)
	}
	secretPath := filepath.Join(t.TempDir(), "nonce.key")
	if err := os.WriteFile(secretPath, secret, 0o600); err != nil {
		t.Fatal(err)
	}
	rig := startDPoPBinary(t, up.URL+"/mcp",
		fmt.Sprintf("{algorithms: [ES256], nonce: {enabled: true, keys: [{id: k1, secret_file: %q}], window: 5m}}", secretPath))

	client, err := dpoptest.New("ES256")
	if err != nil {
		t.Fatal(err)
	}
	bound := rig.key.sign(t, jwt.MapClaims{"iss": rig.iss, "aud": rig.resource, "sub": "agent", "scope": "mcp:tools",
		"exp": time.Now().Add(time.Hour).Unix(), "cnf": map[string]any{"jkt": client.JKT}})
	header := func(a envoytest.Answer, name string) string {
		for k, v := range a.Headers {
			if strings.EqualFold(k, name) {
				return v
			}
		}
		return ""
	}

	a := rig.check(t, "DPoP "+bound, client.Proof("POST", rig.resource, bound))
	nonce := header(a, "DPoP-Nonce")
	if a.Allowed || a.Status != 401 || !strings.HasPrefix(header(a, "WWW-Authenticate"), `DPoP error="use_dpop_nonce", `) ||
		!strings.Contains(header(a, "WWW-Authenticate"), `algs="ES256"`) || !strings.HasPrefix(nonce, "k1.") {
		t.Fatalf("proof without nonce: %+v; want 401 use_dpop_nonce with a DPoP-Nonce", a)
	}
	if a := rig.check(t, "DPoP "+bound, client.ProofWithNonce("POST", rig.resource, bound, "k1.forged")); a.Allowed || a.Status != 401 ||
		!strings.Contains(header(a, "WWW-Authenticate"), "use_dpop_nonce") {
		t.Fatalf("forged nonce: %+v; want 401 use_dpop_nonce", a)
	}
	if a := rig.check(t, "DPoP "+bound, client.ProofWithNonce("POST", rig.resource, bound, nonce)); !a.Allowed {
		t.Fatalf("proof with the server's nonce: %+v; want allowed", a)
	}
}
