package decision

import (
	"context"
	"errors"
	"fmt"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"

	"github.com/mcpauthz/mcpauthz/decision/token"
)

// ItemKind is the kind of a list item: what a tools/list, prompts/list or
// resources/list answer holds.
type ItemKind string

// The kinds of list items (input.item.kind of the visible rule).
const (
	ItemTool     ItemKind = "tool"
	ItemPrompt   ItemKind = "prompt"
	ItemResource ItemKind = "resource"
)

// Item is one entry of a list answer, as the visible rule sees it.
type Item struct {
	Kind ItemKind
	// Name is the tool or prompt name, or the resource name (its URI when
	// empty).
	Name string
	// URI is the resource URI (resources only).
	URI         string
	Description string
	// Annotations and InputSchema are JSON values (maps from encoding/json
	// or structpb's AsMap); nil when absent.
	Annotations map[string]any
	InputSchema map[string]any
}

// How a visibility verdict was reached.
const (
	// BasisRule: the policy's visible rule decided.
	BasisRule = "rule"
	// BasisPartialEval: the policy defines no visible rule (or it was
	// undefined for the item), so partial evaluation of the decision for a
	// call to the item, with its arguments unknown, decided.
	BasisPartialEval = "partial_eval"
	// BasisError: evaluation failed and the item is hidden.
	BasisError = "error"
)

// Visibility is the verdict on one item.
type Visibility struct {
	Visible bool
	Basis   string // one of the Basis* constants
	Err     error  // why evaluation failed (Basis is BasisError)
}

// VisibleResult holds one verdict per item, in order.
type VisibleResult struct {
	Revision string
	Token    *token.Result
	Items    []Visibility
}

// ErrNoPolicy is returned before the first policy is loaded.
var ErrNoPolicy = errors.New("no policy is loaded yet")

// ItemFilter answers which items of a list a caller may see, for gateways
// that filter tools/list, prompts/list and resources/list answers. Build it
// once per engine; it is safe for concurrent use.
type ItemFilter struct {
	e *Engine
}

// NewItemFilter builds an ItemFilter on an engine.
func NewItemFilter(e *Engine) *ItemFilter {
	return &ItemFilter{e: e}
}

var (
	keyItem        = ast.InternedTerm("item")
	keyDescription = ast.InternedTerm("description")
	keyAnnotations = ast.InternedTerm("annotations")
	keyInputSchema = ast.InternedTerm("input_schema")

	// The unknowns of the synthetic call per item kind: whatever the
	// caller may still choose (arguments, params) is unknown; the target
	// (tool or prompt name, resource URI) and everything else is known.
	unknownsByKind = map[ItemKind][]*ast.Term{
		ItemTool:     {ast.MustParseTerm("input.mcp.tool.arguments"), ast.MustParseTerm("input.mcp.params")},
		ItemPrompt:   {ast.MustParseTerm("input.mcp.prompt.arguments"), ast.MustParseTerm("input.mcp.params")},
		ItemResource: {ast.MustParseTerm("input.mcp.params")},
	}
	// methodByKind is the call that uses an item of that kind.
	methodByKind = map[ItemKind]string{
		ItemTool:     "tools/call",
		ItemPrompt:   "prompts/get",
		ItemResource: "resources/read",
	}
)

// Visible decides, for each item, whether the caller of r may see it. r
// carries the caller's credentials, HTTP context and route context; its
// body is ignored. The only error is ErrNoPolicy; an item whose evaluation
// fails is hidden, with Basis BasisError.
func (f *ItemFilter) Visible(ctx context.Context, r *Request, items []Item) (*VisibleResult, error) {
	pol := f.e.opts.Snapshots.Current()
	if pol == nil {
		return nil, ErrNoPolicy
	}
	return f.visibleIn(ctx, pol, r, items), nil
}

// visibleIn is Visible under the policy pol.
func (f *ItemFilter) visibleIn(ctx context.Context, pol *Policy, r *Request, items []Item) *VisibleResult {
	e := f.e
	tok := e.resolveToken(ctx, r, pol.keys)
	shared := sharedInput{source: sourceInput(r), context: contextInput(r.Context), token: ast.NewTerm(tok.Value)}
	shared.http = httpInput(r)

	res := &VisibleResult{Revision: pol.Snapshot.Revision, Token: tok, Items: make([]Visibility, len(items))}
	for i := range items {
		res.Items[i] = f.judge(ctx, pol, &shared, r, &items[i], false)
	}
	return res
}

// judge decides one item: by the visible rule, else by partial evaluation.
// allowed says a call to the item was just allowed: partial evaluation
// would find it visible, so it is not run.
func (f *ItemFilter) judge(ctx context.Context, pol *Policy, shared *sharedInput, r *Request, it *Item, allowed bool) Visibility {
	if _, ok := methodByKind[it.Kind]; !ok {
		return Visibility{Basis: BasisError, Err: fmt.Errorf("item %q: unknown kind %q", it.Name, it.Kind)}
	}
	if pol.visible != nil {
		v, defined, err := f.byRule(ctx, pol, shared, it)
		switch {
		case err != nil:
			return Visibility{Basis: BasisError, Err: fmt.Errorf("item %q: %w", it.Name, err)}
		case defined:
			return Visibility{Visible: v, Basis: BasisRule}
		}
	}
	if allowed {
		return Visibility{Visible: true, Basis: BasisPartialEval}
	}
	v, err := f.byPartialEval(ctx, pol, shared, r, it)
	if err != nil {
		return Visibility{Basis: BasisError, Err: fmt.Errorf("item %q: %w", it.Name, err)}
	}
	return Visibility{Visible: v, Basis: BasisPartialEval}
}

// byRule evaluates the visible rule for one item. defined is false when
// the rule is undefined for it.
func (f *ItemFilter) byRule(ctx context.Context, pol *Policy, s *sharedInput, it *Item) (visible, defined bool, err error) {
	itemT, err := itemTerm(it)
	if err != nil {
		return false, false, err
	}
	// A member left nil is one the policy never reads (the engine's shared
	// input is built for what the policy reads).
	members := make([][2]*ast.Term, 0, 4)
	for _, m := range [][2]*ast.Term{{keyToken, s.token}, {keyContext, s.context}, {keyHTTP, s.http}, {keyItem, itemT}} {
		if m[1] != nil {
			members = append(members, m)
		}
	}
	input := ast.NewObject(members...)
	return f.e.evalVisible(ctx, f.e.visibleFor(pol), input)
}

// byPartialEval decides whether some call using the item could be allowed:
// it partially evaluates the decision's allow for a synthetic call (tools/call,
// prompts/get, resources/read) whose arguments are unknown. No remaining
// query means no argument values can allow it: hidden. At least one means
// some could (or it is allowed outright): visible. This over-approximates
// (a remaining query may be unsatisfiable) but never hides an item that a
// call could use.
func (f *ItemFilter) byPartialEval(ctx context.Context, pol *Policy, s *sharedInput, r *Request, it *Item) (bool, error) {
	if pol.partialErr != nil {
		return false, pol.partialErr
	}
	pq := &pol.partial
	input := s.input(syntheticCall(it, r), nil)
	ctx, cancel := context.WithTimeout(ctx, f.e.opts.EvalTimeout)
	defer cancel()
	pqs, err := pq.Partial(ctx, rego.EvalParsedInput(input), rego.EvalParsedUnknowns(unknownsByKind[it.Kind]))
	if err != nil {
		return false, fmt.Errorf("partially evaluating the decision: %w", err)
	}
	return len(pqs.Queries) > 0, nil
}

// syntheticCall is input.mcp of the call that would use the item, with the
// session and protocol headers of the caller's request.
func syntheticCall(it *Item, r *Request) *ast.Term {
	items := make([][2]*ast.Term, 0, 6)
	items = append(items,
		ast.Item(keyKind, kindTermRequest),
		ast.Item(keyMethod, ast.InternedTerm(methodByKind[it.Kind])),
		ast.Item(keyID, ast.InternedTerm(1)),
	)
	switch it.Kind {
	case ItemTool:
		items = append(items, ast.Item(keyTool, ast.ObjectTerm(ast.Item(keyName, ast.StringTerm(it.Name)))))
	case ItemPrompt:
		items = append(items, ast.Item(keyPrompt, ast.ObjectTerm(ast.Item(keyName, ast.StringTerm(it.Name)))))
	case ItemResource:
		items = append(items, ast.Item(keyResource, ast.ObjectTerm(ast.Item(keyURI, ast.StringTerm(it.URI)))))
	}
	if v := r.Headers["mcp-session-id"]; v != "" {
		items = append(items, ast.Item(keySessionID, ast.StringTerm(v)))
	}
	if v := r.Headers["mcp-protocol-version"]; v != "" {
		items = append(items, ast.Item(keyProtocolVersion, ast.StringTerm(v)))
	}
	return ast.ObjectTerm(items...)
}

var kindTermRequest = ast.InternedTerm("request")

// itemTerm is input.item.
func itemTerm(it *Item) (*ast.Term, error) {
	name := it.Name
	if name == "" && it.Kind == ItemResource {
		name = it.URI
	}
	items := make([][2]*ast.Term, 0, 6)
	items = append(items,
		ast.Item(keyKind, ast.InternedTerm(string(it.Kind))),
		ast.Item(keyName, ast.StringTerm(name)),
	)
	if it.Kind == ItemResource {
		items = append(items, ast.Item(keyURI, ast.StringTerm(it.URI)))
	}
	if it.Description != "" {
		items = append(items, ast.Item(keyDescription, ast.StringTerm(it.Description)))
	}
	for _, f := range []struct {
		key *ast.Term
		val map[string]any
	}{{keyAnnotations, it.Annotations}, {keyInputSchema, it.InputSchema}} {
		if f.val == nil {
			continue
		}
		v, err := ast.InterfaceToValue(f.val)
		if err != nil {
			return nil, fmt.Errorf("item %s: %w", f.key.Value, err)
		}
		items = append(items, ast.Item(f.key, ast.NewTerm(v)))
	}
	return ast.ObjectTerm(items...), nil
}
