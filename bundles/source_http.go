package bundles

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

// fetcher downloads one bundle from a bundle server, speaking the part of
// OPA's bundle service protocol a replica needs: GET the bundle resource,
// send the last ETag as If-None-Match, treat 304 as "unchanged".
type fetcher struct {
	src      Source
	client   *http.Client
	maxBytes int64
	timeout  time.Duration
	// etag and sum are the ETag and SHA-256 of the last bundle that
	// loaded; only the poll goroutine (or the one-shot Compile) touches
	// them.
	etag string
	sum  [sha256.Size]byte
}

func newFetcher(s Source, opts Options) (*fetcher, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.CACertFile != "" {
		pem, err := os.ReadFile(filepath.Clean(s.CACertFile))
		if err != nil {
			return nil, fmt.Errorf("bundle %s: reading CA certificates: %w", s.Name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bundle %s: no certificates in %s", s.Name, s.CACertFile)
		}
		tlsCfg.RootCAs = pool
	}
	if s.ClientCertFile != "" {
		// Check the pair now, so a typo fails at start-up; then read it
		// at each handshake, so a rotated certificate is picked up.
		if _, err := tls.LoadX509KeyPair(s.ClientCertFile, s.ClientKeyFile); err != nil {
			return nil, fmt.Errorf("bundle %s: loading client certificate: %w", s.Name, err)
		}
		certFile, keyFile := s.ClientCertFile, s.ClientKeyFile
		tlsCfg.GetClientCertificate = func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c, err := tls.LoadX509KeyPair(certFile, keyFile)
			if err != nil {
				return nil, fmt.Errorf("loading client certificate: %w", err)
			}
			return &c, nil
		}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tlsCfg
	return &fetcher{
		src:      s,
		client:   &http.Client{Transport: tr},
		maxBytes: opts.MaxFileBytes,
		timeout:  opts.FetchTimeout,
	}, nil
}

// fetch downloads, verifies and parses the bundle. It returns nil and no
// error when the server says the bundle is unchanged.
func (f *fetcher) fetch(ctx context.Context, c *compileConfig, withTests bool) (*namedBundle, error) {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.src.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", f.src.Name, err)
	}
	if f.etag != "" {
		req.Header.Set("If-None-Match", f.etag)
	}
	if f.src.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+f.src.Bearer)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: downloading: %w", f.src.Name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, nil
	default:
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("bundle %s: server answered %s", f.src.Name, resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, fmt.Errorf("bundle %s: downloading: %w", f.src.Name, err)
	}
	if int64(len(raw)) > f.maxBytes {
		return nil, fmt.Errorf("bundle %s: download exceeds the limit of %d bytes", f.src.Name, f.maxBytes)
	}
	// A server without ETags sends the same bytes again: treat them as
	// unchanged rather than recompiling and swapping at every poll.
	sum := sha256.Sum256(raw)
	if sum == f.sum {
		f.etag = resp.Header.Get("ETag")
		return nil, nil
	}
	b, err := c.readSource(f.src, raw, withTests)
	if err != nil {
		return nil, err
	}
	rev, err := revisionOf(b)
	if err != nil {
		return nil, fmt.Errorf("bundle %s: %w", f.src.Name, err)
	}
	// Remember the ETag only once the bundle has been read and verified:
	// a broken download is fetched again at the next poll.
	f.etag, f.sum = resp.Header.Get("ETag"), sum
	return &namedBundle{name: f.src.Name, revision: rev, b: b}, nil
}

// jitter returns a delay drawn uniformly from [lo, hi], so replicas that
// started together spread their polls over the window.
func jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo+1)
}
