// Package bundles gets policy into memory: it reads OPA bundles from
// directories, tarballs, bundle servers and OCI registries, verifies and compiles them into
// an immutable Snapshot, watches the sources, and swaps the current snapshot
// atomically, keeping the last good one when a change is broken.
//
// It knows nothing of MCP or of how decisions are made (it does not import
// decision): callers say which queries to prepare, and give the Manager an
// activation that builds their own state from each snapshot before it is
// swapped in.
package bundles

import (
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// Snapshot is one fully compiled policy state. It is never modified after
// it is published; a request reads one snapshot from start to end.
type Snapshot struct {
	Revision string    // manifest revision(s), else a content hash; "+<content hash>" when content changed under an unchanged manifest revision (Manager)
	LoadedAt time.Time // when this snapshot was compiled
	Compiler *ast.Compiler
	Store    storage.Store
	// Bundles names each source bundle with its own revision.
	Bundles map[string]string

	// files hashes each module ("<bundle>/<path>") and each bundle's data
	// ("<bundle>/data"): what a reload compares to name what changed and
	// to tell content apart under an unchanged manifest revision.
	files map[string]string

	// queries holds a prepared query per requested query string, but only for
	// refs that have at least one rule in the compiled policy.
	queries map[string]*rego.PreparedEvalQuery
}

// Query returns the prepared query for q (e.g. "data.mcp.authz.decision"),
// and false when the policy defines no rule at that ref.
func (s *Snapshot) Query(q string) (*rego.PreparedEvalQuery, bool) {
	pq, ok := s.queries[q]
	return pq, ok
}

// AsIs is the activation of a caller that needs nothing beyond the
// snapshot itself: NewManager(opts, AsIs) keeps *Snapshot current.
func AsIs(s *Snapshot) (*Snapshot, error) { return s, nil }
