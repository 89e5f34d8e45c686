package state_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/mcpauthz/mcpauthz/decision/state"
	"github.com/mcpauthz/mcpauthz/internal/redistest"
)

// clusterBackend is a one-node Redis Cluster holding every slot: the
// Cluster client's routing (CLUSTER SLOTS, MOVED) is real.
func clusterBackend(t *testing.T) func(*testing.T) backend {
	srv := redistest.Start(t, redistest.Config{Args: []string{
		"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"}})
	ctx := context.Background()
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	defer admin.Close()
	if err := admin.Do(ctx, "CLUSTER", "ADDSLOTSRANGE", 0, 16383).Err(); err != nil {
		t.Fatalf("assigning the slots: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		info, err := admin.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(info, "cluster_state:ok") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("cluster not ok after 20s: %v %s", err, info)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return redisBackendOn(state.RedisOptions{Addresses: []string{srv.Addr}, Cluster: true})
}

// TestRedisDownAndBack: while Redis is down every operation fails, soon
// (within the read timeout, not the dial timeout); once it is back the
// same store works again without being rebuilt.
func TestRedisDownAndBack(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	s := newRedis(t, state.RedisOptions{Addresses: []string{srv.Addr}, ReadTimeout: 300 * time.Millisecond, DialTimeout: 10 * time.Second})
	ctx := context.Background()
	if _, err := s.Once(ctx, "once:before", time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	for op, call := range map[string]func() error{
		"once":  func() error { _, err := s.Once(ctx, "once:down", time.Minute); return err },
		"claim": func() error { _, err := s.Claim(ctx, "session:down", "alice", time.Minute); return err },
		"get":   func() error { _, _, err := s.Get(ctx, "session:down"); return err },
		"take":  func() error { _, _, err := s.Take(ctx, "record:down"); return err },
	} {
		began := time.Now()
		err := call()
		if err == nil {
			t.Errorf("%s with Redis down: no error", op)
		}
		// Far below the 10s dial timeout: the operation's own bound holds.
		if d := time.Since(began); d > 5*time.Second {
			t.Errorf("%s with Redis down took %v", op, d)
		}
	}
	srv.Restart()
	deadline := time.Now().Add(20 * time.Second)
	for {
		first, err := s.Once(ctx, "once:after", time.Minute)
		if err == nil {
			if !first {
				t.Fatal("a new key after the restart is not first")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing 20s after Redis came back: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestRedisTLSAndACL: a TLS-only server with a test CA, client
// certificates required, the default user off and an ACL user allowed only
// keys under its prefix.
func TestRedisTLSAndACL(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := newCA(t)
	caFile := writePEM(t, dir, "ca.pem", "CERTIFICATE", ca.Raw)
	serverCert, serverKey := leaf(t, ca, caKey, "redis.test", x509.ExtKeyUsageServerAuth)
	clientCert, clientKey := leaf(t, ca, caKey, "mcpauthz", x509.ExtKeyUsageClientAuth)
	srv := redistest.Start(t, redistest.Config{
		TLS: &redistest.TLS{
			CertFile:    writePEM(t, dir, "server.pem", "CERTIFICATE", serverCert),
			KeyFile:     writePEM(t, dir, "server-key.pem", "PRIVATE KEY", serverKey),
			CAFile:      caFile,
			ClientCerts: true,
		},
		Users: []string{"default off", "mcpauthz on >s3cret ~mcpauthz:* -@all +@read +@write +@scripting +@connection -@dangerous"},
	})
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	pair, err := tls.X509KeyPair(pemOf("CERTIFICATE", clientCert), pemOf("PRIVATE KEY", clientKey))
	if err != nil {
		t.Fatal(err)
	}
	good := &tls.Config{RootCAs: pool, ServerName: "redis.test", Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12}
	noCert := &tls.Config{RootCAs: pool, ServerName: "redis.test", MinVersion: tls.VersionTLS12}
	ctx := context.Background()
	tests := map[string]struct {
		opts state.RedisOptions
		ok   bool
	}{
		"tls_and_acl_user": {state.RedisOptions{TLS: good, Username: "mcpauthz", Password: "s3cret"}, true},
		"wrong_password":   {state.RedisOptions{TLS: good, Username: "mcpauthz", Password: "wrong"}, false},
		"default_user":     {state.RedisOptions{TLS: good}, false},
		"no_tls":           {state.RedisOptions{Username: "mcpauthz", Password: "s3cret"}, false},
		"no_client_cert":   {state.RedisOptions{TLS: noCert, Username: "mcpauthz", Password: "s3cret"}, false},
		"other_prefix":     {state.RedisOptions{TLS: good, Username: "mcpauthz", Password: "s3cret", KeyPrefix: "other:"}, false},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			tc.opts.Addresses = []string{srv.Addr}
			s := newRedis(t, tc.opts)
			first, err := s.Once(ctx, "once:tls-"+name, time.Minute)
			if tc.ok && (err != nil || !first) {
				t.Fatalf("Once = %v, %v; want first", first, err)
			}
			if !tc.ok && err == nil {
				t.Fatalf("Once succeeded (first %v); want an error", first)
			}
			if !tc.ok {
				return
			}
			// The ACL user's categories allow every operation (the scripts
			// included): docs/deployment.md names them.
			if _, err := s.Claim(ctx, "session:acl", "alice", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := s.Put(ctx, "record:acl", "pending", time.Minute); err != nil {
				t.Fatal(err)
			}
			if ok, err := s.CompareAndSwap(ctx, "record:acl", "pending", "granted", time.Minute); err != nil || !ok {
				t.Fatal(ok, err)
			}
			if _, _, err := s.Take(ctx, "record:acl"); err != nil {
				t.Fatal(err)
			}
			if err := errors.Join(s.Delete(ctx, "session:acl"), s.Ping(ctx)); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func newCA(t *testing.T) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mcpauthz test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return ca, key
}

// leaf issues a certificate for name (and 127.0.0.1) from the CA; it
// returns the certificate's DER and its PKCS #8 key.
func leaf(t *testing.T, ca *x509.Certificate, caKey *ecdsa.PrivateKey, name string, usage x509.ExtKeyUsage) ([]byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		NotBefore:   time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{usage},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return der, pk
}

func pemOf(kind string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der})
}

func writePEM(t *testing.T, dir, name, kind string, der []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, pemOf(kind, der), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRedisStuckBoundedByReadTimeout: a Redis that holds its connections
// and answers nothing (paused) makes each operation fail after the read
// timeout, not hang; resumed, the same store answers again.
func TestRedisStuckBoundedByReadTimeout(t *testing.T) {
	srv := redistest.Start(t, redistest.Config{})
	const readTimeout = 200 * time.Millisecond
	s := newRedis(t, state.RedisOptions{Addresses: []string{srv.Addr}, ReadTimeout: readTimeout, DialTimeout: time.Minute})
	ctx := context.Background()
	if _, err := s.Once(ctx, "once:before", time.Minute); err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	defer srv.Resume()
	for op, call := range map[string]func() error{
		"once":  func() error { _, err := s.Once(ctx, "once:stuck", time.Minute); return err },
		"claim": func() error { _, err := s.Claim(ctx, "session:stuck", "alice", time.Minute); return err },
		"get":   func() error { _, _, err := s.Get(ctx, "session:stuck"); return err },
	} {
		began := time.Now()
		err := call()
		took := time.Since(began)
		if err == nil {
			t.Errorf("%s on a stuck Redis: no error", op)
		}
		// Not a timing measurement: without the bound it would wait
		// forever (a paused server never answers).
		if took > 10*readTimeout {
			t.Errorf("%s on a stuck Redis took %v, read timeout %v", op, took, readTimeout)
		}
	}
	srv.Resume()
	waitOK(t, func() error { _, err := s.Once(ctx, "once:resumed", time.Minute); return err })
}

// waitOK retries call until it succeeds, for 20s at most.
func waitOK(t *testing.T, call func() error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := call()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("still failing after 20s: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
