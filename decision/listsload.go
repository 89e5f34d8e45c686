package decision

import (
	"context"

	"github.com/mcpauthz/mcpauthz/bundles"
	"github.com/mcpauthz/mcpauthz/decision/listplan"
)

// ListPlan says how list answers will be filtered under snapshot s: by
// the visible rule, or derived from the decision, and whether that
// derivation is exact (see listplan). check, serve and proxy state it at
// load; it runs a few partial evaluations, so it is not part of Activate.
func (r Rules) ListPlan(ctx context.Context, s *bundles.Snapshot) listplan.Report {
	return listplan.Analyze(ctx, s.Compiler, s.Store, listplan.Rules{Decision: r.decision, Allow: r.allow, Visible: r.visible})
}
