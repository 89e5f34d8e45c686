package decision

import (
	"context"
	"fmt"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
)

// Lists and calls agree: a tool the visible rule hides from a caller's
// tools/list is, when called, refused as if it did not exist (JSON-RPC
// -32602, "Unknown tool"), whatever the decision said, so a caller learns
// nothing from calling a name it was not shown. Challenges come first: a
// call refused for want of a token (401) or of scopes (403 step-up) is
// still answered with its challenge, since a new token may show the tool.
//
// The visible rule judges the tool by its name only (a call does not carry
// the tool's description, annotations or schema); where it is undefined
// for the tool, the call's own verdict stands. A policy without a visible
// rule is not consulted: its lists come from partial evaluation of the call
// rule, so an allowed call is visible by construction, and a tool it hides
// is one no call can use, denied here anyway (as a tool error, not
// -32602: partial evaluation on every denied call would cost far more
// than the decision itself).

// hideCall marks o hidden when it is a tools/call whose tool the caller may
// not see. It runs after the policy decided o, on the scratch of that
// evaluation: the call's input carries input.item (prepared.callItem), so
// the visible rule runs on the same input and reuses the rule values the
// decision computed (the caller's scopes, the configuration it read).
func (e *Engine) hideCall(ctx context.Context, sc *evalScratch, pol *Policy, p *prepared, o *outcome) {
	m, tok := o.msg, p.tok
	if m.Kind != mcp.KindRequest || m.Method != "tools/call" || m.Tool == nil || !tok.Valid || o.res.err != nil {
		return
	}
	if pol.visible == nil {
		return
	}
	allowed := o.res.allow
	if !allowed && len(o.res.scopes) > 0 && !tok.HasScopes(o.res.scopes) {
		return // step-up: the challenge answers
	}
	visible, defined, err := e.evalVisibleOn(ctx, sc, e.visibleFor(pol))
	if err == nil && (visible || !defined) {
		// Where the rule is undefined for the tool, the call's own
		// verdict stands.
		return
	}
	o.hidden = true
	o.res = policyResult{reason: hiddenReason(m.Tool.Name, o.res, err), scopes: o.res.scopes}
}

// hiddenReason says, for the author (eval, the decision log, replay; the
// caller only reads "Unknown tool"), why a called tool was answered as
// unknown: the policy's own reason for its decision stays, so hiding a
// denied tool loses nothing of why it was denied.
func hiddenReason(tool string, res policyResult, err error) string {
	switch {
	case err != nil:
		return fmt.Sprintf("tool %q is hidden from this caller: evaluating the visible rule failed: %v", tool, err)
	case res.allow:
		return fmt.Sprintf("tool %q is hidden from this caller by the visible rule (the decision allowed the call)", tool)
	case res.reason != "":
		return fmt.Sprintf("tool %q is hidden from this caller by the visible rule; the decision denied it: %s", tool, res.reason)
	}
	return fmt.Sprintf("tool %q is hidden from this caller by the visible rule; the decision denied it", tool)
}
