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
// not see. It runs after the policy decided o.
func (e *Engine) hideCall(ctx context.Context, pol *Policy, r *Request, p *prepared, o *outcome) {
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
	// The request's shared input was built for what the whole policy
	// reads (needs.go covers every module), the visible rule included.
	f := ItemFilter{e: e}
	// allowed=true: where the rule is undefined, no partial evaluation.
	v := f.judge(ctx, pol, &p.shared, r, &Item{Kind: ItemTool, Name: m.Tool.Name}, true)
	if v.Visible {
		return
	}
	reason := fmt.Sprintf("tool %q is hidden from this caller (visible rule, basis %s)", m.Tool.Name, v.Basis)
	if v.Err != nil {
		reason += ": " + v.Err.Error()
	}
	o.hidden = true
	o.res = policyResult{reason: reason, scopes: o.res.scopes}
}
