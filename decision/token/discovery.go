package token

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
)

// maxDocumentBytes bounds a JWKS or metadata document: a misbehaving
// endpoint must not make us read without end.
const maxDocumentBytes = 1 << 20

// fileFetcher reads a JWKS from a file on every fetch, so a key file
// replaced on disk (a rotated Kubernetes Secret) is picked up on schedule.
func fileFetcher(path string) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		return os.ReadFile(path) // its error names the path
	}
}

// urlFetcher GETs a JWKS from a fixed URL.
func urlFetcher(client *http.Client, u string) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		return getDocument(ctx, client, u)
	}
}

// getDocument GETs a JSON document, requiring 200 and bounding its size.
func getDocument(ctx context.Context, client *http.Client, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetching %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// Drain a little so the connection can be reused.
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("fetching %s: HTTP %d", u, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", u, err)
	}
	if len(data) > maxDocumentBytes {
		return nil, fmt.Errorf("reading %s: larger than %d bytes", u, maxDocumentBytes)
	}
	return data, nil
}

// discoveryFetcher finds the JWKS URL from the issuer's published metadata
// and then fetches the JWKS from it. The URL, once found, is kept: metadata
// documents change far less often than keys.
type discoveryFetcher struct {
	client *http.Client
	issuer string

	mu      sync.Mutex
	jwksURL string
}

func (d *discoveryFetcher) fetch(ctx context.Context) ([]byte, error) {
	u, err := d.resolve(ctx)
	if err != nil {
		return nil, err
	}
	return getDocument(ctx, d.client, u)
}

// resolve returns the jwks_uri, reading metadata on first use. The
// candidates are tried in order: RFC 8414 (with the well-known segment
// inserted before the issuer's path), then OpenID Connect Discovery
// (appended after it). A document counts only if its "issuer" equals the
// configured issuer exactly (RFC 8414 §3.3): otherwise a metadata document
// could point us at keys of another issuer.
func (d *discoveryFetcher) resolve(ctx context.Context) (string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.jwksURL != "" {
		return d.jwksURL, nil
	}
	candidates, err := metadataURLs(d.issuer)
	if err != nil {
		return "", err
	}
	var errs []error
	for _, c := range candidates {
		u, err := d.tryMetadata(ctx, c)
		if err == nil {
			d.jwksURL = u
			return u, nil
		}
		errs = append(errs, err)
	}
	return "", fmt.Errorf("discovering the JWKS of issuer %s: %w", d.issuer, errors.Join(errs...))
}

func (d *discoveryFetcher) tryMetadata(ctx context.Context, metaURL string) (string, error) {
	data, err := getDocument(ctx, d.client, metaURL)
	if err != nil {
		return "", err
	}
	var meta struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(data, &meta); err != nil {
		return "", fmt.Errorf("parsing %s: %w", metaURL, err)
	}
	if meta.Issuer != d.issuer {
		return "", fmt.Errorf("%s names issuer %q, not %q", metaURL, meta.Issuer, d.issuer)
	}
	ju, err := url.Parse(meta.JWKSURI)
	if err != nil || (ju.Scheme != "https" && ju.Scheme != "http") || ju.Host == "" {
		return "", fmt.Errorf("%s has no usable jwks_uri (%q)", metaURL, meta.JWKSURI)
	}
	return meta.JWKSURI, nil
}

// metadataURLs returns the metadata locations for an issuer, in the order
// they are tried.
func metadataURLs(issuer string) ([]string, error) {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil, fmt.Errorf("parsing issuer %q: %w", issuer, err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("issuer %q is not an http(s) URL without query or fragment, so it has no metadata to discover", issuer)
	}
	path := strings.TrimSuffix(u.EscapedPath(), "/")
	origin := u.Scheme + "://" + u.Host
	return []string{
		origin + "/.well-known/oauth-authorization-server" + path,
		origin + path + "/.well-known/openid-configuration",
	}, nil
}
