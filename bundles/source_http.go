package bundles

import (
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// HTTPSource is a bundle resource on an OPA-compatible bundle server at
// url (http:// or https://). A Manager polls it with If-None-Match and a
// jittered delay between r.MinDelay and r.MaxDelay. Its name defaults to
// url.
func HTTPSource(url string, r Remote, opts ...SourceOption) Source {
	return &httpSource{sourceBase: newSourceBase(redact.URL(url), opts), url: url, remote: r.withDefaults()}
}

type httpSource struct {
	sourceBase
	url    string
	remote Remote
}

func (s *httpSource) open(c *compileConfig) (feed, error) {
	if !strings.HasPrefix(s.url, "http://") && !strings.HasPrefix(s.url, "https://") {
		return nil, fmt.Errorf("bundle source %q: url must be http:// or https://", s.name)
	}
	if err := s.remote.check(s.name); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	f := &httpFetcher{src: s, c: c, maxBytes: c.opts.MaxFileBytes, timeout: c.opts.FetchTimeout}
	d := &downloader{name: s.name, remote: s.remote, get: f.get}
	f.client, d.setupErr = s.remote.client(s.name)
	return d, nil
}

// httpFetcher downloads one bundle from a bundle server, speaking the part
// of OPA's bundle service protocol a replica needs: GET the bundle
// resource, send the last ETag as If-None-Match, treat 304 as "unchanged".
type httpFetcher struct {
	src      *httpSource
	c        *compileConfig
	client   *http.Client
	maxBytes int64
	timeout  time.Duration
	// etag and sum are the ETag and SHA-256 of the last bundle that
	// loaded; only the poll goroutine (or the one-shot Compile) touches
	// them.
	etag string
	sum  [sha256.Size]byte
}

// get downloads, verifies and parses the bundle. It returns nil and no
// error when the server says the bundle is unchanged.
func (f *httpFetcher) get(ctx context.Context, withTests bool) (*namedBundle, string, error) {
	name := f.src.name
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, f.src.url, nil)
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: %w", name, err)
	}
	if f.etag != "" {
		req.Header.Set("If-None-Match", f.etag)
	}
	if f.src.remote.Bearer != "" {
		req.Header.Set("Authorization", "Bearer "+f.src.remote.Bearer)
	}
	resp, err := f.client.Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: downloading: %w", name, err)
	}
	defer func() { _ = resp.Body.Close() }()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotModified:
		return nil, "", nil
	default:
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, "", fmt.Errorf("bundle %s: server answered %s", name, resp.Status)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, f.maxBytes+1))
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: downloading: %w", name, err)
	}
	if int64(len(raw)) > f.maxBytes {
		return nil, "", fmt.Errorf("bundle %s: download exceeds the limit of %d bytes", name, f.maxBytes)
	}
	// A server without ETags sends the same bytes again: treat them as
	// unchanged rather than recompiling and swapping at every poll.
	sum := sha256.Sum256(raw)
	if sum == f.sum {
		f.etag = resp.Header.Get("ETag")
		return nil, "", nil
	}
	// The base directory drops the scheme: OPA verifies signatures
	// against file paths, and a base with "://" in it does not make one.
	base := strings.TrimPrefix(strings.TrimPrefix(name, "https://"), "http://")
	nb, err := f.c.readTarball(name, base, raw, f.src.verification, withTests)
	if err != nil {
		return nil, "", err
	}
	// Remember the ETag only once the bundle has been read and verified:
	// a broken download is fetched again at the next poll.
	f.etag, f.sum = resp.Header.Get("ETag"), sum
	return nb, f.etag, nil
}
