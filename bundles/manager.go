package bundles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Manager keeps the current snapshot: it loads all sources, watches local
// ones, polls bundle servers, and swaps in a new snapshot only when a
// change compiles in full. A broken change is logged and counted, and the
// last good snapshot stays.
type Manager struct {
	cfg     *compileConfig
	log     *slog.Logger
	metrics *metrics

	current atomic.Pointer[Snapshot]
	started atomic.Bool

	// loadMu serializes loads, so swaps happen in the order loads finish
	// and OnSwap callbacks see them in that order.
	loadMu sync.Mutex

	// mu guards the fields below.
	mu        sync.Mutex
	onSwap    []func(*Snapshot)
	remote    map[string]*namedBundle
	sources   map[string]*BundleStatus
	lastErr   string
	lastErrAt time.Time
	wg        sync.WaitGroup
}

// Status is what GET /v1/status shows.
type Status struct {
	Ready       bool           `json:"ready"`
	Revision    string         `json:"revision,omitempty"`
	LoadedAt    time.Time      `json:"loaded_at,omitzero"`
	LastError   string         `json:"last_error,omitempty"`
	LastErrorAt time.Time      `json:"last_error_at,omitzero"`
	Bundles     []BundleStatus `json:"bundles"`
}

// BundleStatus describes one source.
type BundleStatus struct {
	Name string `json:"name"`
	// Revision is this bundle's revision in the current snapshot.
	Revision string `json:"revision,omitempty"`
	// ETag, LastDownloadAt, LastError and LastErrorAt concern downloads
	// from a bundle server.
	ETag           string    `json:"etag,omitempty"`
	LastDownloadAt time.Time `json:"last_download_at,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
}

// NewManager checks the options and registers metrics. Nothing is loaded
// until Start or Reload.
func NewManager(opts Options) (*Manager, error) {
	cfg, err := newCompileConfig(opts)
	if err != nil {
		return nil, err
	}
	m := &Manager{
		cfg:     cfg,
		log:     cfg.opts.Logger,
		remote:  map[string]*namedBundle{},
		sources: map[string]*BundleStatus{},
	}
	for _, s := range cfg.opts.Sources {
		m.sources[s.Name] = &BundleStatus{Name: s.Name}
	}
	if cfg.opts.Registerer != nil {
		if m.metrics, err = newMetrics(cfg.opts.Registerer); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// OnSwap registers fn to be called, in load order, with each snapshot
// that becomes current. Register before Start; fn must not block for long
// and must not keep old snapshots if they are to be released.
func (m *Manager) OnSwap(fn func(*Snapshot)) {
	m.mu.Lock()
	m.onSwap = append(m.onSwap, fn)
	m.mu.Unlock()
}

// Current returns the current snapshot, or nil before the first good load.
// It takes no lock; a caller uses the one snapshot for a whole request.
func (m *Manager) Current() *Snapshot { return m.current.Load() }

// Ready reports whether a snapshot has ever loaded. A later failed load
// never makes the manager unready: the last good snapshot keeps serving.
func (m *Manager) Ready() bool { return m.current.Load() != nil }

// Start downloads URL sources, loads everything once, then watches local
// sources and polls bundle servers in the background until ctx is done
// (Wait waits for that). It returns the first load's error, if any; the
// manager keeps watching and polling either way, so a later good change
// makes it ready.
func (m *Manager) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("bundle manager already started")
	}
	// Watch before the first read, so a change made during it is not
	// missed.
	w, err := m.newWatcher()
	if err != nil {
		m.log.Error("not watching bundle files", "error", err)
	} else if w != nil {
		m.wg.Go(func() { m.watchLoop(ctx, w) })
	}
	for _, s := range m.cfg.opts.Sources {
		if s.URL == "" {
			continue
		}
		f, err := newFetcher(s, m.cfg.opts)
		if err != nil {
			// Configuration that cannot work: fail like a broken bundle.
			m.recordDownload(s.Name, nil, "", err)
			continue
		}
		m.download(ctx, f)
		m.wg.Go(func() { m.pollLoop(ctx, f) })
	}
	return m.Reload(ctx)
}

// Wait blocks until the goroutines started by Start have stopped, which
// they do once Start's context is done.
func (m *Manager) Wait() { m.wg.Wait() }

// pollLoop polls one bundle server with a jittered delay until ctx ends.
func (m *Manager) pollLoop(ctx context.Context, f *fetcher) {
	t := time.NewTimer(jitter(f.src.MinDelay, f.src.MaxDelay))
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if m.download(ctx, f) {
			_ = m.Reload(ctx) // the error is logged and counted by Reload
		}
		t.Reset(jitter(f.src.MinDelay, f.src.MaxDelay))
	}
}

// download fetches one bundle and reports whether a new one arrived.
func (m *Manager) download(ctx context.Context, f *fetcher) bool {
	nb, err := f.fetch(ctx, m.cfg, false)
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		m.log.Warn("bundle download failed, keeping the last good bundle", "bundle", f.src.Name, "error", err)
	}
	m.recordDownload(f.src.Name, nb, f.etag, err)
	return nb != nil
}

func (m *Manager) recordDownload(name string, nb *namedBundle, etag string, err error) {
	now := m.cfg.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.sources[name]
	if err != nil {
		st.LastError, st.LastErrorAt = err.Error(), now
		m.metrics.download(name, "error")
		return
	}
	st.LastDownloadAt = now
	if nb == nil {
		m.metrics.download(name, "not_modified")
		return
	}
	st.ETag = etag
	m.remote[name] = nb
	m.metrics.download(name, "ok")
}

// Reload reads, verifies and compiles every source (URL sources as last
// downloaded) and swaps the result in. On failure the current snapshot
// stays; the error, with file:line where there is one, is logged,
// counted and kept for Status.
func (m *Manager) Reload(ctx context.Context) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()

	start := time.Now()
	snap, err := m.load(ctx)
	if err != nil && fileVanished(err) {
		// A file was replaced while it was read (an editor's or a
		// ConfigMap's rename): the tree settles within the debounce, so
		// read it once more before calling the change broken.
		select {
		case <-time.After(m.cfg.opts.Debounce):
		case <-ctx.Done():
		}
		snap, err = m.load(ctx)
	}
	if err != nil {
		// Count before publishing the error, so whoever sees the error
		// in Status also sees it counted.
		m.metrics.loaded(false, nil)
		now := m.cfg.opts.Now()
		m.mu.Lock()
		m.lastErr, m.lastErrAt = err.Error(), now
		m.mu.Unlock()
		keeping := "none"
		if cur := m.current.Load(); cur != nil {
			keeping = cur.Revision
		}
		m.log.Error("policy load failed, keeping the last good snapshot", "error", err, "serving_revision", keeping)
		return err
	}
	m.metrics.loaded(true, snap)
	m.current.Store(snap)

	m.mu.Lock()
	for name, st := range m.sources {
		st.Revision = snap.Bundles[name]
	}
	hooks := m.onSwap
	m.mu.Unlock()
	m.log.Info("policy loaded", "revision", snap.Revision, "duration", time.Since(start))
	for _, fn := range hooks {
		fn(snap)
	}
	return nil
}

func (m *Manager) load(ctx context.Context) (*Snapshot, error) {
	bs, err := m.cfg.readAll(func(name string) *namedBundle {
		m.mu.Lock()
		defer m.mu.Unlock()
		return m.remote[name]
	}, false)
	if err != nil {
		return nil, err
	}
	return m.cfg.build(ctx, bs)
}

// Status returns the current revision, load time, last error and the
// state of every source.
func (m *Manager) Status() Status {
	var st Status
	if cur := m.current.Load(); cur != nil {
		st.Ready, st.Revision, st.LoadedAt = true, cur.Revision, cur.LoadedAt
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st.LastError, st.LastErrorAt = m.lastErr, m.lastErrAt
	st.Bundles = make([]BundleStatus, 0, len(m.cfg.opts.Sources))
	for _, s := range m.cfg.opts.Sources {
		st.Bundles = append(st.Bundles, *m.sources[s.Name])
	}
	return st
}

// StatusHandler serves Status as JSON (for GET /v1/status): 200 once
// ready, 503 before the first good load.
func (m *Manager) StatusHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		st := m.Status()
		body, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		if !st.Ready {
			w.WriteHeader(http.StatusServiceUnavailable)
		}
		if r.Method == http.MethodGet {
			_, _ = w.Write(append(body, '\n'))
		}
	})
}

// metrics are the Manager's Prometheus series; a nil *metrics records
// nothing.
type metrics struct {
	loads       *prometheus.CounterVec
	lastSuccess prometheus.Gauge
	revision    *prometheus.GaugeVec
	downloads   *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		loads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpauthz_bundle_loads_total",
			Help: "Policy loads by result (success, failure).",
		}, []string{"result"}),
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "mcpauthz_bundle_last_success_timestamp_seconds",
			Help: "Unix time of the last successful policy load.",
		}),
		revision: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "mcpauthz_bundle_revision_info",
			Help: "The revision of the policy being served (value 1).",
		}, []string{"revision"}),
		downloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mcpauthz_bundle_downloads_total",
			Help: "Bundle server downloads by bundle and result (ok, not_modified, error).",
		}, []string{"bundle", "result"}),
	}
	for _, c := range []prometheus.Collector{m.loads, m.lastSuccess, m.revision, m.downloads} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("registering bundle metrics: %w", err)
		}
	}
	// Both results exist from the start, so rate() works before a failure.
	m.loads.WithLabelValues("success")
	m.loads.WithLabelValues("failure")
	return m, nil
}

func (m *metrics) loaded(ok bool, snap *Snapshot) {
	if m == nil {
		return
	}
	if !ok {
		m.loads.WithLabelValues("failure").Inc()
		return
	}
	m.loads.WithLabelValues("success").Inc()
	m.lastSuccess.Set(float64(snap.LoadedAt.UnixNano()) / 1e9)
	// One series only: old revisions are dropped, not left at 0.
	m.revision.Reset()
	m.revision.WithLabelValues(snap.Revision).Set(1)
}

func (m *metrics) download(name, result string) {
	if m == nil {
		return
	}
	m.downloads.WithLabelValues(name, result).Inc()
}

// fileVanished reports whether a load failed because a file disappeared
// between listing and reading. OPA's loaders do not always wrap the
// underlying error, so the message is checked too.
func fileVanished(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || strings.Contains(err.Error(), "no such file or directory")
}
