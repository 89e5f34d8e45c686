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

	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// Manager keeps the current snapshot: it loads all sources, follows each
// (watching files, polling servers) through the one callback every source
// delivers its updates to, and swaps in a new snapshot only when a change
// compiles in full. A broken change is logged and counted, and the
// last good snapshot stays.
//
// T is what the caller builds from each snapshot (the decision engine's
// compiled queries and indexes, say): the Manager's activation builds it
// before the swap, so a snapshot it fails on is a failed load like any
// other, and the snapshot and its T become current together.
type Manager[T any] struct {
	cfg      *compileConfig
	log      *slog.Logger
	metrics  *metrics
	activate func(*Snapshot) (T, error)

	current atomic.Pointer[active[T]]
	started atomic.Bool

	// loadMu serializes loads, so swaps happen in the order loads finish
	// and OnSwap callbacks see them in that order.
	loadMu sync.Mutex
	// servedBase is the revision the current snapshot was compiled with,
	// before any content suffix (reviseForContent); loadMu guards it.
	servedBase string

	// mu guards the fields below.
	mu        sync.Mutex
	onSwap    []func(*Snapshot)
	sources   map[string]*BundleStatus
	lastErr   string
	lastErrAt time.Time
	wg        sync.WaitGroup
}

// active is a snapshot with what the activation built from it.
type active[T any] struct {
	snap  *Snapshot
	state T
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
	// (bundle servers, registries).
	ETag           string    `json:"etag,omitempty"`
	LastDownloadAt time.Time `json:"last_download_at,omitzero"`
	LastError      string    `json:"last_error,omitempty"`
	LastErrorAt    time.Time `json:"last_error_at,omitzero"`
}

// NewManager checks the options and registers metrics. Nothing is loaded
// until Start or Reload. activate builds the caller's state from each
// compiled snapshot before it is swapped in (AsIs when the snapshot is all
// the caller needs); an error fails that load.
func NewManager[T any](opts Options, activate func(*Snapshot) (T, error)) (*Manager[T], error) {
	if activate == nil {
		return nil, errors.New("bundle manager: no activation (use AsIs for the snapshot alone)")
	}
	cfg, err := newCompileConfig(opts)
	if err != nil {
		return nil, err
	}
	m := &Manager[T]{
		cfg:      cfg,
		log:      cfg.opts.Logger,
		activate: activate,
		sources:  map[string]*BundleStatus{},
	}
	for _, s := range cfg.opts.Sources {
		m.sources[s.Name()] = &BundleStatus{Name: s.Name()}
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
func (m *Manager[T]) OnSwap(fn func(*Snapshot)) {
	m.mu.Lock()
	m.onSwap = append(m.onSwap, fn)
	m.mu.Unlock()
}

// Current returns what the activation built from the current snapshot,
// or T's zero value before the first good load. It takes no lock; a caller
// uses the one value for a whole request.
func (m *Manager[T]) Current() T {
	if a := m.current.Load(); a != nil {
		return a.state
	}
	var zero T
	return zero
}

// Snapshot returns the current snapshot, or nil before the first good
// load.
func (m *Manager[T]) Snapshot() *Snapshot {
	if a := m.current.Load(); a != nil {
		return a.snap
	}
	return nil
}

// Ready reports whether a snapshot has ever loaded. A later failed load
// never makes the manager unready: the last good snapshot keeps serving.
func (m *Manager[T]) Ready() bool { return m.current.Load() != nil }

// Start downloads the sources that download, loads everything once, then
// follows every source (watching files, polling servers) in the
// background until ctx is done (Wait waits for that). It returns the first
// load's error, if any; the manager keeps following either way, so a later
// good change makes it ready.
func (m *Manager[T]) Start(ctx context.Context) error {
	if !m.started.CompareAndSwap(false, true) {
		return errors.New("bundle manager already started")
	}
	for _, f := range m.cfg.feeds {
		// The first download is recorded but loads nothing yet: the one
		// load below combines every source.
		if u, downloads := f.fetch(ctx, false); downloads {
			m.record(ctx, u)
		}
		// Follow before the first load, so a change made during it is
		// not missed.
		f.follow(ctx, &m.wg, m.deliver)
	}
	return m.Reload(ctx)
}

// Wait blocks until the goroutines started by Start have stopped, which
// they do once Start's context is done.
func (m *Manager[T]) Wait() { m.wg.Wait() }

// deliver is the one callback every source hands its updates to: it
// records a download and loads again when something changed.
func (m *Manager[T]) deliver(ctx context.Context, u Update) {
	if u.Download {
		m.record(ctx, u)
	}
	if u.Changed {
		_ = m.Reload(ctx) // the error is logged and counted by Reload
	}
}

// record keeps the outcome of a download for Status and metrics.
func (m *Manager[T]) record(ctx context.Context, u Update) {
	if u.Err != nil {
		if ctx.Err() != nil {
			return // stopping: not the source's fault
		}
		m.log.Warn("bundle download failed, keeping the last good bundle", "bundle", u.Source, "error", redact.String(u.Err.Error()))
	}
	now := m.cfg.opts.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	st := m.sources[u.Source]
	if u.Err != nil {
		// An error may quote the URL (net/http's do): status shows it
		// erased, as the source's name is (redact.URL).
		st.LastError, st.LastErrorAt = redact.String(u.Err.Error()), now
		m.metrics.download(u.Source, "error")
		return
	}
	st.LastDownloadAt = now
	if !u.Changed {
		m.metrics.download(u.Source, "not_modified")
		return
	}
	st.ETag = u.ETag
	m.metrics.download(u.Source, "ok")
}

// Reload reads, verifies and compiles every source (those that download
// as last downloaded) and swaps the result in. On failure the current snapshot
// stays; the error, with file:line where there is one, is logged,
// counted and kept for Status.
func (m *Manager[T]) Reload(ctx context.Context) error {
	return m.reload(ctx, true)
}

// LoadOnce is Reload for a one-shot command (eval, replay) that prints
// the error it returns: a failed load is counted and kept for Status as
// Reload's is, but not logged, so the command's user reads it once.
func (m *Manager[T]) LoadOnce(ctx context.Context) error {
	return m.reload(ctx, false)
}

func (m *Manager[T]) reload(ctx context.Context, logFailure bool) error {
	m.loadMu.Lock()
	defer m.loadMu.Unlock()

	start := time.Now()
	next, err := m.load(ctx)
	if err != nil && fileVanished(err) {
		// A file was replaced while it was read (an editor's or a
		// ConfigMap's rename): the tree settles within the debounce, so
		// read it once more before calling the change broken.
		select {
		case <-time.After(m.cfg.opts.Debounce):
		case <-ctx.Done():
		}
		next, err = m.load(ctx)
	}
	if err != nil {
		// Count before publishing the error, so whoever sees the error
		// in Status also sees it counted.
		m.metrics.loaded(false, nil)
		now := m.cfg.opts.Now()
		m.mu.Lock()
		m.lastErr, m.lastErrAt = redact.String(err.Error()), now
		m.mu.Unlock()
		if logFailure {
			keeping := "none"
			if cur := m.current.Load(); cur != nil {
				keeping = cur.snap.Revision
			}
			m.log.Error("policy load failed, keeping the last good snapshot", "error", err, "serving_revision", keeping)
		}
		return err
	}
	snap := next.snap
	changed := m.reviseForContent(snap)
	m.metrics.loaded(true, snap)
	m.current.Store(next)

	m.mu.Lock()
	for name, st := range m.sources {
		st.Revision = snap.Bundles[name]
	}
	hooks := m.onSwap
	m.mu.Unlock()
	if changed != nil {
		m.log.Info("policy loaded", "revision", snap.Revision, "changed", changed, "duration", time.Since(start))
	} else {
		m.log.Info("policy loaded", "revision", snap.Revision, "duration", time.Since(start))
	}
	for _, fn := range hooks {
		fn(snap)
	}
	return nil
}

// reviseForContent makes the revision of snap, about to be swapped in,
// differ from the served one when its content differs: a bundle whose
// manifest revision was not bumped gets "<revision>+<content hash>", so
// decisions and logs of different policies are told apart. (Without a
// manifest revision the revision is a content hash already.) It returns
// the files that changed since the served snapshot, nil on the first load.
func (m *Manager[T]) reviseForContent(snap *Snapshot) []string {
	base := snap.Revision
	defer func() { m.servedBase = base }()
	cur := m.current.Load()
	if cur == nil {
		return nil
	}
	changed := changedFiles(cur.snap.files, snap.files)
	if changed == nil {
		changed = []string{}
	}
	if len(changed) > 0 && base == m.servedBase {
		snap.Revision = base + "+" + filesHash(snap.files)
	} else if len(changed) == 0 && base == m.servedBase {
		// The same content again: keep serving its revision.
		snap.Revision = cur.snap.Revision
	}
	return changed
}

// load reads, compiles and activates a snapshot; nothing is swapped yet.
func (m *Manager[T]) load(ctx context.Context) (*active[T], error) {
	bs, err := m.cfg.readAll(false)
	if err != nil {
		return nil, err
	}
	snap, err := m.cfg.build(ctx, bs)
	if err != nil {
		return nil, err
	}
	state, err := activateSnapshot(snap, m.activate)
	if err != nil {
		return nil, err
	}
	return &active[T]{snap: snap, state: state}, nil
}

// Status returns the current revision, load time, last error and the
// state of every source.
func (m *Manager[T]) Status() Status {
	var st Status
	if cur := m.current.Load(); cur != nil {
		st.Ready, st.Revision, st.LoadedAt = true, cur.snap.Revision, cur.snap.LoadedAt
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	st.LastError, st.LastErrorAt = m.lastErr, m.lastErrAt
	st.Bundles = make([]BundleStatus, 0, len(m.cfg.opts.Sources))
	for _, s := range m.cfg.opts.Sources {
		st.Bundles = append(st.Bundles, *m.sources[s.Name()])
	}
	return st
}

// StatusHandler serves Status as JSON (for GET /v1/status): 200 once
// ready, 503 before the first good load.
func (m *Manager[T]) StatusHandler() http.Handler {
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
