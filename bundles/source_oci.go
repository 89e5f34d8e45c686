package bundles

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"

	"github.com/mcpauthz/mcpauthz/internal/redact"
)

// OCISource is a bundle in an OCI registry, laid out as OPA pulls one: an
// image manifest (or an index of them) whose layer of media type
// application/vnd.oci.image.layer.v1.tar+gzip is the bundle tarball. ref is
// "registry/repository:tag" or "registry/repository@sha256:...", reached
// over HTTPS; r.Bearer, when set, is presented as the registry's access
// token. A Manager polls it between r.MinDelay and r.MaxDelay: each poll
// resolves the tag (one HEAD request) and downloads the manifest and the
// layer only when the manifest's digest has changed. Its name defaults to
// ref.
//
// The registry client is oras-go, the one OPA's own OCI downloader uses.
func OCISource(ref string, r Remote, opts ...SourceOption) Source {
	return &ociSource{sourceBase: newSourceBase(redact.URL(ref), opts), ref: ref, remote: r.withDefaults()}
}

type ociSource struct {
	sourceBase
	ref    string
	remote Remote
}

func (s *ociSource) open(c *compileConfig) (feed, error) {
	ref, err := registry.ParseReference(s.ref)
	if err != nil {
		return nil, fmt.Errorf("bundle source %q: oci reference: %w", s.name, err)
	}
	if ref.Reference == "" {
		return nil, fmt.Errorf("bundle source %q: oci reference %q names no tag or digest", s.name, s.ref)
	}
	if err := s.remote.check(s.name); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	f := &ociFetcher{src: s, c: c, timeout: c.opts.FetchTimeout}
	d := &downloader{name: s.name, remote: s.remote, get: f.get}
	hc, err := s.remote.client(s.name)
	if err != nil {
		d.setupErr = err
		return d, nil
	}
	client := &auth.Client{Client: hc, Cache: auth.NewCache()}
	if s.remote.Bearer != "" {
		// An access token answers the registry's Bearer challenge as it
		// is, without a round trip to a token service.
		client.Credential = auth.StaticCredential(ref.Registry, auth.Credential{AccessToken: s.remote.Bearer})
	}
	f.repo = &remote.Repository{Reference: ref, Client: client}
	return d, nil
}

// ociFetcher pulls one bundle from a registry.
type ociFetcher struct {
	src     *ociSource
	c       *compileConfig
	repo    *remote.Repository
	timeout time.Duration
	// manifest is the digest of the last manifest whose bundle loaded;
	// only the poll goroutine (or the one-shot Compile) touches it.
	manifest digest.Digest
}

// maxIndexDepth bounds how far an image index may nest before the bundle's
// manifest.
const maxIndexDepth = 4

// get resolves the reference and, when its manifest is new, downloads,
// verifies and parses the bundle layer. It returns nil and no error when
// the manifest is unchanged. The "ETag" it returns is the manifest digest.
func (f *ociFetcher) get(ctx context.Context, withTests bool) (*namedBundle, string, error) {
	name := f.src.name
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	desc, err := f.repo.Resolve(ctx, f.repo.Reference.Reference)
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: resolving: %w", name, err)
	}
	if desc.Digest == f.manifest {
		return nil, "", nil
	}
	layer, err := f.bundleLayer(ctx, desc)
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: %w", name, err)
	}
	if layer.Size > f.c.opts.MaxFileBytes {
		return nil, "", fmt.Errorf("bundle %s: layer of %d bytes exceeds the limit of %d bytes", name, layer.Size, f.c.opts.MaxFileBytes)
	}
	// FetchAll reads exactly the layer's size and checks its digest, so
	// what is read is what the manifest names.
	raw, err := content.FetchAll(ctx, f.repo, layer)
	if err != nil {
		return nil, "", fmt.Errorf("bundle %s: downloading layer %s: %w", name, layer.Digest, err)
	}
	nb, err := f.c.readTarball(name, name, raw, f.src.verification, withTests)
	if err != nil {
		return nil, "", err
	}
	// Remember the manifest only once its bundle has been read and
	// verified: a broken one is pulled again at the next poll.
	f.manifest = desc.Digest
	return nb, desc.Digest.String(), nil
}

// bundleLayer returns the bundle tarball's descriptor in the manifest desc
// names, descending through image indexes to the first manifest that has
// one.
func (f *ociFetcher) bundleLayer(ctx context.Context, desc ocispec.Descriptor) (ocispec.Descriptor, error) {
	for depth := 0; ; depth++ {
		raw, err := content.FetchAll(ctx, f.repo, desc)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("downloading manifest %s: %w", desc.Digest, err)
		}
		var m struct {
			ocispec.Manifest
			Manifests []ocispec.Descriptor `json:"manifests"`
		}
		if err := json.Unmarshal(raw, &m); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("reading manifest %s: %w", desc.Digest, err)
		}
		for _, l := range m.Layers {
			if l.MediaType == ocispec.MediaTypeImageLayerGzip {
				return l, nil
			}
		}
		if len(m.Manifests) == 0 {
			return ocispec.Descriptor{}, fmt.Errorf("manifest %s has no %s layer", desc.Digest, ocispec.MediaTypeImageLayerGzip)
		}
		if depth+1 >= maxIndexDepth {
			return ocispec.Descriptor{}, fmt.Errorf("image index %s nests more than %d levels", desc.Digest, maxIndexDepth)
		}
		// An index: follow its first image manifest. Attestations that
		// builders attach (platform unknown/unknown) never hold a bundle.
		next, ok := firstImage(m.Manifests)
		if !ok {
			return ocispec.Descriptor{}, errors.New("image index " + desc.Digest.String() + " lists no image manifest")
		}
		desc = next
	}
}

func firstImage(ds []ocispec.Descriptor) (ocispec.Descriptor, bool) {
	for _, d := range ds {
		if p := d.Platform; p != nil && p.OS == "unknown" && p.Architecture == "unknown" {
			continue
		}
		if d.MediaType == ocispec.MediaTypeImageManifest || d.MediaType == ocispec.MediaTypeImageIndex {
			return d, true
		}
	}
	return ocispec.Descriptor{}, false
}
