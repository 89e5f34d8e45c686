package bundles

import (
	"crypto/sha256"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ociRegistry is an in-process OCI registry: the distribution endpoints a
// pull needs (/v2/, manifests by tag and digest, GET and HEAD, blobs),
// serving one repository, over TLS, with an optional access token.
type ociRegistry struct {
	srv    *httptest.Server
	caFile string
	repo   string
	token  string // required as "Authorization: Bearer <token>" when set

	mu    sync.Mutex
	blobs map[string][]byte // digest to content, manifests included
	types map[string]string // digest to media type, for manifests
	tags  map[string]string // tag to manifest digest

	heads, manifestGets, blobGets atomic.Int64
}

func newOCIRegistry(t *testing.T, token string) *ociRegistry {
	t.Helper()
	r := &ociRegistry{repo: "policies/mcp", token: token,
		blobs: map[string][]byte{}, types: map[string]string{}, tags: map[string]string{}}
	r.srv = httptest.NewTLSServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	r.caFile = filepath.Join(t.TempDir(), "ca.pem")
	must(t, os.WriteFile(r.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: r.srv.Certificate().Raw}), 0o600))
	return r
}

// ref is the reference of tag in the registry's repository.
func (r *ociRegistry) ref(tag string) string {
	return strings.TrimPrefix(r.srv.URL, "https://") + "/" + r.repo + ":" + tag
}

func digestOf(b []byte) string { return fmt.Sprintf("sha256:%x", sha256.Sum256(b)) }

// put stores a blob (or a manifest of media type mediaType) and returns its
// descriptor.
func (r *ociRegistry) put(b []byte, mediaType string) map[string]any {
	d := digestOf(b)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.blobs[d] = b
	if mediaType != "" {
		r.types[d] = mediaType
	}
	return map[string]any{"mediaType": mediaType, "digest": d, "size": len(b)}
}

// push stores a bundle as OPA lays one out (an empty config and the tarball
// as the one layer) and points tag at its manifest; layerType replaces
// the tarball's media type when set. It returns the manifest digest.
func (r *ociRegistry) push(t *testing.T, tag string, tarball []byte, layerType string) string {
	t.Helper()
	if layerType == "" {
		layerType = "application/vnd.oci.image.layer.v1.tar+gzip"
	}
	cfg := r.put([]byte("{}"), "application/vnd.oci.image.config.v1+json")
	layer := r.put(tarball, layerType)
	r.mu.Lock()
	delete(r.types, cfg["digest"].(string)) // blobs, not manifests
	delete(r.types, layer["digest"].(string))
	r.mu.Unlock()
	m, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        cfg,
		"layers":        []any{layer},
	})
	must(t, err)
	return r.tag(tag, r.put(m, "application/vnd.oci.image.manifest.v1+json"))
}

// pushIndex points tag at an image index listing the manifest digest.
func (r *ociRegistry) pushIndex(t *testing.T, tag, manifest string) {
	t.Helper()
	r.mu.Lock()
	desc := map[string]any{"mediaType": r.types[manifest], "digest": manifest, "size": len(r.blobs[manifest])}
	r.mu.Unlock()
	idx, err := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.index.v1+json",
		"manifests":     []any{desc},
	})
	must(t, err)
	r.tag(tag, r.put(idx, "application/vnd.oci.image.index.v1+json"))
}

func (r *ociRegistry) tag(tag string, desc map[string]any) string {
	d := desc["digest"].(string)
	r.mu.Lock()
	r.tags[tag] = d
	r.mu.Unlock()
	return d
}

// corrupt replaces the content of a blob, keeping its digest.
func (r *ociRegistry) corrupt(d string, b []byte) {
	r.mu.Lock()
	r.blobs[d] = b
	r.mu.Unlock()
}

func (r *ociRegistry) serve(w http.ResponseWriter, req *http.Request) {
	if r.token != "" && req.Header.Get("Authorization") != "Bearer "+r.token {
		w.Header().Set("WWW-Authenticate", `Bearer realm="`+r.srv.URL+`/token",service="test",scope="repository:`+r.repo+`:pull"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED"}]}`, http.StatusUnauthorized)
		return
	}
	if req.URL.Path == "/v2/" {
		return
	}
	rest, ok := strings.CutPrefix(req.URL.Path, "/v2/"+r.repo+"/")
	if !ok || (req.Method != http.MethodGet && req.Method != http.MethodHead) {
		http.NotFound(w, req)
		return
	}
	kind, ref, _ := strings.Cut(rest, "/")
	r.mu.Lock()
	if d, ok := r.tags[ref]; ok && kind == "manifests" {
		ref = d
	}
	body, found := r.blobs[ref]
	mediaType := r.types[ref]
	r.mu.Unlock()
	if !found || (kind == "manifests") != (mediaType != "") {
		http.Error(w, `{"errors":[{"code":"NOT_FOUND"}]}`, http.StatusNotFound)
		return
	}
	switch {
	case req.Method == http.MethodHead:
		r.heads.Add(1)
	case kind == "manifests":
		r.manifestGets.Add(1)
	default:
		r.blobGets.Add(1)
	}
	if mediaType == "" {
		mediaType = "application/octet-stream"
	}
	w.Header().Set("Content-Type", mediaType)
	w.Header().Set("Docker-Content-Digest", ref)
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	if req.Method == http.MethodGet {
		_, _ = w.Write(body)
	}
}

// TestManagerPollsOCIRegistry pulls a bundle from a registry, polls the
// tag without downloading anything while its manifest stays the same,
// swaps in the bundle a new push points the tag at, and keeps it when a
// later push is broken.
func TestManagerPollsOCIRegistry(t *testing.T) {
	reg := newOCIRegistry(t, "")
	m1 := reg.push(t, "v1", tarball(t, policyFiles("oci-1")), "")
	prom := prometheus.NewRegistry()
	src := OCISource(reg.ref("v1"), Remote{CACertFile: reg.caFile, MinDelay: 5 * time.Millisecond, MaxDelay: 10 * time.Millisecond})
	m, swaps, err := startManager(t, Options{Sources: []Source{src}, Registerer: prom})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	waitRevision(t, swaps, "oci-1")
	// The registry sees a poll before the manager counts it: wait for
	// the count itself.
	eventually(t, "three unchanged polls counted", func() bool { return downloads(t, prom, reg.ref("v1"), "not_modified") >= 3 })
	if got := reg.blobGets.Load(); got != 1 {
		t.Errorf("%d blob downloads while the manifest stayed the same, want 1 (the layer, once)", got)
	}
	if st := m.Status().Bundles[0]; st.ETag != m1 || st.Revision != "oci-1" {
		t.Errorf("bundle status %+v, want the manifest digest %s as its ETag", st, m1)
	}

	m2 := reg.push(t, "v1", tarball(t, policyFiles("oci-2")), "")
	s := waitRevision(t, swaps, "oci-2")
	if d, err := evalDecision(t.Context(), s, "echo"); err != nil || d["policy_rev"] != "oci-2" {
		t.Errorf("decision %v, %v; want one from oci-2", d, err)
	}
	if st := m.Status().Bundles[0]; st.ETag != m2 {
		t.Errorf("ETag %q after the new push, want %s", st.ETag, m2)
	}

	// A push whose layer does not match its digest is refused, again at
	// each poll, and oci-2 stays.
	// (Pushed under another tag first, so no poll sees it whole.)
	m3 := reg.push(t, "staging", tarball(t, policyFiles("oci-3")), "")
	var manifest struct {
		Layers []struct{ Digest string } `json:"layers"`
	}
	reg.mu.Lock()
	must(t, json.Unmarshal(reg.blobs[m3], &manifest))
	reg.mu.Unlock()
	reg.corrupt(manifest.Layers[0].Digest, tarball(t, policyFiles("evil")))
	reg.mu.Lock()
	reg.tags["v1"] = m3
	reg.mu.Unlock()
	eventually(t, "two refused pulls", func() bool { return downloads(t, prom, reg.ref("v1"), "error") >= 2 })
	if st := m.Status(); st.Revision != "oci-2" || st.Bundles[0].ETag != m2 || !strings.Contains(st.Bundles[0].LastError, "digest") {
		t.Errorf("status %+v, want oci-2 kept and the digest mismatch shown", st)
	}
}

// TestCompileOCI pulls once, as Compile does, from registries that do and
// do not let the pull through.
func TestCompileOCI(t *testing.T) {
	priv, pub := rsaKeys(t)
	tests := map[string]struct {
		token  string // the registry requires it
		bearer string // the source presents it
		setup  func(t *testing.T, r *ociRegistry)
		verify bool
		want   string // error substring; "" means revision oci-1 loads
	}{
		"manifest": {},
		"image_index": {
			setup: func(t *testing.T, r *ociRegistry) {
				r.pushIndex(t, "v1", r.push(t, "single", tarball(t, policyFiles("oci-1")), ""))
			},
		},
		"access_token": {token: "s3cret", bearer: "s3cret"},
		"wrong_access_token": {
			token: "s3cret", bearer: "guess",
			want: "401",
		},
		"no_access_token": {token: "s3cret", want: "401"},
		"unknown_tag": {
			setup: func(*testing.T, *ociRegistry) {},
			want:  "resolving",
		},
		"no_bundle_layer": {
			setup: func(t *testing.T, r *ociRegistry) {
				r.push(t, "v1", tarball(t, policyFiles("oci-1")), "application/vnd.oci.image.layer.v1.tar")
			},
			want: "has no application/vnd.oci.image.layer.v1.tar+gzip layer",
		},
		"signed": {
			setup: func(t *testing.T, r *ociRegistry) {
				r.push(t, "v1", tarball(t, sign(t, policyFiles("oci-1"), priv)), "")
			},
			verify: true,
		},
		"unsigned_refused": {verify: true, want: "bundle missing .signatures.json file"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			reg := newOCIRegistry(t, tc.token)
			if tc.setup != nil {
				tc.setup(t, reg)
			} else {
				reg.push(t, "v1", tarball(t, policyFiles("oci-1")), "")
			}
			var opts []SourceOption
			if tc.verify {
				opts = append(opts, WithVerification(&Verification{PublicKey: pub}))
			}
			src := OCISource(reg.ref("v1"), Remote{CACertFile: reg.caFile, Bearer: tc.bearer}, opts...)
			snap, err := Compile(t.Context(), Options{Sources: []Source{src}, Queries: testQueries})
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Compile: %v", err)
				}
				if snap.Revision != "oci-1" {
					t.Errorf("revision %q, want oci-1", snap.Revision)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}

func TestOCISourceConfig(t *testing.T) {
	tests := map[string]struct {
		ref  string
		want string
	}{
		"no_tag":        {ref: "registry.example.com/policies", want: "names no tag or digest"},
		"bad_reference": {ref: "Not A Reference", want: "oci reference"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := NewManager(Options{Sources: []Source{OCISource(tc.ref, Remote{})}}, AsIs)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewManager: %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
