package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mcpauthz/mcpauthz/decision"
)

// TestOCIBundleFromConfig configures a bundle by OCI reference, with the
// registry's CA and an access token from files, and shows the app pulls
// the bundle through them and serves its policy.
func TestOCIBundleFromConfig(t *testing.T) {
	layer := gzipTar(t, map[string]string{
		".manifest":  `{"revision": "oci-7", "roots": ["mcp"]}`,
		"authz.rego": "package mcp.authz\n\ndecision := {\"allow\": true}\n",
		"README.md":  "not part of the bundle",
	})
	config := []byte("{}")
	digest := func(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }
	manifest, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        map[string]any{"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest(config), "size": len(config)},
		"layers":        []any{map[string]any{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest(layer), "size": len(layer)}},
	})
	if err != nil {
		t.Fatal(err)
	}
	content := map[string][]byte{
		"/v2/policies/mcp/manifests/v1":                  manifest,
		"/v2/policies/mcp/manifests/" + digest(manifest): manifest,
		"/v2/policies/mcp/blobs/" + digest(layer):        layer,
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer registry-token" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="https://auth.invalid/token",service="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		body, ok := content[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if strings.Contains(r.URL.Path, "/manifests/") {
			w.Header().Set("Content-Type", "application/vnd.oci.image.manifest.v1+json")
			w.Header().Set("Docker-Content-Digest", digest(body))
		}
		w.Header().Set("Content-Length", fmt.Sprint(len(body)))
		if r.Method == http.MethodGet {
			_, _ = w.Write(body)
		}
	}))
	defer srv.Close()

	dir := t.TempDir()
	caFile, tokenFile := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "token")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(tokenFile, []byte("registry-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := strings.TrimPrefix(srv.URL, "https://") + "/policies/mcp:v1"
	cfg, err := LoadConfig(writeConfig(t, fmt.Sprintf("bundles: [{oci: %q, ca_file: %q, bearer_token_file: %q, min_delay: 1m}]", ref, caFile, tokenFile)))
	if err != nil {
		t.Fatal(err)
	}
	a, err := buildApp(t.Context(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	ctx := t.Context()
	if err := a.bundles.Start(ctx); err != nil {
		t.Fatalf("Start: %v (status %+v)", err, a.bundles.Status())
	}
	st := a.bundles.Status()
	if !st.Ready || st.Revision != "oci-7" || st.Bundles[0].Name != ref || st.Bundles[0].ETag != digest(manifest) {
		t.Fatalf("status %+v, want oci-7 from %s", st, ref)
	}
	d := a.engine.Decide(ctx, &decision.Request{
		Method: "POST", Path: "/mcp", Headers: map[string]string{"content-type": "application/json"},
		Body: []byte(`{"jsonrpc":"2.0","id":1,"method":"ping"}`),
	})
	if !d.Allow || d.Revision != "oci-7" {
		t.Errorf("decision allow=%v revision=%q (%s), want an allow from oci-7", d.Allow, d.Revision, d.Reason)
	}
}

// gzipTar packs files into a bundle tarball.
func gzipTar(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	for name, body := range files {
		if err := tw.WriteHeader(&tar.Header{Name: "/" + name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
