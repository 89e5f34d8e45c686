package decisionlog

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// ServiceOptions configure uploads to a decision log service in OPA's
// protocol: gzip-compressed JSON arrays of events POSTed to URL + "/logs".
type ServiceOptions struct {
	URL string
	// BearerTokenFile, when set, is read before every upload (so a rotated
	// token is picked up) and sent as "Authorization: Bearer <token>".
	BearerTokenFile string
	// Client sends the uploads (TLS as ServiceClient builds it); default
	// a client with a 10s timeout, so a stalled service costs one attempt.
	Client *http.Client
	// MinDelay and MaxDelay pace the uploads: the next one starts at a
	// random moment between them; after a failure the delay doubles from
	// MinDelay up to MaxDelay. Defaults 5s and 10s, as OPA's
	// reporting.min/max_delay_seconds.
	MinDelay, MaxDelay time.Duration
	// BufferSizeLimitBytes bounds the events waiting to be uploaded
	// (encoded size); when adding one would pass it, the oldest are
	// dropped and counted. Default 32 MiB.
	BufferSizeLimitBytes int64
}

// ServiceClient is an HTTP client for a decision log service: caFile
// (PEM) verifies the server, certFile and keyFile authenticate the client.
func ServiceClient(caFile, certFile, keyFile string, timeout time.Duration) (*http.Client, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, fmt.Errorf("reading ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ca_file %s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	if certFile != "" || keyFile != "" {
		cert, err := tls.LoadX509KeyPair(certFile, keyFile)
		if err != nil {
			return nil, fmt.Errorf("loading cert_file and key_file: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = tc
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// uploader holds encoded events until they are uploaded. add is the only
// call the writer goroutine makes: a short critical section, never I/O.
type uploader struct {
	o       ServiceOptions
	dropped *atomic.Uint64
	onErr   func(error)

	mu   sync.Mutex
	buf  [][]byte
	size int64

	stop chan struct{}
	done chan struct{}
	// uploaded counts events the service accepted (for tests and figures).
	uploaded atomic.Uint64
}

func newUploader(o ServiceOptions, dropped *atomic.Uint64, onErr func(error)) *uploader {
	if o.MinDelay <= 0 {
		o.MinDelay = 5 * time.Second
	}
	if o.MaxDelay < o.MinDelay {
		o.MaxDelay = max(o.MinDelay, 10*time.Second)
	}
	if o.BufferSizeLimitBytes <= 0 {
		o.BufferSizeLimitBytes = 32 << 20
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	o.URL = strings.TrimSuffix(o.URL, "/")
	u := &uploader{o: o, dropped: dropped, onErr: onErr, stop: make(chan struct{}), done: make(chan struct{})}
	go u.run()
	return u
}

// add queues one encoded event, dropping the oldest past the size limit.
func (u *uploader) add(ev []byte) {
	u.mu.Lock()
	u.buf = append(u.buf, ev)
	u.size += int64(len(ev))
	u.trimLocked()
	u.mu.Unlock()
}

func (u *uploader) trimLocked() {
	n := 0
	for u.size > u.o.BufferSizeLimitBytes && n < len(u.buf) {
		u.size -= int64(len(u.buf[n]))
		u.buf[n] = nil
		n++
	}
	if n > 0 {
		u.buf = u.buf[n:]
		u.dropped.Add(uint64(n))
	}
}

// take empties the buffer.
func (u *uploader) take() [][]byte {
	u.mu.Lock()
	defer u.mu.Unlock()
	evs := u.buf
	u.buf, u.size = nil, 0
	return evs
}

// putBack returns events that failed to upload in front of newer ones, the
// oldest dropped past the limit.
func (u *uploader) putBack(evs [][]byte) {
	u.mu.Lock()
	defer u.mu.Unlock()
	var n int64
	for _, e := range evs {
		n += int64(len(e))
	}
	u.buf = append(evs, u.buf...)
	u.size += n
	u.trimLocked()
}

func (u *uploader) run() {
	defer close(u.done)
	failures := 0
	t := time.NewTimer(u.delay(0))
	defer t.Stop()
	for {
		select {
		case <-u.stop:
			// One last attempt, bounded by the client's timeout.
			if evs := u.take(); len(evs) > 0 {
				if err := u.upload(context.Background(), evs); err != nil {
					u.dropped.Add(uint64(len(evs)))
					u.onErr(err)
				}
			}
			return
		case <-t.C:
		}
		if evs := u.take(); len(evs) > 0 {
			if err := u.upload(context.Background(), evs); err != nil {
				u.putBack(evs)
				u.onErr(err)
				failures++
			} else {
				failures = 0
			}
		}
		t.Reset(u.delay(failures))
	}
}

// delay is the wait before the next upload: random between the min and
// max delay, or after failures the min delay doubled per failure (up to
// the max).
func (u *uploader) delay(failures int) time.Duration {
	if failures > 0 {
		d := u.o.MinDelay
		for i := 0; i < failures && d < u.o.MaxDelay; i++ {
			d *= 2
		}
		return min(d, u.o.MaxDelay)
	}
	span := u.o.MaxDelay - u.o.MinDelay
	if span <= 0 {
		return u.o.MinDelay
	}
	return u.o.MinDelay + rand.N(span)
}

// upload POSTs the events as one gzip-compressed JSON array.
func (u *uploader) upload(ctx context.Context, evs [][]byte) error {
	var body bytes.Buffer
	zw := gzip.NewWriter(&body)
	zw.Write([]byte{'['})
	for i, e := range evs {
		if i > 0 {
			zw.Write([]byte{','})
		}
		zw.Write(e)
	}
	zw.Write([]byte{']'})
	if err := zw.Close(); err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.o.URL+"/logs", &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Content-Encoding", "gzip")
	if u.o.BearerTokenFile != "" {
		tok, err := os.ReadFile(u.o.BearerTokenFile)
		if err != nil {
			return fmt.Errorf("reading bearer_token_file: %w", err)
		}
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	}
	resp, err := u.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("uploading %d decision log events: %w", len(evs), err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("uploading %d decision log events: %s answered %s", len(evs), u.o.URL+"/logs", resp.Status)
	}
	u.uploaded.Add(uint64(len(evs)))
	return nil
}

func (u *uploader) close() {
	close(u.stop)
	<-u.done
}

var errNoSink = errors.New("decision log needs console, file, writer or service")
