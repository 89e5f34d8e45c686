package decision

// Replay: deciding again on a policy input as the decision log recorded
// it, for `mcpauthz replay` (a policy change shown as the decisions it
// changes). The request is gone; what it became for the policy is in the
// event, and that is what the policy is evaluated on. The decision is then
// finished by the same code as Decide's (hidden tools, challenges, the
// deny table), so its code, status and reason compare with the logged
// result.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/mcpauthz/mcpauthz/decision/mcp"
	"github.com/mcpauthz/mcpauthz/decision/token"
)

// ErrBatchInput is returned by DecideInput for the input of one element
// of a JSON-RPC batch (input.mcp.batch): the decision log records the
// input of one element, and the batch's decision depends on all of them.
var ErrBatchInput = errors.New("the input is one element of a JSON-RPC batch, whose other elements are not recorded")

// DecideInput decides again on a policy input as it was recorded (the
// input of a decision log event), with the current policy. The steps
// before evaluation (token verification, parsing, the MCP revision's
// rules) are not repeated: the input holds their outcome. input.token
// stands for the credential (its valid, error and scopes drive the 401 and
// 403 challenges) and input.mcp for the message (its kind, method, id and
// tool shape the denial). No observer is told and no upstream credential
// is fetched. An input with no mcp member is decided as a GET or DELETE.
func (e *Engine) DecideInput(ctx context.Context, input ast.Value) (*Decision, error) {
	obj, ok := input.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("input is %s, want an object", ast.ValueName(input))
	}
	pol := e.opts.Snapshots.Current()
	if pol == nil {
		return nil, ErrNoPolicy
	}
	tok, err := tokenOfInput(obj.Get(keyToken))
	if err != nil {
		return nil, err
	}
	d := &Decision{ID: e.newID(), Revision: pol.Snapshot.Revision, Token: tok}
	mt := obj.Get(keyMCP)
	if mt == nil {
		e.finishHTTPOnly(d, e.eval(ctx, pol, input), tok)
	} else {
		msg, err := messageOfInput(mt)
		if err != nil {
			return nil, err
		}
		d.Messages, d.Method = 1, msg.Method
		if msg.Tool != nil {
			d.Tool = msg.Tool.Name
		}
		p := &prepared{tok: tok, hasVisible: pol.visible != nil}
		if item := p.callItem(msg); item != nil && obj.Get(keyItem) == nil {
			// Logged before calls carried input.item, or under a policy
			// without a visible rule: the call is judged as Decide would.
			obj = obj.Copy()
			obj.Insert(keyItem, item)
			input = obj
		}
		// As in Decide: the visible rule runs on the decision's input and
		// scratch (hideCall).
		sc := getScratch(input, e.opts.EvalTimeout, ctx.Done())
		o := outcome{msg: msg, res: e.evalOn(ctx, sc, pol)}
		e.hideCall(ctx, sc, pol, p, &o)
		putScratch(sc)
		// A pinned input schema judges the recorded arguments again; a
		// pinned digest judges what servers listed, which a replay never
		// saw (its engine remembers no list).
		e.checkPins(pol, &Request{}, &o)
		e.finishMessages(d, []outcome{o}, false, tok)
	}
	d.stamp()
	d.makeValidUTF8()
	return d, nil
}

// tokenOfInput is the credential input.token describes: what the deny
// table reads of it (present, valid, error, scopes, subject), and the
// recorded value itself as input.token. No input.token (a masked event)
// is no credential.
func tokenOfInput(t *ast.Term) (*token.Result, error) {
	if t == nil {
		return (&token.Result{Error: token.ErrMissing}).Finish(), nil
	}
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("input.token is %s, want an object", ast.ValueName(t.Value))
	}
	r := &token.Result{Value: obj}
	r.Present, _ = boolMember(obj, "present")
	r.Valid, _ = boolMember(obj, "valid")
	r.Error = stringMember(obj, "error")
	r.Subject = stringMember(obj, "subject")
	if arr, ok := termValue(obj.Get(ast.InternedTerm("scopes"))).(*ast.Array); ok {
		for i := range arr.Len() {
			if s, ok := arr.Elem(i).Value.(ast.String); ok {
				r.Scopes = append(r.Scopes, string(s))
			}
		}
	}
	return r, nil
}

// messageOfInput is the message input.mcp describes, as far as finishing
// a decision reads it.
func messageOfInput(t *ast.Term) (*mcp.Message, error) {
	obj, ok := t.Value.(ast.Object)
	if !ok {
		return nil, fmt.Errorf("input.mcp is %s, want an object", ast.ValueName(t.Value))
	}
	if obj.Get(keyBatch) != nil {
		return nil, ErrBatchInput
	}
	m := &mcp.Message{Kind: mcp.KindRequest, Method: stringMember(obj, "method")}
	kind := stringMember(obj, "kind")
	for k, kt := range kindTerms {
		if string(kt.Value.(ast.String)) == kind {
			m.Kind = k
		}
	}
	if id := obj.Get(keyID); id != nil {
		v, err := ast.JSON(id.Value)
		if err != nil {
			return nil, fmt.Errorf("input.mcp.id: %w", err)
		}
		raw, err := json.Marshal(v)
		if err != nil {
			return nil, fmt.Errorf("input.mcp.id: %w", err)
		}
		m.ID, m.IDValue = raw, id.Value
	}
	if tt, ok := termValue(obj.Get(keyTool)).(ast.Object); ok {
		m.Tool = &mcp.Named{Name: stringMember(tt, "name"), Arguments: termValue(tt.Get(keyArguments))}
	}
	return m, nil
}

func boolMember(o ast.Object, k string) (bool, bool) {
	b, ok := termValue(o.Get(ast.InternedTerm(k))).(ast.Boolean)
	return bool(b), ok
}

func stringMember(o ast.Object, k string) string {
	s, _ := termValue(o.Get(ast.InternedTerm(k))).(ast.String)
	return string(s)
}
