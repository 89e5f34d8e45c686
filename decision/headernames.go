package decision

import (
	"context"
	"slices"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/storage"
)

// An upstream trusts the headers a decision sets (decision.headers:
// x-mcp-subject and the like) because mcpauthz sets them; a client must
// never be able to send one itself, even when the policy sets none for its
// request. The names are read from the policy when it is activated:
// every object the policy's package builds with a "headers" member, its
// keys constant strings, or rules and data documents whose values are
// (policies/authz.rego's {subject_header: ...}, subject_header from
// data.mcpauthz.config or its default). A name built from the input cannot
// be known ahead; upstream.strip_request_headers lists such names.

// maxHeaderNameDepth bounds how many steps (local variables, rules) deep
// a header name is followed: Rego has no recursion, this is a backstop.
const maxHeaderNameDepth = 12

// headerNames finds the names of the upstream headers the policy in
// package pkg (a data ref) can set. The result is lowercase, sorted.
func headerNames(ctx context.Context, c *ast.Compiler, store storage.Store, pkg ast.Ref) []string {
	f := &headerNameFinder{ctx: ctx, c: c, store: store, names: map[string]bool{}}
	headersKey := ast.StringTerm("headers")
	for _, m := range c.Modules {
		if !m.Package.Path.Equal(pkg) {
			continue
		}
		for _, rule := range m.Rules {
			for r := rule; r != nil; r = r.Else {
				b := bindings(r)
				ast.WalkTerms(r, func(t *ast.Term) bool {
					if obj, ok := t.Value.(ast.Object); ok {
						if v := obj.Get(headersKey); v != nil {
							f.object(v, b, 0)
						}
					}
					return false
				})
			}
		}
	}
	out := make([]string, 0, len(f.names))
	for n := range f.names {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// bindings are the values the compiler's local variables of a rule's body
// stand for: it rewrites a reference or call inside a term into a local
// variable bound in the body (__local0__ = data.pkg.rule,
// object.union(a, b, __local1__)).
func bindings(r *ast.Rule) map[ast.Var]*ast.Term {
	m := map[ast.Var]*ast.Term{}
	for _, expr := range r.Body {
		ops := expr.Operands()
		switch {
		case (expr.IsEquality() || expr.IsAssignment()) && len(ops) == 2:
			if v, ok := ops[0].Value.(ast.Var); ok {
				m[v] = ops[1]
			}
			if v, ok := ops[1].Value.(ast.Var); ok {
				m[v] = ops[0]
			}
		case expr.IsCall() && len(ops) > 0:
			if v, ok := ops[len(ops)-1].Value.(ast.Var); ok {
				m[v] = ast.CallTerm(append([]*ast.Term{ast.NewTerm(expr.Operator())}, ops[:len(ops)-1]...)...)
			}
		}
	}
	return m
}

type headerNameFinder struct {
	ctx   context.Context
	c     *ast.Compiler
	store storage.Store
	names map[string]bool
}

// object reads a headers object: a literal's keys, the objects a call
// builds from (object.union), or the objects the rules it refers to
// produce (their values, or their keys for partial object rules).
func (f *headerNameFinder) object(t *ast.Term, b map[ast.Var]*ast.Term, depth int) {
	if depth > maxHeaderNameDepth {
		return
	}
	switch v := t.Value.(type) {
	case ast.Var:
		if bound, ok := b[v]; ok {
			f.object(bound, b, depth+1)
		}
	case ast.Object:
		for _, k := range v.Keys() {
			f.name(k, b, depth)
		}
	case ast.Call:
		for _, arg := range v[1:] {
			f.object(arg, b, depth+1)
		}
	case ast.Ref:
		for _, r := range f.rules(v) {
			rb := bindings(r)
			if r.Head.Key != nil && r.Head.Value != nil {
				f.name(r.Head.Key, rb, depth+1) // upstream_headers[k] := v
				continue
			}
			if r.Head.Value != nil {
				f.object(r.Head.Value, rb, depth+1)
			}
		}
	}
}

// name adds a header name: a string, or the strings the rules or data
// document it refers to hold.
func (f *headerNameFinder) name(t *ast.Term, b map[ast.Var]*ast.Term, depth int) {
	if depth > maxHeaderNameDepth {
		return
	}
	switch v := t.Value.(type) {
	case ast.String:
		f.names[strings.ToLower(string(v))] = true
	case ast.Var:
		if bound, ok := b[v]; ok {
			f.name(bound, b, depth+1)
		}
	case ast.Ref:
		if rules := f.rules(v); len(rules) > 0 {
			for _, r := range rules {
				if r.Head.Value != nil {
					f.name(r.Head.Value, bindings(r), depth+1)
				}
			}
			return
		}
		f.data(v)
	}
}

// data adds the string the data document at ref holds, if it is one.
func (f *headerNameFinder) data(ref ast.Ref) {
	if !ref.IsGround() || !ref.HasPrefix(ast.DefaultRootRef) {
		return
	}
	path, err := storage.NewPathForRef(ref)
	if err != nil {
		return
	}
	doc, err := storage.ReadOne(f.ctx, f.store, path)
	if err != nil {
		return
	}
	switch s := doc.(type) {
	case string:
		f.names[strings.ToLower(s)] = true
	case ast.String:
		f.names[strings.ToLower(string(s))] = true
	}
}

// rules returns the rules (with their else branches) that define ref.
func (f *headerNameFinder) rules(ref ast.Ref) []*ast.Rule {
	var out []*ast.Rule
	for _, r := range f.c.GetRules(ref) {
		for ; r != nil; r = r.Else {
			out = append(out, r)
		}
	}
	return out
}

// UpstreamHeaderNames returns the names (lowercase) of the upstream headers
// the current policy can set in decision.headers, as far as the policy's
// text tells them (headernames.go); nil before a policy is loaded. A
// transport that forwards requests itself (the proxy) removes them from
// the client's request, whatever the policy returns for it.
func (e *Engine) UpstreamHeaderNames() []string {
	if pol := e.opts.Snapshots.Current(); pol != nil {
		return pol.headerNames
	}
	return nil
}
