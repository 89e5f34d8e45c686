package decision

import (
	"github.com/open-policy-agent/opa/v1/ast"
)

// inputNeeds is the part of the policy input that a policy can read: the
// engine builds only that part for evaluation, since building input.http's
// headers and other unread values costs as much as evaluating a small
// policy. It is found by reading every input reference in the compiled
// policy, and errs towards building more: a policy that uses input as a
// whole, or indexes it with a variable, gets all of it.
type inputNeeds struct {
	all      bool
	children map[string]*inputNeeds
}

// allInput is the needs of a policy that may read anything.
var allInput = &inputNeeds{all: true}

// sub returns the needs below key, nil when nothing below it is read.
func (n *inputNeeds) sub(key string) *inputNeeds {
	if n == nil {
		return nil
	}
	if n.all {
		return n
	}
	return n.children[key]
}

// add records that the policy reads the document at path.
func (n *inputNeeds) add(path []string) {
	for _, k := range path {
		if n.all {
			return
		}
		c := n.children[k]
		if c == nil {
			if n.children == nil {
				n.children = map[string]*inputNeeds{}
			}
			c = &inputNeeds{}
			n.children[k] = c
		}
		n = c
	}
	n.all, n.children = true, nil
}

// policyInputNeeds reads the input references of every module of c.
func policyInputNeeds(c *ast.Compiler) *inputNeeds {
	root := &inputNeeds{}
	var vis *ast.GenericVisitor
	vis = ast.NewGenericVisitor(func(x any) bool {
		if root.all {
			return true
		}
		switch x := x.(type) {
		case *ast.With:
			// with input as ... replaces input; only its value is read.
			vis.Walk(x.Value)
			return true
		case ast.Ref:
			if len(x) == 0 || !x[0].Equal(ast.InputRootDocument) {
				return false
			}
			var path []string
			for _, t := range x[1:] {
				s, ok := t.Value.(ast.String)
				if !ok {
					break
				}
				path = append(path, string(s))
			}
			root.add(path) // an empty path marks the whole input
			for _, t := range x[1:] {
				vis.Walk(t) // variables in the ref may be other refs
			}
			return true
		case ast.Var:
			if x.Equal(ast.InputRootDocument.Value) {
				root.add(nil)
			}
		}
		return false
	})
	for _, m := range c.Modules {
		vis.Walk(m)
		if root.all {
			return allInput
		}
	}
	return root
}
