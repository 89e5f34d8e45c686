package bundles

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// bundleServer serves one bundle tarball as an OPA bundle server does.
type bundleServer struct {
	mu          sync.Mutex
	body        []byte
	etag        string
	mode        string // "", "error" or "slow"
	bearer      string // required token, if set
	notModified atomic.Int64
	requests    atomic.Int64
}

func (s *bundleServer) set(files map[string]string, etag string, t *testing.T) {
	body := tarball(t, files)
	s.mu.Lock()
	s.body, s.etag = body, etag
	s.mu.Unlock()
}

func (s *bundleServer) setMode(mode string) {
	s.mu.Lock()
	s.mode = mode
	s.mu.Unlock()
}

func (s *bundleServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	body, etag, mode, bearer := s.body, s.etag, s.mode, s.bearer
	s.mu.Unlock()
	s.requests.Add(1)
	if bearer != "" && r.Header.Get("Authorization") != "Bearer "+bearer {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	switch mode {
	case "error":
		http.Error(w, "boom", http.StatusInternalServerError)
		return
	case "slow":
		select {
		case <-r.Context().Done():
		case <-time.After(waitLimit):
		}
		return
	}
	if etag != "" && r.Header.Get("If-None-Match") == etag {
		s.notModified.Add(1)
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if etag != "" {
		w.Header().Set("ETag", etag)
	}
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(body)
}

func fastPoll(url string) Source {
	return HTTPSource(url, Remote{MinDelay: 5 * time.Millisecond, MaxDelay: 10 * time.Millisecond})
}

func TestManagerPollsBundleServer(t *testing.T) {
	t.Run("etag_304_then_new_bundle", func(t *testing.T) {
		bs := &bundleServer{}
		bs.set(policyFiles("r1"), `"e1"`, t)
		srv := httptest.NewServer(bs)
		defer srv.Close()
		m, swaps, err := startManager(t, Options{Sources: []Source{fastPoll(srv.URL + "/bundles/authz.tar.gz")}})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		waitRevision(t, swaps, "r1")
		eventually(t, "two 304 answers", func() bool { return bs.notModified.Load() >= 2 })
		bs.set(policyFiles("r2"), `"e2"`, t)
		waitRevision(t, swaps, "r2")
		st := m.Status().Bundles[0]
		if st.ETag != `"e2"` || st.Revision != "r2" || st.LastDownloadAt.IsZero() {
			t.Errorf("bundle status %+v", st)
		}
	})
	t.Run("no_etag_same_bytes_no_swap", func(t *testing.T) {
		bs := &bundleServer{}
		bs.set(policyFiles("r1"), "", t)
		srv := httptest.NewServer(bs)
		defer srv.Close()
		_, swaps, err := startManager(t, Options{Sources: []Source{fastPoll(srv.URL)}})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		waitRevision(t, swaps, "r1")
		eventually(t, "four downloads", func() bool { return bs.requests.Load() >= 4 })
		select {
		case s := <-swaps:
			t.Fatalf("unchanged download swapped in %s again", s.Revision)
		default:
		}
	})
	t.Run("server_error_keeps_last_good", func(t *testing.T) {
		bs := &bundleServer{}
		bs.set(policyFiles("r1"), `"e1"`, t)
		srv := httptest.NewServer(bs)
		defer srv.Close()
		m, swaps, err := startManager(t, Options{Sources: []Source{fastPoll(srv.URL)}})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		waitRevision(t, swaps, "r1")
		bs.setMode("error")
		eventually(t, "a download error", func() bool { return strings.Contains(m.Status().Bundles[0].LastError, "500") })
		if !m.Ready() || m.Current().Revision != "r1" {
			t.Fatalf("status %+v", m.Status())
		}
	})
	t.Run("slow_server_times_out_then_recovers", func(t *testing.T) {
		bs := &bundleServer{mode: "slow"}
		bs.set(policyFiles("r1"), `"e1"`, t)
		srv := httptest.NewServer(bs)
		defer srv.Close()
		m, swaps, err := startManager(t, Options{Sources: []Source{fastPoll(srv.URL)}, FetchTimeout: 50 * time.Millisecond})
		if err == nil || m.Ready() {
			t.Fatalf("Start on a hanging server: err %v, ready %v", err, m.Ready())
		}
		if st := m.Status().Bundles[0]; !strings.Contains(st.LastError, "deadline exceeded") {
			t.Errorf("bundle status %+v", st)
		}
		bs.setMode("")
		waitRevision(t, swaps, "r1")
	})
	t.Run("broken_download_is_refused", func(t *testing.T) {
		bs := &bundleServer{}
		bs.set(policyFiles("r1"), `"e1"`, t)
		srv := httptest.NewServer(bs)
		defer srv.Close()
		m, swaps, err := startManager(t, Options{Sources: []Source{fastPoll(srv.URL)}})
		if err != nil {
			t.Fatalf("Start: %v", err)
		}
		waitRevision(t, swaps, "r1")
		bs.set(merge(policyFiles("r2"), map[string]string{"mcp/authz/policy.rego": "package mcp.authz\n\nallow if {\n"}), `"e2"`, t)
		eventually(t, "a refused download", func() bool { return strings.Contains(m.Status().Bundles[0].LastError, "rego_parse_error") })
		if m.Current().Revision != "r1" {
			t.Fatalf("revision %s", m.Current().Revision)
		}
	})
}

func TestBundleServerAuth(t *testing.T) {
	priv, pub := rsaKeys(t)
	certPEM, keyPEM, clientCert := clientCertificate(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "client.pem"), filepath.Join(dir, "client-key.pem")
	must(t, os.WriteFile(certFile, certPEM, 0o600))
	must(t, os.WriteFile(keyFile, keyPEM, 0o600))

	verified := func(url, _ string) Source {
		return HTTPSource(url, Remote{}, WithVerification(&Verification{PublicKey: pub}))
	}
	tests := map[string]struct {
		bearer string // required by the server
		mtls   bool
		signed bool
		source func(url, caFile string) Source
		want   string // error substring; "" means the bundle loads
	}{
		"bearer_ok": {
			bearer: "s3cret",
			source: func(url, _ string) Source { return HTTPSource(url, Remote{Bearer: "s3cret"}) },
		},
		"bearer_wrong": {
			bearer: "s3cret",
			source: func(url, _ string) Source { return HTTPSource(url, Remote{Bearer: "guess"}) },
			want:   "401 Unauthorized",
		},
		"mtls_ok": {
			mtls: true,
			source: func(url, ca string) Source {
				return HTTPSource(url, Remote{CACertFile: ca, ClientCertFile: certFile, ClientKeyFile: keyFile})
			},
		},
		"mtls_without_client_certificate": {
			mtls:   true,
			source: func(url, ca string) Source { return HTTPSource(url, Remote{CACertFile: ca}) },
			want:   "downloading",
		},
		"signed_ok": {
			signed: true,
			source: verified,
		},
		"unsigned_refused": {
			source: verified,
			want:   "bundle missing .signatures.json file",
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			files := policyFiles("auth-1")
			if tc.signed {
				files = sign(t, files, priv)
			}
			bs := &bundleServer{bearer: tc.bearer}
			bs.set(files, `"x"`, t)
			var srv *httptest.Server
			caFile := filepath.Join(t.TempDir(), "ca.pem")
			if tc.mtls {
				srv = httptest.NewUnstartedServer(bs)
				pool := x509.NewCertPool()
				pool.AddCert(clientCert)
				srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: pool, MinVersion: tls.VersionTLS12}
				srv.StartTLS()
				must(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))
			} else {
				srv = httptest.NewServer(bs)
			}
			defer srv.Close()
			snap, err := Compile(t.Context(), Options{Sources: []Source{tc.source(srv.URL, caFile)}, Queries: testQueries})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				if snap.Revision != "auth-1" {
					t.Errorf("revision %q", snap.Revision)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

// clientCertificate returns a self-signed client certificate and its key.
func clientCertificate(t *testing.T) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "mcpauthz-test-client"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	cert, err = x509.ParseCertificate(der)
	must(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	must(t, err)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), cert
}
