package bundles

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Source is where one bundle comes from. Each kind lives in its own file:
// DirSource (a directory or .tar.gz file, watched), FSSource (an fs.FS such
// as the embedded default policy), HTTPSource (an OPA bundle server,
// polled), OCISource (an OCI registry, polled). A new kind is one more
// file with a type that implements Source.
//
// A Source is configuration only. Each Manager or Compile opens it into a
// feed, which keeps what the source needs between reads (an ETag, the last
// download, a file watch), and every feed tells the Manager of a change
// through the same callback, as an Update.
type Source interface {
	// Name identifies the bundle in status, metrics and error messages.
	Name() string
	// open checks the configuration and returns a feed for one Manager
	// or one Compile. Mistakes no reload could fix are errors here.
	open(c *compileConfig) (feed, error)
}

// feed is a Source opened for one Manager or one Compile.
type feed interface {
	// fetch downloads the bundle once, for sources that download: it
	// returns what came (Changed for a new bundle, not Changed for an
	// unchanged one, Err for a failure) and downloads true. Sources read
	// from where they are return downloads false.
	fetch(ctx context.Context, withTests bool) (u Update, downloads bool)
	// read returns the bundle a load combines: read now from disk or fs,
	// or the last good download (an error before the first).
	read(withTests bool) (*namedBundle, error)
	// follow watches or polls the source in goroutines tracked by wg,
	// until ctx ends, and hands every update to deliver. It returns once
	// it is set up.
	follow(ctx context.Context, wg *sync.WaitGroup, deliver func(context.Context, Update))
}

// Update is what a source delivers to the Manager's one callback: a new
// version is there (Changed), or a download brought nothing new, or it
// failed (Err).
type Update struct {
	// Source is the Name of the source.
	Source string
	// Changed says the bundle may have changed: the Manager loads again.
	Changed bool
	// Download marks the result of a download, which status and the
	// downloads metric count; ETag is the one it came with.
	Download bool
	ETag     string
	// Err is why the source could not be read or downloaded.
	Err error
}

// SourceOption sets what every kind of source has: a name and the
// verification of signatures.
type SourceOption func(*sourceBase)

// WithName names the source in status, metrics and error messages, instead
// of its path, URL or reference.
func WithName(name string) SourceOption {
	return func(b *sourceBase) { b.name = name }
}

// WithVerification requires a valid .signatures.json: an unsigned or
// tampered bundle is refused.
func WithVerification(v *Verification) SourceOption {
	return func(b *sourceBase) { b.verification = v }
}

// sourceBase holds the settings every kind of source has.
type sourceBase struct {
	name         string
	verification *Verification
}

func newSourceBase(defaultName string, opts []SourceOption) sourceBase {
	b := sourceBase{name: defaultName}
	for _, o := range opts {
		o(&b)
	}
	return b
}

// Name returns the source's name.
func (b *sourceBase) Name() string { return b.name }

// check reports a verification configuration that cannot work.
func (b *sourceBase) check() error {
	if b.verification != nil {
		if _, err := b.verification.config(); err != nil {
			return fmt.Errorf("bundle source %q: %w", b.name, err)
		}
	}
	return nil
}

// Remote configures a source that downloads its bundle: how it
// authenticates, which CAs it trusts, and how often it polls.
type Remote struct {
	// Bearer is sent as "Authorization: Bearer <token>".
	Bearer string
	// CACertFile is a PEM bundle of CAs trusted for the server (default:
	// the system pool).
	CACertFile string
	// ClientCertFile and ClientKeyFile are a PEM client certificate and key
	// for mutual TLS.
	ClientCertFile, ClientKeyFile string
	// MinDelay and MaxDelay bound the polling delay (defaults 10s and 20s;
	// MaxDelay defaults to twice a MinDelay that is set).
	MinDelay, MaxDelay time.Duration
}

// withDefaults returns r with its delays set.
func (r Remote) withDefaults() Remote {
	if r.MinDelay <= 0 {
		r.MinDelay = DefaultMinDelay
	}
	switch {
	case r.MaxDelay <= 0 && r.MinDelay == DefaultMinDelay:
		r.MaxDelay = DefaultMaxDelay
	case r.MaxDelay <= 0:
		r.MaxDelay = 2 * r.MinDelay
	case r.MaxDelay < r.MinDelay:
		r.MaxDelay = r.MinDelay
	}
	return r
}

// check reports settings that cannot work.
func (r Remote) check(name string) error {
	if (r.ClientCertFile == "") != (r.ClientKeyFile == "") {
		return fmt.Errorf("bundle source %q: client certificate and key must be set together", name)
	}
	return nil
}

// client builds the HTTP client of a downloading source.
func (r Remote) client(name string) (*http.Client, error) {
	tlsCfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if r.CACertFile != "" {
		pem, err := os.ReadFile(filepath.Clean(r.CACertFile))
		if err != nil {
			return nil, fmt.Errorf("bundle %s: reading CA certificates: %w", name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bundle %s: no certificates in %s", name, r.CACertFile)
		}
		tlsCfg.RootCAs = pool
	}
	if r.ClientCertFile != "" {
		// Check the pair now, so a typo fails at start-up; then read it
		// at each handshake, so a rotated certificate is picked up.
		if _, err := tls.LoadX509KeyPair(r.ClientCertFile, r.ClientKeyFile); err != nil {
			return nil, fmt.Errorf("bundle %s: loading client certificate: %w", name, err)
		}
		certFile, keyFile := r.ClientCertFile, r.ClientKeyFile
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
	return &http.Client{Transport: tr}, nil
}

// downloader is the part of a feed that every downloading source shares:
// the last good download, and polling. Its source supplies get, which
// downloads once and returns a new bundle, or nil when it is unchanged.
type downloader struct {
	name   string
	remote Remote
	// setupErr is why the source cannot download at all (an unreadable
	// CA file, say): every fetch reports it and nothing polls.
	setupErr error
	get      func(ctx context.Context, withTests bool) (nb *namedBundle, etag string, err error)

	mu   sync.Mutex
	last *namedBundle
}

func (d *downloader) fetch(ctx context.Context, withTests bool) (Update, bool) {
	u := Update{Source: d.name, Download: true}
	if d.setupErr != nil {
		u.Err = d.setupErr
		return u, true
	}
	nb, etag, err := d.get(ctx, withTests)
	switch {
	case err != nil:
		u.Err = err
	case nb != nil:
		d.mu.Lock()
		d.last = nb
		d.mu.Unlock()
		u.Changed, u.ETag = true, etag
	}
	return u, true
}

func (d *downloader) read(bool) (*namedBundle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.last == nil {
		return nil, fmt.Errorf("bundle %s: not downloaded yet", d.name)
	}
	return d.last, nil
}

// follow polls with a jittered delay until ctx ends.
func (d *downloader) follow(ctx context.Context, wg *sync.WaitGroup, deliver func(context.Context, Update)) {
	if d.setupErr != nil {
		return // configuration that cannot work: no poll can fix it
	}
	wg.Go(func() {
		t := time.NewTimer(jitter(d.remote.MinDelay, d.remote.MaxDelay))
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			u, _ := d.fetch(ctx, false)
			deliver(ctx, u)
			t.Reset(jitter(d.remote.MinDelay, d.remote.MaxDelay))
		}
	})
}

// errNotModifiedFirst is a download that found nothing new before any
// bundle had come.
var errNotModifiedFirst = errors.New("bundle server answered 304 without a prior download")

// jitter returns a delay drawn uniformly from [lo, hi], so replicas that
// started together spread their polls over the window.
func jitter(lo, hi time.Duration) time.Duration {
	if hi <= lo {
		return lo
	}
	return lo + rand.N(hi-lo+1)
}
