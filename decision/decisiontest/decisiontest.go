// Package decisiontest builds decision engines on test policies, for the
// tests of the adapters around the engine (Envoy, the Decision API).
package decisiontest

import (
	"context"
	"testing"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision"
	"github.com/mcpauthz/mcpauthz/decision/oauth"
)

// Resource is the protected resource URI the test engines use.
const Resource = "https://mcp.example.com/mcp"

// Snapshots serves one fixed snapshot.
type Snapshots struct{ S *bundles.Snapshot }

// Current returns the snapshot.
func (s *Snapshots) Current() *bundles.Snapshot { return s.S }

// NewEngine compiles the bundle directory dir and returns an engine on it.
// edit, when non-nil, adjusts the options before the engine is built.
func NewEngine(t testing.TB, dir string, edit func(*decision.Options)) *decision.Engine {
	t.Helper()
	src := &Snapshots{}
	opts := decision.Options{Snapshots: src, MetadataURL: oauth.MetadataURL(Resource)}
	if edit != nil {
		edit(&opts)
	}
	e, err := decision.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	snap, err := bundles.Compile(context.Background(), bundles.Options{
		Sources: []bundles.Source{{Path: dir}},
		Queries: e.Queries(),
	})
	if err != nil {
		t.Fatalf("compiling %s: %v", dir, err)
	}
	src.S = snap
	return e
}
