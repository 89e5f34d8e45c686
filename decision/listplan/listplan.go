// Package listplan says, when a policy loads, how its list answers
// (tools/list, prompts/list, resources/list) will be filtered: by the
// policy's visible rule, or derived from its decision by partial
// evaluation, and whether that derivation is exact for this policy.
//
// Without a visible rule, an item is listed when partial evaluation of the
// decision for a call to it, with the call's arguments unknown, leaves some
// query. That is exact when partial evaluation can split every rule the
// decision goes through. A rule it cannot split (an else chain that reads
// the arguments, say) is left whole in the remaining query, so the item is
// listed whoever asks: a caller who can call nothing is shown every item
// whose call reaches that rule. Analyze finds such rules by deciding, at
// load, a call to an unnamed item by a caller whose token carries no
// scopes and no claims: a remaining query that still names a rule of the
// policy, or a support module, is the sign.
package listplan

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"github.com/open-policy-agent/opa/v1/storage"
)

// Rules are the policy's rule references ("data.mcp.authz.decision").
type Rules struct {
	Decision, Allow, Visible string
}

// How lists are filtered.
const (
	// ByVisible: the visible rule judges every item.
	ByVisible = "visible"
	// Derived: the decision, by partial evaluation, judges the items
	// (those the visible rule leaves undefined, when there is one).
	Derived = "derived"
	// NoRule: the policy defines neither visible nor decision nor allow;
	// every item is hidden.
	NoRule = "none"
)

// Report is how a policy's lists will be filtered.
type Report struct {
	// Mode is ByVisible or Derived.
	Mode string
	// VisibleAt is where the visible rule is (file:line), when there is one.
	VisibleAt string
	// Fallback says the visible rule has no default, so an item it leaves
	// undefined is derived from the decision.
	Fallback bool
	// Exact says the derivation is exact: partial evaluation splits every
	// rule the decision goes through. Meaningless for ByVisible without
	// Fallback.
	Exact bool
	// Unsplit are the rules partial evaluation left whole (name and
	// file:line), when not Exact.
	Unsplit []string
	// Err is why the analysis could not run; the report then says nothing
	// of exactness.
	Err error
}

// The unknowns and method of a call per item kind, as the list filter
// uses them (decision/visible.go).
var probes = []struct {
	kind, method, member, unknown string
}{
	{"tool", "tools/call", `"tool": {"name": "` + probeName + `"}`, "input.mcp.tool.arguments"},
	{"prompt", "prompts/get", `"prompt": {"name": "` + probeName + `"}`, "input.mcp.prompt.arguments"},
	{"resource", "resources/read", `"resource": {"uri": "` + probeName + `"}`, ""},
}

// probeName is the item no policy names.
const probeName = "mcpauthz-list-probe"

// Analyze says how lists will be filtered under the compiled policy c
// with its data in store.
func Analyze(ctx context.Context, c *ast.Compiler, store storage.Store, r Rules) Report {
	if rules := rulesAt(c, r.Visible); len(rules) > 0 {
		rep := Report{Mode: ByVisible, VisibleAt: location(rules[0]), Fallback: !slices.ContainsFunc(rules, func(r *ast.Rule) bool { return r.Default }), Exact: true}
		if rep.Fallback {
			rep.Exact, rep.Unsplit, rep.Err = derivation(ctx, c, store, r)
		}
		return rep
	}
	if len(rulesAt(c, r.Decision)) == 0 && len(rulesAt(c, r.Allow)) == 0 {
		return Report{Mode: NoRule, Exact: true}
	}
	rep := Report{Mode: Derived}
	rep.Exact, rep.Unsplit, rep.Err = derivation(ctx, c, store, r)
	return rep
}

// derivation decides the probe calls by partial evaluation and returns
// whether every rule was split, and the rules that were not.
func derivation(ctx context.Context, c *ast.Compiler, store storage.Store, r Rules) (bool, []string, error) {
	q, pkg := r.Allow+" == true", r.Allow
	if len(rulesAt(c, r.Decision)) > 0 {
		q, pkg = r.Decision+".allow == true", r.Decision
	}
	pkgRef := ast.MustParseRef(pkg[:strings.LastIndexByte(pkg, '.')])
	var unsplit []string
	for _, p := range probes {
		in, err := ast.ParseTerm(`{"mcp": {"kind": "request", "method": "` + p.method + `", "id": 1, ` + p.member + `},
			"token": {"present": true, "valid": true, "scopes": [], "claims": {}}, "context": {}}`)
		if err != nil {
			return false, nil, err
		}
		unknowns := []*ast.Term{ast.MustParseTerm("input.mcp.params")}
		if p.unknown != "" {
			unknowns = append(unknowns, ast.MustParseTerm(p.unknown))
		}
		pq, err := rego.New(rego.Query(q), rego.Compiler(c), rego.Store(store), rego.StoreReadAST(true),
			rego.ParsedInput(in.Value), rego.ParsedUnknowns(unknowns)).Partial(ctx)
		if err != nil {
			return false, nil, fmt.Errorf("partially evaluating %s for a %s: %w", q, p.method, err)
		}
		for _, body := range pq.Queries {
			ast.WalkRefs(body, func(ref ast.Ref) bool {
				for _, rule := range rulesNamed(c, ref, pkgRef) {
					unsplit = appendNew(unsplit, describe(rule))
				}
				return false
			})
		}
		for _, m := range pq.Support {
			for _, rule := range m.Rules {
				unsplit = appendNew(unsplit, supportRule(m, rule))
			}
		}
	}
	return len(unsplit) == 0, unsplit, nil
}

// rulesAt returns the rules defining ref.
func rulesAt(c *ast.Compiler, ref string) []*ast.Rule {
	r, err := ast.ParseRef(ref)
	if err != nil {
		return nil
	}
	return c.GetRulesExact(r)
}

// rulesNamed returns the first rule of the policy's package that defines
// the document ref reads: a rule partial evaluation left whole.
func rulesNamed(c *ast.Compiler, ref, pkg ast.Ref) []*ast.Rule {
	if !ref.HasPrefix(pkg) {
		return nil
	}
	rs := c.GetRulesForVirtualDocument(ref)
	if len(rs) == 0 {
		return nil
	}
	return rs[:1]
}

// supportRule names a rule of a support module (package data.partial.…)
// by the path it had in the policy.
func supportRule(m *ast.Module, r *ast.Rule) string {
	path := m.Package.Path
	if len(path) > 1 && path[1].Equal(ast.StringTerm("partial")) {
		path = append(ast.Ref{ast.DefaultRootDocument}, path[2:]...)
	}
	return path.Extend(r.Ref()).String() + " (" + location(r) + ")"
}

func describe(r *ast.Rule) string {
	return r.Ref().String() + " (" + location(r) + ")"
}

func location(r *ast.Rule) string {
	if r.Location == nil {
		return "?"
	}
	return fmt.Sprintf("%s:%d", r.Location.File, r.Location.Row)
}

func appendNew(list []string, s string) []string {
	if slices.Contains(list, s) {
		return list
	}
	return append(list, s)
}

// Lines says the report for a person, one statement a line: how lists
// will be filtered and, when the derivation is not exact, which items may
// be shown to a caller who cannot call them and what to write instead.
func (r Report) Lines() []string {
	var how string
	switch {
	case r.Mode == NoRule:
		return []string{"lists: the policy defines neither visible nor decision nor allow: every item is hidden"}
	case r.Mode == ByVisible && !r.Fallback:
		return []string{"lists: filtered by the visible rule (" + r.VisibleAt + "), which judges every tool, prompt and resource"}
	case r.Mode == ByVisible:
		how = "lists: filtered by the visible rule (" + r.VisibleAt + "), which has no default: an item it leaves undefined is derived from the decision by partial evaluation"
	default:
		how = "lists: no visible rule: derived from the decision by partial evaluation (an item is listed when some arguments could make its call allowed)"
	}
	switch {
	case r.Err != nil:
		return []string{how + "; whether that is exact could not be told: " + r.Err.Error()}
	case r.Exact:
		return []string{how + ", exact for this policy"}
	}
	return []string{
		how + ", NOT exact for this policy: partial evaluation cannot split " + strings.Join(r.Unsplit, ", ") +
			" (an else chain, or a rule it cannot split, that reads the call's arguments), so every tool, prompt and resource whose call reaches it is listed to every caller, even one who cannot call it: a caller who may call nothing is shown all of them",
		"lists: to list exactly, write a visible rule beside the decision (default visible := false, and visible if { ... } on input.item.kind, input.item.name and the caller's input.token); see docs/policies.md, \"Lists\"",
	}
}
