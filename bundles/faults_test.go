package bundles

import (
	"bytes"
	"compress/gzip"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Faults of a bundle server: down, failing, slow past the fetch timeout,
// or serving a tarball that is cut short or not a tarball at all. Whatever
// the fault, the last good snapshot stays (same revision, same pointer),
// every failed download is counted and shown in Status, decisions keep
// being made from the old snapshot, and a good bundle served afterwards
// is picked up.

// faultFetchTimeout bounds one download in these tests: short, so a
// hanging server costs a poll a fraction of a second, and long enough
// for a small local download on a busy machine.
const faultFetchTimeout = 200 * time.Millisecond

// faultMaxBytes is the download limit of these tests.
const faultMaxBytes = 64 << 10

// bundleFault answers one download instead of the bundle server. good is
// the tarball the server would have sent; stop is closed when the test
// ends.
type bundleFault func(w http.ResponseWriter, r *http.Request, good []byte, stop <-chan struct{})

// cut serves the first n bytes of the tarball as if they were all of it.
func cut(n func(size int) int) bundleFault {
	return func(w http.ResponseWriter, _ *http.Request, good []byte, _ <-chan struct{}) {
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(good[:n(len(good))])
	}
}

// corruptChecksum returns a copy of a gzip stream whose CRC-32 (the
// trailer's first four bytes) is wrong: every byte is there, and deflate
// decodes them all, so only the checksum tells the stream is bad.
func corruptChecksum(gz []byte) []byte {
	out := bytes.Clone(gz)
	out[len(out)-8] ^= 0xff
	return out
}

// hang waits until the client gives up or the test ends.
func hang(r *http.Request, stop <-chan struct{}) {
	select {
	case <-r.Context().Done():
	case <-stop:
	}
}

var bundleFaults = map[string]bundleFault{
	"connection_reset": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	},
	"http_500": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		http.Error(w, "boom", http.StatusInternalServerError)
	},
	"http_404": func(w http.ResponseWriter, r *http.Request, _ []byte, _ <-chan struct{}) {
		http.NotFound(w, r)
	},
	"slow_headers": func(_ http.ResponseWriter, r *http.Request, _ []byte, stop <-chan struct{}) {
		hang(r, stop)
	},
	"slow_body": func(w http.ResponseWriter, r *http.Request, good []byte, stop <-chan struct{}) {
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(good[:len(good)/2])
		w.(http.Flusher).Flush()
		hang(r, stop)
	},
	"connection_cut_mid_body": func(w http.ResponseWriter, _ *http.Request, good []byte, _ <-chan struct{}) {
		// The length announced is the whole tarball's; the connection
		// closes after half of it.
		w.Header().Set("Content-Type", "application/gzip")
		w.Header().Set("Content-Length", strconv.Itoa(len(good)))
		_, _ = w.Write(good[:len(good)/2])
	},
	"truncated_tarball_half":        cut(func(n int) int { return n / 2 }),
	"truncated_tarball_first_bytes": cut(func(int) int { return 10 }),
	"truncated_gzip_trailer":        cut(func(n int) int { return n - 8 }),
	"truncated_last_byte":           cut(func(n int) int { return n - 1 }),
	"empty_body":                    cut(func(int) int { return 0 }),
	"corrupted_checksum": func(w http.ResponseWriter, _ *http.Request, good []byte, _ <-chan struct{}) {
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(corruptChecksum(good))
	},
	"not_gzip": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		// A captive portal or a misrouted proxy answers 200 with a page.
		w.Header().Set("Content-Type", "text/html")
		_, _ = w.Write([]byte("<html><body>Sign in to continue</body></html>"))
	},
	"gzip_not_tar": func(w http.ResponseWriter, _ *http.Request, _ []byte, _ <-chan struct{}) {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		_, _ = gz.Write(bytes.Repeat([]byte("not a tar archive\n"), 100))
		_ = gz.Close()
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(buf.Bytes())
	},
	"oversized": func(w http.ResponseWriter, _ *http.Request, good []byte, _ <-chan struct{}) {
		w.Header().Set("Content-Type", "application/gzip")
		_, _ = w.Write(good)
		_, _ = w.Write(make([]byte, faultMaxBytes))
	},
}

// faultyBundleServer serves a bundle tarball, with an ETag, until a fault
// is set; it counts the requests that reached it.
type faultyBundleServer struct {
	srv  *httptest.Server
	stop chan struct{}

	mu       sync.Mutex
	body     []byte
	etag     string
	fault    bundleFault
	requests int
}

func newFaultyBundleServer(t *testing.T) *faultyBundleServer {
	s := &faultyBundleServer{stop: make(chan struct{})}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	// Cleanups run last first: hanging handlers are released before
	// Close waits for them.
	t.Cleanup(func() { close(s.stop) })
	return s
}

func (s *faultyBundleServer) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	body, etag, fault := s.body, s.etag, s.fault
	s.mu.Unlock()
	if fault != nil {
		fault(w, r, body, s.stop)
		return
	}
	if r.Header.Get("If-None-Match") == etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Content-Type", "application/gzip")
	_, _ = w.Write(body)
}

// set serves the bundle of revision rev, broken by fault when not nil.
func (s *faultyBundleServer) set(t *testing.T, rev string, fault bundleFault) {
	body := tarball(t, policyFiles(rev))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body, s.etag, s.fault = body, strconv.Quote(rev), fault
}

func (s *faultyBundleServer) requestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

// refuse takes the server down: its port refuses connections.
func (s *faultyBundleServer) refuse(t *testing.T) {
	t.Helper()
	s.srv.Close()
	if c, err := net.DialTimeout("tcp", s.srv.Listener.Addr().String(), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the closed server still accepts connections")
	}
}

// downloads returns mcpauthz_bundle_downloads_total{bundle, result}.
func downloads(t *testing.T, reg *prometheus.Registry, bundle, result string) float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != "mcpauthz_bundle_downloads_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["bundle"] == bundle && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}

// TestManagerBundleServerFaults loads revision r1 from a bundle server,
// breaks the server, and lets the Manager poll it: each failed download is
// counted and shown in Status, the r1 snapshot keeps serving decisions,
// and revision r2, served once the fault is gone, is swapped in.
func TestManagerBundleServerFaults(t *testing.T) {
	cases := map[string]bundleFault{"connection_refused": nil}
	for name, fault := range bundleFaults {
		cases[name] = fault
	}
	for name, fault := range cases {
		t.Run(name, func(t *testing.T) {
			bs := newFaultyBundleServer(t)
			bs.set(t, "r1", nil)
			url := bs.srv.URL + "/bundles/authz.tar.gz"
			reg := prometheus.NewRegistry()
			m, swaps, err := startManager(t, Options{
				Sources:      []Source{fastPoll(url)},
				FetchTimeout: faultFetchTimeout,
				MaxFileBytes: faultMaxBytes,
				Registerer:   reg,
			})
			if err != nil {
				t.Fatalf("Start: %v", err)
			}
			good := waitRevision(t, swaps, "r1")

			if fault == nil {
				bs.refuse(t)
			} else {
				bs.set(t, "r1", fault)
			}
			// Two failures: the Manager goes on polling a broken server.
			eventually(t, "two failed downloads", func() bool { return downloads(t, reg, url, "error") >= 2 })

			st := m.Status()
			if !st.Ready || st.Revision != "r1" || m.Current() != good {
				t.Errorf("during the fault: ready=%v revision=%q, same snapshot=%v; want the r1 snapshot kept",
					st.Ready, st.Revision, m.Current() == good)
			}
			if b := st.Bundles[0]; b.LastError == "" || b.LastErrorAt.IsZero() || b.Revision != "r1" {
				t.Errorf("bundle status during the fault: %+v, want the error shown beside revision r1", b)
			}
			if got := metricValue(t, reg, "mcpauthz_bundle_revision_info", "r1"); got != 1 {
				t.Errorf("revision_info{r1} = %v during the fault, want 1", got)
			}
			d, err := evalDecision(t.Context(), m.Current(), "echo")
			if err != nil || d["allow"] != true || d["policy_rev"] != "r1" || d["data_rev"] != "r1" {
				t.Errorf("decision during the fault: %v, %v; want an allow from r1", d, err)
			}
			select {
			case s := <-swaps:
				t.Errorf("a failed download swapped in revision %s", s.Revision)
			default:
			}

			if fault == nil {
				return // the port stays closed
			}
			bs.set(t, "r2", nil)
			waitRevision(t, swaps, "r2")
			if got := downloads(t, reg, url, "ok"); got != 2 {
				t.Errorf("%v good downloads, want 2 (r1, r2)", got)
			}
			if d, err := evalDecision(t.Context(), m.Current(), "echo"); err != nil || d["policy_rev"] != "r2" {
				t.Errorf("decision after recovery: %v, %v; want one from r2", d, err)
			}
		})
	}
}

// TestManagerBundleServerFaultAtStart starts on a broken bundle server:
// Start reports the failure, the Manager is not ready (no snapshot, so
// decisions fail closed), the failure is counted, and the first good
// download makes it ready.
func TestManagerBundleServerFaultAtStart(t *testing.T) {
	for name, fault := range bundleFaults {
		t.Run(name, func(t *testing.T) {
			bs := newFaultyBundleServer(t)
			bs.set(t, "r1", fault)
			url := bs.srv.URL + "/bundles/authz.tar.gz"
			reg := prometheus.NewRegistry()
			m, swaps, err := startManager(t, Options{
				Sources:      []Source{fastPoll(url)},
				FetchTimeout: faultFetchTimeout,
				MaxFileBytes: faultMaxBytes,
				Registerer:   reg,
			})
			if err == nil || m.Ready() || m.Current() != nil {
				t.Fatalf("Start on a broken server: err %v, ready %v", err, m.Ready())
			}
			if downloads(t, reg, url, "error") < 1 || m.Status().Bundles[0].LastError == "" {
				t.Errorf("the failed first download is not counted or shown: %+v", m.Status())
			}
			if bs.requestCount() < 1 {
				t.Error("no request reached the server")
			}
			bs.set(t, "r1", nil)
			waitRevision(t, swaps, "r1")
			if !m.Ready() {
				t.Error("not ready after a good download")
			}
		})
	}
}

// TestCompileRefusesBrokenTarballFile reads local .tar.gz bundles that are
// cut short or fail their checksum, as a copy interrupted or a disk error
// would leave them: each is refused, never loaded in part.
func TestCompileRefusesBrokenTarballFile(t *testing.T) {
	good := tarball(t, policyFiles("tar-1"))
	tests := map[string]struct {
		body []byte
		want string
	}{
		"cut_in_the_middle":    {body: good[:len(good)/2], want: "unexpected EOF"},
		"gzip_trailer_missing": {body: good[:len(good)-8], want: "unexpected EOF"},
		"last_byte_missing":    {body: good[:len(good)-1], want: "unexpected EOF"},
		"corrupted_checksum":   {body: corruptChecksum(good), want: "invalid checksum"},
		"not_gzip":             {body: []byte("<html></html>"), want: "invalid header"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "bundle.tar.gz")
			must(t, os.WriteFile(p, tc.body, 0o644))
			snap, err := Compile(t.Context(), Options{Sources: []Source{DirSource(p)}, Queries: testQueries})
			if err == nil {
				t.Fatalf("Compile loaded revision %q from a broken tarball", snap.Revision)
			}
			if !strings.Contains(err.Error(), p) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q, want it to name %s and say %q", err, p, tc.want)
			}
		})
	}
	p := filepath.Join(t.TempDir(), "bundle.tar.gz")
	must(t, os.WriteFile(p, good, 0o644))
	if snap, err := Compile(t.Context(), Options{Sources: []Source{DirSource(p)}, Queries: testQueries}); err != nil || snap.Revision != "tar-1" {
		t.Fatalf("the whole tarball: %v", err)
	}
}
